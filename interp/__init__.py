"""Model-agnostic analyzers: architecture sites, activation statistics (nnsight, TransformerLens,
plain hooks), LAPE neurons and head importance. Knows nothing of PolyFact or training (docs/ARCHITECTURE.md)::

    from interp import collect_stats, lape, head_importance
    stats = collect_stats(model, tokenizer, {"en": texts_en, "de": texts_de})
    neurons = lape(stats.act_prob(), stats.languages, top_frac=0.01, variant="tang")
"""

from interp.batching import BACKENDS, CollectConfig
from interp.collect import collect_stats
from interp.heads import HeadImportance, head_importance
from interp.lape import LapeResult, LapeThresholds, calibrate, entropy_summary, lape, normalized_entropy
from interp.sites import ADAPTERS, ArchitectureAdapter, adapter_for
from interp.stats import ActivationStats

__all__ = [
    "ADAPTERS", "ActivationStats", "ArchitectureAdapter", "BACKENDS", "CollectConfig", "HeadImportance",
    "LapeResult", "LapeThresholds", "adapter_for", "calibrate", "collect_stats", "entropy_summary",
    "head_importance", "lape", "normalized_entropy",
]
