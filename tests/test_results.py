"""Result files as typed objects (polyfact.core.results): what Run returns, the schema stamp, the
one-line refusals, and that no module outside the result classes reads a result's nested keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from polyfact.core.errors import PolyFactError
from polyfact.core.results import Ablation, Neurons, Recall, Result, Routing, result_class

ROOT = Path(__file__).resolve().parents[1]


def test_run_returns_typed_results_equal_to_the_files(smoke_study):
    from polyfact import Run

    path = smoke_study[0]
    run = Run(path)
    rec = run.result("recall", "base")
    doc = json.loads((path / "results" / "recall" / "base.json").read_text())
    assert isinstance(rec, Recall) and rec == doc
    assert rec.accuracy == doc["metrics"]["accuracy"] and rec.total_consistency == doc["metrics"]["total_consistency"]
    assert rec.consistency("training") == doc["consistency_subsets"]["training"]
    assert doc["schema"] == {"kind": "recall", "version": 1}
    neurons = run.result("neurons", "base")
    assert isinstance(neurons, Neurons) and neurons.counts() == doc_of(path, "neurons", "base")["variants"]["polyfact"]["counts"]
    assert isinstance(run.result("routing", "sft"), Routing)
    assert run.checkpoints[0] == "base" and list(run.results("recall")) == run.checkpoints
    table = run.recall_table()
    assert table.loc["en", "base"] == rec.accuracy["en"]
    heads, curves = run.result("heads", "base"), run.result("curves", "grpo")
    assert heads.n_layers == doc_of(path, "heads", "base")["n_layers"] and heads.study == doc_of(path, "heads", "base")["study"]
    assert "greedy_reward" in curves.probe_measures and curves.budget == doc_of(path, "curves", "grpo")["budget"]
    # every result an analysis of the run writes is its kind's class, stamped with that kind
    for f in sorted((path / "results").glob("*/*.json")):
        if f.parent.name in ("seeds", "trajectory") or f.name == "summary.json" or f.name.startswith("paired") \
                or f.name.endswith((".stats.json", ".importance.json", ".shards.json")):
            continue  # tables over checkpoints, and the array files' sidecars
        cls = result_class(f.parent.name)
        assert cls is not Result and json.loads(f.read_text())["schema"]["kind"] == cls.kind, f


def doc_of(run: Path, analysis: str, ckpt: str) -> dict:
    return json.loads((run / "results" / analysis / f"{ckpt}.json").read_text())


def test_missing_damaged_and_newer_results_are_one_line_errors(tmp_path):
    with pytest.raises(PolyFactError, match="^no readable recall result at .*; rerun the analysis"):
        Recall.from_json(tmp_path / "recall" / "base.json")
    bad = tmp_path / "neurons" / "base.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    assert Neurons.load(bad) is None
    Recall({"checkpoint": "base", "metrics": {"accuracy": {"en": 1.0}}}).to_json(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    doc["schema"]["version"] = 99
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(PolyFactError, match="schema version 99, newer than this toolkit reads"):
        Recall.from_json(tmp_path / "r.json")
    assert result_class("recall-klar") is Recall and result_class("ablate") is Ablation
    assert result_class("weight-norm") is Result  # an outside analysis's kind
    with pytest.raises(PolyFactError, match="no 'tang' variant; it has polyfact"):
        Neurons({"variants": {"polyfact": {"counts": {}}}}).counts("tang")


# the nested layouts of result documents, read only by their classes (writers build them)
NESTED = re.compile(r'\[\s*"(metrics|variants|vs_base|consistency_subsets|intervals)"\s*\]\s*\[|'
                    r'\.get\(\s*"(metrics|variants|vs_base|consistency_subsets)"')
WRITERS = {"core/results.py"}


def test_no_module_reads_a_result_document_by_nested_keys():
    found = []
    for folder in ("core", "analyses", "figures", "pipeline", "training", "interp", "polyfact"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel in WRITERS:
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if NESTED.search(line) and "manifest" not in line and not re.search(r"\]\s*=[^=]", line):
                    found.append(f"{rel}:{i}: {line.strip()}")
    assert not found, "read these through polyfact.core.results:\n" + "\n".join(found)
