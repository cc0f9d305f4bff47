"""Model-agnostic analyzers: architecture sites, activation statistics (nnsight, TransformerLens,
plain hooks), LAPE neurons and head importance. Knows nothing of PolyFact or training (docs/ARCHITECTURE.md)::

    from interp import collect_stats, head_importance
    from interp.lape import lape
    stats = collect_stats(model, tokenizer, {"en": texts_en, "de": texts_de})
    neurons = lape(stats.act_prob(), stats.languages, top_frac=0.01, variant="tang")

Names are imported on first use, so ``interp.registry`` (the backend and method names) loads no torch;
the function ``lape`` shares its module's name, so import it from ``interp.lape``.
"""

from __future__ import annotations

import importlib

_HOME = {
    "CollectConfig": "interp.batching", "collect_stats": "interp.collect", "HeadImportance": "interp.heads",
    "head_importance": "interp.heads", "LapeResult": "interp.lape", "LapeThresholds": "interp.lape",
    "calibrate": "interp.lape", "entropy_summary": "interp.lape", "normalized_entropy": "interp.lape", "ADAPTERS": "interp.sites", "ArchitectureAdapter": "interp.sites",
    "adapter_for": "interp.sites", "ActivationStats": "interp.stats", "BACKENDS": "interp.registry",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(name)
