"""The names a user picks in ``interp``: hook backends, head-importance methods and LAPE variants.
Adding a backend: a class in ``interp/backends.py`` with ``collect``, ``logits`` and ``close``, one
``BACKENDS.add`` line here, and its name in the planted-unit tests (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from polyfact.core.registry import Registry, choices

BACKENDS: Registry = Registry("hook backend")
BACKENDS.add("nnsight", "nnsight 0.8 traces (TransformersModel)", "polyfact.interp.backends:NnsightHooks")
BACKENDS.add("lens", "TransformerLens 4 TransformerBridge booted from the checkpoint directory (eager attention)",
             "polyfact.interp.backends:LensHooks")
BACKENDS.add("torch", "plain PyTorch forward hooks (fastest; optionally compiled reductions)",
             "polyfact.interp.backends:TorchHooks")

HEAD_METHODS = choices("head-importance method", {
    "lahis": "the study's LAHIS: a trained head mask, |dL/dm|·m weighted by how often dL/dm·m < 0",
    "gradient": "the project's: |dL/dm| at the all-ones mask, averaged over batches",
    "ablation": "the project's: loss increase when one head is replaced by its mean output",
})

LAPE_VARIANTS = choices("LAPE variant", {
    "tang": "Tang et al. 2024: 95th-percentile filters, multi-language assignment",
    "polyfact": "the PolyFact study's: dead neurons excluded, argmax assignment",
})

LAHIS_ACCUMULATIONS = choices("LAHIS accumulation", {
    "signed": "the study's: |dL/dm| · m with the signed current mask (a mask driven below 0 scores negative)",
    "abs": "the project's: |dL/dm · m|, never negative",
})

LAPE_COUNTS = choices("LAPE count rule", {
    "floor": "max(1, int(n · top_frac)) neurons (the study's HEAD run_lape.py)",
    "round": "round(n · top_frac) neurons (the study's paper-era notebook)",
})
