"""Shared representations of parallel questions per layer: cosine similarity (mean-pooled and
last-token states), linear CKA and retrieval P@1 against English and over all pairs, language-ID
probes, and the logit lens (answer's first token in the question's language vs in English)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyfact.analyses.config import RepresentationConfig
from polyfact.core.layout import layout
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.interp.representations import cosine, layer_states, linear_cka, logit_lens, probe_accuracy, retrieval_p1
from polyfact.data.build import continuation
from polyfact.core.errors import PolyFactError
from polyfact.training.evaluation.data import RunData, sample_facts
from polyfact.core.checkpoints import load_checkpoint


def parallel_rows(data: RunData, split: str, max_facts: int, seed: int) -> tuple[list[str], list[str], dict[str, list[dict]]]:
    """Facts asked in every language of the dataset, the languages, and rows in fact order."""
    rows = data.require(split)
    langs = data.meta["languages"]
    per_fact: dict[str, dict[str, dict]] = {}
    for r in rows:
        per_fact.setdefault(r["fact_id"], {})[r["lang"]] = r
    complete = sorted(f for f, v in per_fact.items() if len(v) == len(langs))
    if len(complete) < 4:
        raise PolyFactError(f"only {len(complete)} facts of the {split} split are asked in every language; "
                            "representation measures need at least 4")
    facts = sorted(sample_facts([{"fact_id": f} for f in complete], max_facts, seed), key=lambda r: r["fact_id"])
    fids = [r["fact_id"] for r in facts]
    return fids, langs, {lang: [per_fact[f][lang] for f in fids] for lang in langs}


def representation_analysis(run_dir: str | Path, ckpt: str, cfg: RepresentationConfig | None = None,
                            force: bool = False) -> dict[str, Any]:
    """Per-layer cross-lingual similarity, CKA, retrieval, probes and logit lens of a checkpoint."""
    cfg = cfg or RepresentationConfig()
    data = RunData(run_dir)
    prov = provenance(run_dir, ckpt, analysis="representations", data_fingerprint=data.fingerprint,
                      config=asdict(cfg), seed=cfg.seed)
    path = layout(run_dir).result("representations", ckpt)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    fids, langs, rows = parallel_rows(data, cfg.split, cfg.max_facts, cfg.seed)
    model, tok = load_checkpoint(ckpt, run_dir)
    states = {lang: layer_states(model, tok, [r["question"] for r in rows[lang]]) for lang in langs}
    n_layers = states[langs[0]].mean.shape[1]
    ref = "en" if "en" in langs else langs[0]
    res: dict[str, Any] = {"checkpoint": ckpt, "languages": langs, "reference": ref, "n_facts": len(fids),
                           "n_layers": n_layers, "cosine_mean": {}, "cosine_last": {}, "cka": {}, "retrieval": {},
                           "cka_all_pairs": [], "retrieval_all_pairs": [], "probe_accuracy": []}
    for lang in langs:
        if lang == ref:
            continue
        a, b = states[lang], states[ref]
        res["cosine_mean"][lang] = [cosine(a.mean[:, i], b.mean[:, i]) for i in range(n_layers)]
        res["cosine_last"][lang] = [cosine(a.last[:, i], b.last[:, i]) for i in range(n_layers)]
        res["cka"][lang] = [linear_cka(a.mean[:, i], b.mean[:, i]) for i in range(n_layers)]
        res["retrieval"][lang] = [retrieval_p1(a.mean[:, i], b.mean[:, i]) for i in range(n_layers)]
    for i in range(n_layers):
        pairs = [(x, y) for xi, x in enumerate(langs) for y in langs[xi + 1:]]
        res["cka_all_pairs"].append(float(np.mean([linear_cka(states[x].mean[:, i], states[y].mean[:, i])
                                                   for x, y in pairs])))
        res["retrieval_all_pairs"].append(float(np.mean([retrieval_p1(states[x].mean[:, i], states[y].mean[:, i])
                                                         for x, y in pairs])))
        stacked = torch.cat([states[lang].mean[:, i] for lang in langs])
        labels = [lang for lang in langs for _ in fids]
        res["probe_accuracy"].append(probe_accuracy(stacked, labels, cfg.probe_folds, cfg.seed))
    res["logit_lens"] = {}
    for lang in langs:
        prompts = [r["prompt"] for r in rows[lang]]
        own = [tok(continuation(r["prompt"], r["object"], lang), add_special_tokens=False)["input_ids"][0]
               for r in rows[lang]]
        eng = [tok(continuation(r["prompt"], rows[ref][j]["object"], lang), add_special_tokens=False)["input_ids"][0]
               for j, r in enumerate(rows[lang])]
        probs = logit_lens(model, tok, prompts, [[a, b] for a, b in zip(own, eng)])  # [n, layers, 2]
        res["logit_lens"][lang] = {"own": probs[:, :, 0].mean(0).tolist(), "english": probs[:, :, 1].mean(0).tolist()}
    return write_result(path, res, prov)
