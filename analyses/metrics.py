"""Recall and cross-lingual consistency metrics over per-item records, with bootstrap intervals
and paired tests. A record has at least ``fact_id``, ``lang`` and ``correct``; ``option_ids`` +
``pred_index`` (or ``pred_entity``) enable answer agreement, ``option_scores`` enable RankC."""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.stats import binomtest

from polyfact.data.languages import language_group, order_langs

Records = Sequence[dict]


def by_fact(records: Iterable[dict]) -> dict[str, dict[str, dict]]:
    """``{fact_id: {lang: record}}``."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        out[r["fact_id"]][r["lang"]] = r
    return dict(out)


def languages(records: Records) -> list[str]:
    return order_langs({r["lang"] for r in records})


def _mean(values: list[bool]) -> float:
    return sum(values) / len(values) if values else float("nan")


def accuracy(records: Records, key: str = "lang") -> dict[str, float]:
    """Share correct per ``key``: ``lang``, ``relation`` or ``group`` (high / low / heldout)."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        k = language_group(r["lang"]) if key == "group" else r[key]
        hits[k].append(bool(r["correct"]))
    keys = order_langs(hits) if key == "lang" else sorted(hits)
    return {k: _mean(hits[k]) for k in keys}


def complete_facts(records: Records) -> list[dict[str, dict]]:
    """The facts evaluated in every language of the records (``{lang: record}`` each)."""
    langs = set(languages(records))
    return [f for f in by_fact(records).values() if set(f) == langs]


def total_consistency(records: Records) -> float:
    """Total Consistency as the study counts it: the share of facts answered correctly in every
    evaluated language, over the facts present in all of them (:func:`complete_facts`)."""
    facts = complete_facts(records) if len(languages(records)) >= 2 else []
    return _mean([all(r["correct"] for r in langs.values()) for langs in facts])


def chosen_entity(r: dict) -> str | None:
    """The entity a record's answer picked: ``pred_entity``, or the option id at ``pred_index``."""
    if r.get("pred_entity") is not None:
        return str(r["pred_entity"])
    idx = r.get("pred_index")
    ids = r.get("option_ids") or []
    if idx is None or idx < 0:
        return None
    return str(ids[idx]) if idx < len(ids) else f"#{idx}"


def _pair_matrix(records: Records, fn: Callable[[list[tuple[dict, dict]]], float]) -> dict[str, dict[str, float]]:
    facts = by_fact(records)
    langs = languages(records)
    out: dict[str, dict[str, float]] = {}
    for a in langs:
        out[a] = {}
        for b in langs:
            pairs = [(f[a], f[b]) for f in facts.values() if a in f and b in f]
            out[a][b] = fn(pairs) if pairs else float("nan")
    return out


def _unaligned(r: dict) -> bool:
    """Whether a record's chosen option has no known entity (options aligned only partly)."""
    ids, idx = r.get("option_ids") or [], r.get("pred_index")
    return bool(ids) and idx is not None and 0 <= idx < len(ids) and ids[idx] is None


def agreement_matrix(records: Records) -> dict[str, dict[str, float]]:
    """Share of shared facts on which two languages chose the same answer entity (facts whose
    chosen option has no known entity are left out)."""
    def agree(pairs: list[tuple[dict, dict]]) -> float:
        return _mean([chosen_entity(x) is not None and chosen_entity(x) == chosen_entity(y)
                      for x, y in pairs if not (_unaligned(x) or _unaligned(y))])

    return _pair_matrix(records, agree)


def coverlap_matrix(records: Records) -> dict[str, dict[str, float]]:
    """COverlap: facts correct in both languages / facts correct in either."""
    def co(pairs: list[tuple[dict, dict]]) -> float:
        both = sum(bool(x["correct"] and y["correct"]) for x, y in pairs)
        either = sum(bool(x["correct"] or y["correct"]) for x, y in pairs)
        return both / either if either else float("nan")

    return _pair_matrix(records, co)


def rankc_weights(n: int) -> np.ndarray:
    """w_j = e^(N−j) / Σ_k e^(N−k), j = 1..N."""
    w = np.exp(np.arange(n - 1, -1, -1, dtype=float))
    return w / w.sum()


def rankc_pair(rank_a: Sequence[str], rank_b: Sequence[str]) -> float:
    """RankC of one query: Σ_j w_j · |top_j(a) ∩ top_j(b)| / j over the N candidates."""
    return _rankc_pair(tuple(rank_a), tuple(rank_b))


@functools.lru_cache(maxsize=65536)
def _rankc_pair(rank_a: tuple[str, ...], rank_b: tuple[str, ...]) -> float:
    # cached: the same few candidate orders recur across a run's language pairs (a 22-language
    # evaluation asks for ~340K pairs of a few thousand distinct orders)
    n = len(rank_a)
    w = rankc_weights(n)
    return float(sum(w[j - 1] * len(set(rank_a[:j]) & set(rank_b[:j])) / j for j in range(1, n + 1)))


def ranking(r: dict) -> list[str] | None:
    """Candidates of a record from best to worst score (ties broken by option order)."""
    scores = r.get("option_scores")
    if not scores:
        return None
    ids = r.get("option_ids") or [f"#{i}" for i in range(len(scores))]
    if any(x is None for x in ids):
        return None  # options aligned only partly: no comparable ranking
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [str(ids[i]) for i in order]


def rankc_matrix(records: Records) -> dict[str, dict[str, float]]:
    """RankC (Qi, Fernández & Bisazza 2023) per language pair: mean over shared queries."""
    ranks = {id(r): ranking(r) for r in records}  # once per record, not once per language pair

    def rc(pairs: list[tuple[dict, dict]]) -> float:
        vals = [rankc_pair(ranks[id(x)], ranks[id(y)]) for x, y in pairs if ranks[id(x)] and ranks[id(y)]]
        return sum(vals) / len(vals) if vals else float("nan")

    return _pair_matrix(records, rc)


def off_diagonal_mean(matrix: dict[str, dict[str, float]]) -> float:
    vals = [v for a, row in matrix.items() for b, v in row.items() if a != b and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def summarize(records: Records, with_rankc: bool = True) -> dict:
    """Every metric of one evaluation."""
    acc = accuracy(records)
    out = {
        "accuracy": acc,
        "mean_accuracy": sum(acc.values()) / len(acc) if acc else float("nan"),
        "accuracy_by_group": accuracy(records, "group"),
        "accuracy_by_relation": accuracy(records, "relation") if all("relation" in r for r in records) else {},
        "total_consistency": total_consistency(records),
        "total_consistency_n": len(complete_facts(records)),
        "coverlap": coverlap_matrix(records),
        "n_facts": len(by_fact(records)),
        "n_items": len(records),
        "languages": languages(records),
    }
    if any(chosen_entity(r) is not None for r in records):  # agreement needs each record's chosen answer
        out["agreement"] = agreement_matrix(records)
        out["agreement_mean"] = off_diagonal_mean(out["agreement"])
    else:
        out["not_computable"] = {"agreement": "the records name no chosen answer (pred_index or pred_entity)"}
    out["coverlap_mean"] = off_diagonal_mean(out["coverlap"])
    if with_rankc and any(r.get("option_scores") for r in records):
        out["rankc"] = rankc_matrix(records)
        out["rankc_mean"] = off_diagonal_mean(out["rankc"])
    return out


def bootstrap_ci(records: Records, metric: Callable[[Records], float], n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """Point estimate and percentile interval of ``metric``, resampling facts with replacement."""
    facts = by_fact(records)
    ids = sorted(facts)
    point = metric(records)
    if not ids or n <= 0:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        sample = rng.integers(0, len(ids), len(ids))
        resampled = [dict(r, fact_id=f"{r['fact_id']}#{k}") for k, i in enumerate(sample) for r in facts[ids[i]].values()]
        values.append(metric(resampled))
    lo, hi = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return point, float(lo), float(hi)


def correct_matrix(records: Records, fact_ids: list[str] | None = None, langs: list[str] | None = None
                   ) -> tuple[list[str], list[str], np.ndarray]:
    """Facts × languages array of 1.0 (correct), 0.0 (wrong) and NaN (not asked)."""
    facts = by_fact(records)
    ids = fact_ids if fact_ids is not None else sorted(facts)
    langs = langs if langs is not None else languages(records)
    out = np.full((len(ids), len(langs)), np.nan)
    for i, fid in enumerate(ids):
        for j, lang in enumerate(langs):
            if lang in facts.get(fid, {}):
                out[i, j] = float(bool(facts[fid][lang]["correct"]))
    return ids, langs, out


def _accuracy_and_tc(correct: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bootstrap sample (rows of fact indices): accuracy per language ``[n, L]``, mean accuracy
    over languages ``[n]`` and Total Consistency ``[n]``."""
    present = ~np.isnan(correct)
    c0 = np.nan_to_num(correct)
    acc = c0[samples].sum(1) / np.maximum(present[samples].sum(1), 1)
    complete = present.all(1) & (correct.shape[1] >= 2)  # facts in every language: the study's TC
    all_ok = np.where(present, c0, 1.0).min(1) * complete
    tc = all_ok[samples].sum(1) / np.maximum(complete[samples].sum(1), 1)
    return acc, acc.mean(1), tc


def fast_accuracy_ci(records: Records, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """Per-language accuracy and Total Consistency with fact-bootstrap intervals, vectorized."""
    ids, langs, correct = correct_matrix(records)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(ids), (n, len(ids))) if ids and n > 0 else np.zeros((0, len(ids)), dtype=int)
    point_acc, _, point_tc = _accuracy_and_tc(correct, np.arange(len(ids))[None])
    acc, _, tc = _accuracy_and_tc(correct, samples)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    out: dict[str, dict] = {"accuracy": {}}
    for j, lang in enumerate(langs):
        lo, hi = np.percentile(acc[:, j], q) if n > 0 else (np.nan, np.nan)
        out["accuracy"][lang] = {"value": float(point_acc[0, j]), "ci": [float(lo), float(hi)]}
    lo, hi = np.percentile(tc, q) if n > 0 else (np.nan, np.nan)
    out["total_consistency"] = {"value": float(point_tc[0]), "ci": [float(lo), float(hi)]}
    return out


def bootstrap_p(diffs: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference, floored at 2/(B+1) (never 0): twice the
    smaller share of resampled differences on either side of zero, counting the observed one."""
    diffs = np.asarray(diffs, dtype=float)
    b = len(diffs)
    side = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    return float(min(1.0, 2 * (1 + side) / (b + 1)))


def paired_changes(a: Records, b: Records, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """Mean accuracy and Total Consistency of ``a`` minus ``b`` on their shared facts and
    languages, with a paired fact-bootstrap interval and two-sided p (vectorized
    :func:`paired_bootstrap` for these two metrics)."""
    ids = sorted(set(by_fact(a)) & set(by_fact(b)))
    langs = [x for x in languages(a) if x in set(languages(b))]
    _, _, ca = correct_matrix(a, ids, langs)
    _, _, cb = correct_matrix(b, ids, langs)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(ids), (n, len(ids)))
    whole = np.arange(len(ids))[None]
    out = {}
    for k, name in ((1, "mean_accuracy"), (2, "total_consistency")):
        diff = float(_accuracy_and_tc(ca, whole)[k][0] - _accuracy_and_tc(cb, whole)[k][0])
        arr = _accuracy_and_tc(ca, samples)[k] - _accuracy_and_tc(cb, samples)[k]
        lo, hi = np.percentile(arr, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out[name] = {"difference": diff, "ci": [float(lo), float(hi)], "p_value": bootstrap_p(arr), "n_facts": len(ids)}
    return out


def mcnemar(a: Records, b: Records) -> dict:
    """Exact McNemar test on items scored by two checkpoints (matched on fact and language)."""
    key = {(r["fact_id"], r["lang"]): bool(r["correct"]) for r in b}
    pairs = [(bool(r["correct"]), key[(r["fact_id"], r["lang"])]) for r in a if (r["fact_id"], r["lang"]) in key]
    only_a = sum(x and not y for x, y in pairs)
    only_b = sum(y and not x for x, y in pairs)
    p = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_a": only_a, "only_b": only_b, "n": len(pairs), "p_value": float(p)}


def paired_bootstrap(a: Records, b: Records, metric: Callable[[Records], float], n: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Difference ``metric(a) − metric(b)`` with a paired fact-bootstrap interval and two-sided p."""
    fa, fb = by_fact(a), by_fact(b)
    ids = sorted(set(fa) & set(fb))
    diff = metric([r for i in ids for r in fa[i].values()]) - metric([r for i in ids for r in fb[i].values()])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        sample = [ids[i] for i in rng.integers(0, len(ids), len(ids))]
        ra = [dict(r, fact_id=f"{r['fact_id']}#{k}") for k, i in enumerate(sample) for r in fa[i].values()]
        rb = [dict(r, fact_id=f"{r['fact_id']}#{k}") for k, i in enumerate(sample) for r in fb[i].values()]
        diffs.append(metric(ra) - metric(rb))
    arr = np.array(diffs)
    lo, hi = np.nanpercentile(arr, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if n else (np.nan, np.nan)
    p = bootstrap_p(arr) if n else float("nan")
    return {"difference": float(diff), "ci": [float(lo), float(hi)], "p_value": p, "n_facts": len(ids)}
