"""Supervised fine-tuning on the arm's train facts in the training languages, two objectives:

``answer`` (the project's): question → answer pairs in the evaluation's format through TRL's
``SFTTrainer``, loss on the answer only.
``study`` (the study's ``train_multilingual_consistency_lora_sft.py``): the four options shown
(:func:`polyfact.data.build.letter_prompt`), cross-entropy over the option letters at the answer
position (the gold letter's logit against the other letters'), all of a fact's languages in one
batch, and an optional KL of each language's letter distribution to the fact's mean.

LoRA through ``peft`` for large models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from polyfact.data.build import LETTERS, continuation, letter_prompt
from polyfact.training.arms import Spend, budget_facts, check_budget, oracle_facts, oracle_share, rows_of
from polyfact.training.common import begin, finish
from polyfact.training.evaluation.data import quick_recall, sample_facts
from polyfact.training.config import BudgetConfig, SftConfig
from polyfact.training.lm import last_state, merged, training_args, with_lora


def sft_dataset(rows: list[dict]) -> datasets.Dataset:
    """Prompt–completion pairs in the evaluation's format (TRL masks the prompt from the loss)."""
    return datasets.Dataset.from_dict({
        "prompt": [r["prompt"] for r in rows],
        "completion": [continuation(r["prompt"], r["object"], r["lang"]) for r in rows],
    })


def sft_trainer(model, tokenizer, rows: list[dict], cfg: SftConfig, out: Path, seed: int, **overrides):
    """TRL's ``SFTTrainer`` for ``rows`` (LoRA per ``cfg.lora``); ``overrides`` go to ``SFTConfig``."""
    from trl import SFTConfig, SFTTrainer

    kwargs = {"gradient_checkpointing": cfg.train.gradient_checkpointing,  # TRL's default is on: say it
              "include_num_input_tokens_seen": "non_padding", **training_args(out, cfg.train, seed), **overrides}
    args = SFTConfig(**kwargs, max_length=cfg.train.seq_len, packing=False, completion_only_loss=True,
                     dataset_num_proc=None)
    return SFTTrainer(model=model, args=args, train_dataset=sft_dataset(rows), processing_class=tokenizer,
                      peft_config=cfg.lora.peft_config())


def letter_scores(model, tokenizer, rows: list[dict]) -> tuple[torch.Tensor, int]:
    """Scores ``[N, max options]`` of the option letters after each row's :func:`letter_prompt`
    (−inf past a row's options) and the tokens forwarded. When every ``" X"`` is one token (the
    study requires it), the letter logits at the answer position; otherwise each letter's summed
    log-probability."""
    k = max(len(r["options"]) for r in rows)
    letters = [tokenizer(" " + x, add_special_tokens=False)["input_ids"] for x in LETTERS[:k]]
    prompts = [tokenizer(letter_prompt(r), add_special_tokens=False)["input_ids"] for r in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    single = all(len(x) == 1 for x in letters)
    seqs = prompts if single else [p + letters[j] for p in prompts for j in range(k)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], attn[i, : len(s)] = torch.tensor(s), 1
    if single:  # the LM head at the answer positions only (at 7B the full-length logits were GiBs)
        last = attn.sum(1) - 1
        keep = torch.unique(last)  # sorted
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device),
                       logits_to_keep=keep.to(device)).logits.float()  # [S, positions, V]
        at = torch.searchsorted(keep, last).to(device)
        scores = logits[torch.arange(len(seqs), device=device), at][:, [x[0] for x in letters]]  # [N, k]
    else:
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.float()  # [S, T, V]
        logp = logits[:, :-1].log_softmax(-1)
        out = []
        for i, p in enumerate(prompts):
            for j in range(k):
                row = i * k + j
                out.append(sum(logp[row, len(p) - 1 + t, tok] for t, tok in enumerate(letters[j])))
        scores = torch.stack(out).view(len(rows), k)
    n_opts = torch.tensor([len(r["options"]) for r in rows], device=device)
    mask = torch.arange(k, device=device)[None, :] < n_opts[:, None]
    return scores.masked_fill(~mask, float("-inf")), int(attn.sum())


def study_sft_loss(scores: torch.Tensor, gold: torch.Tensor, groups: list[list[int]],
                   consistency_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the gold letter over the letter scores ``[N, k]`` (mean over rows), plus
    ``consistency_weight`` × the mean over facts of KL(mean of the fact's letter distributions ∥
    each language's), the mean detached (the study's consistency term)."""
    loss = F.cross_entropy(scores, gold)
    if consistency_weight:
        kls = []
        for g in groups:
            logp = scores[g].log_softmax(-1).clamp(min=-1e4)
            mean = logp.exp().mean(0, keepdim=True).detach()
            kls.append(F.kl_div(logp, mean.expand_as(logp), reduction="batchmean"))
        loss = loss + consistency_weight * torch.stack(kls).mean()
    return loss


class StudySftTrainer(Trainer):
    """``transformers.Trainer`` whose batches are facts; ``compute_loss`` scores every language's
    letters of the batch's facts and applies :func:`study_sft_loss`."""

    def __init__(self, *, model, args: TrainingArguments, facts: list[list[dict]], tokenizer, cfg: SftConfig,
                 spend: Spend, callbacks: list | None = None) -> None:
        data = datasets.Dataset.from_dict({"fact_index": list(range(len(facts)))})
        super().__init__(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         data_collator=lambda fs: {"fact_index": torch.tensor([f["fact_index"] for f in fs])},
                         callbacks=callbacks)
        self.facts, self.cfg, self.spend = facts, cfg, spend
        self.loss_is_scaled_for_ga = cfg.accumulation == "sum"  # True: transformers does not divide (the study)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        rows, groups = [], []
        for i in inputs["fact_index"].tolist():
            groups.append(list(range(len(rows), len(rows) + len(self.facts[i]))))
            rows.extend(self.facts[i])
        scores, tokens = letter_scores(model, self.processing_class, rows)
        gold = torch.tensor([r["answer_index"] for r in rows], device=scores.device)
        if model.training:
            self.spend.forward_tokens += tokens
            self.spend.examples += len(rows)
        return study_sft_loss(scores, gold, groups, self.cfg.consistency_weight)


def sft(run_dir: str | Path, cfg: SftConfig, *, parent: str = "base", ckpt_id: str = "sft", seed: int = 0,
        data_dir: str | Path | None = None, method: str = "sft", budget: BudgetConfig | None = None) -> dict:
    """Fine-tune ``parent`` on its train facts (``budget.facts``, or ``max_facts``) with ``cfg.objective``."""
    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget,
                check=check_budget(cfg.langs, budget))
    data, tokenizer = job.data, job.tokenizer
    langs = cfg.langs or data.training_langs
    train_rows = data.require("train", langs)
    offered = facts = budget_facts(train_rows, budget, cfg.max_facts, seed)
    if oracle_share(method, budget):  # the positive control: test facts besides the budget's
        test_rows = data.require("test", langs)
        facts, train_rows = facts + oracle_facts(test_rows, oracle_share(method, budget), seed), train_rows + test_rows
    rows = rows_of(train_rows, facts)
    spend, callbacks = job.arm(offered, langs, normalization=cfg.normalization)
    spend.trained = facts
    ordered = {"train_sampling_strategy": "sequential"} if budget is not None and budget.facts else {}
    if cfg.objective == "study":
        by_fact = [[r for r in rows if r["fact_id"] == f] for f in facts]
        args = TrainingArguments(**training_args(job.work, cfg.train, seed, remove_unused_columns=False, **ordered))
        trainer = StudySftTrainer(model=with_lora(job.model, cfg.lora), args=args, facts=by_fact, tokenizer=tokenizer,
                                  cfg=cfg, spend=spend, callbacks=callbacks)
    else:
        trainer = sft_trainer(job.model, tokenizer, rows, cfg, job.work, seed, **ordered)
        for cb in callbacks:
            trainer.add_callback(cb)
    result = trainer.train(resume_from_checkpoint=last_state(job.work))
    if cfg.objective != "study":
        spend.forward_tokens = int(trainer.state.num_input_tokens_seen)
        spend.examples = int(len(rows) * cfg.train.epochs) if cfg.train.max_steps < 0 else \
            trainer.state.global_step * cfg.train.batch_size * cfg.train.gradient_accumulation
    spend.steps = trainer.state.global_step
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    train_eval = sample_facts(rows, cfg.eval_max_facts, seed)
    metrics: dict[str, Any] = {
        "train": {"train_loss": float(result.training_loss), "steps": trainer.state.global_step, "examples": len(rows)},
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "train_recall": quick_recall(model, tokenizer, train_eval, normalization=cfg.normalization),
    }
    return finish(job, model, metrics, spend=spend)
