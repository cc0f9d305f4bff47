"""Read a run's result files for the figure builders (figures never run a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.io import read_cached
from polyfact.core.layout import layout, planned_ids


def checkpoint_order(run_dir: Path) -> list[str]:
    """Checkpoints in the run's order (base, then the configured methods seed by seed), keeping
    those with recall results; without a config, every checkpoint with one."""
    run = layout(run_dir)
    cfg = read_cached(run.config)
    if isinstance(cfg, dict):
        ids = planned_ids(cfg.get("methods", []), cfg.get("seeds"))
        return [c for c in ids if run.result("recall", c).exists()]
    return sorted(p.stem for p in run.result_dir("recall").glob("*.json") if not p.stem.startswith("paired"))


def results(run_dir: str | Path, analysis: str, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{checkpoint: result}`` of one analysis (the checkpoints with a readable result)."""
    run = layout(run_dir)
    out = {}
    for c in ids or checkpoint_order(Path(run_dir)):
        doc = read_cached(run.result(analysis, c))
        if isinstance(doc, dict):
            out[c] = doc
    return out


def routing_summary(run_dir: str | Path) -> dict[str, Any] | None:
    doc = read_cached(layout(run_dir).routing_summary)
    return doc if isinstance(doc, dict) else None


def seeds_summary(run_dir: str | Path) -> dict[str, Any] | None:
    doc = read_cached(layout(run_dir).seeds_summary)
    return doc if isinstance(doc, dict) else None
