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

import copy
import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

from core.errors import PolyFactError
from training.common import begin, finish, quick_recall, sample_facts
from training.lm import LMTrainConfig, LoraSettings, last_state, merged, training_args, with_lora
from polyfact.build import rollout_prompt
from training.rewards import RewardConfig, rollout_reward

LOSS_TYPES = ("dapo", "grpo", "dr_grpo")
SCALES = ("group", "study", "none")
GROUPINGS = ("fact", "language")


@dataclass
class GrpoConfig:
    """Fact-grouped GRPO. ``facts_per_step`` prompt groups per optimizer step, ``num_generations``
    rollouts each; ``langs=None`` means the dataset's training languages."""

    steps: int | None = 50  # None: ``epochs`` passes over the train facts
    epochs: float = 1.0
    facts_per_step: int = 4
    num_generations: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 8
    learning_rate: float = 2e-4
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    beta: float = 0.0
    loss_type: str = "grpo"  # the study's per-sequence mean (dapo, dr_grpo: the project's alternatives)
    scale_rewards: str = "study"  # study: population std + 1e-6; group: unbiased std + 1e-4; none
    reward: RewardConfig = field(default_factory=RewardConfig.study)
    grouping: str = "fact"  # fact: the study's shared advantage; language: the per-language control
    prompt: str = "cue"  # cue: the row's question and answer cue; study: the study's scaffold with options
    repetition_penalty: float = 1.0  # the study generates with 1.3
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.0
    langs: list[str] | None = None
    max_facts: int | None = 40  # train facts GRPO learns from (None: all); its train recall is measured on them
    save_steps: int = 20
    logging_steps: int = 10
    eval_max_facts: int | None = 40
    normalization: str = "byte"
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    use_vllm: bool = False  # grpo-trl only: TRL's vLLM generation (colocated), when vLLM is installed

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise PolyFactError(f"unknown loss_type {self.loss_type!r}; use one of: {', '.join(LOSS_TYPES)}")
        if self.scale_rewards not in SCALES:
            raise PolyFactError(f"unknown scale_rewards {self.scale_rewards!r}; use one of: {', '.join(SCALES)}")
        if self.num_generations < 2:
            raise PolyFactError("num_generations must be at least 2: advantages compare rollouts of one fact")
        if self.grouping not in GROUPINGS:
            raise PolyFactError(f"unknown grouping {self.grouping!r}; use one of: {', '.join(GROUPINGS)}")
        if isinstance(self.reward, dict):
            self.reward = RewardConfig(**self.reward)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)

    @classmethod
    def study(cls, **overrides) -> "GrpoConfig":
        """The study's objective and settings (one fact per step, 8 rollouts, one epoch, LoRA r 64,
        lr 1e-5 with cosine decay, T 0.7, top-p 0.95, repetition penalty 1.3, 32 new tokens)."""
        base = dict(steps=None, epochs=1.0, facts_per_step=1, num_generations=8, temperature=0.7, top_p=0.95,
                    repetition_penalty=1.3, max_new_tokens=32, learning_rate=1e-5, lr_scheduler="cosine",
                    warmup_ratio=0.03, beta=0.0, loss_type="grpo", scale_rewards="study",
                    reward=RewardConfig.study(), prompt="study", max_facts=None,
                    lora=LoraSettings(enabled=True), gradient_checkpointing=True)
        return cls(**{**base, **overrides})


def group_advantages(rewards: torch.Tensor, scale: str = "group", eps: float | None = None) -> torch.Tensor:
    """Rewards ``[groups, G]`` → advantages: centred on the group mean and divided by the group's
    standard deviation plus ``eps``: unbiased + 1e-4 (``group``), population + 1e-6 as the study
    (``study``), or not at all (``none``, Dr.GRPO)."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "group":
        return centred / (rewards.std(dim=1, keepdim=True) + (1e-4 if eps is None else eps))
    if scale == "study":
        return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + (1e-6 if eps is None else eps))
    return centred


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    loss_type: str = "dapo",
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy-gradient loss over completion tokens ``[N, T]`` with per-sequence advantages
    ``[N]``; k3 KL ``exp(ref−logp) − (ref−logp) − 1`` weighted by ``beta``.

    ``dapo``: token sum / number of tokens in the batch; ``grpo``: mean over each sequence's tokens,
    then over sequences; ``dr_grpo``: token sum / (N · max_completion_length)."""
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    high = clip_eps if clip_eps_high is None else clip_eps_high
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + high)
    per_token = -torch.min(ratio * adv, clipped * adv)
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
        raise PolyFactError(f"unknown loss_type {loss_type!r}; use one of: {', '.join(LOSS_TYPES)}")
    n = mask.sum().clamp(min=1)
    is_clipped = ((ratio < 1 - clip_eps) & (adv < 0)) | ((ratio > 1 + high) & (adv > 0))
    stats = {"kl": float((kl * mask).sum() / n), "clip_ratio": float((is_clipped.to(mask.dtype) * mask).sum() / n)}
    return loss, stats


def completion_logprobs(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        completion_mask: torch.Tensor) -> torch.Tensor:
    """Log-probability of each token under ``model`` (``[N, T]``, 0 where the mask is 0)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    logp = torch.gather(logits.log_softmax(-1), 2, targets[:, :, None]).squeeze(2)
    logp = torch.cat([torch.zeros_like(logp[:, :1]), logp], dim=1)
    return logp * completion_mask


class FactGroupedGRPOTrainer(Trainer):
    """``transformers.Trainer`` whose batches are facts; ``compute_loss`` samples the rollouts."""

    def __init__(self, *, model: PreTrainedModel, args: TrainingArguments, groups: list[dict[str, dict]],
                 tokenizer: PreTrainedTokenizerBase, cfg: GrpoConfig, seed: int = 0) -> None:
        data = datasets.Dataset.from_dict({"fact_index": list(range(len(groups)))})
        super().__init__(model=model, args=args, train_dataset=data, data_collator=self._collate,
                         processing_class=tokenizer)
        self.groups, self.cfg, self.seed = groups, cfg, seed
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False) if cfg.beta > 0 else None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.history: list[dict[str, float]] = []

    @staticmethod
    def _collate(features: list[dict]) -> dict[str, torch.Tensor]:
        return {"fact_index": torch.tensor([f["fact_index"] for f in features])}

    @torch.no_grad()
    def _rollouts(self, model: PreTrainedModel, facts: list[dict[str, dict]]) -> list[dict]:
        """G sampled answers to every (fact, language) prompt, with their completion tokens."""
        tok = self.processing_class
        g = self.cfg.num_generations
        items = [(b, lang, row) for b, fact in enumerate(facts) for lang, row in fact.items()]
        was_training = model.training
        model.eval()
        tok.padding_side = "left"
        enc = tok([rollout_prompt(row, self.cfg.prompt) for _, _, row in items], return_tensors="pt",
                  padding=True).to(model.device)
        torch.manual_seed(self.seed * 1_000_003 + self.state.global_step)
        out = model.generate(**enc, do_sample=True, temperature=self.cfg.temperature, top_p=self.cfg.top_p, top_k=0,
                             max_new_tokens=self.cfg.max_new_tokens, num_return_sequences=g,
                             repetition_penalty=self.cfg.repetition_penalty,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        tok.padding_side = "right"
        model.train(was_training)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        seqs = []
        for j, tokens in enumerate(new):
            b, lang, row = items[j // g]
            cut = tokens.index(tok.eos_token_id) + 1 if tok.eos_token_id in tokens else len(tokens)
            completion = tokens[:cut]  # generate pads only after EOS
            text = tok.decode(completion, skip_special_tokens=True).split("\n")[0].strip()
            seqs.append({"b": b, "g": j % g, "lang": lang, "row": row, "completion": completion, "text": text})
        return seqs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        facts = [self.groups[i] for i in inputs["fact_index"].tolist()]
        g = self.cfg.num_generations
        seqs = self._rollouts(model, facts)
        answers: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
        for s in seqs:
            answers[(s["b"], s["g"])][s["lang"]] = s["text"]
        rewards = torch.zeros(len(facts), g)
        per_lang: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0] * g)
        for b, fact in enumerate(facts):
            for k in range(g):
                res = rollout_reward(answers[(b, k)], fact, self.cfg.reward)
                rewards[b, k] = res["total"]
                for lang, ok in res["correct"].items():
                    self._metrics[f"acc/{lang}"].append(float(ok))
                    per_lang[(b, lang)][k] = res["per_lang"][lang]
        if self.cfg.grouping == "fact":
            adv = group_advantages(rewards, self.cfg.scale_rewards)
            seq_adv_of = lambda s: adv[s["b"], s["g"]].item()  # noqa: E731 - shared by all languages
        else:  # the control: each (fact, language) is its own group over its own per-language rewards
            keys = sorted(per_lang)
            lang_adv = group_advantages(torch.tensor([per_lang[key] for key in keys]), self.cfg.scale_rewards)
            index = {key: i for i, key in enumerate(keys)}
            seq_adv_of = lambda s: lang_adv[index[(s["b"], s["lang"])], s["g"]].item()  # noqa: E731
        tok = self.processing_class
        prompts = tok([rollout_prompt(s["row"], self.cfg.prompt) for s in seqs], add_special_tokens=True)["input_ids"]
        width = max(len(p) + len(s["completion"]) for p, s in zip(prompts, seqs))
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        cmask = torch.zeros_like(ids)
        for i, (p, s) in enumerate(zip(prompts, seqs)):
            full = p + s["completion"]
            ids[i, : len(full)] = torch.tensor(full)
            attn[i, : len(full)] = 1
            cmask[i, len(p) : len(full)] = 1
        device = model.device
        ids, attn, cmask = ids.to(device), attn.to(device), cmask.to(device)
        seq_adv = torch.tensor([seq_adv_of(s) for s in seqs], device=device)
        logp = completion_logprobs(model, ids, attn, cmask)
        ref = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref = completion_logprobs(self.ref_model, ids, attn, cmask)
        loss, stats = policy_loss(logp, logp.detach(), seq_adv, cmask, clip_eps=self.cfg.clip_eps,
                                  clip_eps_high=self.cfg.clip_eps_high, beta=self.cfg.beta, ref_logp=ref,
                                  loss_type=self.cfg.loss_type, max_completion_length=self.cfg.max_new_tokens)
        std = rewards.std(dim=1)
        self._metrics["reward"].append(float(rewards.mean()))
        self._metrics["reward_std"].append(float(std.mean()))
        self._metrics["frac_reward_zero_std"].append(float((std < 1e-6).float().mean()))
        self._metrics["completion_length"].append(float(cmask.sum(1).float().mean()))
        self._metrics["kl"].append(stats["kl"])
        self._metrics["clip_ratio"].append(stats["clip_ratio"])
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:  # noqa: D102
        if self._metrics:
            logs = {**logs, **{k: sum(v) / len(v) for k, v in self._metrics.items()}}
            self._metrics.clear()
        if "loss" in logs or "reward" in logs:
            self.history.append({"step": self.state.global_step, **logs})
        super().log(logs, *args, **kwargs)


def fact_groups(rows: list[dict], langs: list[str]) -> list[dict[str, dict]]:
    """Train rows grouped by fact: ``{lang: row}`` for facts asked in at least two ``langs``."""
    by_fact: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        if r["lang"] in langs:
            by_fact[r["fact_id"]][r["lang"]] = r
    return [by_fact[f] for f in sorted(by_fact) if len(by_fact[f]) >= 2]


def grpo_steps(cfg: GrpoConfig, n_facts: int) -> int:
    """Optimizer steps: ``cfg.steps``, or ``epochs`` passes over ``n_facts`` at ``facts_per_step``."""
    import math

    return cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * n_facts / cfg.facts_per_step))


def grpo_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, groups: list[dict[str, dict]],
                 cfg: GrpoConfig, out: Path, seed: int, **overrides: Any) -> FactGroupedGRPOTrainer:
    """The fact-grouped trainer for ``groups`` (LoRA per ``cfg.lora``; ``overrides`` go to
    ``TrainingArguments``)."""
    lm = LMTrainConfig(batch_size=cfg.facts_per_step, learning_rate=cfg.learning_rate,
                       max_steps=grpo_steps(cfg, len(groups)), epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio,
                       weight_decay=0.0, lr_scheduler=cfg.lr_scheduler, save_steps=cfg.save_steps,
                       logging_steps=cfg.logging_steps, gradient_checkpointing=cfg.gradient_checkpointing)
    args = TrainingArguments(**{**training_args(out, lm, seed, remove_unused_columns=False), **overrides})
    return FactGroupedGRPOTrainer(model=with_lora(model, cfg.lora), args=args, groups=groups, tokenizer=tokenizer,
                                  cfg=cfg, seed=seed)


def grpo(run_dir: str | Path, cfg: GrpoConfig, parent: str = "base", ckpt_id: str = "grpo", seed: int = 0,
         data_dir: str | Path | None = None, method: str = "grpo") -> dict:
    """Fact-grouped GRPO from ``parent`` on the train split (``method="grpo-perlang"``: the
    per-language control); the manifest records the reward curve and train/test recall."""
    if cfg.use_vllm:
        raise PolyFactError("fact-grouped GRPO samples with transformers' generate; vLLM generation is "
                            "available for 'grpo-trl' (TRL's integration), or set grpo.use_vllm=false")
    if method == "grpo-perlang":
        cfg = dataclasses.replace(cfg, grouping="language")
    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg)
    data, model, tokenizer = job.data, job.model, job.tokenizer
    langs = cfg.langs or data.training_langs
    train_rows = sample_facts(data.require("train", langs), cfg.max_facts, seed)
    groups = fact_groups(train_rows, langs)
    if not groups:
        raise PolyFactError("no train fact is asked in two or more training languages; GRPO needs parallel facts")
    train_eval = sample_facts(train_rows, cfg.eval_max_facts, seed)
    before = quick_recall(model, tokenizer, train_eval, mode="generate")
    trainer = grpo_trainer(model, tokenizer, groups, cfg, job.work, seed)
    trainer.train(resume_from_checkpoint=last_state(job.work))
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    metrics = {
        "history": trainer.history,
        "train_recall_before": before,
        "train_recall": quick_recall(model, tokenizer, train_eval, mode="generate"),
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "facts": len(groups),
    }
    return finish(job, model, metrics)


def grpo_trl(run_dir: str | Path, cfg: GrpoConfig, parent: str = "base", ckpt_id: str = "grpo-trl", seed: int = 0,
             data_dir: str | Path | None = None) -> dict:
    """Standard per-prompt GRPO through TRL's ``GRPOTrainer`` (each fact × language is its own
    prompt; per-language correctness reward, no consistency bonus), for comparison."""
    import importlib.util

    from trl import GRPOConfig as TrlGrpoConfig
    from trl import GRPOTrainer

    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise PolyFactError("grpo.use_vllm needs vLLM: pip install vllm (on a CUDA machine), or set grpo.use_vllm=false")

    from training.rewards import language_reward

    job = begin(run_dir, data_dir, seed, parent, method="grpo-trl", ckpt_id=ckpt_id, cfg=cfg)
    data, model, tokenizer = job.data, job.model, job.tokenizer
    langs = cfg.langs or data.training_langs
    rows = data.require("train", langs)
    ds = datasets.Dataset.from_dict({"prompt": [rollout_prompt(r, cfg.prompt) for r in rows],
                                     "row": [json.dumps(r, ensure_ascii=False) for r in rows]})

    def reward(prompts, completions, row, **_):  # TRL passes dataset columns by name
        return [language_reward(c.split("\n")[0].strip(), json.loads(r), cfg.reward)[0] for c, r in zip(completions, row)]

    out = job.work
    lm = LMTrainConfig(batch_size=cfg.facts_per_step * cfg.num_generations, learning_rate=cfg.learning_rate,
                       max_steps=grpo_steps(cfg, len(rows)), warmup_ratio=cfg.warmup_ratio, weight_decay=0.0,
                       lr_scheduler=cfg.lr_scheduler, save_steps=cfg.save_steps, logging_steps=cfg.logging_steps,
                       bf16=False,
                       gradient_checkpointing=cfg.gradient_checkpointing)
    args = TrlGrpoConfig(**{"gradient_checkpointing": cfg.gradient_checkpointing, **training_args(out, lm, seed)},
                         num_generations=cfg.num_generations,
                         max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                         beta=cfg.beta, loss_type=cfg.loss_type,
                         scale_rewards="group" if cfg.scale_rewards == "study" else cfg.scale_rewards,
                         **({"use_vllm": True, "vllm_mode": "colocate"} if cfg.use_vllm else {}))
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds, processing_class=tokenizer,
                          peft_config=cfg.lora.peft_config())
    trainer.train(resume_from_checkpoint=last_state(out))
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    history = [h for h in trainer.state.log_history if "reward" in h]
    metrics = {"history": history, "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization)}
    return finish(job, model, metrics)
