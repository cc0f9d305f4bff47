"""Model-agnostic analyzers: architecture sites, activation statistics (nnsight, TransformerLens,
plain hooks), LAPE neurons and head importance. Knows nothing of PolyFact or training (docs/ARCHITECTURE.md)::

    from polyfact.interp import collect_stats, head_importance
    from polyfact.interp.lape import lape
    stats = collect_stats(model, tokenizer, {"en": texts_en, "de": texts_de})
    neurons = lape(stats.act_prob(), stats.languages, top_frac=0.01, variant="tang")

Names are imported on first use, so ``polyfact.interp.registry`` (the backend and method names) loads no torch;
the function ``lape`` shares its module's name, so import it from ``polyfact.interp.lape``.
"""

from __future__ import annotations

import importlib

_HOME = {
    "CollectConfig": "polyfact.interp.batching", "collect_stats": "polyfact.interp.collect", "HeadImportance": "polyfact.interp.heads",
    "head_importance": "polyfact.interp.heads", "LapeResult": "polyfact.interp.lape", "LapeThresholds": "polyfact.interp.lape",
    "calibrate": "polyfact.interp.lape", "entropy_summary": "polyfact.interp.lape", "normalized_entropy": "polyfact.interp.lape", "ADAPTERS": "polyfact.interp.sites", "ArchitectureAdapter": "polyfact.interp.sites",
    "adapter_for": "polyfact.interp.sites", "ActivationStats": "polyfact.interp.stats", "BACKENDS": "polyfact.interp.registry",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(name)
