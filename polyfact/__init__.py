"""PolyFact: cross-lingual factual recall in LLMs — the parallel multilingual dataset, training arms
(CPT, SFT, GRPO, DCO, CM-Align) on the same facts, recall and consistency, and hook-based analyzers of
how language-specialized a model's neurons and heads are.

One namespace; its layers are subpackages (docs/ARCHITECTURE.md): ``polyfact.data`` (the dataset),
``polyfact.training``, ``polyfact.interp`` (model-agnostic analyzers), ``polyfact.analyses``,
``polyfact.figures``, ``polyfact.pipeline`` (the ``polyfact`` command) and ``polyfact.core``.
The names below are the public API, imported on first use (``import polyfact`` loads no torch)::

    import polyfact
    run = polyfact.Run("runs/default")          # a finished run: its checkpoints and results
    spec = polyfact.specialize(model, tokenizer)   # LAPE neurons and LAHIS heads, packaged probe text
    spec.to_frame(); spec.figure()
    change = polyfact.compare(base_model, tuned_model, tokenizer)
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_HOME = {
    # runs and errors
    "Run": "polyfact.core.run", "PolyFactError": "polyfact.core.errors", "layout": "polyfact.core.layout",
    "load_checkpoint": "polyfact.core.checkpoints",
    # the dataset
    "LANGUAGES": "polyfact.data.languages", "RELATIONS": "polyfact.data.relations",
    "build_dataset": "polyfact.data.make", "import_dataset": "polyfact.data.make",
    "load_dataset_dir": "polyfact.data.dataset", "match": "polyfact.data.answers",
    # analyzers (model-agnostic)
    "collect_stats": "polyfact.interp.collect", "ActivationStats": "polyfact.interp.stats",
    "lape": "polyfact.interp.lape", "LapeResult": "polyfact.interp.lape",
    "head_importance": "polyfact.interp.heads", "HeadImportance": "polyfact.interp.heads",
    "adapter_for": "polyfact.interp.sites",
    # your own model in three lines
    "specialize": "polyfact.analyses.specialize", "compare": "polyfact.analyses.specialize",
    "Specialization": "polyfact.analyses.specialize", "Comparison": "polyfact.analyses.specialize",
    "probe_texts": "polyfact.data.probe",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'polyfact' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
