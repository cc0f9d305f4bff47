"""Scoring a model's answers: MCQ option log-likelihoods (a question's options share one prompt
forward through the KV cache) and greedy or sampled free-form generation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from polyfact.data.answers import first_line, match
from polyfact.data.build import continuation, mcq_prompt, option_continuation
from polyfact.training.config import NORMALIZATIONS



@dataclass
class OptionScores:
    """Summed log-probability of each option's tokens, with token and UTF-8 byte counts."""

    logprob: list[float]
    n_tokens: list[int]
    n_bytes: list[int]

    def normalized(self, how: str = "byte") -> list[float]:
        """Scores per token, per byte or summed."""
        if how == "token":
            return [lp / max(n, 1) for lp, n in zip(self.logprob, self.n_tokens)]
        if how == "byte":
            return [lp / max(n, 1) for lp, n in zip(self.logprob, self.n_bytes)]
        if how == "sum":
            return list(self.logprob)
        NORMALIZATIONS.check(how, "normalization")
        raise AssertionError(how)

    def best(self, how: str = "byte") -> int:
        s = self.normalized(how)
        return max(range(len(s)), key=s.__getitem__)


def _device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def _prompt_ids(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(prompts), add_special_tokens=True)["input_ids"]


@torch.inference_mode()
def score_options(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    langs: Sequence[str],
    batch_size: int = 32,
    progress: bool = False,
    style: str = "cue",
) -> list[OptionScores]:
    """Log-likelihood of every option after its prompt (``style``: how an option follows it, see
    ``polyfact.data.build.option_continuation``).

    Per batch of questions: one forward over the left-padded prompts fills the KV cache; the
    cache is repeated once per option and one forward over all options' tokens scores them.
    """
    device = _device(model)
    p_ids = _prompt_ids(tokenizer, prompts)
    conts = [[option_continuation(p, o, lang, style) for o in opts] for p, opts, lang in zip(prompts, options, langs)]
    c_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in conts]
    order = sorted(range(len(prompts)), key=lambda i: (len(p_ids[i]), len(c_ids[i])))
    results: list[OptionScores | None] = [None] * len(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in tqdm(range(0, len(order), batch_size), desc="scoring options", disable=not progress):
        batch = order[start : start + batch_size]
        lp = max(len(p_ids[i]) for i in batch)
        ids = torch.full((len(batch), lp), pad, dtype=torch.long)
        attn = torch.zeros((len(batch), lp), dtype=torch.long)
        for row, i in enumerate(batch):
            n = len(p_ids[i])
            ids[row, lp - n :] = torch.tensor(p_ids[i])
            attn[row, lp - n :] = 1
        ids, attn = ids.to(device), attn.to(device)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        # the prompt's logits are needed at its last position only (a third of a tiny model's compute)
        out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1, :].float().log_softmax(-1)
        q_of = [row for row, i in enumerate(batch) for _ in c_ids[i]]
        flat = [c for i in batch for c in c_ids[i]]
        lo = max(len(c) for c in flat)
        q_idx = torch.tensor(q_of, device=device)
        c_tensor = torch.full((len(flat), lo), pad, dtype=torch.long, device=device)
        c_mask = torch.zeros((len(flat), lo), dtype=torch.long, device=device)
        for r, c in enumerate(flat):
            c_tensor[r, : len(c)] = torch.tensor(c, device=device)
            c_mask[r, : len(c)] = 1
        token_lp = torch.zeros((len(flat), lo), device=device)
        token_lp[:, 0] = first[q_idx].gather(1, c_tensor[:, :1]).squeeze(1)
        if lo > 1:
            cache = out.cache
            cache.reorder_cache(q_idx)
            full_mask = torch.cat([attn[q_idx], c_mask[:, :-1]], dim=1)
            c_pos = attn.sum(-1)[q_idx, None] + torch.arange(lo - 1, device=device)
            out2 = model(input_ids=c_tensor[:, :-1], attention_mask=full_mask, position_ids=c_pos,
                         cache=cache, use_cache=False)
            rest = out2.logits.float().log_softmax(-1)
            token_lp[:, 1:] = rest.gather(2, c_tensor[:, 1:, None]).squeeze(2)
        sums = (token_lp * c_mask).sum(-1).tolist()
        r = 0
        for i in batch:
            k = len(c_ids[i])
            results[i] = OptionScores(
                logprob=sums[r : r + k],
                n_tokens=[len(c) for c in c_ids[i]],
                n_bytes=[len(o.encode("utf-8")) for o in options[i]],
            )
            r += k
    return [r for r in results if r is not None]


@torch.inference_mode()
def score_options_naive(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    langs: Sequence[str],
    style: str = "cue",
) -> list[OptionScores]:
    """Reference scorer: one forward per (prompt + option), no batching or cache. Used by the
    tests and the benchmark as the independent baseline of :func:`score_options`."""
    device = _device(model)
    out = []
    for prompt, opts, lang in zip(prompts, options, langs):
        p = _prompt_ids(tokenizer, [prompt])[0]
        lps, nts = [], []
        for o in opts:
            c = tokenizer(option_continuation(prompt, o, lang, style), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p + c], device=device)
            logits = model(input_ids=ids).logits[0].float().log_softmax(-1)
            lps.append(sum(logits[len(p) - 1 + j, t].item() for j, t in enumerate(c)))
            nts.append(len(c))
        out.append(OptionScores(lps, nts, [len(o.encode("utf-8")) for o in opts]))
    return out


@dataclass
class Sample:
    """One generated answer: its answer line and the generated token ids that spell it."""

    text: str
    ids: list[int]


def answer_ids(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> Sample:
    """The answer line of a generated completion (``first_line``) and the generated token ids that
    spell it, as the model produced them: leading space kept, the line's end, what follows and any
    special token dropped. When the line ends inside a token (e.g. ``"s\n"`` merged), the ids are
    the study's ``" " + text`` tokenized instead."""
    special = set(tokenizer.all_special_ids)
    cut = next((i for i, t in enumerate(ids) if t in special), len(ids))
    ids = list(ids[:cut])
    text = first_line(tokenizer.decode(ids))
    if not text:
        return Sample("", [])
    for k in range(1, len(ids) + 1):
        piece = tokenizer.decode(ids[:k])
        if piece.strip() == text:
            return Sample(text, ids[:k])
        if "\n" in piece:
            break
    return Sample(text, tokenizer(" " + text, add_special_tokens=False)["input_ids"])


@torch.inference_mode()
def sample_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_return_sequences: int = 1,
    seed: int | None = None,
    progress: bool = False,
    repetition_penalty: float = 1.0,
) -> list[list[Sample]]:
    """``num_return_sequences`` answers per prompt (:class:`Sample`: the answer line and its
    generated ids); greedy unless ``do_sample`` (``top_k`` 0: off)."""
    device = _device(model)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if seed is not None:
        torch.manual_seed(seed)
    answers: list[list[Sample]] = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress):
            chunk = list(prompts[start : start + batch_size])
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=True).to(device)
            kwargs = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k) if do_sample else dict(
                do_sample=False)
            if repetition_penalty != 1.0:
                kwargs["repetition_penalty"] = repetition_penalty
            out = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=num_return_sequences,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **kwargs)
            samples = [answer_ids(tokenizer, row) for row in out[:, enc["input_ids"].shape[1] :].tolist()]
            answers.extend(samples[j : j + num_return_sequences] for j in range(0, len(samples), num_return_sequences))
    finally:
        tokenizer.padding_side = old_side
    return answers


def generate_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                     **kwargs) -> list[list[str]]:
    """Free-form answers after each prompt, cut at the first newline (:func:`sample_answers`' texts)."""
    return [[s.text for s in k] for k in sample_answers(model, tokenizer, prompts, **kwargs)]


def mcq_records(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Iterable[dict],
    normalization: str = "byte",
    batch_size: int = 32,
    progress: bool = False,
    prompt: str = "cue",
) -> list[dict]:
    """One record per dataset row: ``fact_id, lang, relation, option_scores, pred_index, correct``
    plus the raw log-likelihoods and lengths, so every normalization can be recomputed.
    ``prompt``: the row's own question and answer cue (``cue``) or the study's scaffold (``study``)."""
    rows = list(rows)
    scores = score_options(model, tokenizer, [mcq_prompt(r, prompt) for r in rows], [r["options"] for r in rows],
                           [r["lang"] for r in rows], batch_size=batch_size, progress=progress, style=prompt)
    out = []
    for r, s in zip(rows, scores):
        pred = s.best(normalization)
        out.append({
            "fact_id": r["fact_id"], "lang": r["lang"], "relation": r["relation"], "split": r.get("split", ""),
            "option_ids": r.get("option_ids", []), "answer_index": r["answer_index"],
            "option_scores": s.normalized(normalization), "option_logprob": s.logprob,
            "option_tokens": s.n_tokens, "option_bytes": s.n_bytes, "normalization": normalization,
            "pred_index": pred, "correct": pred == r["answer_index"],
        })
    return out


def generation_records(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Iterable[dict],
    max_new_tokens: int = 16,
    few_shot: Sequence[dict] = (),
    batch_size: int = 32,
    progress: bool = False,
    match_mode: str = "study",
) -> list[dict]:
    """Greedy free-form answers scored with ``polyfact.data.answers.match`` (``match_mode``: the study's
    matcher by default); ``few_shot`` rows (same language) are prepended as solved examples."""
    rows = list(rows)

    def prompt(r: dict) -> str:
        shots = [s for s in few_shot if s["lang"] == r["lang"] and s["fact_id"] != r["fact_id"]]
        prefix = "".join(s["prompt"] + continuation(s["prompt"], s["object"], s["lang"]) + "\n\n" for s in shots)
        return prefix + r["prompt"]

    preds = generate_answers(model, tokenizer, [prompt(r) for r in rows], max_new_tokens=max_new_tokens,
                             batch_size=batch_size, progress=progress)
    out = []
    for r, (pred,) in zip(rows, preds):
        ok = match(pred, r["object"], r.get("aliases", []), lang=r["lang"], mode=match_mode)
        pred_index = next((i for i, o in enumerate(r["options"]) if match(pred, o, lang=r["lang"], mode="exact")), -1)
        out.append({"fact_id": r["fact_id"], "lang": r["lang"], "relation": r["relation"], "split": r.get("split", ""),
                    "option_ids": r.get("option_ids", []), "answer_index": r["answer_index"],
                    "pred_text": pred, "pred_index": pred_index, "correct": bool(ok)})
    return out
