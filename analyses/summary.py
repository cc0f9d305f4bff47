"""The run's summary table: accuracy and Total Consistency per checkpoint, and its change in
specialization against the reference, read from the result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.io import read_cached
from polyfact.core.layout import layout
from polyfact.core.results import Curves


def summary_table(run_dir: str | Path, ids: list[str]) -> dict[str, Any]:
    """One row per checkpoint that has a recall result (missing analyses leave cells empty)."""
    from polyfact.analyses.recall import load_result

    routing = read_cached(layout(run_dir).routing_summary)
    by_ckpt = {r["checkpoint"]: r for r in routing.get("rows", [])} if isinstance(routing, dict) else {}
    rows = []
    for c in ids:
        res = load_result(run_dir, c)
        row = {"checkpoint": c, "mean_accuracy": res.mean_accuracy, "en": res.accuracy.get("en"),
               "total_consistency": res.total_consistency,
               "total_consistency_training": res.consistency("training"),
               "accuracy_by_group": res.accuracy_by_group}
        curve = Curves.load(layout(run_dir).result("curves", c))
        if curve is not None:
            row["objective"] = curve.get("objective")
            row["budget"] = curve.get("budget")
        if c in by_ckpt:
            rr = by_ckpt[c]
            row.update({"delta_neuron_entropy": rr["neuron_entropy"], "delta_head_entropy": rr["head_entropy"],
                        "delta_neurons": rr["neuron_count"], "delta_neuron_contrast": rr.get("neuron_contrast"),
                        "delta_head_contrast": rr.get("head_contrast"), "differential_p": rr.get("differential_p"),
                        "study_neuron_counts": rr.get("study_neuron_counts"),
                        "study_head_overlap_change": rr.get("study_head_overlap_change")})
        rows.append(row)
    seeds = read_cached(layout(run_dir).seeds_summary)
    out: dict[str, Any] = {"rows": rows}
    if isinstance(seeds, dict):
        out["seeds"] = {"n_seeds": seeds.get("n_seeds"), "note": seeds.get("note"),
                        "measures": {m: seeds["measures"].get(m, {}) for m in seeds.get("headline", [])},
                        "headline": list(seeds.get("headline", [])), "n_tests": seeds.get("n_tests", 0),
                        "labels": seeds.get("labels", {}), "claims": seeds.get("claims", []),
                        "controls": seeds.get("controls", {}), "context": seeds.get("context", {}),
                        "unmatched": seeds.get("unmatched"),
                        "drops": seeds.get("drops", [])}
    return out
