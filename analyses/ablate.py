"""Causal deactivation: zero one language's specific neurons (or its top heads) and measure the
change in loss per language on held-out text and in MCQ accuracy per language on the dataset —
a language × language matrix per checkpoint, a diagonal-dominance score, and a control that
zeroes random units of the same count in the same layers."""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from polyfact.core.layout import layout
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.analyses.config import AblationConfig
from polyfact.analyses.specialization import load_heads, load_lape
from polyfact.interp import CollectConfig, LapeResult
from polyfact.interp.interventions import deactivate, lm_loss
from polyfact.data.build import continuation
from polyfact.training.evaluation.data import RunData, accuracy_by_lang, sample_facts
from polyfact.core.checkpoints import load_checkpoint
from polyfact.training.evaluation.scoring import mcq_records


def diagonal_dominance(matrix: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``margin``: mean over rows of (diagonal − mean of the row's other entries); ``share``: the
    share of rows whose diagonal is the row's largest entry."""
    langs = [lang for lang in matrix if lang in matrix[lang]]
    margins, wins = [], []
    for a in langs:
        others = [v for b, v in matrix[a].items() if b != a and not np.isnan(v)]
        if not others or np.isnan(matrix[a][a]):
            continue
        margins.append(matrix[a][a] - float(np.mean(others)))
        wins.append(matrix[a][a] >= max(others))
    return {"margin": float(np.mean(margins)) if margins else float("nan"),
            "share": float(np.mean(wins)) if wins else float("nan"), "rows": len(margins)}


def random_like(units: dict[int, list[int]], d_mlp: int, exclude: set[tuple[int, int]], seed: int) -> dict[int, list[int]]:
    """As many random neurons per layer as ``units`` has, avoiding ``exclude``."""
    rng = random.Random(seed)
    out = {}
    for layer, idx in units.items():
        pool = [n for n in range(d_mlp) if (layer, n) not in exclude]
        out[layer] = sorted(rng.sample(pool, min(len(idx), len(pool))))
    return out


def _by_layer(units: set[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for layer, n in sorted(units):
        out.setdefault(layer, []).append(n)
    return out


def deactivation_matrices(model, tokenizer, texts: dict[str, list[str]], units_by_lang: dict[str, dict],
                          rows: list[dict] | None = None, heads: bool = False, seq_len: int = 128,
                          max_tokens: int | None = None) -> dict[str, Any]:
    """Δloss (and Δaccuracy when ``rows`` are given) for deactivating each language's units:
    ``{"loss": {deactivated: {measured: Δ}}, "accuracy": …, "clean_loss": …}``."""
    cfg = CollectConfig(backend="torch", seq_len=seq_len, batch_size=32, max_tokens=max_tokens, progress=False)
    clean = lm_loss(model, tokenizer, texts, cfg)
    clean_acc = accuracy_by_lang(mcq_records(model, tokenizer, rows)) if rows else {}
    loss: dict[str, dict[str, float]] = {}
    acc: dict[str, dict[str, float]] = {}
    for lang, units in units_by_lang.items():
        kwargs = {"heads": units} if heads else {"neurons": units}
        with deactivate(model, **kwargs):
            after = lm_loss(model, tokenizer, texts, cfg)
            loss[lang] = {m: after[m] - clean[m] for m in texts}
            if rows:
                acc_after = accuracy_by_lang(mcq_records(model, tokenizer, rows))
                acc[lang] = {m: acc_after[m] - clean_acc[m] for m in clean_acc}
    out = {"loss": loss, "clean_loss": clean, "loss_dominance": diagonal_dominance(loss)}
    if rows:
        out.update({"accuracy": acc, "clean_accuracy": clean_acc,
                    "accuracy_dominance": diagonal_dominance({a: {b: -v for b, v in r.items()} for a, r in acc.items()})})
    return out


def heldout_texts(data: RunData, langs: list[str], max_facts: int | None, seed: int) -> tuple[dict[str, list[str]], list[dict]]:
    """Held-out text per language (test questions with their answers, never in any training text)
    and the test rows used for the accuracy matrix."""
    rows = [r for r in sample_facts(data.require("test"), max_facts, seed) if r["lang"] in langs]
    texts: dict[str, list[str]] = {}
    for r in rows:
        texts.setdefault(r["lang"], []).append(r["prompt"] + continuation(r["prompt"], r["object"], r["lang"]))
    return texts, rows


def ablation_analysis(run_dir: str | Path, ckpt: str, cfg: AblationConfig | None = None, force: bool = False
                      ) -> dict[str, Any]:
    """Neuron and head deactivation matrices of one checkpoint, with random-unit controls."""
    cfg = cfg or AblationConfig()
    data = RunData(run_dir)
    lape_res: LapeResult = load_lape(run_dir, ckpt, cfg.variant)
    heads = load_heads(run_dir, ckpt)
    prov = provenance(run_dir, ckpt, analysis="ablate", data_fingerprint=data.fingerprint, config=asdict(cfg),
                      seed=cfg.seed)
    path = layout(run_dir).result("ablate", ckpt)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    langs = [lang for lang in lape_res.languages if lape_res.units(lang)]  # may be none: heads still measured
    texts, rows = heldout_texts(data, lape_res.languages, cfg.max_facts, cfg.seed)
    model, tok = load_checkpoint(ckpt, run_dir)
    all_units = lape_res.all_units()
    neuron_units = {lang: _by_layer(lape_res.units(lang)) for lang in langs}
    control_units = {lang: random_like(u, lape_res.d_mlp, all_units, cfg.seed + i)
                     for i, (lang, u) in enumerate(neuron_units.items())}
    acc_rows = rows if cfg.accuracy else None
    kw = dict(seq_len=cfg.seq_len, max_tokens=cfg.max_tokens)
    top = heads.top_k(cfg.k_heads)
    if cfg.head_languages == "training":
        top = {lang: hs for lang, hs in top.items() if lang in data.training_langs}
    rng = random.Random(cfg.seed)
    control_heads = {lang: [(layer, rng.randrange(heads.n_heads)) for layer, _ in hs] for lang, hs in top.items()}
    payload = {
        "checkpoint": ckpt, "languages": lape_res.languages, "deactivated": langs,
        "units": {lang: sum(len(v) for v in u.values()) for lang, u in neuron_units.items()},
        "neurons": deactivation_matrices(model, tok, texts, neuron_units, acc_rows, **kw),
        "neurons_control": deactivation_matrices(model, tok, texts, control_units, None, **kw),
        "heads": deactivation_matrices(model, tok, texts, {k: v for k, v in top.items() if k in texts},
                                       acc_rows if cfg.head_accuracy else None, heads=True, **kw),
        "heads_control": deactivation_matrices(model, tok, texts, {k: v for k, v in control_heads.items() if k in texts},
                                               None, heads=True, **kw),
    }
    return write_result(path, payload, prov)
