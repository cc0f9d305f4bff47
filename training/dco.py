"""DCO, a label-free cross-lingual consistency baseline (Liu, Qi et al., ICML 2026, github
``Betswish/ConsistencyRL``; the study's port ``training/train_polyfact_dco.py``).

One instance is one fact in two languages: a chosen and a rejected option picked by a shared
random index (not the gold), the second language's options aligned to the first's by option
identity. With sequence log-probabilities summed over completion tokens under the policy (π) and
the reference (the policy with its LoRA adapter off, or a frozen copy), per instance

    r_i = (π_c_i − ref_c_i) − (π_r_i − ref_r_i),  offset_i = ref_c_i − ref_r_i,
    loss = |r_1 − offset_2 / β| + |r_2 − β · offset_1|,

which, at β = 1, pulls both languages' preference margins to the same value (:func:`dco_loss`).
"""

from __future__ import annotations

import contextlib
import copy
import random
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import Trainer, TrainingArguments

from polyfact.core.errors import PolyFactError
from polyfact.training.arms import Spend, budget_facts, fact_groups, rows_of
from polyfact.training.common import begin, finish
from polyfact.training.evaluation.data import quick_recall, sample_facts
from polyfact.training.config import BudgetConfig, DcoConfig
from polyfact.training.lm import last_state, merged, training_args, with_lora


def dco_loss(chosen_1: torch.Tensor, rejected_1: torch.Tensor, chosen_2: torch.Tensor, rejected_2: torch.Tensor,
             ref_chosen_1: torch.Tensor, ref_rejected_1: torch.Tensor, ref_chosen_2: torch.Tensor,
             ref_rejected_2: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """DCO's per-instance losses (``[B]``) from summed sequence log-probabilities (each ``[B]``)."""
    offset_1 = ref_chosen_1 - ref_rejected_1
    offset_2 = ref_chosen_2 - ref_rejected_2
    r_1 = (chosen_1 - ref_chosen_1) - (rejected_1 - ref_rejected_1)
    r_2 = (chosen_2 - ref_chosen_2) - (rejected_2 - ref_rejected_2)
    return torch.abs(r_1 - offset_2 / beta) + torch.abs(r_2 - beta * offset_1)


def dco_prompt(row: dict) -> str:
    """The port's prompt (options hidden, the evaluation's scaffold): ``Question: {q}\\nAnswer:``."""
    return f"Question: {row['question']}\nAnswer:"


def dco_instances(facts: list[dict[str, dict]], seed: int) -> list[dict[str, str]]:
    """One instance per fact (in order): a random ordered pair of its languages whose options are the
    same entities (``option_ids``), a shared random chosen / rejected index in the first language's
    order, the second language's options aligned to it by identity (the port's rule)."""
    rng = random.Random(seed)
    out = []
    for fact in facts:
        langs = [lang for lang, r in fact.items() if r.get("option_ids") and len(set(r["option_ids"])) == len(r["options"])]
        if len(langs) < 2:
            continue
        l1, l2 = rng.sample(langs, 2)
        a, b = fact[l1], fact[l2]
        if set(a["option_ids"]) != set(b["option_ids"]):
            continue
        pos = {oid: k for k, oid in enumerate(b["option_ids"])}
        aligned = [b["options"][pos[oid]] for oid in a["option_ids"]]
        c, r = rng.sample(range(len(a["options"])), 2)
        out.append({"fact_id": a["fact_id"], "lang_1": l1, "lang_2": l2,
                    "prompt_1": dco_prompt(a), "chosen_1": " " + a["options"][c], "rejected_1": " " + a["options"][r],
                    "prompt_2": dco_prompt(b), "chosen_2": " " + aligned[c], "rejected_2": " " + aligned[r]})
    return out


def sequence_logps(model, tokenizer, prompts: list[str], completions: list[str], max_length: int
                   ) -> tuple[torch.Tensor, int]:
    """Summed log-probability of each completion after its prompt (``[N]``), and tokens forwarded."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    seqs, starts = [], []
    for p, c in zip(prompts, completions):
        p_ids = tokenizer(p, add_special_tokens=True)["input_ids"]
        c_ids = tokenizer(c, add_special_tokens=False)["input_ids"]
        seqs.append((p_ids + c_ids)[:max_length])
        starts.append(min(len(p_ids), max_length))
    width = max(len(s) for s in seqs)
    device = next(model.parameters()).device
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    cmask = torch.zeros_like(ids)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        ids[i, : len(s)], attn[i, : len(s)], cmask[i, st : len(s)] = torch.tensor(s), 1, 1
    ids, attn, cmask = ids.to(device), attn.to(device), cmask.to(device)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()  # [N, T-1, V]
    logp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:, None]).squeeze(2)  # [N, T-1]
    return (logp * cmask[:, 1:]).sum(-1), int(attn.sum())


class DcoTrainer(Trainer):
    """``transformers.Trainer`` over DCO instances; the reference is the policy with its adapter off
    (LoRA) or a frozen copy of the starting model."""

    def __init__(self, *, model, args: TrainingArguments, instances: list[dict], tokenizer, cfg: DcoConfig,
                 spend: Spend, callbacks: list | None = None) -> None:
        data = datasets.Dataset.from_dict({"index": list(range(len(instances)))})
        self.ref_model = None if cfg.lora.enabled else copy.deepcopy(model).eval().requires_grad_(False)
        super().__init__(model=with_lora(model, cfg.lora), args=args, train_dataset=data, processing_class=tokenizer,
                         data_collator=lambda fs: {"index": torch.tensor([f["index"] for f in fs])},
                         callbacks=callbacks)
        self.instances, self.cfg, self.spend = instances, cfg, spend

    def _reference(self, model):
        if self.ref_model is not None:
            return self.ref_model, contextlib.nullcontext()
        return model, self.accelerator.unwrap_model(model).disable_adapter()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        batch = [self.instances[i] for i in inputs["index"].tolist()]
        prompts = [x[f"prompt_{k}"] for k in ("1", "1", "2", "2") for x in batch]
        completions = [x[f"{kind}_{k}"] for k, kind in (("1", "chosen"), ("1", "rejected"), ("2", "chosen"),
                                                        ("2", "rejected")) for x in batch]
        tok, max_len = self.processing_class, self.cfg.train.seq_len
        logps, tokens = sequence_logps(model, tok, prompts, completions, max_len)  # [4B]: c1 | r1 | c2 | r2
        ref_model, ctx = self._reference(model)
        with torch.no_grad(), ctx:
            ref, _ = sequence_logps(ref_model, tok, prompts, completions, max_len)
        b = len(batch)
        losses = dco_loss(*logps.split(b), *ref.split(b), beta=self.cfg.beta)
        if model.training:
            self.spend.examples += 2 * b
            self.spend.forward_tokens += tokens
        return losses.mean()


def dco_trainer(model, tokenizer, instances: list[dict], cfg: DcoConfig, out: Path, seed: int, spend: Spend,
                callbacks: list | None = None, **overrides) -> DcoTrainer:
    """The :class:`DcoTrainer` of ``instances`` (LoRA per ``cfg.lora``); ``overrides`` go to
    ``TrainingArguments``."""
    args = TrainingArguments(**{**training_args(out, cfg.train, seed, remove_unused_columns=False), **overrides})
    return DcoTrainer(model=model, args=args, instances=instances, tokenizer=tokenizer, cfg=cfg, spend=spend,
                      callbacks=callbacks)


def dco(run_dir: str | Path, cfg: DcoConfig, *, parent: str = "base", ckpt_id: str = "dco", seed: int = 0,
        data_dir: str | Path | None = None, method: str = "dco", budget: BudgetConfig | None = None) -> dict:
    """DCO from ``parent`` on its train facts (``budget.facts``, or ``max_facts``), one instance per fact."""
    def check(data: Any) -> None:
        langs = cfg.langs or data.training_langs
        if len(langs) < 2:
            raise PolyFactError(f"dco pairs two languages of each fact, and the data has {len(langs)} "
                                f"({', '.join(langs)}); use a dataset with two or more training languages")
        rows = data.require("train", langs)
        if not any(r.get("option_ids") for r in rows):
            raise PolyFactError(f"dco aligns options across languages by identity, and {data.path} has no option_ids; "
                                "build the data with polyfact data build (or import a release that has them)")
        budget_facts(rows, budget, cfg.max_facts, seed)

    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget, check=check)
    data, tokenizer = job.data, job.tokenizer
    langs = cfg.langs or data.training_langs
    train_rows = data.require("train", langs)
    facts = budget_facts(train_rows, budget, cfg.max_facts, seed)
    rows = rows_of(train_rows, facts)
    instances = dco_instances(fact_groups(rows, facts), seed)
    if not instances:
        raise PolyFactError("no train fact has two languages with the same option entities; dco needs parallel options")
    spend, callbacks = job.arm(facts, langs, normalization=cfg.normalization)
    spend.trained = [x["fact_id"] for x in instances]
    ordered = {"train_sampling_strategy": "sequential"} if budget is not None and budget.facts else {}
    trainer = dco_trainer(job.model, tokenizer, instances, cfg, job.work, seed, spend, callbacks, **ordered)
    result = trainer.train(resume_from_checkpoint=last_state(job.work))
    spend.steps = trainer.state.global_step
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    metrics: dict[str, Any] = {
        "train": {"train_loss": float(result.training_loss), "steps": trainer.state.global_step,
                  "instances": len(instances)},
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "train_recall": quick_recall(model, tokenizer, sample_facts(rows, cfg.eval_max_facts, seed),
                                     normalization=cfg.normalization),
    }
    return finish(job, model, metrics, spend=spend)
