"""What every training method shares: the seeded start, the fingerprint of what it trains, and
turning a trained model into a checkpoint with its manifest (the run's dataset and quick recall
checks are evaluation: :mod:`polyfact.training.evaluation`)."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from polyfact.core.checkpoints import (checkpoint_fingerprint, load_checkpoint, manifest_fingerprint, read_manifest,
                              save_checkpoint, start_work)
from polyfact.core.errors import PolyFactError
from polyfact.core.layout import RunLayout, check_id, layout
from polyfact.training.config import fingerprint_view
from polyfact.training.evaluation.data import RunData


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def identity(run_dir: str | Path, *, parent: str | None, method: str, cfg: Any, seed: int, data_fingerprint: str,
             family: str | None = None, budget: Any = None) -> dict[str, Any]:
    """What determines a checkpoint trained with these inputs (the manifest's fingerprinted fields:
    ``polyfact.core.checkpoints.FINGERPRINT_FIELDS``). The family is the parent manifest's
    (``family`` for pretraining)."""
    parent_fp = None
    if parent is not None:
        manifest = _parent_manifest(run_dir, parent)
        parent_fp, family = manifest.get("fingerprint"), manifest.get("family", "unknown")
    return {"parent": parent, "parent_fingerprint": parent_fp, "method": method, "family": family,
            "data_fingerprint": data_fingerprint, "config": fingerprint_view(cfg), "seed": seed,
            "budget": fingerprint_view(budget) if budget is not None else None}


def expected_fingerprint(run_dir: str | Path, **inputs: Any) -> str:
    """The fingerprint a checkpoint trained with these inputs (:func:`identity`'s) gets: ``polyfact
    run`` compares it with a checkpoint's to skip one already done, and the training method's
    manifest carries it (the one recipe)."""
    return manifest_fingerprint(identity(run_dir, **inputs))


def _parent_manifest(run_dir: str | Path, parent: str) -> dict:
    """The parent's manifest (a run checkpoint), or what identifies an unregistered outside model."""
    try:
        if layout(run_dir).manifest(parent).exists():
            return read_manifest(run_dir, parent)
    except PolyFactError:
        pass
    return {"id": parent, "fingerprint": checkpoint_fingerprint(run_dir, parent), "family": "unknown"}


@dataclass
class Job:
    """One training method's work on a run: its data, the parent model, where resumable states
    live, and the fingerprint the result will carry. ``begin`` makes one; ``finish`` saves it."""

    run: RunLayout
    data: RunData
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    ckpt_id: str
    method: str
    parent: str | None
    cfg: Any
    seed: int
    identity: dict[str, Any]  # the manifest's fingerprinted fields (:func:`identity`)
    budget: Any = None  # training.config.BudgetConfig of the run (None: pretraining)
    curve: Any = None  # the arm's training.arms.CurveCallback, once made

    @property
    def family(self) -> str:
        return self.identity["family"]

    @functools.cached_property
    def fingerprint(self) -> str:
        """The checkpoint's fingerprint: the hash of :attr:`identity`, as its manifest will carry."""
        return manifest_fingerprint(self.identity)

    @property
    def work(self) -> Path:
        return self.run.work(self.ckpt_id)

    def arm(self, facts: list[str], langs: list[str], *, normalization: str, grpo: Any = None) -> tuple[Any, list]:
        """What this arm records: its :class:`polyfact.training.arms.Spend` (restored from the state it
        resumes from) and the trainer callbacks that keep it and the learning curve (probe facts: its
        own first facts; test facts: a seeded sample; ``grpo``: also the greedy reward)."""
        from polyfact.training.arms import CurveCallback, Spend, SpendCallback, TrajectoryCallback, curve_evaluator, curve_rows
        from polyfact.training.config import BudgetConfig
        from polyfact.training.lm import last_state

        budget = self.budget or BudgetConfig()
        probe, test = curve_rows(self.data, facts, langs, budget, self.seed)
        evaluate = curve_evaluator(self.tokenizer, probe, test, langs, normalization=normalization,
                                   prompt=budget.curve_prompt, grpo=grpo)
        self.curve = CurveCallback(evaluate, budget.curve_points, self.work / "curve.json",
                                   extra=budget.trajectory_points)
        spend = Spend(facts).restore(last_state(self.work))
        return spend, [self.curve, SpendCallback(spend), TrajectoryCallback(self, budget.trajectory_points)]


def begin(run_dir: str | Path, data_dir: str | Path | None, seed: int, parent: str | None, *, method: str,
          ckpt_id: str, cfg: Any, budget: Any = None, check: Any = None) -> Job:
    """What a training method starts with: the run, its data, the seeded RNGs, the parent model
    (none for pretraining, whose family is ``cfg.model.family``) and a work directory whose resume
    state is kept only if it was made with the same settings. ``check(data)`` refuses bad input
    before anything is loaded or written."""
    check_id(ckpt_id)
    run = layout(run_dir)
    data = RunData(run.root, data_dir)
    if check is not None:
        check(data)
    set_seed(seed)
    if parent is None:
        model, tokenizer, family = None, None, cfg.model.family
    else:
        check_id(parent, "parent checkpoint") if "/" not in str(parent) else None
        model, tokenizer = load_checkpoint(parent, run.root)
        family = _parent_manifest(run.root, parent).get("family", "unknown")
    ident = identity(run.root, parent=parent, method=method, cfg=cfg, seed=seed, data_fingerprint=data.fingerprint,
                     family=family, budget=budget)
    start_work(run, ckpt_id, manifest_fingerprint(ident))
    return Job(run, data, model, tokenizer, ckpt_id, method, parent, cfg, seed, ident, budget)


def finish(job: Job, model: PreTrainedModel, metrics: dict, tokenizer: PreTrainedTokenizerBase | None = None,
           spend: Any = None) -> dict:
    """Save the trained model as the job's checkpoint with its manifest (with what the arm spent
    and its learning curve); returns the manifest."""
    model.eval()
    job.tokenizer = tokenizer or job.tokenizer
    if spend is not None:
        metrics = {**metrics, "budget": spend.record()}
    if job.curve is not None:
        metrics = {**metrics, "curve": job.curve.curve}
    return save_checkpoint(model, job.tokenizer, job.run.root, job.ckpt_id,
                           {"id": job.ckpt_id, **job.identity, "metrics": metrics})
