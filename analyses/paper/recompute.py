"""Recompute the release's aggregates where its files allow, with the toolkit's own metrics
(:mod:`polyfact.analyses.metrics`), and list every disagreement beyond ``TOL`` with the released value.

From the summaries alone: Total Consistency and the mean number of languages correct from the
histogram of languages correct per fact (and the per-language counts it implies), RankC averages
(all pairs, en–X, rescaled) from the pairwise matrix, RankC floor and chance from the candidate
pool sizes (``rankc_pair`` of a ranking against its reverse; the expectation of two independent
rankings), answer agreement, KLAR pooled accuracy, MEXA summaries from the per-layer curves and the
mid-layer pairs, LAPE selection sizes. From per-item records when a file has them (the study's
full files: MCQ ``predictions``, KLAR ``records``): per-language accuracy, Total Consistency and its
histogram, RankC and agreement for benchmarks aligned by option position (Global-MMLU-Lite,
BMLAMA-53), KLAR per-language counts and contamination subsets; plus a paired fact bootstrap of
each arm against Base (mean accuracy and Total Consistency) where both have predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from polyfact.analyses import metrics as M
from polyfact.analyses.paper.release import LOW, Consistency, Klar, Lape, Mexa

TOL = 1e-6
IDENTITY_ALIGNED = ("gmmlu_lite", "global_mmlu_lite", "global_mmlu", "bmlama53")


@dataclass
class Disagreement:
    file: Path
    quantity: str
    released: float
    recomputed: float
    how: str


@dataclass
class Recomputation:
    checked: list[str] = field(default_factory=list)  # "<file>: <quantity>"
    disagreements: list[Disagreement] = field(default_factory=list)
    not_recomputable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def compare(self, file: Path, quantity: str, released: float | None, recomputed: float | None, how: str) -> None:
        if released is None or recomputed is None:
            return
        self.checked.append(f"{file.name}: {quantity}")
        if not (abs(released - recomputed) <= TOL or (math.isnan(released) and math.isnan(recomputed))):
            self.disagreements.append(Disagreement(file, quantity, released, recomputed, how))

    def add_once(self, bucket: list[str], line: str) -> None:
        if line not in bucket:
            bucket.append(line)


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def rankc_floor_chance(n: int) -> tuple[float, float]:
    """RankC of a ranking of ``n`` candidates against its reverse (the attainable floor), and the
    expectation for two independent uniform rankings (E|top_j ∩ top_j'| = j²/n), with the toolkit's weights."""
    cands = [str(i) for i in range(n)]
    w = M.rankc_weights(n)
    return M.rankc_pair(cands, cands[::-1]), float(sum(w[j - 1] * j / n for j in range(1, n + 1)))


def check_consistency(c: Consistency, out: Recomputation) -> None:
    """Every aggregate of an MCQ summary that its other fields determine."""
    f, n_langs = c.path, len(c.langs)
    for lang in c.langs:
        count = c.accuracy[lang] * c.n[lang]
        out.compare(f, f"per_language_accuracy[{lang}] × n is a whole count", count, float(round(count)),
                    "accuracy × n rounded")
    if c.histogram:
        out.compare(f, "total_consistency.n_facts_all_langs", c.n_facts_all, sum(c.histogram.values()),
                    "sum of the languages-correct histogram")
        out.compare(f, "total_consistency.all_langs_correct_fraction", c.totc,
                    c.histogram.get(n_langs, 0) / c.n_facts_all, f"histogram[{n_langs}] / n_facts_all_langs")
        k_total = sum(k * v for k, v in c.histogram.items())
        out.compare(f, "total_consistency.mean_languages_correct", c.mean_correct, k_total / c.n_facts_all,
                    "Σ k·histogram[k] / n_facts_all_langs")
        if c.n_facts_all == c.n_facts_total and all(c.n[x] == c.n_facts_all for x in c.langs):
            out.compare(f, "mean per-language accuracy", _mean(c.accuracy.values()), k_total / (c.n_facts_all * n_langs),
                        "Σ k·histogram[k] / (facts × languages)")
    pw = c.rankc["pairwise"]
    if pw:
        out.compare(f, "number of RankC pairs", float(len(pw)), n_langs * (n_langs - 1) / 2, "languages choose 2")
        out.compare(f, "rankc.average", c.rankc["average"], _mean(pw.values()), "mean of rankc.pairwise")
        en = [v for k, v in pw.items() if "en" in k.split("-")]
        if en and "average_en_x" in c.rankc:
            out.compare(f, "rankc.average_en_x", c.rankc["average_en_x"], sum(en) / max(n_langs - 1, 1),
                        "mean of the en–X pairs")
    _check_rankc_scale(c, out)
    if c.agreement and c.agreement["pairwise"]:
        out.compare(f, "answer_agreement.average", c.agreement["average"], _mean(c.agreement["pairwise"].values()),
                    "mean of answer_agreement.pairwise")
    if c.predictions is not None:
        check_predictions(c, out)
    else:
        out.add_once(out.not_recomputable, "per-fact results (TotC 'wrong' half, significance, re-scoring): "
                                           "the summaries carry no 'predictions'")


def _check_rankc_scale(c: Consistency, out: Recomputation) -> None:
    rk, f = c.rankc, c.path
    if "weights" in rk:
        ref = list(M.rankc_weights(len(rk["weights"])))
        out.compare(f, "rankc.weights (N=4 softmax)", max(abs(a - b) for a, b in zip(rk["weights"], ref)), 0.0,
                    "max |released − toolkit rankc_weights|")
    pools = rk.get("n_candidates_hist") or ({int(rk["n_candidates"]): 1} if float(rk.get("n_candidates", 0.5)).is_integer()
                                            else None)
    if pools and ("floor" in rk or "chance" in rk):
        total = sum(pools.values())
        fc = {n: rankc_floor_chance(n) for n in pools}
        out.compare(f, "rankc.floor", rk.get("floor"), sum(fc[n][0] * k for n, k in pools.items()) / total,
                    "rankc_pair(ranking, reversed ranking) averaged over the pools")
        out.compare(f, "rankc.chance", rk.get("chance"), sum(fc[n][1] * k for n, k in pools.items()) / total,
                    "Σ w_j·j/N averaged over the pools")
        if "n_candidates_hist" in rk:
            out.compare(f, "rankc.n_candidates", rk.get("n_candidates"), sum(n * k for n, k in pools.items()) / total,
                        "mean pool size of n_candidates_hist")
    if "floor" in rk and "average_rescaled" in rk:
        out.compare(f, "rankc.average_rescaled", rk["average_rescaled"],
                    (rk["average"] - rk["floor"]) / max(1 - rk["floor"], 1e-9), "(average − floor) / (1 − floor)")
    if c.benchmark == "bmlama53" and "n_candidates_hist" not in rk and rk.get("n_candidates") == 4:
        out.add_once(out.notes, f"{f.name}: RankC floor/chance were written for 4 candidates by an older evaluator; "
                                "BMLAMA-53 pools hold up to 10 (its average is unaffected)")


def prediction_records(c: Consistency) -> list[dict]:
    """The toolkit's record shape from a file's ``predictions`` (options identified by position)."""
    return [{"fact_id": fid, "lang": lang, "correct": p["correct"], "pred_index": p["pred_idx"],
             "option_scores": p["scores"], "option_ids": [str(i) for i in range(len(p["scores"]))]}
            for fid, per_lang in (c.predictions or {}).items() for lang, p in per_lang.items()]


def check_predictions(c: Consistency, out: Recomputation) -> None:
    """Accuracy, Total Consistency (+ histogram) and, for position-aligned benchmarks, RankC and
    agreement recomputed from per-fact predictions with :mod:`polyfact.analyses.metrics`."""
    f = c.path
    records = prediction_records(c)
    acc = M.accuracy(records)
    for lang in c.langs:
        out.compare(f, f"per_language_accuracy[{lang}] (from predictions)", c.accuracy[lang], acc.get(lang),
                    "metrics.accuracy")
        out.compare(f, f"per_language_accuracy[{lang}].n (from predictions)", c.n[lang],
                    sum(r["lang"] == lang for r in records), "records per language")
    complete = [fact for fact in M.by_fact(records).values() if set(fact) >= set(c.langs)]
    out.compare(f, "total_consistency.all_langs_correct_fraction (from predictions)", c.totc,
                M.total_consistency(records), "metrics.total_consistency")
    out.compare(f, "total_consistency.n_facts_all_langs (from predictions)", c.n_facts_all, len(complete),
                "facts present in every language")
    for k, v in c.histogram.items():
        out.compare(f, f"histogram[{k}] (from predictions)", v,
                    sum(sum(fact[x]["correct"] for x in c.langs) == k for fact in complete), "facts with k languages correct")
    if c.benchmark not in IDENTITY_ALIGNED:
        out.add_once(out.not_recomputable, f"{f.name}: RankC and agreement from predictions need the benchmark's option "
                                           "ids (PolyFact aligns options by entity), which the file does not hold")
        return
    facts = M.by_fact(records)
    for key, released in c.rankc["pairwise"].items():
        a, b = key.split("-", 1)
        shared = [(x[a], x[b]) for x in facts.values() if a in x and b in x]
        out.compare(f, f"rankc.pairwise[{key}] (from predictions)", released,
                    _mean(M.rankc_pair(M.ranking(p), M.ranking(q)) for p, q in shared), "metrics.rankc_pair, options by position")
    if c.agreement:
        agree = M.agreement_matrix(records)
        for key, released in c.agreement["pairwise"].items():
            a, b = key.split("-", 1)
            out.compare(f, f"answer_agreement.pairwise[{key}] (from predictions)", released, agree.get(a, {}).get(b),
                        "metrics.agreement_matrix")


def check_klar(k: Klar, out: Recomputation) -> None:
    f = k.path
    full = k.subset_acc.get("full")
    if full:
        c, n = sum(v[0] for v in k.per_lang.values()), sum(v[1] for v in k.per_lang.values())
        out.compare(f, "subset_acc.full correct", full[0], c, "Σ per_lang correct")
        out.compare(f, "subset_acc.full total", full[1], n, "Σ per_lang total")
        out.compare(f, "subset_acc.full accuracy", full[2], c / n, "pooled correct / total")
    if k.records is None:
        out.add_once(out.not_recomputable, "KLAR per-sample results (re-matching, clean_shared subset): "
                                           "the summaries carry no 'records'")
        return
    recs = [{"fact_id": f"{r['relation']}:{r['index']}", "lang": r["language"], "correct": r["correct"],
             "contaminated": r["contaminated"]} for r in k.records]
    acc = M.accuracy(recs)
    for lang, (c, n) in k.per_lang.items():
        n_rec = sum(r["lang"] == lang for r in recs)
        out.compare(f, f"per_lang[{lang}] total (from records)", n, n_rec, "records per language")
        out.compare(f, f"per_lang[{lang}] accuracy (from records)", c / n, acc.get(lang), "metrics.accuracy")
    for name, keep in (("full", lambda r: True), ("contaminated_157", lambda r: r["contaminated"]),
                       ("clean_all", lambda r: not r["contaminated"])):
        if name in k.subset_acc:
            sub = [r for r in recs if keep(r)]
            out.compare(f, f"subset_acc.{name} accuracy (from records)", k.subset_acc[name][2],
                        _mean(float(r["correct"]) for r in sub), "pooled over the subset's records")


def check_mexa(m: Mexa, out: Recomputation) -> None:
    f = m.path
    for var, s in m.summary.items():
        curves = m.per_layer.get(var, {})
        if m.mid_layer is not None:
            for metric in ("x_y", "en_x"):
                if metric in s and metric in curves:
                    out.compare(f, f"summary.{var}.{metric}", s[metric], curves[metric][m.mid_layer],
                                f"per_layer.{metric}[mid_layer={m.mid_layer}]")
        pairs = m.pairs.get(var, {})
        if not pairs:
            continue
        split = {k: k.split("-", 1) for k in pairs}
        groups = {"all_pairs": list(pairs), "en_x": [k for k, p in split.items() if "en" in p],
                  "x_y": [k for k, p in split.items() if "en" not in p],
                  "pairs_with_low": [k for k, p in split.items() if set(p) & set(LOW)]}
        for name, keys in groups.items():
            if name in s and keys:
                out.compare(f, f"summary.{var}.{name} (from pairs)", s[name], _mean(pairs[k] for k in keys),
                            "mean top1_a2b over the mid-layer pairs")


def check_lape(lape: Lape, out: Recomputation) -> None:
    """The selection size: meta's n_selected, and top_frac of all neurons (int or round of the product)."""
    f = lape.path / "lape_results.json"
    total = sum(lape.counts().values())
    out.compare(f, "meta.n_selected", lape.n_selected, total, "neurons listed in lape_results.json")
    meta = lape.meta
    if all(isinstance(meta.get(k), (int, float)) for k in ("num_layers", "intermediate_size", "top_frac")):
        size = meta["num_layers"] * meta["intermediate_size"] * meta["top_frac"]
        expected = round(size) if total == round(size) else int(size)
        out.compare(f, "neurons selected (top_frac of all neurons)", float(total), float(expected),
                    "int(num_layers × intermediate_size × top_frac)")


def significance(base: Consistency, other: Consistency, n_boot: int = 2000, seed: int = 0) -> dict[str, Any] | None:
    """Paired fact bootstrap (metrics.paired_changes) of ``other`` against ``base``: mean accuracy
    and Total Consistency differences with 95 % intervals and p; None without predictions."""
    if base.predictions is None or other.predictions is None:
        return None
    return M.paired_changes(prediction_records(other), prediction_records(base), n=n_boot, seed=seed)


def recompute_files(paths: Iterable[Path]) -> Recomputation:
    """Run every recomputation the given release files allow (each file once), and name what the
    release's files cannot support."""
    from polyfact.analyses.paper.release import read_consistency, read_klar, read_lape, read_mexa

    res = Recomputation()
    for p in dict.fromkeys(paths):
        if p.name.endswith("_consistency.json"):
            check_consistency(read_consistency(p), res)
        elif p.name.endswith("_klar_alllangs.json"):
            check_klar(read_klar(p), res)
        elif p.name.endswith("_mexa.json"):
            check_mexa(read_mexa(p), res)
        elif p.name == "lape_results.json":
            check_lape(read_lape(p.parent), res)
    res.add_once(res.not_recomputable, "significance of the main-table differences (bootstrap over facts): needs "
                                       "per-fact predictions")
    res.add_once(res.not_recomputable, "TotC 'wrong' half (every language names the same wrong entity): needs "
                                       "per-fact predictions and, for PolyFact, the dataset's option ids")
    return res
