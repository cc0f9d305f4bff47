"""``polyfact analyze neurons|heads`` on a tiny run: result files, provenance reuse, text sources."""

import json
import subprocess
import sys

import datasets
import pytest

from analyses.specialization import SpecializationConfig, head_analysis, load_lape, neuron_analysis, text_source
from polyfact.errors import PolyFactError

PF = [sys.executable, "-m", "pipeline.cli"]


def test_neurons_and_heads_from_the_cli(smoke_run):
    run, _ = smoke_run
    r = subprocess.run([*PF, "analyze", "neurons", "--run", str(run), "--checkpoint", "base", "--preset", "smoke",
                        "--max-tokens", "500"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "tang (top_frac)" in r.stdout
    res = json.loads((run / "results" / "neurons" / "base.json").read_text())
    assert set(res["variants"]) == {"tang", "polyfact"} and res["provenance"]["checkpoint_fingerprint"]
    assert (run / "results" / "neurons" / "base.stats.safetensors").exists()
    assert load_lape(run, "base", "polyfact").n_layers == res["n_layers"]
    r = subprocess.run([*PF, "analyze", "heads", "--run", str(run), "--checkpoint", "base", "--preset", "smoke",
                        "--max-tokens", "300"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    heads = json.loads((run / "results" / "heads" / "base.json").read_text())
    assert len(heads["top_k"]) == len(heads["languages"]) and heads["method"] == "gradient"


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
    texts, fp = text_source(run, None)
    assert "en" in texts and fp
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "en.txt").write_text("one line\nanother line\n")
    (folder / "de.txt").write_text("eine Zeile\n")
    files, _ = text_source(run, f"files:{folder}")
    assert files == {"de": ["eine Zeile"], "en": ["one line", "another line"]}
    ds = datasets.Dataset.from_dict({"text": ["hola", "bonjour", "hello"], "language": ["es", "fr", "en"]})
    ds.save_to_disk(str(tmp_path / "hf"))
    hf, _ = text_source(run, f"hf:{tmp_path / 'hf'}:text:language")
    assert hf == {"es": ["hola"], "fr": ["bonjour"], "en": ["hello"]}
    with pytest.raises(PolyFactError, match="no column 'lang'"):
        text_source(run, f"hf:{tmp_path / 'hf'}:text")
    with pytest.raises(PolyFactError, match="unknown text source"):
        text_source(run, "web:flores")
