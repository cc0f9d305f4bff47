"""CM-Align, a self-supervised cross-lingual consistency baseline (Zhang et al., EMNLP 2025
Findings; the study's port ``training/train_wikifact_cmalign_dpo.py``).

Phase 1 (:func:`cmalign_pairs`): K answers per language per fact, sampled from the starting model
(the port's T 0.9, top-p 0.95, top-k 50, repetition penalty 1.3); the English anchor is the English
answer with the highest mean cosine to the other English answers; for every other language,
chosen = its answer closest to the anchor, rejected = the farthest (skipped when they are the same
text). Cosines come from a sentence encoder: the policy's own mean-pooled last hidden state by
default (offline), or a named model (the study: LaBSE). The pairs, with the token ids the model
sampled, are cached in the run (``corpora/cm-align-<id>.jsonl``).
Phase 2: DPO with TRL's ``DPOTrainer`` on the tokens as sampled — the answer line's generated ids
(leading space kept) plus EOS, as the port trains on ``" " + completion.strip()`` + EOS — never a
re-tokenization of prompt + text, which merges tokens across the boundary; the pairs shuffled with
the port's seed (42) and the last partial batch dropped (β 0.1, no NLL term; the reference is the
policy with its LoRA adapter off, or a frozen copy of the starting model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import datasets
import torch

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text
from polyfact.data.build import rollout_prompt
from polyfact.training.arms import Spend, budget_facts, fact_groups, rows_of
from polyfact.training.common import begin, finish
from polyfact.training.evaluation.data import quick_recall, sample_facts
from polyfact.training.config import BudgetConfig, CmAlignConfig
from polyfact.training.lm import last_state, merged, training_args
from polyfact.training.evaluation.scoring import Sample, sample_answers


def mean_pooled(model, tokenizer, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """L2-normalized sentence vectors: the pooler output of an encoder that has one (LaBSE's CLS →
    dense → tanh), else the mean of the last hidden state over real tokens."""
    out = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        for i in range(0, len(texts), batch_size):
            chunk = [t if t.strip() else " " for t in texts[i: i + batch_size]]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=128)
            enc = {k: v.to(next(model.parameters()).device) for k, v in enc.items()}
            with torch.no_grad():
                res = model(**enc, output_hidden_states=True)
            pooled = getattr(res, "pooler_output", None)
            if pooled is None:
                h, m = res.hidden_states[-1].float(), enc["attention_mask"][..., None].float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
    finally:
        tokenizer.padding_side = side
    return torch.cat(out)


def load_encoder(name: str, policy: Any, tokenizer: Any) -> Callable[[list[str]], torch.Tensor]:
    """The sentence encoder ``name`` (``policy``: the starting model itself), loaded offline."""
    if name == "policy":
        return lambda texts: mean_pooled(policy, tokenizer, texts)
    from transformers import AutoModel, AutoTokenizer

    try:
        enc_tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
        enc = AutoModel.from_pretrained(name, local_files_only=True).eval()
    except Exception as err:  # noqa: BLE001 - any load failure is the same user error
        raise PolyFactError(f"cm_align.encoder {name!r} cannot be loaded offline ({type(err).__name__}); use 'policy' "
                            "(the model's own mean-pooled states) or a local model directory") from None
    return lambda texts: mean_pooled(enc, enc_tok, texts)


def choose_pairs(candidates: dict[str, list[str]], embed: Callable[[list[str]], torch.Tensor],
                 anchor_lang: str = "en") -> list[dict[str, Any]]:
    """One fact's DPO pairs from its candidates ``{lang: [K answers]}``: the anchor is the
    non-empty ``anchor_lang`` answer with the highest mean cosine to the other anchor-language
    answers; per other language, chosen = the highest cosine to it, rejected = the lowest."""
    anchors = [a for a in candidates.get(anchor_lang, []) if a.strip()]
    if not anchors:
        return []
    if len(anchors) > 1:
        e = embed(anchors)
        sim = e @ e.T
        sim.fill_diagonal_(0.0)
        anchor = anchors[int((sim.sum(1) / (len(anchors) - 1)).argmax())]
    else:
        anchor = anchors[0]
    ref = embed([anchor])[0]
    pairs = []
    for lang, answers in candidates.items():
        if lang == anchor_lang or len(answers) < 2:
            continue
        cos = embed(answers) @ ref
        hi, lo = int(cos.argmax()), int(cos.argmin())
        if hi == lo or answers[hi].strip() == answers[lo].strip():
            continue
        pairs.append({"lang": lang, "chosen": answers[hi], "rejected": answers[lo], "anchor": anchor,
                      "cos_chosen": float(cos[hi]), "cos_rejected": float(cos[lo])})
    return pairs


def cmalign_pairs(model, tokenizer, facts: list[dict[str, dict]], cfg: CmAlignConfig, seed: int,
                  spend: Spend) -> list[dict[str, Any]]:
    """Phase 1 over ``facts`` (``{lang: row}`` each): sample, embed, choose (see the module docstring).
    Each pair carries the prompt's ids and the chosen and rejected answers' sampled ids plus EOS."""
    items = [(i, lang, row) for i, fact in enumerate(facts) for lang, row in fact.items()]
    samples = sample_answers(model, tokenizer, [rollout_prompt(r, "study") for _, _, r in items],
                             max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                             top_p=cfg.top_p, top_k=cfg.top_k, num_return_sequences=cfg.candidates, seed=seed,
                             repetition_penalty=cfg.repetition_penalty)
    spend.generated_tokens += sum(len(a.ids) for k in samples for a in k)
    per_fact: list[dict[str, list[Sample]]] = [{} for _ in facts]
    for (i, lang, _), k in zip(items, samples):
        per_fact[i][lang] = list(k)
    embed = load_encoder(cfg.encoder, model, tokenizer)
    eos = [tokenizer.eos_token_id]
    out = []
    for fact, cands in zip(facts, per_fact):
        ids = {(lang, a.text): a.ids for lang, k in cands.items() for a in k}
        for p in choose_pairs({lang: [a.text for a in k] for lang, k in cands.items()}, embed):
            row = fact[p["lang"]]
            prompt = rollout_prompt(row, "study")
            out.append({"fact_id": row["fact_id"], "prompt": prompt, **p,
                        "prompt_ids": tokenizer(prompt)["input_ids"],
                        "chosen_ids": ids[(p["lang"], p["chosen"])] + eos,
                        "rejected_ids": ids[(p["lang"], p["rejected"])] + eos})
    return out


def training_order(pairs: list[dict], batch_size: int, seed: int) -> list[dict]:
    """The port's order: the pairs shuffled with ``seed`` (the port's 42) and the last partial batch
    of ``batch_size`` dropped (its ``DataLoader(shuffle=True, drop_last=True)``)."""
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    keep = len(pairs) - len(pairs) % batch_size
    return [pairs[i] for i in order[:keep]]


def _cached_pairs(path: Path, key: str) -> tuple[list[dict] | None, int]:
    """The pairs (and the tokens sampled for them) cached for the settings ``key``, else (None, 0)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        head = json.loads(lines[0])
        if head.get("key") == key:
            return [json.loads(x) for x in lines[1:]], int(head.get("generated_tokens", 0))
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return None, 0


def dpo_trainer(model, tokenizer, pairs: list[dict], cfg: CmAlignConfig, out: Path, seed: int,
                callbacks: list | None = None, **overrides):
    """TRL's ``DPOTrainer`` on ``pairs`` in their order (``prompt_ids``, ``chosen_ids``,
    ``rejected_ids``: trained as given, see :class:`TokenDPOTrainer`; LoRA per ``cfg.lora``, the
    reference its adapter off; with ``nll_weight``, the NLL of the chosen answer added); ``overrides``
    go to ``DPOConfig``."""
    from trl import DPOConfig

    ds = datasets.Dataset.from_dict({k: [p[k] for p in pairs] for k in ("prompt_ids", "chosen_ids", "rejected_ids")})
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, cfg.nll_weight]} if cfg.nll_weight else {}
    args = DPOConfig(**{"gradient_checkpointing": cfg.train.gradient_checkpointing,
                        **training_args(out, cfg.train, seed), "train_sampling_strategy": "sequential",
                        **overrides}, beta=cfg.beta, max_length=cfg.train.seq_len, dataset_num_proc=None, **losses)
    return token_dpo_trainer()(model=model, args=args, train_dataset=ds, processing_class=tokenizer,
                               peft_config=cfg.lora.peft_config(), callbacks=callbacks)


def token_dpo_trainer() -> type:
    """``TokenDPOTrainer``: TRL's ``DPOTrainer`` on a dataset that already holds ``prompt_ids``,
    ``chosen_ids`` and ``rejected_ids``. TRL tokenizes ``prompt + chosen`` as one string, which
    merges tokens across the boundary (``[':', 'ĠParis']`` became ``[':', 'Pa', 'ris']``): here the
    ids go to its collator as they are (only pairs whose prompt fills ``max_length`` are dropped,
    as TRL does). Built on first use so importing this module does not import TRL."""
    from trl import DPOTrainer

    class TokenDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):  # noqa: D102
            if args.max_length is None:
                return dataset
            return dataset.filter(lambda x: len(x["prompt_ids"]) < args.max_length)

    return TokenDPOTrainer


def cm_align(run_dir: str | Path, cfg: CmAlignConfig, *, parent: str = "base", ckpt_id: str = "cm-align",
             seed: int = 0, data_dir: str | Path | None = None, method: str = "cm-align",
             budget: BudgetConfig | None = None) -> dict:
    """CM-Align from ``parent``: pairs from its own samples (cached), then DPO with TRL."""
    def check(data: Any) -> None:
        langs = cfg.langs or data.training_langs
        if "en" not in langs or len(langs) < 2:
            raise PolyFactError(f"cm-align anchors on English answers: its languages need en and one more; got {langs}")
        budget_facts(data.require("train", langs), budget, cfg.max_facts, seed)
        if cfg.encoder != "policy":
            load_encoder(cfg.encoder, None, None)

    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget, check=check)
    data, model, tokenizer = job.data, job.model, job.tokenizer
    langs = cfg.langs or data.training_langs
    train_rows = data.require("train", langs)
    facts = budget_facts(train_rows, budget, cfg.max_facts, seed)
    rows = rows_of(train_rows, facts)
    groups = fact_groups(rows, facts)
    spend, callbacks = job.arm(facts, langs, normalization=cfg.normalization)
    cache = job.run.corpus(f"cm-align-{ckpt_id}")
    pairs, generated = _cached_pairs(cache, job.fingerprint)
    if pairs is None:
        pairs = cmalign_pairs(model, tokenizer, groups, cfg, seed, spend)
        generated = spend.generated_tokens
        head = {"key": job.fingerprint, "encoder": cfg.encoder, "generated_tokens": generated}
        atomic_write_text(cache, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [head, *pairs]))
    spend.generated_tokens = generated
    if not pairs:
        raise PolyFactError("cm-align found no pair (every language's candidates were identical); sample more "
                            "(--set cm_align.candidates=8) or raise cm_align.temperature")
    pairs = training_order(pairs, cfg.train.batch_size, cfg.shuffle_seed)
    if not pairs:
        raise PolyFactError(f"cm-align found fewer pairs than one batch ({cfg.train.batch_size}); train on more facts "
                            "or lower cm_align.train.batch_size")
    spend.trained = [p["fact_id"] for p in pairs]  # after every drop, in training order
    trainer = dpo_trainer(model, tokenizer, pairs, cfg, job.work, seed, callbacks)
    result = trainer.train(resume_from_checkpoint=last_state(job.work))
    epochs = cfg.train.epochs if cfg.train.max_steps < 0 else 1
    spend.steps = trainer.state.global_step
    spend.examples = int(len(pairs) * epochs)
    spend.forward_tokens = int(epochs * sum(len(p["prompt_ids"]) * 2 + len(p["chosen_ids"]) + len(p["rejected_ids"])
                                            for p in pairs))
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    metrics: dict[str, Any] = {
        "train": {"train_loss": float(result.training_loss), "steps": trainer.state.global_step, "pairs": len(pairs)},
        "encoder": cfg.encoder,
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "train_recall": quick_recall(model, tokenizer, sample_facts(rows, cfg.eval_max_facts, seed),
                                     normalization=cfg.normalization),
    }
    return finish(job, model, metrics, spend=spend)
