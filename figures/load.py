"""Read a run's result files for the figure builders (figures never run a model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polyfact.errors import PolyFactError


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolyFactError(f"result file missing: {path}; run the analysis first") from None
    except json.JSONDecodeError as err:
        raise PolyFactError(f"result file {path} is not valid JSON ({err.msg})") from None


def checkpoint_order(run_dir: Path) -> list[str]:
    """Checkpoints in the run's configured order (base first), else those with recall results."""
    import yaml

    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists():
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        ids = ["base", *cfg.get("methods", [])]
        return [c for c in ids if (run_dir / "results" / "recall" / f"{c}.json").exists()]
    return sorted(p.stem for p in (run_dir / "results" / "recall").glob("*.json") if not p.stem.startswith("paired"))


def results(run_dir: str | Path, analysis: str, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{checkpoint: result}`` of one analysis (only the checkpoints that have one)."""
    run_dir = Path(run_dir)
    ids = ids or checkpoint_order(run_dir)
    out = {}
    for c in ids:
        p = run_dir / "results" / analysis / f"{c}.json"
        if p.exists():
            out[c] = _read(p)
    return out


def routing_summary(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / "results" / "routing" / "summary.json"
    return _read(p) if p.exists() else None
