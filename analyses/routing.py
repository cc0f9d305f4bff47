"""Routing before/after: how a method changes language specialization, with uncertainty.

Statistics are collected per language in ``shards`` interleaved groups of text (the same texts
and groups for every checkpoint). A change Δ = metric(checkpoint) − metric(reference) gets

* a paired bootstrap interval: shards resampled with replacement within each language, the same
  draw for both checkpoints;
* a permutation p-value: the shards' language labels shuffled (the same shuffle for both
  checkpoints), so the null is "the change has nothing to do with language";

for neurons (LAPE counts under the reference-calibrated thresholds, mean normalized entropy per
layer) and heads (mean normalized entropy of gradient importance). Point summaries: Jaccard
overlap of each language's neuron set and top-k head set, changes per layer. Across
checkpoints the changes are related to the change in Total Consistency and accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core.checkpoints import checkpoint_fingerprint
from core.layout import layout
from core.provenance import fresh, provenance, write_result
from analyses.specialization import (SpecializationConfig, collect, collect_heads, effective_reference,
                                     language_groups, load_heads, load_lape)
from interp import ActivationStats, HeadImportance, calibrate, lape
from interp.heads import importance_entropy
from interp.lape import LapeThresholds, normalized_entropy
from core.errors import PolyFactError
from core.io import atomic_write_json
from core.checkpoints import list_checkpoints, read_manifest


@dataclass
class RoutingConfig:
    """Uncertainty settings of the before/after comparison (shards: ``SpecializationConfig.shards``)."""

    bootstrap: int = 200
    permutations: int = 200


def _layout(keys: list[str]) -> tuple[list[str], np.ndarray]:
    """Languages and the ``[languages, shards]`` index of each ``lang#shard`` key."""
    langs, groups = language_groups(keys)
    width = min(len(g) for g in groups)
    return langs, np.array([g[:width] for g in groups])


def neuron_metrics(stats: ActivationStats, assign: np.ndarray, langs: list[str], th: LapeThresholds,
                   top_frac: float) -> dict[str, np.ndarray]:
    """Calibrated LAPE counts per language and mean normalized entropy per layer, with the
    shards grouped into languages by ``assign`` ``[languages, shards]``."""
    idx = torch.as_tensor(assign)
    pos = stats.act_pos[idx].sum(1).double()  # [L, layers, d]
    tokens = stats.tokens[idx].sum(1).double().clamp(min=1)
    probs = (pos / tokens[:, None, None]).permute(1, 2, 0)
    counts = lape(probs, langs, top_frac, "tang", thresholds=th).counts()
    ent = normalized_entropy(probs)
    per_layer = torch.nanmean(ent, dim=1).numpy()
    return {"count_by_lang": np.array([counts[x] for x in langs], dtype=float),
            "count_total": np.array([sum(counts.values())], dtype=float),
            "entropy_by_layer": per_layer, "entropy_mean": np.array([np.nanmean(per_layer)])}


def head_metrics(imp: HeadImportance, assign: np.ndarray) -> dict[str, np.ndarray]:
    """Mean normalized entropy of head importance over languages, per layer and overall."""
    ent = importance_entropy(imp.scores[torch.as_tensor(assign)].mean(1))
    return {"entropy_by_layer": ent.mean(1).numpy(), "entropy_mean": np.array([float(ent.mean())])}


def paired_change(metric: Callable[[object, np.ndarray], dict[str, np.ndarray]], a: object, b: object,
                  assign: np.ndarray, rcfg: RoutingConfig, seed: int) -> dict[str, dict[str, Any]]:
    """Δ = metric(a) − metric(b) with a paired shard bootstrap interval and a permutation p-value."""
    obs = {k: v - metric(b, assign)[k] for k, v in metric(a, assign).items()}
    rng = np.random.default_rng(seed)
    boots: dict[str, list[np.ndarray]] = {k: [] for k in obs}
    for _ in range(rcfg.bootstrap):
        draw = np.stack([row[rng.integers(0, len(row), len(row))] for row in assign])
        ma, mb = metric(a, draw), metric(b, draw)
        for k in obs:
            boots[k].append(ma[k] - mb[k])
    exceed = {k: np.zeros_like(v, dtype=float) for k, v in obs.items()}
    flat = assign.flatten()
    for _ in range(rcfg.permutations):
        perm = rng.permutation(flat).reshape(assign.shape)
        ma, mb = metric(a, perm), metric(b, perm)
        for k in obs:
            exceed[k] += np.abs(ma[k] - mb[k]) >= np.abs(obs[k]) - 1e-12
    out = {}
    for k, v in obs.items():
        arr = np.array(boots[k]) if boots[k] else np.full((1, *v.shape), np.nan)
        lo, hi = np.nanpercentile(arr, [2.5, 97.5], axis=0)
        p = (1 + exceed[k]) / (1 + rcfg.permutations)
        out[k] = {"delta": v.tolist(), "ci": [lo.tolist(), hi.tolist()], "p_value": p.tolist()}
    return out


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else float("nan")


def compare(run_dir: str | Path, ckpt: str, reference: str, spec: SpecializationConfig, rcfg: RoutingConfig,
            seed: int = 0, base: str = "base") -> dict[str, Any]:
    """Every change of ``ckpt`` against ``reference`` (thresholds calibrated on ``base``)."""
    sa, sr, sb = (collect(run_dir, c, spec, seed)[0] for c in (ckpt, reference, base))
    langs, assign = _layout(sa.languages)
    if sr.languages != sa.languages:
        raise PolyFactError(f"{ckpt} and {reference} were analyzed on different texts; rerun with the same --texts")
    base_pos = sb.act_pos[torch.as_tensor(assign)].sum(1).double()
    base_tok = sb.tokens[torch.as_tensor(assign)].sum(1).double().clamp(min=1)
    th = calibrate((base_pos / base_tok[:, None, None]).permute(1, 2, 0), spec.top_frac, "tang")
    neurons = paired_change(lambda s, asg: neuron_metrics(s, asg, langs, th, spec.top_frac), sa, sr, assign, rcfg,
                            seed)
    ha, hr = collect_heads(run_dir, ckpt, spec, seed)[0], collect_heads(run_dir, reference, spec, seed)[0]
    heads = paired_change(head_metrics, ha, hr, assign, rcfg, seed + 1)
    out: dict[str, Any] = {"checkpoint": ckpt, "reference": reference, "languages": langs, "neurons": neurons,
                           "heads": heads, "thresholds_from": base}
    try:  # point summaries from the per-checkpoint analyses, where they exist
        la, lr = load_lape(run_dir, ckpt), load_lape(run_dir, reference)
        out["neuron_jaccard"] = {lang: jaccard(la.units(lang), lr.units(lang)) for lang in langs}
        out["neuron_layer_change"] = {lang: [x - y for x, y in zip(la.per_layer()[lang], lr.per_layer()[lang])]
                                      for lang in langs if lang in la.languages}
        hia, hir = load_heads(run_dir, ckpt), load_heads(run_dir, reference)
        k = spec.top_k_heads
        ta, tr = hia.top_k(k), hir.top_k(k)
        out["head_topk_jaccard"] = {lang: jaccard(set(ta[lang]), set(tr[lang])) for lang in ta if lang in tr}
        da, dr = hia.layer_distribution(k), hir.layer_distribution(k)
        out["head_layer_change"] = {lang: [x - y for x, y in zip(da[lang], dr[lang])] for lang in da if lang in dr}
    except PolyFactError:
        pass
    return out


def parent_of(run_dir: str | Path, ckpt: str) -> str | None:
    """The parent of a run checkpoint, when the run has it."""
    parent = read_manifest(run_dir, ckpt).get("parent")
    return parent if parent in list_checkpoints(run_dir) else None


def compare_pair(run_dir: str | Path, after: str, before: str, spec: SpecializationConfig | None = None,
                 rcfg: RoutingConfig | None = None, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Every before/after measure of any two checkpoints of the run (thresholds calibrated on
    ``before``); written to ``results/compare/<after>-vs-<before>.json``."""
    spec, rcfg = spec or SpecializationConfig(), rcfg or RoutingConfig()
    config = {"spec": spec.__dict__, "routing": rcfg.__dict__, "before": before,
              "before_fingerprint": checkpoint_fingerprint(run_dir, before)}
    prov = provenance(run_dir, after, analysis="compare", data_fingerprint=None, config=config, seed=seed)
    path = layout(run_dir).result("compare", f"{after}-vs-{before}")
    if not force and (done := fresh(path, prov)) is not None:
        return done
    return write_result(path, {"before": before, "after": after,
                               "change": compare(run_dir, after, before, spec, rcfg, seed, before)}, prov)


def correlation(x: list[float], y: list[float]) -> dict[str, float]:
    """Pearson r with a Fisher-z 95% interval (n ≥ 4) and Spearman ρ."""
    from scipy.stats import pearsonr, spearmanr

    xs, ys = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[ok], ys[ok]
    n = len(xs)
    if n < 3 or np.std(xs) == 0 or np.std(ys) == 0:
        return {"n": n, "pearson": float("nan"), "ci": [float("nan"), float("nan")], "spearman": float("nan")}
    r = float(pearsonr(xs, ys)[0])
    if n >= 4 and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        ci = [math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)]
    else:
        ci = [float("nan"), float("nan")]
    return {"n": n, "pearson": r, "ci": ci, "spearman": float(spearmanr(xs, ys)[0])}


def routing_analysis(run_dir: str | Path, checkpoints: list[str] | None = None, spec: SpecializationConfig | None = None,
                     rcfg: RoutingConfig | None = None, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Each checkpoint against the reference (``spec.reference``, base by default) and against
    its parent; a summary table relating the change in specialization to the change in Total
    Consistency and accuracy."""
    spec, rcfg = spec or SpecializationConfig(), rcfg or RoutingConfig()
    base = effective_reference(run_dir, spec)
    if base is None:
        raise PolyFactError(f"routing compares checkpoints with a reference, and {run_dir} has no "
                            f"{spec.reference or 'reference'} checkpoint; pass --reference ID, or use "
                            "polyfact compare --before A --after B")
    checkpoints = [c for c in (checkpoints or list_checkpoints(run_dir)) if c != base]
    per: dict[str, Any] = {}
    for ckpt in checkpoints:
        parent = parent_of(run_dir, ckpt) or base
        config = {"spec": spec.__dict__, "routing": rcfg.__dict__, "parent": parent, "base": base,
                  "parent_fingerprint": checkpoint_fingerprint(run_dir, parent),
                  "base_fingerprint": checkpoint_fingerprint(run_dir, base)}
        prov = provenance(run_dir, ckpt, analysis="routing", data_fingerprint=None, config=config, seed=seed)
        path = layout(run_dir).result("routing", ckpt)
        if not force and (done := fresh(path, prov)) is not None:
            per[ckpt] = done
            continue
        payload = {"vs_base": compare(run_dir, ckpt, base, spec, rcfg, seed, base)}
        payload["vs_parent"] = payload["vs_base"] if parent == base else compare(run_dir, ckpt, parent, spec, rcfg,
                                                                                  seed, base)
        per[ckpt] = write_result(path, payload, prov)
    summary = summarize(run_dir, per, base)
    atomic_write_json(layout(run_dir).routing_summary, summary)
    return summary


def _recall_change(run_dir: Path, ckpt: str, base: str, langs: list[str] | None) -> dict[str, Any]:
    """Paired fact-bootstrap change in Total Consistency and mean accuracy against ``base``, over
    ``langs`` (the training languages: consistency over every language is ~0 for small models)."""
    from analyses import metrics as M
    from analyses.recall import load_records

    try:
        a, b = load_records(run_dir, ckpt), load_records(run_dir, base)
    except PolyFactError:
        return {}
    if langs:
        a, b = [r for r in a if r["lang"] in langs], [r for r in b if r["lang"] in langs]
    return {**M.paired_changes(a, b, n=500), "languages": langs}


def summarize(run_dir: str | Path, per: dict[str, Any], base: str = "base") -> dict[str, Any]:
    """Per method: Δ specialization vs base (interval, p) next to Δ Total Consistency and accuracy;
    correlations across checkpoints."""
    rows = []
    try:
        from training.common import RunData

        langs = RunData(run_dir).training_langs
    except PolyFactError:
        langs = None
    for ckpt, res in per.items():
        vb = res["vs_base"]
        rec = _recall_change(Path(run_dir), ckpt, base, langs)

        def cell(section: str, key: str) -> dict[str, Any]:
            c = vb[section][key]
            return {"delta": c["delta"][0], "ci": [c["ci"][0][0], c["ci"][1][0]], "p_value": c["p_value"][0]}

        rows.append({
            "checkpoint": ckpt, "method": read_manifest(run_dir, ckpt).get("method"),
            "neuron_count": cell("neurons", "count_total"), "neuron_entropy": cell("neurons", "entropy_mean"),
            "head_entropy": cell("heads", "entropy_mean"),
            "total_consistency": {k: rec["total_consistency"][k] for k in ("difference", "ci", "p_value")} if rec else None,
            "mean_accuracy": {k: rec["mean_accuracy"][k] for k in ("difference", "ci", "p_value")} if rec else None,
        })
    corr = {}
    if rows and all(r["total_consistency"] for r in rows):
        for spec_key in ("neuron_entropy", "neuron_count", "head_entropy"):
            xs = [r[spec_key]["delta"] for r in rows]
            corr[f"{spec_key}~total_consistency"] = correlation(xs, [r["total_consistency"]["difference"] for r in rows])
            corr[f"{spec_key}~mean_accuracy"] = correlation(xs, [r["mean_accuracy"]["difference"] for r in rows])
    return {"base": base, "consistency_languages": langs, "rows": rows, "correlations": corr}
