"""Predicted peak GPU memory per stage for a run's model, from the fit that ``bench/memory_plan.py``
measures on CPU (``pipeline/memory_plan.json``: peak = a + b · layers per stage, plus the real
vocabulary's embedding and logits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.io import read_cached

PLAN = Path(__file__).with_name("memory_plan.json")


def predicted_peaks(cfg: Any) -> dict[str, float]:
    """``{stage: GiB}`` for the run's model when the plan covers it (empty for the toy world)."""
    plan = read_cached(PLAN)
    if not isinstance(plan, dict) or not cfg.model:
        return {}
    name = str(cfg.model).lower()
    model = next((m for m in plan.get("models", {}) if m.lower() in name or name.endswith(m.lower())), None)
    if model is None:
        return {}
    return {stage: float(v["predicted_gib"]) for stage, v in plan["models"][model]["stages"].items()}
