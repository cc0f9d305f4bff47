"""Predicted peak GPU memory per stage for a run's model, from the fit that ``bench/memory_plan.py``
measures on CPU (``pipeline/memory_plan.json``: peak = a + b · layers per stage, plus the real
vocabulary's embedding and logits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.io import read_cached

PLAN = Path(__file__).with_name("memory_plan.json")
GPU_GIB = 80e9 / 2**30  # an "80 GB" card: 74.5 GiB
HEADROOM_GIB = 4.0  # CUDA context, allocator fragmentation
BUDGET_GIB = GPU_GIB - HEADROOM_GIB  # what one stage may use


def predict(fit: dict[str, float], layers: int, units: float, vocab: int, vocab_base: int) -> float:
    """Peak GiB from a stage's fit: ``a + b·layers + s·(units − 1) + (vocab − V₀)·(e + f·units)``."""
    return (fit["a"] + fit["b_per_layer"] * layers + fit["s_per_unit"] * (units - 1)
            + (vocab - vocab_base) * (fit["e_per_vocab"] + fit["f_per_vocab_unit"] * units))


def stage_prediction(model: str, stage: str, units: float, plan: dict | None = None) -> float | None:
    """Predicted peak GiB of ``stage`` at ``units`` batch units for plan model ``model`` (its hub
    id, e.g. ``Qwen/Qwen2.5-7B``) at full depth and vocabulary; None without a plan entry.
    ``plan``: the plan already read (default: ``pipeline/memory_plan.json``)."""
    plan = read_cached(PLAN) if plan is None else plan
    entry = plan.get("models", {}).get(model) if isinstance(plan, dict) else None
    if entry is None or stage not in entry["stages"]:
        return None
    return predict(entry["stages"][stage]["fit"], entry["layers"], units, entry["vocab"], plan["vocab_base"])


def stage_units(cfg: Any) -> dict[str, float]:
    """Each planned stage's batch in the plan's units, from the run's settings: statistics in
    1024-token sequences, head samples in 512 tokens, MCQ in facts, and each training method's own
    (its settings' ``memory_units``: SFT, DCO and DPO in 256-token sequences, GRPO in rollouts)."""
    from polyfact.training.methods import METHODS

    head_len = cfg.analysis.head_seq_len or cfg.analysis.seq_len
    units = {"stats": cfg.analysis.batch_size * cfg.analysis.seq_len / 1024, "lahis": head_len / 512,
             "gradient": head_len / 512, "mcq": 1.0}
    for entry in METHODS.entries():
        section = getattr(cfg, entry.section or "", None)
        if hasattr(section, "memory_units"):
            units.update(section.memory_units())
    return units


def predicted_peaks(cfg: Any) -> dict[str, float]:
    """``{stage: GiB}`` predicted for the run's model at the run's batch settings, when the plan
    covers the model (empty for the toy world and models the plan did not measure)."""
    plan = read_cached(PLAN)
    if not isinstance(plan, dict) or not cfg.model:
        return {}
    name = str(cfg.model).lower()
    model = next((m for m in plan.get("models", {}) if m.lower() in name or name.endswith(m.lower())), None)
    if model is None:
        return {}
    units = stage_units(cfg)
    return {stage: float(stage_prediction(model, stage, units[stage], plan)) for stage in plan["models"][model]["stages"]}
