"""The run's dataset as evaluation reads it (:class:`RunData`), seeded samples of its facts, and
quick recall checks (accuracy per language) on top of :mod:`polyfact.training.evaluation.scoring`."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from polyfact.core.errors import PolyFactError
from polyfact.core.layout import layout
from polyfact.data.dataset import load_dataset_dir, load_meta
from polyfact.training.evaluation.scoring import generation_records, mcq_records


class RunData:
    """The dataset at ``<run>/data`` (or another directory) with its metadata."""

    def __init__(self, run_dir: str | Path, data_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = Path(data_dir) if data_dir else layout(run_dir).data
        self.dd = load_dataset_dir(self.path)
        self.meta = load_meta(self.path)

    @property
    def fingerprint(self) -> str:
        from polyfact.data.dataset import data_fingerprint

        return data_fingerprint(self.path)

    @property
    def training_langs(self) -> list[str]:
        return list(self.meta["training_langs"])

    def rows(self, split: str | None = None, langs: Iterable[str] | None = None) -> list[dict]:
        """Rows of one split (all splits when None), optionally only some languages."""
        splits = [split] if split else list(self.dd)
        keep = set(langs) if langs is not None else None
        out = []
        for s in splits:
            if s not in self.dd:
                raise PolyFactError(f"dataset {self.path} has no split {s!r}; it has {', '.join(self.dd)}")
            # to_list converts through Arrow in one call: ~18x faster than iterating rows
            out.extend(r for r in self.dd[s].to_list() if keep is None or r["lang"] in keep)
        return out

    def require(self, split: str, langs: Iterable[str] | None = None) -> list[dict]:
        rows = self.rows(split, langs)
        if not rows:
            raise PolyFactError(f"the {split} split of {self.path} has no rows for these languages; rebuild the data")
        return rows


def sample_facts(rows: list[dict], max_facts: int | None, seed: int) -> list[dict]:
    """All rows of at most ``max_facts`` facts (seeded choice), keeping every language of each."""
    if not max_facts:
        return rows
    facts = sorted({r["fact_id"] for r in rows})
    if len(facts) <= max_facts:
        return rows
    keep = set(random.Random(f"{seed}|sample").sample(facts, max_facts))
    return [r for r in rows if r["fact_id"] in keep]


def accuracy_by_lang(records: Iterable[dict]) -> dict[str, float]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        hits[r["lang"]].append(bool(r["correct"]))
    return {lang: sum(v) / len(v) for lang, v in hits.items()}


def quick_recall(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[dict], mode: str = "mcq",
                 normalization: str = "byte") -> dict[str, Any]:
    """Accuracy per language on ``rows`` (MCQ or greedy generation), with English vs the rest."""
    model.eval()
    if mode == "mcq":
        recs = mcq_records(model, tokenizer, rows, normalization=normalization)
    else:
        recs = generation_records(model, tokenizer, rows, max_new_tokens=12)
    acc = accuracy_by_lang(recs)
    others = [v for k, v in acc.items() if k != "en"]
    out: dict[str, Any] = {"mode": mode, "accuracy": acc, "n_items": len(recs),
                           "mean": sum(acc.values()) / max(len(acc), 1)}
    if "en" in acc and others:
        out["en"] = acc["en"]
        out["non_en_mean"] = sum(others) / len(others)
        out["en_gap"] = acc["en"] - out["non_en_mean"]
    return out
