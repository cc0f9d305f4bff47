"""Predicted peak GPU memory per stage for a run's model, from the fit that ``bench/memory_plan.py``
measures on CPU (``pipeline/memory_plan.json``: peak = a + b · layers per stage, plus the real
vocabulary's embedding and logits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.io import read_cached

PLAN = Path(__file__).with_name("memory_plan.json")


def predict(fit: dict[str, float], layers: int, units: float, vocab: int, vocab_base: int) -> float:
    """Peak GiB from a stage's fit: ``a + b·layers + s·(units − 1) + (vocab − V₀)·(e + f·units)``."""
    return (fit["a"] + fit["b_per_layer"] * layers + fit["s_per_unit"] * (units - 1)
            + (vocab - vocab_base) * (fit["e_per_vocab"] + fit["f_per_vocab_unit"] * units))


def stage_prediction(model: str, stage: str, units: float) -> float | None:
    """Predicted peak GiB of ``stage`` at ``units`` batch units for plan model ``model`` (its hub
    id, e.g. ``Qwen/Qwen2.5-7B``) at full depth and vocabulary; None without a plan entry."""
    plan = read_cached(PLAN)
    entry = plan.get("models", {}).get(model) if isinstance(plan, dict) else None
    if entry is None or stage not in entry["stages"]:
        return None
    return predict(entry["stages"][stage]["fit"], entry["layers"], units, entry["vocab"], plan["vocab_base"])


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
