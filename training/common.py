"""What every training method shares: reading the run's dataset, quick recall checks, and
turning a trained model into a checkpoint with its manifest."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from polyfact.dataset import load_dataset_dir, load_meta
from polyfact.errors import PolyFactError
from training.checkpoints import read_manifest, save_checkpoint
from training.models import load_checkpoint, model_family
from training.scoring import generation_records, mcq_records


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class RunData:
    """The dataset at ``<run>/data`` (or another directory) with its metadata."""

    def __init__(self, run_dir: str | Path, data_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = Path(data_dir) if data_dir else self.run_dir / "data"
        self.dd = load_dataset_dir(self.path)
        self.meta = load_meta(self.path)

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

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
            out.extend(r for r in self.dd[s] if keep is None or r["lang"] in keep)
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


def load_parent(run_dir: str | Path, parent: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """Model, tokenizer and manifest of the parent checkpoint (a run id, or a directory/hub id)."""
    manifest = read_manifest(run_dir, parent) if (Path(run_dir) / "checkpoints" / parent).exists() else {"id": parent}
    model, tok = load_checkpoint(parent, run_dir)
    return model, tok, manifest


def begin(run_dir: str | Path, data_dir: str | Path | None, seed: int, parent: str
          ) -> tuple[Path, RunData, PreTrainedModel, PreTrainedTokenizerBase]:
    """What a fine-tuning method starts with: the run, its data, the seeded RNGs and the parent."""
    run_dir = Path(run_dir)
    data = RunData(run_dir, data_dir)
    set_seed(seed)
    model, tokenizer, _ = load_parent(run_dir, parent)
    return run_dir, data, model, tokenizer


def config_to_dict(cfg: Any) -> Any:
    return asdict(cfg) if is_dataclass(cfg) else cfg


def finish(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, run_dir: str | Path, ckpt_id: str, *,
           method: str, parent: str | None, data: RunData, cfg: Any, seed: int, metrics: dict) -> dict:
    """Save the trained model as checkpoint ``ckpt_id`` with its manifest; returns the manifest."""
    model.eval()
    parent_fp = None
    if parent and (Path(run_dir) / "checkpoints" / parent / "manifest.json").exists():
        parent_fp = read_manifest(run_dir, parent).get("fingerprint")
    return save_checkpoint(model, tokenizer, run_dir, ckpt_id, {
        "id": ckpt_id, "parent": parent, "parent_fingerprint": parent_fp, "method": method,
        "family": model_family(model),
        "data_fingerprint": data.fingerprint, "config": config_to_dict(cfg), "seed": seed, "metrics": metrics,
    })
