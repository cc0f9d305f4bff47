"""Method effects against training noise: inference across independently trained seeds.

A method's effect on a measure is the change against the base of each of its seed checkpoints
(``<method>@s<seed>``, all trained from the same base). Per method and measure: each seed's change,
their mean, a t interval over seeds (95 %), how many seeds share the mean's sign, and a verdict —
"reduces specialization" / "increases specialization" (for accuracy and Total Consistency the
direction of the change: "increases" / "decreases") when the interval excludes zero *and* every
seed agrees, else "no evidence at n seeds".
Methods are compared with the matched control ``grpo-perlang`` and with ``sft``: the difference of
mean changes, Welch's t test and an exact permutation test of the seed labels (both stated).

Measures come from the result files of each checkpoint (``results/neurons``, ``results/heads``,
``results/routing``, ``results/recall``); the text-shard intervals there are measurement error.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from core.checkpoints import list_checkpoints, read_manifest
from core.io import atomic_write_json, read_cached
from core.layout import layout, split_seed

# name → (label, which sign of the change means *less* language specialization; None: not a
# specialization measure, the verdict names the direction of the change)
MEASURES: dict[str, tuple[str, int | None]] = {
    "neuron_contrast": ("neuron contrast change κ (project)", -1),
    "neuron_count": ("language-specific neurons, base-calibrated (project)", -1),
    "neuron_entropy": ("mean neuron entropy over languages (project)", +1),
    "head_contrast": ("head contrast change κ (project)", -1),
    "head_entropy": ("mean head entropy over languages (project)", +1),
    "study_head_overlap": ("mean pairwise overlap of top-2 % heads, % (study)", +1),
    "total_consistency": ("Total Consistency, training languages", None),
    "mean_accuracy": ("mean accuracy, training languages", None),
    "heldout_accuracy": ("mean accuracy, held-out languages", None),
}
HEADLINE = ("neuron_contrast", "head_contrast", "neuron_count", "study_head_overlap", "total_consistency",
            "mean_accuracy", "heldout_accuracy")
CONTROLS = ("grpo-perlang", "sft")


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean over seeds (NaN with fewer than two)."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def permutation_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided permutation test of the difference of means over every relabelling of the
    seeds into groups of the same sizes (its smallest possible p is 2 / C(n_a+n_b, n_a))."""
    pooled = np.asarray(list(a) + list(b), dtype=float)
    na = len(a)
    observed = abs(np.mean(a) - np.mean(b))
    splits = list(itertools.combinations(range(len(pooled)), na))
    hits = 0
    for idx in splits:
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        hits += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed - 1e-12
    return hits / len(splits)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's two-sided t test (NaN when either group has fewer than two seeds or no spread at all)."""
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return float("nan")
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def verdict(values: Sequence[float], direction: int | None) -> str:
    """When the seed interval excludes 0 and every seed agrees in sign: "reduces specialization" /
    "increases specialization" for a specialization measure (``direction``: the sign of the change
    that means less specialization, e.g. +1 for head overlap), else "increases" / "decreases"."""
    n = len(values)
    if n < 2:
        return f"no evidence at {n} seed" + ("s" if n != 1 else "")
    lo, hi = t_interval(values)
    mean = float(np.mean(values))
    agree = all(np.sign(v) == np.sign(mean) and v != 0 for v in values)
    if not (agree and (lo > 0 or hi < 0)):
        return f"no evidence at {n} seeds"
    if direction is None:
        return "increases" if mean > 0 else "decreases"
    return "reduces specialization" if np.sign(mean) == direction else "increases specialization"


def infer(changes: Mapping[str, Sequence[float]], direction: int | None,
          controls: Sequence[str] = CONTROLS) -> dict[str, dict[str, Any]]:
    """Seed-level inference for one measure: ``changes`` maps a method to its seeds' changes."""
    out = {}
    for method, vals in changes.items():
        vals = [float(v) for v in vals if v is not None and not math.isnan(v)]
        mean = float(np.mean(vals)) if vals else float("nan")
        lo, hi = t_interval(vals)
        row: dict[str, Any] = {
            "seeds": vals, "n": len(vals), "mean": mean, "ci": [lo, hi], "interval": "t over seeds, 95 %",
            "same_sign": int(sum(np.sign(v) == np.sign(mean) and v != 0 for v in vals)),
            "verdict": verdict(vals, direction), "versus": {},
        }
        for ctrl in controls:
            if ctrl == method or ctrl not in changes:
                continue
            other = [float(v) for v in changes[ctrl] if v is not None and not math.isnan(v)]
            if not other or not vals:
                continue
            row["versus"][ctrl] = {"difference": mean - float(np.mean(other)), "welch_p": welch_p(vals, other),
                                   "permutation_p": permutation_p(vals, other),
                                   "tests": "Welch t; exact permutation of seed labels"}
        out[method] = row
    return out


def _scalar(doc: Any, *path: str) -> float | None:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    if isinstance(doc, list):
        doc = doc[0] if doc else None
    return float(doc) if isinstance(doc, (int, float)) else None


def checkpoint_changes(run_dir: str | Path, ckpt: str, base: str = "base") -> dict[str, float | None]:
    """Every measure's change of one checkpoint against ``base``, from its result files."""
    run = layout(run_dir)
    routing = read_cached(run.result("routing", ckpt))
    vb = routing.get("vs_base", {}) if isinstance(routing, dict) else {}
    out: dict[str, float | None] = {
        "neuron_contrast": _scalar(vb, "neurons", "contrast", "delta"),
        "neuron_count": _scalar(vb, "neurons", "count_total", "delta"),
        "neuron_entropy": _scalar(vb, "neurons", "entropy_mean", "delta"),
        "head_contrast": _scalar(vb, "heads", "contrast", "delta"),
        "head_entropy": _scalar(vb, "heads", "entropy_mean", "delta"),
        "study_head_overlap": _scalar(vb, "study", "mean_pairwise_overlap_pct", "change"),
    }
    for lang, v in (vb.get("study", {}).get("neuron_counts", {}) if vb else {}).items():
        out[f"study_neuron_count/{lang}"] = float(v["change"])
    a = read_cached(run.result("recall", ckpt))
    b = read_cached(run.result("recall", base))
    if isinstance(a, dict) and isinstance(b, dict):
        training, heldout = _language_roles(run_dir)
        out["total_consistency"] = _diff(a.get("consistency_subsets", {}).get("training"),
                                         b.get("consistency_subsets", {}).get("training"))
        out["mean_accuracy"] = _diff(_mean_accuracy(a, training), _mean_accuracy(b, training))
        if heldout:
            out["heldout_accuracy"] = _diff(_mean_accuracy(a, heldout), _mean_accuracy(b, heldout))
    return out


def _language_roles(run_dir: str | Path) -> tuple[list[str] | None, list[str]]:
    """The run dataset's training and held-out languages (None, []: no readable dataset)."""
    from core.errors import PolyFactError
    from polyfact.dataset import load_meta

    try:
        meta = load_meta(layout(run_dir).data)
    except PolyFactError:
        return None, []
    return list(meta["training_langs"]), list(meta.get("heldout_langs") or [])


def _diff(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else float(x) - float(y)


def _mean_accuracy(res: dict, langs: list[str] | None) -> float | None:
    acc = res.get("metrics", {}).get("accuracy", {})
    vals = [v for x, v in acc.items() if langs is None or x in langs]
    return float(np.mean(vals)) if vals else None


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Pearson r with a Fisher-z 95 % interval (n ≥ 4) and Spearman ρ over seed-level points."""
    from scipy.stats import pearsonr, spearmanr

    xs, ys = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[ok], ys[ok]
    n = len(xs)
    if n < 3 or np.std(xs) == 0 or np.std(ys) == 0:
        return {"n": n, "pearson": float("nan"), "ci": [float("nan"), float("nan")], "spearman": float("nan")}
    r = float(pearsonr(xs, ys)[0])
    ci = [float("nan"), float("nan")]
    if n >= 4 and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        ci = [math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)]
    return {"n": n, "pearson": r, "ci": ci, "spearman": float(spearmanr(xs, ys)[0])}


def seed_analysis(run_dir: str | Path, checkpoints: Sequence[str] | None = None, base: str = "base",
                  allow_unmatched: bool = False) -> dict[str, Any]:
    """The seed-level table of a run (written to ``results/seeds/summary.json``); arms that learned
    from different train facts are refused unless ``allow_unmatched`` (then the table says so)."""
    from analyses.curves import budget_table, check_matched

    ids = [c for c in (checkpoints or list_checkpoints(run_dir)) if c != base]
    budgets = budget_table(run_dir, ids)
    unmatched = check_matched(budgets, allow_unmatched)
    per_ckpt = {c: checkpoint_changes(run_dir, c, base) for c in ids}
    methods: dict[str, dict[int | None, str]] = {}
    for c in ids:
        name, seed = split_seed(c)
        methods.setdefault(name, {})[seed] = c
    n_seeds = max((len(v) for v in methods.values()), default=0)
    measures = sorted({m for ch in per_ckpt.values() for m in ch})
    table = {}
    for m in measures:
        direction = MEASURES.get(m, (m, None))[1]
        changes = {name: [per_ckpt[c].get(m) for c in seeds.values()] for name, seeds in methods.items()}
        table[m] = infer(changes, direction)
    independent = [c for c in ids if (read_manifest(run_dir, c).get("parent") or base) == base]
    correlations = {}
    if len(independent) >= 4 and n_seeds >= 2:
        for m in ("neuron_contrast", "neuron_count", "study_head_overlap"):
            xs = [per_ckpt[c].get(m) for c in independent]
            ys = [per_ckpt[c].get("total_consistency") for c in independent]
            if all(v is not None for v in xs + ys):
                correlations[f"{m}~total_consistency"] = correlation(xs, ys)
    out = {"base": base, "seeds_per_method": {k: sorted(s for s in v if s is not None) or [None]
                                              for k, v in methods.items()},
           "n_seeds": n_seeds, "checkpoint_changes": per_ckpt, "measures": table,
           "labels": {k: v[0] for k, v in MEASURES.items()}, "headline": list(HEADLINE),
           "correlations": correlations, "budgets": budgets, "unmatched": unmatched,
           "claims": claims(table, {k: v[0] for k, v in MEASURES.items()}, n_seeds),
           "correlation_points": "checkpoints trained directly from the base, one point per (method, seed)",
           "note": ("one training seed cannot separate a method's effect from training noise: every verdict is "
                    "'no evidence'; run several seeds (--seeds 0,1,2, or --preset replicate)") if n_seeds < 2 else
                   f"{n_seeds} training seeds per method; intervals are t intervals over seeds"}
    atomic_write_json(layout(run_dir).seeds_summary, out)
    return out


CLAIMS = (
    ("consistency", "GRPO raises Total Consistency over the training languages more than SFT", ("total_consistency",)),
    ("heldout", "GRPO raises accuracy on held-out languages more than SFT", ("heldout_accuracy",)),
    ("specialization", "GRPO reduces the language specialization of neurons and heads (and SFT does not)",
     ("neuron_contrast", "head_contrast", "neuron_count", "study_head_overlap")),
)


def claims(table: Mapping[str, Mapping[str, dict]], labels: Mapping[str, str], n_seeds: int) -> list[dict[str, Any]]:
    """The study's three claims, each answered from the seed table: ``supported`` when GRPO's change
    has the claimed direction at the seed level and differs from SFT's that way (Welch p < 0.05),
    ``contradicted`` when the seed level shows the opposite, else ``not resolved at n seeds``;
    with the numbers behind the answer."""
    out = []
    for key, text, measures in CLAIMS:
        evidence, verdicts = [], []
        for m in measures:
            grpo = table.get(m, {}).get("grpo")
            if not grpo:
                continue
            direction = MEASURES.get(m, (m, None))[1]
            good = +1 if direction is None else direction  # the sign the claim predicts
            vs = grpo.get("versus", {}).get("sft", {})
            diff, p = vs.get("difference"), vs.get("welch_p")
            mean = grpo["mean"]
            if direction is None:
                claimed, opposite = grpo["verdict"] == "increases", grpo["verdict"] == "decreases"
            else:
                claimed = grpo["verdict"] == "reduces specialization"
                opposite = grpo["verdict"] == "increases specialization"
            beats_sft = diff is not None and p == p and p is not None and p < 0.05 and math.copysign(1, diff) == good
            loses_sft = diff is not None and p == p and p is not None and p < 0.05 and math.copysign(1, diff) == -good
            verdicts.append("supported" if claimed and beats_sft else "contradicted" if opposite or loses_sft
                            else "not resolved")
            evidence.append({"measure": labels.get(m, m), "grpo_mean": mean, "grpo_ci": grpo["ci"],
                             "grpo_verdict": grpo["verdict"], "minus_sft": diff, "welch_p": p})
        if not evidence:
            answer = "not measured (the run has no grpo arm or no such measure)"
        elif "supported" in verdicts and "contradicted" not in verdicts:
            answer = "supported"
        elif "contradicted" in verdicts and "supported" not in verdicts:
            answer = "contradicted"
        else:
            answer = f"not resolved at {n_seeds} seed{'s' if n_seeds != 1 else ''}"
        out.append({"claim": key, "text": text, "answer": answer, "evidence": evidence})
    return out
