"""The training methods by name: what ``polyfact train METHOD`` dispatches to."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from core.errors import PolyFactError
from functools import partial

from training.grpo import grpo, grpo_trl
from training.pretrain import cpt, pretrain
from training.sft import sft

METHODS: dict[str, Callable[..., dict]] = {
    "pretrain": pretrain,
    "cpt": cpt,
    "sft": sft,
    "grpo": grpo,
    "grpo-perlang": partial(grpo, method="grpo-perlang"),  # the matched control: per-language groups
    "grpo-trl": grpo_trl,
}
CONFIG_SECTION = {"pretrain": "pretrain", "cpt": "cpt", "sft": "sft", "grpo": "grpo", "grpo-perlang": "grpo",
                  "grpo-trl": "grpo"}


def default_id(method: str, parent: str | None) -> str:
    """``base`` for pretraining; the method's name from the base; ``parent+method`` otherwise."""
    if method == "pretrain":
        return "base"
    return method if parent in (None, "base") else f"{parent}+{method}"


def train(method: str, run_dir: str | Path, cfg: Any, *, parent: str | None = None, ckpt_id: str | None = None,
          seed: int = 0, data_dir: str | Path | None = None) -> dict:
    """Run ``method`` with its config section ``cfg``; returns the checkpoint's manifest."""
    if method not in METHODS:
        raise PolyFactError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    if method == "pretrain":
        if parent is not None:
            raise PolyFactError("pretrain starts from scratch; drop --from")
        return pretrain(run_dir, cfg, ckpt_id=ckpt_id or "base", seed=seed, data_dir=data_dir)
    parent = parent or "base"
    return METHODS[method](run_dir, cfg, parent=parent, ckpt_id=ckpt_id or default_id(method, parent), seed=seed,
                           data_dir=data_dir)
