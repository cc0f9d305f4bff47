"""One handle on a run directory, for notebooks and scripts::

    from polyfact.core import Run
    run = Run("runs/default")
    run.checkpoints                      # ['base', 'cpt', 'sft', 'grpo', 'cpt+grpo']
    run.config["grpo"]["steps"]          # the resolved configuration
    run.recall_table()                   # accuracy per language × checkpoint (pandas)
    run.result("neurons", "base").counts()   # one result file, typed (polyfact.core.results)
    model, tok = run.model("grpo")       # a checkpoint, loaded
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from polyfact.core.checkpoints import list_checkpoints, load_checkpoint, read_manifest
from polyfact.core.errors import PolyFactError
from polyfact.core.io import read_cached
from polyfact.core.layout import RunLayout, layout, planned_ids
from polyfact.core.results import Result, result_class


def checkpoint_order(run_dir: str | os.PathLike, analysis: str | None = None) -> list[str]:
    """The one order of a run's checkpoints: base and the configured methods seed by seed (its saved
    config), then any others sorted. Without ``analysis``, the checkpoints the run holds; with it,
    those with a result file of that analysis (planned ids by the file's existence; any other file is
    read once to see that it is one checkpoint's result, not a sidecar, test or summary)."""
    run = layout(run_dir)
    cfg = read_cached(run.config)
    planned = planned_ids(cfg.get("methods", []), cfg.get("seeds")) if isinstance(cfg, dict) else []
    if analysis is None:
        have = list_checkpoints(run.root)
        first = [c for c in planned if c in have]
        return first + sorted(c for c in have if c not in first)
    first = [c for c in planned if run.result(analysis, c).exists()]
    folder, known = run.result_dir(analysis), {run.result(analysis, c).name for c in first}
    others = [c for p in (sorted(folder.glob("*.json")) if folder.is_dir() else []) if p.name not in known
              and (c := p.stem.replace("~", "/")) and isinstance(doc := read_cached(p), dict)
              and doc.get("checkpoint") == c]
    return first + others


class Run:
    """A run directory: its layout, configuration, checkpoints, result files and models."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.layout: RunLayout = layout(path)
        if not self.layout.root.is_dir():
            raise PolyFactError(f"no run directory at {self.layout.root}; make one with polyfact run --run {path}")

    def __repr__(self) -> str:
        return f"Run({str(self.layout.root)!r}, checkpoints={self.checkpoints})"

    @property
    def path(self) -> Path:
        return self.layout.root

    @property
    def config(self) -> dict[str, Any]:
        cfg = read_cached(self.layout.config)
        return cfg if isinstance(cfg, dict) else {}

    @property
    def checkpoints(self) -> list[str]:
        """Checkpoint ids in the run's order (base and the configured methods first)."""
        return checkpoint_order(self.layout.root)

    def manifest(self, ckpt_id: str) -> dict[str, Any]:
        return read_manifest(self.layout.root, ckpt_id)

    def result(self, analysis: str, ckpt_id: str) -> Result:
        """``results/<analysis>/<id>.json`` as its typed class (:mod:`polyfact.core.results`: a
        ``Recall``, ``Neurons``, ``Routing``, …); a one-line error when it is missing or damaged."""
        return result_class(analysis).from_json(self.layout.result(analysis, ckpt_id))

    def results(self, analysis: str) -> dict[str, Result]:
        """Every checkpoint's result of one analysis, typed, in checkpoint order."""
        out = {}
        for c in self.checkpoints:
            doc = result_class(analysis).load(self.layout.result(analysis, c))
            if doc is not None:
                out[c] = doc
        return out

    def artifact(self, analysis: str, ckpt_id: str, suffix: str) -> Path:
        """The path of an array artifact, e.g. ``run.artifact("neurons", "base", ".stats")`` for
        ``ActivationStats.load``."""
        return self.layout.result(analysis, ckpt_id, suffix)

    @property
    def summary(self) -> dict[str, Any]:
        doc = read_cached(self.layout.summary)
        return doc if isinstance(doc, dict) else {}

    def recall_table(self, analysis: str = "recall"):
        """Accuracy per language (rows) and checkpoint (columns), as a pandas DataFrame."""
        import pandas as pd

        res = self.results(analysis)
        return pd.DataFrame({c: r.accuracy for c, r in res.items()})

    def trajectory(self, method: str | None = None) -> dict[str, Any]:
        """``results/trajectory``: a method's summary across seeds (its mean and t interval at each
        point, the half-change steps, which moves first), or every method's with ``method=None``."""
        doc = read_cached(self.layout.result("trajectory", "summary"))
        if not isinstance(doc, dict):
            raise PolyFactError(f"no trajectory in {self.layout.results}; run polyfact analyze trajectory --run "
                                f"{self.path} (after training with --set trajectory.points=N)")
        if method is None:
            return doc
        if method not in doc["methods"]:
            raise PolyFactError(f"no trajectory of {method!r}; the run has {', '.join(doc['methods'])}")
        return doc["methods"][method]

    def model(self, ckpt_id: str, **kwargs):
        """Load a checkpoint (``polyfact.core.checkpoints.load_checkpoint``): ``(model, tokenizer)``."""
        return load_checkpoint(ckpt_id, self.layout.root, **kwargs)
