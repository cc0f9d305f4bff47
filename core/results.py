"""Result files as typed objects: one class per result kind, written and read only through it.

A result is the JSON document an analysis writes to ``results/<analysis>/<id>.json``. Its class
gives the values the rest of the toolkit reads (figures, tables, the report, the seed table, the
notebook) as properties, so the document's layout is known in one place; the document carries
``schema`` (kind and version) and is refused, in one line, when a newer toolkit wrote it::

    from polyfact import Run
    rec = Run("runs/default").result("recall", "base")   # a Recall
    rec.accuracy["en"], rec.consistency("training")
    Run("runs/default").result("neurons", "base").counts()   # LAPE neurons per language (study variant)

A result is also its document (a ``dict``: ``rec["metrics"]``), so a reader can reach a
value no property names yet; code in this toolkit reads through the properties.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json, read_cached

R = TypeVar("R", bound="Result")


class Result(dict):
    """One result document (a ``dict`` of its JSON) with its kind, schema version and provenance."""

    kind: ClassVar[str] = "result"
    version: ClassVar[int] = 1

    @classmethod
    def of(cls: type[R], doc: dict[str, Any]) -> R:
        """``doc`` as this class: itself when it already is one, else wrapped (builders accept plain dicts)."""
        return doc if isinstance(doc, cls) else cls(doc)

    def _mapping(self, key: str) -> dict[str, Any]:
        """The document's mapping at ``key`` (empty when absent or not a mapping)."""
        v = self.get(key)
        return v if isinstance(v, dict) else {}

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the result: checkpoint and data fingerprints, settings, seed, ``key``."""
        return self._mapping("provenance")

    @property
    def checkpoint(self) -> str | None:
        return self.get("checkpoint") or self.provenance.get("checkpoint")

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write atomically, with ``schema`` (kind, version)."""
        self["schema"] = {"kind": self.kind, "version": self.version}
        atomic_write_json(path, dict(self))
        return Path(path)

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R | None:
        """The result at ``path``, or None when it is missing or unreadable (a stale cache)."""
        doc = read_cached(path)
        if not isinstance(doc, dict):
            return None
        schema = doc.get("schema") if isinstance(doc.get("schema"), dict) else {}
        if int(schema.get("version", 1)) > cls.version:
            raise PolyFactError(f"{path}: a {schema.get('kind', cls.kind)} result of schema version "
                                f"{schema['version']}, newer than this toolkit reads ({cls.version}); upgrade polyfact")
        return cls(doc)

    @classmethod
    def from_json(cls: type[R], path: str | os.PathLike) -> R:
        """The result at ``path``; a missing or damaged file is a one-line error."""
        out = cls.load(path)
        if out is None:
            raise PolyFactError(f"no readable {cls.kind} result at {path}; rerun the analysis that writes it "
                                f"(polyfact eval / analyze, or polyfact run to resume the run)")
        return out


class Recall(Result):
    """Recall of one checkpoint (``results/recall*/<id>.json``): accuracy per language, Total
    Consistency over all and over language subsets, and the other metrics of ``polyfact eval``."""

    kind = "recall"

    @property
    def metrics(self) -> dict[str, Any]:
        return self._mapping("metrics")

    @property
    def languages(self) -> list[str]:
        """The languages asked, in the evaluation's order."""
        return list(self.metrics.get("languages") or self.accuracy)

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy per language."""
        return self.metrics.get("accuracy") or {}

    @property
    def mean_accuracy(self) -> float | None:
        return self.metrics.get("mean_accuracy")

    @property
    def total_consistency(self) -> float | None:
        """Total Consistency over every language asked."""
        return self.metrics.get("total_consistency")

    @property
    def accuracy_by_group(self) -> dict[str, float]:
        return self.metrics.get("accuracy_by_group") or {}

    def consistency(self, subset: str) -> float | None:
        """Total Consistency over a language subset (``training``, ``heldout``, …), None when absent."""
        subsets = self.get("consistency_subsets")
        return subsets.get(subset) if isinstance(subsets, dict) else None

    @property
    def consistency_subsets(self) -> list[str]:
        return list(self.get("consistency_subsets") or {})

    def mean_over(self, langs: list[str] | None) -> float | None:
        """Mean accuracy over ``langs`` (None: every language) among those measured."""
        import numpy as np

        vals = [v for x, v in self.accuracy.items() if langs is None or x in langs]
        return float(np.mean(vals)) if vals else None

    def accuracy_ci(self, lang: str) -> list[float] | None:
        """The fact-bootstrap 95 % interval of a language's accuracy (None without resamples)."""
        iv = (self.get("intervals") or {}).get("accuracy", {}).get(lang)
        return iv.get("ci") if isinstance(iv, dict) else None

    @property
    def total_consistency_ci(self) -> list[float] | None:
        iv = (self.get("intervals") or {}).get("total_consistency")
        return iv.get("ci") if isinstance(iv, dict) else None

    def consistency_ci(self, subset: str) -> list[float] | None:
        return (self.get("consistency_subsets_ci") or {}).get(subset)

    def metric(self, name: str) -> Any:
        """Another metric of ``polyfact eval`` (e.g. ``self_consistency``), None when not measured."""
        return self.metrics.get(name)


class KlarStudy(Recall):
    """KLAR by the study's protocol (``results/klar-study/<id>.json``): a recall result with the
    trained- and held-out-language means."""

    kind = "klar-study"

    @property
    def trained_mean(self) -> float | None:
        return self.get("trained_mean")

    @property
    def heldout_mean(self) -> float | None:
        return self.get("heldout_mean")


class Analyzed(Result):
    """A result measured on analyzer text (neurons, heads)."""

    @property
    def text_source(self) -> str | None:
        """The analyzer text the result was measured on."""
        return self.get("text_source")


class Neurons(Analyzed):
    """LAPE language-specific neurons of one checkpoint (``results/neurons/<id>.json``), per
    variant: ``polyfact`` (the study's top-1 % rule) and ``tang`` (Tang et al.'s, base-calibrated)."""

    kind = "neurons"

    @property
    def variants(self) -> list[str]:
        return list(self.get("variants") or {})

    def variant(self, name: str) -> dict[str, Any]:
        v = (self.get("variants") or {}).get(name)
        if not isinstance(v, dict):
            raise PolyFactError(f"the neurons result has no {name!r} variant; it has {', '.join(self.variants)}")
        return v

    def counts(self, variant: str = "polyfact") -> dict[str, int]:
        """Language-specific neurons per language."""
        return self.variant(variant).get("counts") or {}

    def calibrated_counts(self, variant: str = "tang") -> dict[str, int]:
        """Per language, with the base's thresholds (the project's calibrated count)."""
        return self.variant(variant).get("calibrated_counts") or {}

    def per_layer(self, variant: str = "tang") -> Any:
        return self.variant(variant).get("per_layer")

    def calibrated_per_layer(self, variant: str = "tang") -> Any:
        return self.variant(variant).get("calibrated_per_layer")

    @property
    def tokens(self) -> dict[str, int]:
        """Analyzer tokens per language."""
        return self._mapping("tokens")


class Heads(Analyzed):
    """Per-language head importance of one checkpoint (``results/heads/<id>.json``): the method's
    scores summarized (entropy, top heads, overlap) and, for LAHIS, the study's head statistics."""

    kind = "heads"

    @property
    def n_layers(self) -> int:
        return int(self.get("n_layers") or 0)

    @property
    def n_heads(self) -> int:
        return int(self.get("n_heads") or 0)

    @property
    def study(self) -> dict[str, Any]:
        """The study's statistics (top-2 % heads per language, overlap, layer distribution); empty
        when the method was not LAHIS."""
        return self._mapping("study")


class Curves(Result):
    """One arm's learning curve and budget (``results/curves/<id>.json``): measures on its own probe
    facts and on test facts at evenly spaced steps, its objective's first and last value, and what
    it trained on and spent."""

    kind = "curves"

    @property
    def curve(self) -> list[dict[str, Any]]:
        """The points, each ``{"step", "probe": {measure: value}, "test": {…}}``."""
        v = self.get("curve")
        return v if isinstance(v, list) else []

    @property
    def probe_measures(self) -> list[str]:
        """The measures taken on the probe facts (e.g. ``greedy_reward`` for GRPO's arms)."""
        first = self.curve[0].get("probe") if self.curve else None
        return list(first) if isinstance(first, dict) else []

    @property
    def objective(self) -> dict[str, Any]:
        """The arm's own objective on its probe facts: ``measure``, ``first``, ``last``, ``improved``."""
        return self._mapping("objective")

    @property
    def budget(self) -> dict[str, Any]:
        """What the arm learned from and spent (facts, their hash, examples, steps, tokens)."""
        return self._mapping("budget")


class Ablation(Result):
    """Causal deactivation of one checkpoint (``results/ablate/<id>.json``): Δloss and Δaccuracy
    matrices of each language's neurons and top heads deactivated, with random controls."""

    kind = "ablate"


class Representations(Result):
    """Shared representations of one checkpoint (``results/representations/<id>.json``): per-layer
    cross-lingual similarity, CKA, retrieval, language-ID probes and the logit lens."""

    kind = "representations"

    @property
    def reference(self) -> str | None:
        """The language the others are compared with."""
        return self.get("reference")

    @property
    def logit_lens(self) -> dict[str, Any]:
        """Per language, the reference answer's rank or probability at each layer."""
        return self._mapping("logit_lens")


class Compare(Result):
    """Before/after analyses of any two checkpoints (``results/compare/<after>-vs-<before>.json``)."""

    kind = "compare"


class Routing(Result):
    """Before/after specialization changes of one checkpoint against the reference and its parent
    (``results/routing/<id>.json``)."""

    kind = "routing"

    @property
    def vs_base(self) -> dict[str, Any]:
        return self._mapping("vs_base")

    def change(self, *path: str) -> float | None:
        """A scalar change against the reference, e.g. ``change("neurons", "contrast", "delta")``
        (the point estimate where the value is ``[estimate, …]``); None when absent."""
        doc: Any = self.vs_base
        for key in path:
            if not isinstance(doc, dict) or key not in doc:
                return None
            doc = doc[key]
        if isinstance(doc, list):
            doc = doc[0] if doc else None
        return float(doc) if isinstance(doc, (int, float)) else None


class Steering(Result):
    """Steering of one checkpoint from a source to a target language (``results/steer/…``)."""

    kind = "steer"


KINDS: dict[str, type[Result]] = {c.kind: c for c in (Recall, KlarStudy, Neurons, Heads, Routing, Curves, Ablation,
                                                       Representations, Compare, Steering)}


def result_class(analysis: str) -> type[Result]:
    """The class of an analysis's result files (``recall-klar`` and the other recall questions are
    :class:`Recall`; an outside analysis's kind is a plain :class:`Result`)."""
    return KINDS.get(analysis) or (Recall if analysis.startswith("recall-") else Result)


def read_result(path: str | os.PathLike, analysis: str | None = None) -> Result | None:
    """The typed result at ``path`` (its class from ``analysis``, else from its folder's name), or
    None when it is missing or unreadable."""
    return result_class(analysis or Path(path).parent.name).load(path)
