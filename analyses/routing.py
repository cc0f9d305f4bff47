"""Routing before/after: how a checkpoint's language specialization differs from a reference's.

Statistics are collected per language in ``shards`` interleaved groups of text (the same texts
and groups for every checkpoint). Per pair of checkpoints:

* every measure's change Δ = measure(checkpoint) − measure(reference) with a paired shard
  bootstrap interval (shards resampled within each language, the same draw for both). It
  resamples *text*, so it is **measurement error** of one trained model: whether a *method*
  changes specialization is decided across training seeds (:mod:`polyfact.analyses.seeds`);
* one permutation test of the question a language-label permutation can answer: does the
  change differ between languages? The statistic is the spread across languages of each unit's
  change (Σ over units of the variance over languages of Δ); the shards' language labels are
  shuffled (the same shuffle for both checkpoints). A change shared by every language (a uniform
  shift) leaves it at chance. p-values are floored at 1/(B+1);
* measures: calibrated LAPE counts (Tang, thresholds from the reference), mean normalized entropy,
  and the *contrast change* κ: how much the reference's language contrasts (each unit's
  per-language value minus its mean over languages; P(act > 0) for neurons, importance for heads)
  grew or shrank, κ = ⟨Δ contrast, reference contrast⟩ / ⟨reference contrast, reference contrast⟩,
  cross-fitted over two halves of the text shards so that measurement noise in the reference does
  not bias it. κ = −0.3: the reference's language differences shrank by 30 % (less language-specific);
  a shift shared by every language gives κ = 0, and zero-mean noise gives κ = 0 on average, which is
  why the seed-level verdicts use it. The study's measures: each language's top-1 % neuron count
  (``polyfact`` variant), its top-2 % head set's Jaccard and |∩|/n overlap with the reference's,
  and the mean pairwise head overlap across languages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from polyfact.core.checkpoints import checkpoint_fingerprint
from polyfact.core.layout import fs_name, layout
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.core.results import Routing
from polyfact.analyses.config import RoutingConfig, SpecializationConfig
from polyfact.analyses.specialization import (collect, collect_heads, effective_reference,
                                     language_groups, load_heads, load_lape)
from polyfact.interp import ActivationStats, HeadImportance
from polyfact.interp.lape import calibrate, lape
from polyfact.interp.heads import importance_entropy
from polyfact.interp.lape import LapeThresholds, normalized_entropy
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json
from polyfact.core.checkpoints import list_checkpoints, read_manifest


def _layout(keys: list[str]) -> tuple[list[str], np.ndarray]:
    """Languages and the ``[languages, shards]`` index of each ``lang#shard`` key."""
    langs, groups = language_groups(keys)
    width = min(len(g) for g in groups)
    return langs, np.array([g[:width] for g in groups])


def _language_probs(stats: ActivationStats, assign: np.ndarray) -> torch.Tensor:
    """P(act > 0) ``[layers, d_mlp, languages]`` with shards grouped into languages by ``assign``."""
    idx = torch.as_tensor(assign)
    pos = stats.act_pos[idx].sum(1).double()  # [L, layers, d]
    tokens = stats.tokens[idx].sum(1).double().clamp(min=1)
    return (pos / tokens[:, None, None]).permute(1, 2, 0)


def contrast_change(after: torch.Tensor, before: torch.Tensor, before_other: torch.Tensor) -> float:
    """κ for per-unit, per-language tables ``[..., languages]``: the change ``after − before``
    projected on the contrasts of ``before_other`` (the reference measured on other text), over
    ⟨contrasts of before, contrasts of before_other⟩ (an unbiased estimate of their squared size)."""
    def contrasts(t: torch.Tensor) -> torch.Tensor:
        t = t.double().reshape(-1, t.shape[-1])
        return t - t.mean(dim=-1, keepdim=True)

    ref = contrasts(before_other)
    denom = float((contrasts(before) * ref).sum())
    return float(((contrasts(after) - contrasts(before)) * ref).sum()) / denom if denom > 0 else float("nan")


def cross_fitted_contrast(values: Callable[[object, np.ndarray], torch.Tensor], a: object, b: object,
                          assign: np.ndarray) -> float:
    """κ cross-fitted over the two halves of the shards (even and odd columns of ``assign``): the
    change measured on one half, the reference's contrasts on the other, averaged both ways."""
    if assign.shape[1] < 2:  # one shard: no independent reference (biased towards "reduces")
        before = values(b, assign)
        return contrast_change(values(a, assign), before, before)
    h1, h2 = assign[:, 0::2], assign[:, 1::2]
    a1, a2, b1, b2 = values(a, h1), values(a, h2), values(b, h1), values(b, h2)
    return 0.5 * (contrast_change(a2, b2, b1) + contrast_change(a1, b1, b2))


def neuron_metrics(stats: ActivationStats, assign: np.ndarray, langs: list[str], th: LapeThresholds,
                   top_frac: float) -> dict[str, np.ndarray]:
    """Calibrated LAPE counts per language and mean normalized entropy per layer, with the shards
    grouped into languages by ``assign``."""
    probs = _language_probs(stats, assign)
    counts = lape(probs, langs, top_frac, "tang", thresholds=th).counts()
    ent = normalized_entropy(probs)
    per_layer = torch.nanmean(ent, dim=1).numpy()
    return {"count_by_lang": np.array([counts[x] for x in langs], dtype=float),
            "count_total": np.array([sum(counts.values())], dtype=float),
            "entropy_by_layer": per_layer, "entropy_mean": np.array([np.nanmean(per_layer)])}


def _head_table(imp: HeadImportance, assign: np.ndarray) -> torch.Tensor:
    return imp.scores[torch.as_tensor(assign)].mean(1)  # [L, layers, heads]


def _head_values(imp: HeadImportance, assign: np.ndarray) -> torch.Tensor:
    return _head_table(imp, assign).permute(1, 2, 0)  # [layers, heads, L]


def head_metrics(imp: HeadImportance, assign: np.ndarray) -> dict[str, np.ndarray]:
    """Mean normalized entropy of head importance over languages, per layer and overall."""
    ent = importance_entropy(_head_table(imp, assign))
    return {"entropy_by_layer": ent.mean(1).numpy(), "entropy_mean": np.array([float(ent.mean())])}


def contrast_with_error(values: Callable[[object, np.ndarray], torch.Tensor], a: object, b: object,
                        assign: np.ndarray, rcfg: RoutingConfig, seed: int) -> dict[str, Any]:
    """κ (:func:`cross_fitted_contrast`) with a shard-bootstrap interval (measurement error)."""
    obs = cross_fitted_contrast(values, a, b, assign)
    boots = [cross_fitted_contrast(values, a, b, d)
             for d in _draws(assign, rcfg.bootstrap, np.random.default_rng(seed), "bootstrap")]
    lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if boots else (float("nan"), float("nan"))
    return {"delta": [obs], "ci": [[float(lo)], [float(hi)]], "interval": "measurement error (text shards)"}


def _draws(assign: np.ndarray, n: int, rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    if kind == "bootstrap":  # shards resampled within each language
        return [np.stack([row[rng.integers(0, len(row), len(row))] for row in assign]) for _ in range(n)]
    flat = assign.flatten()  # language labels of the shards shuffled
    return [rng.permutation(flat).reshape(assign.shape) for _ in range(n)]


def measurement_error(metric: Callable[[object, np.ndarray], dict[str, np.ndarray]], a: object, b: object,
                      assign: np.ndarray, rcfg: RoutingConfig, seed: int) -> dict[str, dict[str, Any]]:
    """Δ = metric(a) − metric(b) with a paired shard-bootstrap 95 % interval (text resampling of
    one model: measurement error, not training noise)."""
    obs = {k: v - metric(b, assign)[k] for k, v in metric(a, assign).items()}
    boots: dict[str, list[np.ndarray]] = {k: [] for k in obs}
    for draw in _draws(assign, rcfg.bootstrap, np.random.default_rng(seed), "bootstrap"):
        ma, mb = metric(a, draw), metric(b, draw)
        for k in obs:
            boots[k].append(ma[k] - mb[k])
    out = {}
    for k, v in obs.items():
        arr = np.array(boots[k]) if boots[k] else np.full((1, *v.shape), np.nan)
        lo, hi = np.nanpercentile(arr, [2.5, 97.5], axis=0)
        out[k] = {"delta": v.tolist(), "ci": [lo.tolist(), hi.tolist()], "interval": "measurement error (text shards)"}
    return out


def differential_change(values: Callable[[object, np.ndarray], torch.Tensor], a: object, b: object,
                        assign: np.ndarray, permutations: int, seed: int) -> dict[str, Any]:
    """Does the change from ``b`` to ``a`` differ between languages? ``values(x, assign)`` gives a
    per-unit, per-language table ``[..., languages]``; the statistic is Σ over units of the
    variance over languages of the change; the null shuffles the shards' language labels (the
    same shuffle for both). p = (1 + #{null ≥ observed}) / (1 + B), so never below 1/(B+1)."""
    def stat(draw: np.ndarray) -> float:
        d = (values(a, draw) - values(b, draw)).double()
        return float(d.var(dim=-1, unbiased=False).sum())

    observed = stat(assign)
    null = [stat(draw) for draw in _draws(assign, permutations, np.random.default_rng(seed), "permutation")]
    exceed = sum(x >= observed - 1e-12 for x in null)
    return {"statistic": observed, "p_value": (1 + exceed) / (1 + permutations), "permutations": permutations,
            "p_floor": 1 / (1 + permutations),
            "question": "does the change differ between languages (language-label permutation of text shards)"}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else float("nan")


def study_measures(run_dir: str | Path, ckpt: str, reference: str, frac: float = 0.02) -> dict[str, Any]:
    """The study's before/after measures from the per-checkpoint results: each language's top-1 %
    neuron count (``polyfact`` variant) in both and its change; each language's top-``frac`` head
    set's Jaccard and |∩|/n overlap with the reference's; the mean pairwise head overlap across
    languages in both and its change."""
    from polyfact.core.results import Neurons

    out: dict[str, Any] = {}
    na = Neurons.load(layout(run_dir).result("neurons", ckpt))
    nr = Neurons.load(layout(run_dir).result("neurons", reference))
    if na is not None and nr is not None:
        ca, cr = na.counts(), nr.counts()
        out["neuron_counts"] = {lang: {"checkpoint": ca.get(lang, 0), "reference": cr.get(lang, 0),
                                       "change": ca.get(lang, 0) - cr.get(lang, 0)} for lang in cr}
    try:
        ha, hr = load_heads(run_dir, ckpt), load_heads(run_dir, reference)
    except PolyFactError:
        return out
    ta, tr, n = ha.top(frac), hr.top(frac), ha.n_top(frac)
    langs = [x for x in hr.languages if x in ta]
    out["head_top_frac"] = frac
    out["head_jaccard"] = {x: jaccard(set(ta[x]), set(tr[x])) for x in langs}
    out["head_overlap_with_reference_pct"] = {x: 100.0 * len(set(ta[x]) & set(tr[x])) / n for x in langs}
    ma, mr = ha.mean_overlap(frac), hr.mean_overlap(frac)
    out["mean_pairwise_overlap_pct"] = {"checkpoint": ma, "reference": mr, "change": ma - mr}
    return out


def compare(run_dir: str | Path, ckpt: str, reference: str, spec: SpecializationConfig, rcfg: RoutingConfig,
            seed: int = 0, base: str = "base") -> dict[str, Any]:
    """Every change of ``ckpt`` against ``reference`` (thresholds calibrated on ``base``)."""
    sa, sr, sb = (collect(run_dir, c, spec, seed)[0] for c in (ckpt, reference, base))
    langs, assign = _layout(sa.languages)
    if sr.languages != sa.languages:
        raise PolyFactError(f"{ckpt} and {reference} were analyzed on different texts; rerun with the same --texts")
    th = calibrate(_language_probs(sb, assign), spec.top_frac, "tang")
    neurons = measurement_error(lambda s, asg: neuron_metrics(s, asg, langs, th, spec.top_frac), sa, sr, assign,
                                rcfg, seed)
    ha, hr = collect_heads(run_dir, ckpt, spec, seed)[0], collect_heads(run_dir, reference, spec, seed)[0]
    heads = measurement_error(head_metrics, ha, hr, assign, rcfg, seed + 1)
    neurons["contrast"] = contrast_with_error(_language_probs, sa, sr, assign, rcfg, seed + 4)
    heads["contrast"] = contrast_with_error(_head_values, ha, hr, assign, rcfg, seed + 5)
    differential = {
        "neurons": differential_change(_language_probs, sa, sr, assign, rcfg.permutations, seed + 2),
        "heads": differential_change(_head_values, ha, hr, assign, rcfg.permutations, seed + 3),
    }
    out: dict[str, Any] = {"checkpoint": ckpt, "reference": reference, "languages": langs, "neurons": neurons,
                           "heads": heads, "differential": differential, "thresholds_from": base,
                           "study": study_measures(run_dir, ckpt, reference, spec.head_top_frac)}
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
    path = layout(run_dir).result("compare", f"{fs_name(after)}-vs-{fs_name(before)}")
    if not force and (done := fresh(path, prov)) is not None:
        return done
    return write_result(path, {"before": before, "after": after,
                               "change": compare(run_dir, after, before, spec, rcfg, seed, before)}, prov)


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
    from polyfact.analyses import metrics as M
    from polyfact.analyses.recall import load_records

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
        from polyfact.training.evaluation.data import RunData

        langs = RunData(run_dir).training_langs
    except PolyFactError:
        langs = None
    for ckpt, res in per.items():
        vb = Routing(res).vs_base
        rec = _recall_change(Path(run_dir), ckpt, base, langs)

        def cell(section: str, key: str) -> dict[str, Any]:
            c = vb[section][key]
            return {"delta": c["delta"][0], "ci": [c["ci"][0][0], c["ci"][1][0]]}

        study = vb.get("study", {})
        rows.append({
            "checkpoint": ckpt, "method": read_manifest(run_dir, ckpt).get("method"),
            "neuron_count": cell("neurons", "count_total"), "neuron_entropy": cell("neurons", "entropy_mean"),
            "neuron_contrast": cell("neurons", "contrast"), "head_entropy": cell("heads", "entropy_mean"),
            "head_contrast": cell("heads", "contrast"),
            "differential_p": {k: v["p_value"] for k, v in vb["differential"].items()},
            "study_neuron_counts": {x: v["change"] for x, v in study.get("neuron_counts", {}).items()},
            "study_head_overlap_change": study.get("mean_pairwise_overlap_pct", {}).get("change"),
            "study_head_jaccard": study.get("head_jaccard"),
            "total_consistency": {k: rec["total_consistency"][k] for k in ("difference", "ci", "p_value")} if rec else None,
            "mean_accuracy": {k: rec["mean_accuracy"][k] for k in ("difference", "ci", "p_value")} if rec else None,
        })
    return {"base": base, "consistency_languages": langs, "rows": rows,
            "interval": "measurement error: text shards of one trained model (training noise: see results/seeds)"}
