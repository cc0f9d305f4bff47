"""``polyfact eval``: records, metrics with intervals, paired tests, rescoring, KLAR generalization."""

import json

import pytest

from polyfact.analyses.recall import evaluate_checkpoint, load_records, score_file
from polyfact.data.make import import_dataset
from tests.conftest import shared

from tests.helpers import cli


def test_eval_writes_records_and_metrics_and_skips_when_fresh(smoke_run):
    run, cfg = smoke_run
    res = evaluate_checkpoint(run, "base", bootstrap=50, progress=False)
    recs = load_records(run, "base")
    assert len(recs) == res["metrics"]["n_items"] > 0
    assert {"fact_id", "lang", "relation", "option_scores", "pred_index", "correct"} <= set(recs[0])
    assert set(res["metrics"]["accuracy"]) == set(cfg.data.langs.split(","))
    lo, hi = res["intervals"]["accuracy"]["en"]["ci"]
    assert lo <= res["metrics"]["accuracy"]["en"] <= hi
    assert res["provenance"]["data_fingerprint"] and res["provenance"]["checkpoint_fingerprint"]
    again = evaluate_checkpoint(run, "base", bootstrap=50, progress=False)
    assert again == json.loads((run / "results" / "recall" / "base.json").read_text())  # reused
    # the metrics can be recomputed from the records alone
    assert score_file(run / "results" / "recall" / "base.records.jsonl")["accuracy"] == pytest.approx(
        res["metrics"]["accuracy"])


def test_cli_tables_paired_tests_and_score_json(study):
    run = study
    r = cli("eval", "checkpoints", "--run", run, "--checkpoints", "base,sft", "--bootstrap", "50")
    assert r.returncode == 0, r.stderr
    assert "Total Consistency" in r.stdout and "McNemar" in r.stdout and "COverlap" in r.stdout
    paired = json.loads((run / "results" / "recall" / "paired-base.json").read_text())
    assert "sft" in paired["comparisons"]
    r = cli("eval", "score", run / "results" / "recall" / "sft.records.jsonl", "--json")
    out = json.loads(r.stdout)
    assert {"accuracy", "total_consistency", "coverlap", "n_facts"} <= set(out)


def test_score_free_form_predictions(tmp_path):
    path = tmp_path / "preds.jsonl"
    rows = [
        {"language": "en", "relation": "capital", "index": 1, "target": "Paris", "pred": "It is Paris."},
        {"language": "fr", "relation": "capital", "index": 1, "target": "Paris", "pred": "Lyon"},
        {"language": "en", "relation": "capital", "index": 2, "target": "Rome", "pred": "Rome"},
        {"language": "fr", "relation": "capital", "index": 2, "target": "Rome", "pred": "Rome, en Italie"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = score_file(path)
    assert out["accuracy"] == {"en": 1.0, "fr": 0.5}
    assert out["total_consistency"] == 0.5 and out["n_facts"] == 2
    assert out["coverlap"]["en"]["fr"] == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n')
    r = cli("eval", "score", bad)
    assert r.returncode == 2 and "lacks fact_id" in r.stderr


@pytest.mark.slow  # over 20 s: CI runs it (CI=true or -m slow)
def test_tiny_checkpoint_on_klar_all_17_languages(smoke_run, tmp_path):
    run, _ = smoke_run
    klar = tmp_path / "klar"
    import_dataset("klar", shared("klar"), klar)
    res = evaluate_checkpoint(run, "base", data_dir=klar, max_facts=12, bootstrap=20, progress=False)
    assert len(res["metrics"]["accuracy"]) == 17
    assert (run / "results" / "recall-klar" / "base.json").exists()
    recs = load_records(run, "base", "recall-klar")
    assert max(len(r["option_scores"]) for r in recs) == 10  # KLAR's candidates are the options


def _klar_fixture(root, langs=("en", "de")):
    """Two languages, one relation, four samples, two templates (the study uses the second)."""
    objects = {"en": ["Paris", "Rome", "Berlin", "Madrid"], "de": ["Paris", "Rom", "Berlin", "Madrid"]}
    subjects = {"en": ["France", "Italy", "Germany", "Spain"], "de": ["Frankreich", "Italien", "Deutschland", "Spanien"]}
    for lang in langs:
        (root / lang).mkdir(parents=True)
        samples = [{"index": i, "subject": s, "object": o, "object_candidates": ", ".join(objects[lang])}
                   for i, (s, o) in enumerate(zip(subjects[lang], objects[lang]))]
        (root / lang / "capital.json").write_text(json.dumps({
            "prompt_templates": ["<subject>'s capital: <mask>", "The capital of <subject> is <mask>."],
            "samples": samples}))
    return root


def test_klar_study_prompts_have_the_studys_exact_text(tmp_path):
    import random

    from polyfact.analyses.paper.klar_study import format_template, study_prompts

    src = _klar_fixture(tmp_path / "klar")
    items = study_prompts(src, ["en", "de"])
    assert [(x["language"], x["index"]) for x in items] == [("en", i) for i in range(4)] + [("de", i) for i in range(4)]
    assert format_template("The capital of <subject> is <mask>.", "France") == "The capital of France is."
    rng = random.Random(42)  # one stream for every file, in the order the files are read
    demos = rng.sample([1, 2, 3], 3)
    inputs = [f"The capital of {s} is." for s in ("France", "Italy", "Germany", "Spain")]
    objects = ["Paris", "Rome", "Berlin", "Madrid"]
    assert items[0]["prompt"] == "".join(f"{inputs[j]} {objects[j]}\n" for j in demos) + "The capital of France is. "
    assert items[0]["target"] == "Paris" and items[4]["prompt"].endswith("The capital of Frankreich is. ")


def test_klar_study_protocol_end_to_end_and_rescored(study, tmp_path):
    from tests.helpers import cli, one_line_error

    src = _klar_fixture(tmp_path / "klar")
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "base", "--data", src, "--protocol", "study")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "KLAR, the study's protocol" in r.stdout
    preds = study / "results" / "klar-study" / "base.predictions.jsonl"
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(lines) == 8 and set(lines[0]) >= {"language", "relation", "index", "target", "pred"}
    res = json.loads((study / "results" / "klar-study" / "base.json").read_text())
    assert res["n_items"] == 8 and res["metrics"]["accuracy"] == score_file(preds, match="study")["accuracy"]
    r = cli("eval", "score", preds, "--match", "study", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["accuracy"] == res["metrics"]["accuracy"]
    one_line_error(cli("eval", "checkpoints", "--run", study, "--data", tmp_path, "--protocol", "study"),
                   "needs KLAR's few-shot templates")
    one_line_error(cli("eval", "checkpoints", "--run", study, "--data", src, "--protocol", "fewshot"),
                   "unknown evaluation protocol 'fewshot'; use one of: mcq, study")


def test_parallel_cpt_text_follows_the_study_format(tmp_path):
    from polyfact.core.errors import PolyFactError
    from polyfact.training.corpus import parallel_corpus

    (tmp_path / "en.txt").write_text("Hello world\nGood night\n")
    (tmp_path / "de.txt").write_text("Hallo Welt\n\n")
    docs = parallel_corpus(f"files:{tmp_path}", ["en", "de", "fr"])
    assert len(docs) == 1 and sorted(docs[0].split("\n")) == ["de: Hallo Welt", "en: Hello world"]  # row 2: one language
    path = tmp_path / "tm.jsonl"
    path.write_text(json.dumps({"para_data": {"en": "Thanks", "zh-cn": "谢谢", "fr": "Merci"}}) + "\n")
    (doc,) = parallel_corpus(f"multiway:{path}", ["en", "zh", "fr"])
    assert sorted(doc.split("\n")) == ["en: Thanks", "fr: Merci", "zh: 谢谢"]
    with pytest.raises(PolyFactError, match="two or more languages"):
        parallel_corpus(f"files:{tmp_path}", ["en", "sw"])
    with pytest.raises(PolyFactError, match="fewer than two of the languages"):
        parallel_corpus(f"multiway:{path}", ["en", "sw"])
