"""``polyfact analyze neurons|heads`` on a tiny run: result files, provenance reuse, text sources."""

import json

import datasets
import pytest

from polyfact.analyses.config import SpecializationConfig
from polyfact.analyses.specialization import head_analysis, load_lape, neuron_analysis, text_source
from polyfact.core.errors import PolyFactError

from tests.helpers import cli


def test_neurons_and_heads_from_the_cli(smoke_run):
    run, _ = smoke_run
    r = cli("analyze", "neurons", "--run", run, "--checkpoint", "base", "--preset", "smoke", "--max-tokens", "500")
    assert r.returncode == 0, r.stderr
    assert "tang (top_frac)" in r.stdout
    res = json.loads((run / "results" / "neurons" / "base.json").read_text())
    assert set(res["variants"]) == {"tang", "polyfact"} and res["provenance"]["checkpoint_fingerprint"]
    assert (run / "results" / "neurons" / "base.stats.safetensors").exists()
    assert load_lape(run, "base", "polyfact").n_layers == res["n_layers"]
    r = cli("analyze", "heads", "--run", run, "--checkpoint", "base", "--preset", "smoke", "--max-tokens", "300")
    assert r.returncode == 0, r.stderr
    heads = json.loads((run / "results" / "heads" / "base.json").read_text())
    assert len(heads["top_k"]) == len(heads["languages"]) and heads["method"] == "lahis"


def test_results_are_reused_when_inputs_match(smoke_run):
    run, _ = smoke_run
    cfg = SpecializationConfig(backend="torch", max_tokens=300, head_max_tokens=200)
    a = neuron_analysis(run, "base", cfg)
    stamp = (run / "results" / "neurons" / "base.stats.safetensors").stat().st_mtime_ns
    b = neuron_analysis(run, "base", cfg)
    assert a == b and (run / "results" / "neurons" / "base.stats.safetensors").stat().st_mtime_ns == stamp
    cfg.max_tokens = 200  # another budget: recomputed
    c = neuron_analysis(run, "base", cfg)
    assert c["provenance"]["key"] != a["provenance"]["key"]
    h = head_analysis(run, "base", SpecializationConfig(head_method="ablation", head_max_tokens=100))
    assert h["method"] == "ablation"


def test_text_sources(smoke_run, tmp_path):
    run, _ = smoke_run
    src = text_source(run, None)
    assert "en" in src.texts and src.fingerprint and "questions" in src.description
    stm = text_source(run, "statements")
    assert len(stm.texts["en"]) == 2 * len(src.texts["en"]) and stm.texts["en"][-1] == src.texts["en"][-1]
    assert stm.fingerprint != src.fingerprint
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "en.txt").write_text("one line\nanother line\n")
    (folder / "de.txt").write_text("eine Zeile\n")
    files = text_source(run, f"files:{folder}").texts
    assert files == {"de": ["eine Zeile"], "en": ["one line", "another line"]}
    ds = datasets.Dataset.from_dict({"text": ["hola", "bonjour", "hello"], "language": ["es", "fr", "en"]})
    ds.save_to_disk(str(tmp_path / "hf"))
    hf = text_source(run, f"hf:{tmp_path / 'hf'}:text:language").texts
    assert hf == {"es": ["hola"], "fr": ["bonjour"], "en": ["hello"]}
    with pytest.raises(PolyFactError, match="no column 'lang'"):
        text_source(run, f"hf:{tmp_path / 'hf'}:text")
    with pytest.raises(PolyFactError, match="unknown text source"):
        text_source(run, "web:flores")


def test_multiway_text_maps_codes_filters_lengths_and_joins(tmp_path):
    """The study's TED loader rules: zh-cn → zh, pt-br → pt, segments of 20–600 characters
    (newlines to spaces), five consecutive kept segments per head sample, streamed."""
    import json

    lines = []
    for i in range(12):
        lines.append(json.dumps({"para_data": {"en": f"English sentence number {i:02d} here.",
                                               "zh-cn": f"这是第{i:02d}个足够长的中文句子，用来测试加载器的规则。",
                                               "pt-br": "curta" if i % 2 else f"Frase portuguesa numero {i:02d}\naqui.",
                                               "fr": "x" * 700}, "lang_list": ["en", "zh-cn"]}))
    path = tmp_path / "multi_way.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one = text_source(tmp_path, f"multiway:{path}")
    assert sorted(one.texts) == ["en", "pt", "zh"]  # fr: over 600 characters; codes mapped
    assert len(one.texts["en"]) == 12 and len(one.texts["pt"]) == 6  # "curta" is under 20 characters
    assert one.texts["pt"][0] == "Frase portuguesa numero 00 aqui."
    joined = text_source(tmp_path, f"multiway:{path}", ["en", "zh"], join=5)
    assert len(joined.texts["en"]) == 2 and joined.texts["en"][0].count("English") == 5  # tail of 2 dropped
    assert "5 segments per text" in joined.description and joined.fingerprint != one.fingerprint
    (tmp_path / "bad.jsonl").write_text('{"para_data": {"en": "fine text of twenty chars"}}\nnot json\n')
    with pytest.raises(PolyFactError, match="line 2 is not JSON"):
        text_source(tmp_path, f"multiway:{tmp_path / 'bad.jsonl'}")
