"""Read a run's result files for the figure builders (figures never run a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.io import read_cached
from polyfact.core.layout import layout
from polyfact.core.results import Result, result_class
from polyfact.core.run import checkpoint_order as core_order


def checkpoint_order(run_dir: Path) -> list[str]:
    """Checkpoints with recall results, in the run's order (:func:`polyfact.core.run.checkpoint_order`)."""
    return core_order(run_dir, "recall")


def results(run_dir: str | Path, analysis: str, ids: list[str] | None = None) -> dict[str, Result]:
    """``{checkpoint: typed result}`` of one analysis (the checkpoints with a readable result)."""
    run = layout(run_dir)
    out = {}
    for c in ids if ids is not None else checkpoint_order(Path(run_dir)):
        doc = result_class(analysis).load(run.result(analysis, c))
        if doc is not None:
            out[c] = doc
    return out


def routing_summary(run_dir: str | Path) -> dict[str, Any] | None:
    doc = read_cached(layout(run_dir).routing_summary)
    return doc if isinstance(doc, dict) else None


def seeds_summary(run_dir: str | Path) -> dict[str, Any] | None:
    doc = read_cached(layout(run_dir).seeds_summary)
    return doc if isinstance(doc, dict) else None
