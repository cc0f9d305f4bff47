"""The study's fact-grouped GRPO, and its matched control.

One prompt group per fact; each of G rollouts answers the fact once in every training
language; the rollout's reward (per-language rewards + consistency bonus) is z-scored over the
G rollouts and that advantage is applied to every language's answer tokens. The study's objective
(:meth:`GrpoConfig.study`): the study reward (:meth:`RewardConfig.study`), z-scores with the
population standard deviation + 1e-6, a per-sequence mean of −A · log p (plain policy gradient:
one update per rollout batch, so the ratio is 1), β = 0. The project's options remain: DAPO /
GRPO / Dr.GRPO normalization, clipping, an optional k3 KL to the reference.

``grouping="language"`` is the matched control (method ``grpo-perlang``): the same rollouts,
budget and reward values, but each language's answers form their own group (their own advantage,
no all-correct bonus), so comparing it with ``grpo`` isolates the consistency signal.

TRL's ``GRPOTrainer`` groups samples of one prompt, so translations of a fact never share a group
there: this trainer subclasses ``transformers.Trainer`` (periodic saves, resume, accelerate) and
does its own rollouts. :func:`grpo_trl` runs TRL's per-prompt GRPO for comparison.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

from polyfact.core.errors import PolyFactError
from polyfact.data.answers import first_line
from polyfact.data.build import rollout_prompt
from polyfact.training.arms import Spend, budget_facts, check_budget, fact_groups, rows_of
from polyfact.training.common import begin, finish
from polyfact.training.evaluation.data import quick_recall, sample_facts
from polyfact.training.config import BudgetConfig, GrpoConfig, LMTrainConfig
from polyfact.training.lm import last_state, merged, training_args, with_lora
from polyfact.training.rewards import rollout_reward

Facts = list[dict[str, dict]]  # one ``{lang: row}`` per fact group


# ------------------------------------------------------------------------------------ 1. rollout
@dataclass
class Rollout:
    """One sampled answer: fact ``b`` of the batch, rollout ``g`` of its group, its language."""

    b: int
    g: int
    lang: str
    row: dict
    completion: list[int]  # generated token ids up to and including EOS
    text: str  # the answer line


@torch.no_grad()
def rollout(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, facts: Facts, cfg: GrpoConfig,
            seed: int) -> list[Rollout]:
    """``num_generations`` sampled answers to every (fact, language) prompt of ``facts``
    (``len(facts) · languages · G`` rollouts, fact-major), with their completion tokens."""
    g = cfg.num_generations
    items = [(b, lang, row) for b, fact in enumerate(facts) for lang, row in fact.items()]
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    enc = tokenizer([rollout_prompt(row, cfg.prompt) for _, _, row in items], return_tensors="pt",
                    padding=True).to(model.device)
    torch.manual_seed(seed)
    out = model.generate(**enc, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                         max_new_tokens=cfg.max_new_tokens, num_return_sequences=g,
                         repetition_penalty=cfg.repetition_penalty,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    tokenizer.padding_side = "right"
    model.train(was_training)
    new = out[:, enc["input_ids"].shape[1]:].tolist()  # [items · G, ≤ max_new_tokens]
    seqs = []
    for j, tokens in enumerate(new):
        b, lang, row = items[j // g]
        cut = tokens.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in tokens else len(tokens)
        completion = tokens[:cut]  # generate pads only after EOS
        seqs.append(Rollout(b, j % g, lang, row, completion,
                            first_line(tokenizer.decode(completion, skip_special_tokens=True))))
    return seqs


# ------------------------------------------------------------------------------------ 2. reward
@dataclass
class RolloutRewards:
    """Rewards of a batch of rollouts: ``total [F, G]`` (a rollout's reward over its languages,
    bonus included) and ``per_lang [F, L, G]`` (NaN where fact ``f`` lacks language ``langs[l]``)."""

    total: torch.Tensor
    per_lang: torch.Tensor
    langs: list[str]
    correct: dict[str, list[float]]  # per language: 1.0 / 0.0 for each of its rollouts


def rewards(seqs: list[Rollout], facts: Facts, cfg: GrpoConfig) -> RolloutRewards:
    """Each rollout's reward (``polyfact.training.rewards.rollout_reward``: every language's answer, summed
    or averaged, plus the consistency bonus) and each language's own reward."""
    g = cfg.num_generations
    answers: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for s in seqs:
        answers[(s.b, s.g)][s.lang] = s.text
    langs = list(dict.fromkeys(lang for fact in facts for lang in fact))
    total = torch.zeros(len(facts), g)  # [F, G]
    per_lang = torch.full((len(facts), len(langs), g), float("nan"))  # [F, L, G]
    correct: dict[str, list[float]] = defaultdict(list)
    for b, fact in enumerate(facts):
        for k in range(g):
            res = rollout_reward(answers[(b, k)], fact, cfg.reward)
            total[b, k] = res["total"]
            for lang, ok in res["correct"].items():
                correct[lang].append(float(ok))
                per_lang[b, langs.index(lang), k] = res["per_lang"][lang]
    return RolloutRewards(total, per_lang, langs, dict(correct))


def permuted(r: RolloutRewards, generator: torch.Generator) -> RolloutRewards:
    """The placebo's rewards: each fact's rollouts get the rewards of a random permutation of its
    rollouts (a rollout's total and its languages' rewards move together), so every reward value
    and group statistic is kept while the link between an answer and its reward is cut."""
    f, _, g = r.per_lang.shape
    order = torch.stack([torch.randperm(g, generator=generator) for _ in range(f)])  # [F, G]
    total = torch.gather(r.total, 1, order)
    per_lang = torch.gather(r.per_lang, 2, order[:, None, :].expand_as(r.per_lang))
    return RolloutRewards(total, per_lang, r.langs, r.correct)


# ------------------------------------------------------------------------------------ 3. advantages
def group_advantages(rewards: torch.Tensor, scale: str, eps: float | None = None) -> torch.Tensor:
    """Rewards ``[groups, G]`` → advantages: centred on the group mean and divided by the group's
    standard deviation plus ``eps``: population + 1e-6 as the study (``study``), unbiased + 1e-4
    (``group``), or not at all (``none``, Dr.GRPO)."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "group":
        return centred / (rewards.std(dim=1, keepdim=True) + (1e-4 if eps is None else eps))
    if scale == "study":
        return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + (1e-6 if eps is None else eps))
    return centred


def advantages(rewards: RolloutRewards, grouping: str, scale: str) -> torch.Tensor:
    """The advantage of every answer, ``[F, L, G]`` (NaN where a fact lacks a language).

    ``fact`` (the study's): one group per fact over its rollouts' totals; every language of a
    rollout shares its advantage. ``language`` (the matched control): one group per (fact,
    language) over that language's own rewards."""
    f, n_langs, g = rewards.per_lang.shape
    if grouping == "fact":
        shared = group_advantages(rewards.total, scale)  # [F, G]
        present = ~torch.isnan(rewards.per_lang)  # [F, L, G]
        return torch.where(present, shared[:, None, :].expand(f, n_langs, g), torch.full_like(rewards.per_lang, float("nan")))
    if grouping == "language":
        flat = rewards.per_lang.reshape(f * n_langs, g)  # rows of absent languages stay NaN
        return group_advantages(flat, scale).reshape(f, n_langs, g)
    raise PolyFactError(f"unknown grouping {grouping!r}; use fact or language")


# ------------------------------------------------------------------------------------ 4. loss
def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy-gradient loss over completion tokens ``[N, T]`` with per-sequence advantages
    ``[N]``; k3 KL ``exp(ref−logp) − (ref−logp) − 1`` weighted by ``beta``.

    ``dapo``: token sum / number of tokens in the batch; ``grpo``: mean over each sequence's tokens,
    then over sequences; ``dr_grpo``: token sum / (N · max_completion_length)."""
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)  # [N, T]
    adv = advantages[:, None]  # [N, 1]
    high = clip_eps if clip_eps_high is None else clip_eps_high
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + high)
    per_token = -torch.min(ratio * adv, clipped * adv)  # [N, T]
    kl = torch.zeros_like(logp)
    if beta and ref_logp is not None:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
    if loss_type == "dapo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    elif loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif loss_type == "dr_grpo":
        width = max_completion_length or mask.shape[1]
        loss = (per_token * mask).sum() / (mask.shape[0] * width)
    else:
        from polyfact.training.config import LOSS_TYPES

        LOSS_TYPES.check(loss_type, "loss_type")
        raise AssertionError(loss_type)
    n = mask.sum().clamp(min=1)
    is_clipped = ((ratio < 1 - clip_eps) & (adv < 0)) | ((ratio > 1 + high) & (adv > 0))
    stats = {"kl": float((kl * mask).sum() / n), "clip_ratio": float((is_clipped.to(mask.dtype) * mask).sum() / n)}
    return loss, stats


def completion_logprobs(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        completion_mask: torch.Tensor) -> torch.Tensor:
    """Log-probability of each token under ``model`` (``[N, T]``, 0 where the mask is 0)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # [N, T-1, V]
    targets = input_ids[:, 1:]
    logp = torch.gather(logits.log_softmax(-1), 2, targets[:, :, None]).squeeze(2)
    logp = torch.cat([torch.zeros_like(logp[:, :1]), logp], dim=1)  # [N, T]: position 0 is never a completion
    return logp * completion_mask


def rollout_batch(tokenizer: PreTrainedTokenizerBase, seqs: list[Rollout], prompt: str
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompt + completion of every rollout, right-padded: ``ids``, ``attention``, ``completion
    mask`` (each ``[N, T]``)."""
    prompts = tokenizer([rollout_prompt(s.row, prompt) for s in seqs], add_special_tokens=True)["input_ids"]
    width = max(len(p) + len(s.completion) for p, s in zip(prompts, seqs))
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    cmask = torch.zeros_like(ids)
    for i, (p, s) in enumerate(zip(prompts, seqs)):
        full = p + s.completion
        ids[i, : len(full)] = torch.tensor(full)
        attn[i, : len(full)] = 1
        cmask[i, len(p) : len(full)] = 1
    return ids, attn, cmask


# ------------------------------------------------------------------------------------ 5. metrics
def step_metrics(r: RolloutRewards, cmask: torch.Tensor, stats: dict[str, float]) -> dict[str, float]:
    """What one step logs: mean reward, its spread within groups, the share of groups without a
    learning signal, completion length, KL and clipping."""
    std = r.total.std(dim=1)
    return {"reward": float(r.total.mean()), "reward_std": float(std.mean()),
            "frac_reward_zero_std": float((std < 1e-6).float().mean()),
            "completion_length": float(cmask.sum(1).float().mean()), **stats}


class FactGroupedGRPOTrainer(Trainer):
    """``transformers.Trainer`` whose batches are facts; ``compute_loss`` runs one GRPO step:
    :func:`rollout` → :func:`rewards` → :func:`advantages` → :func:`policy_loss` → :func:`step_metrics`."""

    def __init__(self, *, model: PreTrainedModel, args: TrainingArguments, groups: Facts,
                 tokenizer: PreTrainedTokenizerBase, cfg: GrpoConfig, seed: int = 0, spend: Spend | None = None,
                 callbacks: list | None = None) -> None:
        import copy

        data = datasets.Dataset.from_dict({"fact_index": list(range(len(groups)))})
        super().__init__(model=model, args=args, train_dataset=data, data_collator=self._collate,
                         processing_class=tokenizer, callbacks=callbacks)
        self.groups, self.cfg, self.seed = groups, cfg, seed
        self.spend = spend or Spend([])
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False) if cfg.beta > 0 else None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.history: list[dict[str, float]] = []

    @staticmethod
    def _collate(features: list[dict]) -> dict[str, torch.Tensor]:
        return {"fact_index": torch.tensor([f["fact_index"] for f in features])}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        cfg, tok = self.cfg, self.processing_class
        facts = [self.groups[i] for i in inputs["fact_index"].tolist()]
        seqs = rollout(model, tok, facts, cfg, seed=self.seed * 1_000_003 + self.state.global_step)
        r = rewards(seqs, facts, cfg)
        if cfg.placebo:
            r = permuted(r, torch.Generator().manual_seed(self.seed * 1_000_003 + self.state.global_step))
        adv = advantages(r, cfg.grouping, cfg.scale_rewards)  # [F, L, G]
        ids, attn, cmask = (t.to(model.device) for t in rollout_batch(tok, seqs, cfg.prompt))
        seq_adv = torch.tensor([adv[s.b, r.langs.index(s.lang), s.g].item() for s in seqs], device=model.device)
        logp = completion_logprobs(model, ids, attn, cmask)  # [N, T]
        ref = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref = completion_logprobs(self.ref_model, ids, attn, cmask)
        loss, stats = policy_loss(logp, logp.detach(), seq_adv, cmask, clip_eps=cfg.clip_eps,
                                  clip_eps_high=cfg.clip_eps_high, beta=cfg.beta, ref_logp=ref,
                                  loss_type=cfg.loss_type, max_completion_length=cfg.max_new_tokens)
        self.spend.examples += len(seqs) // cfg.num_generations
        self.spend.forward_tokens += int(attn.sum())
        self.spend.generated_tokens += sum(len(s.completion) for s in seqs)
        for lang, oks in r.correct.items():
            self._metrics[f"acc/{lang}"].extend(oks)
        for key, value in step_metrics(r, cmask, stats).items():
            self._metrics[key].append(value)
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:  # noqa: D102
        if self._metrics:
            logs = {**logs, **{k: sum(v) / len(v) for k, v in self._metrics.items()}}
            self._metrics.clear()
        if "loss" in logs or "reward" in logs:
            self.history.append({"step": self.state.global_step, **logs})
        super().log(logs, *args, **kwargs)


def grpo_steps(cfg: GrpoConfig, n_facts: int) -> int:
    """Optimizer steps: ``cfg.steps``, or ``epochs`` passes over ``n_facts`` at ``facts_per_step``."""
    import math

    return cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * n_facts / cfg.facts_per_step))


def grpo_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, groups: list[dict[str, dict]],
                 cfg: GrpoConfig, out: Path, seed: int, spend: Spend | None = None, callbacks: list | None = None,
                 **overrides: Any) -> FactGroupedGRPOTrainer:
    """The fact-grouped trainer for ``groups`` (LoRA per ``cfg.lora``; ``overrides`` go to
    ``TrainingArguments``)."""
    lm = LMTrainConfig(batch_size=cfg.facts_per_step, learning_rate=cfg.learning_rate,
                       max_steps=grpo_steps(cfg, len(groups)), epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio,
                       weight_decay=cfg.weight_decay, lr_scheduler=cfg.lr_scheduler, save_steps=cfg.save_steps,
                       logging_steps=cfg.logging_steps, gradient_checkpointing=cfg.gradient_checkpointing)
    args = TrainingArguments(**{**training_args(out, lm, seed, remove_unused_columns=False), **overrides})
    return FactGroupedGRPOTrainer(model=with_lora(model, cfg.lora), args=args, groups=groups, tokenizer=tokenizer,
                                  cfg=cfg, seed=seed, spend=spend, callbacks=callbacks)


def grpo(run_dir: str | Path, cfg: GrpoConfig, *, parent: str = "base", ckpt_id: str = "grpo", seed: int = 0,
         data_dir: str | Path | None = None, method: str = "grpo", budget: BudgetConfig | None = None) -> dict:
    """Fact-grouped GRPO from ``parent`` on the train split (``cfg.grouping``: ``fact``, or
    ``language`` for the matched control ``grpo-perlang``); the manifest records the reward curve
    and train/test recall."""
    if cfg.use_vllm:
        raise PolyFactError("fact-grouped GRPO samples with transformers' generate; vLLM generation is "
                            "available for 'grpo-trl' (TRL's integration), or set grpo.use_vllm=false")
    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget,
                check=check_budget(cfg.langs, budget))
    data, model, tokenizer = job.data, job.model, job.tokenizer
    langs = cfg.langs or data.training_langs
    all_rows = data.require("train", langs)
    facts = budget_facts(all_rows, budget, cfg.max_facts, seed)
    train_rows = rows_of(all_rows, facts)
    groups = fact_groups(train_rows, facts)  # every fact of the pool is asked in every training language
    if not groups:
        raise PolyFactError("no train fact is asked in two or more training languages; GRPO needs parallel facts")
    train_eval = sample_facts(train_rows, cfg.eval_max_facts, seed)
    before = quick_recall(model, tokenizer, train_eval, mode="generate")
    spend, callbacks = job.arm(facts, langs, normalization=cfg.normalization, grpo=cfg)
    spend.trained = [next(iter(g.values()))["fact_id"] for g in groups]
    ordered = {"train_sampling_strategy": "sequential"} if budget is not None and budget.facts else {}
    trainer = grpo_trainer(model, tokenizer, groups, cfg, job.work, seed, spend=spend, callbacks=callbacks, **ordered)
    trainer.train(resume_from_checkpoint=last_state(job.work))
    spend.steps = trainer.state.global_step
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    metrics = {
        "history": trainer.history,
        "train_recall_before": before,
        "train_recall": quick_recall(model, tokenizer, train_eval, mode="generate"),
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "facts": len(groups),
    }
    return finish(job, model, metrics, spend=spend)


_ROW_COLUMNS = ("lang", "object", "aliases", "options", "option_ids", "answer_index")


def grpo_trl(run_dir: str | Path, cfg: GrpoConfig, *, parent: str = "base", ckpt_id: str = "grpo-trl", seed: int = 0,
             data_dir: str | Path | None = None, method: str = "grpo-trl", budget: BudgetConfig | None = None) -> dict:
    """Standard per-prompt GRPO through TRL's ``GRPOTrainer`` (each fact × language is its own
    prompt; per-language correctness reward, no consistency bonus), for comparison."""
    import importlib.util

    from trl import GRPOConfig as TrlGrpoConfig
    from trl import GRPOTrainer

    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise PolyFactError("grpo.use_vllm needs vLLM: pip install vllm (on a CUDA machine), or set grpo.use_vllm=false")

    from polyfact.training.rewards import language_reward

    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget)
    data, model, tokenizer = job.data, job.model, job.tokenizer
    langs = cfg.langs or data.training_langs
    all_rows = data.require("train", langs)
    facts = budget_facts(all_rows, budget, None, seed)
    rows = rows_of(all_rows, facts)
    ds = datasets.Dataset.from_dict({"prompt": [rollout_prompt(r, cfg.prompt) for r in rows],
                                     **{k: [r.get(k) for r in rows] for k in _ROW_COLUMNS}})

    def reward(prompts, completions, **columns):  # TRL passes every dataset column by name, one list each
        return [language_reward(first_line(c), {k: columns[k][i] for k in _ROW_COLUMNS}, cfg.reward)[0]
                for i, c in enumerate(completions)]

    out = job.work
    lm = LMTrainConfig(batch_size=cfg.facts_per_step * cfg.num_generations, learning_rate=cfg.learning_rate,
                       max_steps=grpo_steps(cfg, len(rows)), warmup_ratio=cfg.warmup_ratio,
                       weight_decay=cfg.weight_decay,
                       lr_scheduler=cfg.lr_scheduler, save_steps=cfg.save_steps, logging_steps=cfg.logging_steps,
                       bf16=False,
                       gradient_checkpointing=cfg.gradient_checkpointing)
    args = TrlGrpoConfig(**{"gradient_checkpointing": cfg.gradient_checkpointing, **training_args(out, lm, seed)},
                         num_generations=cfg.num_generations,
                         max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                         beta=cfg.beta, loss_type=cfg.loss_type,
                         scale_rewards="group" if cfg.scale_rewards == "study" else cfg.scale_rewards,
                         **({"use_vllm": True, "vllm_mode": "colocate"} if cfg.use_vllm else {}))
    spend, callbacks = job.arm(facts, langs, normalization=cfg.normalization)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds, processing_class=tokenizer,
                          peft_config=cfg.lora.peft_config(), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=last_state(out))
    spend.steps, spend.examples = trainer.state.global_step, trainer.state.global_step * cfg.facts_per_step
    spend.forward_tokens = int(trainer.state.num_input_tokens_seen)
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    history = [h for h in trainer.state.log_history if "reward" in h]
    metrics = {"history": history, "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization)}
    return finish(job, model, metrics, spend=spend)
