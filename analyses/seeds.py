"""Method effects against training noise, across independently trained seeds, decided by the one
rule of :mod:`polyfact.analyses.verdicts`.

A method's effect on a measure is the change of its seed checkpoints (``<method>@s<seed>``, all
trained from the same base) against the base: per seed and, for the behavioral measures, per test
fact (Total Consistency over the training languages, mean accuracy over the training languages and
over the held-out languages are per-fact outcomes, so facts and seeds are both noise). Specialization
measures exist per checkpoint only (the text-shard intervals of ``results/routing`` are
measurement error), so their tests run over seeds.

The table (``results/seeds/summary.json``) tests every method against the base and against the
comparison arms (``sft``, ``grpo-perlang``), with raw and Benjamini–Hochberg-adjusted p across the
table; the study's three claims (``results/seeds/claims.json``) are pre-registered families with
Holm's correction, each with its minimum detectable effect, beside the two control arms: the
placebo (``grpo-placebo``) must come out "not resolved" on every measure, the oracle
(``sft-oracle``) must be found to raise Total Consistency, or the run cannot answer the claims.
The t interval over seed means stays as a view; it is not the verdict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from polyfact.analyses import verdicts as V
from polyfact.core.checkpoints import list_checkpoints, read_manifest
from polyfact.core.io import atomic_write_json, read_cached
from polyfact.core.layout import layout, split_seed
from polyfact.core.results import Recall, Routing, Steering

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
BEHAVIORAL = ("total_consistency", "mean_accuracy", "heldout_accuracy")  # per-fact outcomes
HEADLINE = ("neuron_contrast", "head_contrast", "neuron_count", "study_head_overlap", "total_consistency",
            "mean_accuracy", "heldout_accuracy")
CONTROLS = ("grpo-perlang", "sft")  # the comparison arms every method is also tested against
PLACEBO, ORACLE = "grpo-placebo", "sft-oracle"

# The study's claims, pre-registered: (key, text, halves: name → [(measure, a, b)]). The claimed sign
# of a − b is +1 for accuracy and Total Consistency and, for a specialization measure, the sign that
# means less specialization. "and SFT does not" is read as "GRPO reduces it more than SFT": the
# absence of an effect cannot be shown by a test without an equivalence margin.
CLAIMS: tuple[tuple[str, str, dict[str, list[tuple[str, str, str]]]], ...] = (
    ("consistency", "GRPO raises Total Consistency over the training languages more than SFT",
     {"GRPO − SFT": [("total_consistency", "grpo", "sft")]}),
    ("heldout", "GRPO raises accuracy on held-out languages more than SFT",
     {"GRPO − SFT": [("heldout_accuracy", "grpo", "sft")]}),
    ("specialization", "GRPO reduces the language specialization of neurons and heads (and SFT does not)",
     {"GRPO − base": [("neuron_count", "grpo", "base"), ("study_head_overlap", "grpo", "base")],
      "GRPO − SFT": [("neuron_count", "grpo", "sft"), ("study_head_overlap", "grpo", "sft")]}),
)
# The largest GRPO − SFT Total Consistency difference the study reports: its main table
# (data_analysis/emit_main_table.py, results/summary/*_polyfact_clean_consistency.json, PolyFact-Clean
# test, 2,039 facts × 12 languages): OLMo-2-7B GRPO 4.46 % vs SFT 1.81 % (+2.65 points); Qwen2.5-7B
# 7.70 % vs 8.73 % (−1.03). The replicate is sized so that it can detect a difference of this size.
STUDY_TC_DIFFERENCE = 0.0265
STUDY_TC_SOURCE = ("the study's main table (data_analysis/emit_main_table.py): OLMo-2-7B GRPO 4.46 % vs SFT "
                   "1.81 % Total Consistency on PolyFact-Clean test (2,039 facts × 12 languages), +2.65 points; "
                   "Qwen2.5-7B −1.03")


EXPECTED_NOISE = Path(__file__).with_name("expected_noise.json")  # written by bench/expected_noise.py


def planned_power(n_seeds: int, n_facts: int | None) -> dict[str, Any]:
    """Each claim's minimum detectable effect for a planned toy-world run of ``n_seeds`` seeds and
    ``n_facts`` test facts, from the noise a replicate measured (``expected_noise.json``), and the
    study's Total Consistency difference against it. Empty when no noise was measured."""
    saved = read_cached(EXPECTED_NOISE)
    if not isinstance(saved, dict) or not isinstance(saved.get("tests"), dict):
        return {}
    out: dict[str, Any] = {"measured": saved.get("measured", {}), "claims": {}}
    for key, _, halves in CLAIMS:
        items = [(m, a, b) for tests in halves.values() for m, a, b in tests]
        mdes = []
        for m, a, b in items:
            noise = saved["tests"].get(f"{m}|{a}|{b}")
            if noise:
                mdes.append(V.planned_mde(n_seeds, n_facts if m in BEHAVIORAL else None, noise, k=len(items)))
        if mdes:
            out["claims"][key] = max(mdes)
    tc = saved["tests"].get("total_consistency|grpo|sft")
    if tc:
        out["study_difference"] = {"value": STUDY_TC_DIFFERENCE, "detectable": out["claims"]["consistency"]
                                   <= STUDY_TC_DIFFERENCE, "seeds_needed": V.seeds_needed(
            math.sqrt(tc["seed_var"] + tc["resid_var"] / n_facts) if n_facts else math.sqrt(tc["seed_var"]),
            tc["fact_var"] / n_facts if n_facts else 0.0, STUDY_TC_DIFFERENCE)}
    return out


def claimed_sign(measure: str) -> int:
    """+1 when the claim predicts an increase of ``measure``; for a specialization measure the sign
    of a change that means less specialization."""
    direction = MEASURES.get(measure, (measure, None))[1]
    return +1 if direction is None else direction


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean over seeds (NaN with fewer than two): the seed-only view."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def checkpoint_changes(run_dir: str | Path, ckpt: str, base: str = "base") -> dict[str, float | None]:
    """Every measure's change of one checkpoint against ``base``, from its result files."""
    run = layout(run_dir)
    routing = Routing.load(run.result("routing", ckpt)) or Routing()
    out: dict[str, float | None] = {
        "neuron_contrast": routing.change("neurons", "contrast", "delta"),
        "neuron_count": routing.change("neurons", "count_total", "delta"),
        "neuron_entropy": routing.change("neurons", "entropy_mean", "delta"),
        "head_contrast": routing.change("heads", "contrast", "delta"),
        "head_entropy": routing.change("heads", "entropy_mean", "delta"),
        "study_head_overlap": routing.change("study", "mean_pairwise_overlap_pct", "change"),
    }
    for lang in routing.vs_base.get("study", {}).get("neuron_counts", {}):
        out[f"study_neuron_count/{lang}"] = routing.change("study", "neuron_counts", lang, "change")
    a, b = Recall.load(run.result("recall", ckpt)), Recall.load(run.result("recall", base))
    if a is not None and b is not None:
        training, heldout = _language_roles(run_dir)
        out["total_consistency"] = _diff(a.consistency("training"), b.consistency("training"))
        out["mean_accuracy"] = _diff(a.mean_over(training), b.mean_over(training))
        if heldout:
            out["heldout_accuracy"] = _diff(a.mean_over(heldout), b.mean_over(heldout))
    return out


def _language_roles(run_dir: str | Path) -> tuple[list[str] | None, list[str]]:
    """The run dataset's training and held-out languages (None, []: no readable dataset)."""
    from polyfact.core.errors import PolyFactError
    from polyfact.data.dataset import load_meta

    try:
        meta = load_meta(layout(run_dir).data)
    except PolyFactError:
        return None, []
    return list(meta["training_langs"]), list(meta.get("heldout_langs") or [])


def _diff(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else float(x) - float(y)


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


def fact_outcomes(run_dir: str | Path, ckpt: str) -> dict[str, dict[str, float]] | None:
    """Per test fact, the behavioral measures of ``ckpt``'s evaluation records (:func:`outcomes`).
    None when the checkpoint has no readable records."""
    from polyfact.analyses.recall import load_records
    from polyfact.core.errors import PolyFactError

    try:
        records = load_records(run_dir, ckpt)
    except (PolyFactError, OSError, ValueError):
        return None
    if not records:
        return None
    training, heldout = _language_roles(run_dir)
    return outcomes(records, training, heldout)


def outcomes(records: Sequence[Mapping[str, Any]], training: Sequence[str] | None,
             heldout: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per fact of ``records`` (``fact_id``, ``lang``, ``correct``): Total Consistency over the
    training languages (1/0; facts asked in all of them), mean accuracy over the training and over
    the held-out languages."""
    from polyfact.analyses.metrics import correct_matrix

    langs = sorted({r["lang"] for r in records})
    training = [x for x in (training or langs) if x in langs]
    heldout = [x for x in heldout if x in langs]
    ids, _, correct = correct_matrix(records, langs=training + heldout)
    tr, ho = correct[:, : len(training)], correct[:, len(training):]
    out: dict[str, dict[str, float]] = {m: {} for m in BEHAVIORAL}
    for i, fid in enumerate(ids):
        if len(training) >= 2 and not np.isnan(tr[i]).any():
            out["total_consistency"][fid] = float(tr[i].min())
        if training and not np.isnan(tr[i]).all():
            out["mean_accuracy"][fid] = float(np.nanmean(tr[i]))
        if heldout and not np.isnan(ho[i]).all():
            out["heldout_accuracy"][fid] = float(np.nanmean(ho[i]))
    return out


def steer_arms(run_dir: str | Path, base: str = "base") -> dict[str, list[dict[str, dict[str, float]]]]:
    """The training-free steering arms of the run: ``steer-<units>`` → per steer seed, the steered
    base's per-fact outcomes on test facts (``results/steer/<base>-*.json``, the setting chosen on
    train facts)."""
    cfg = read_cached(layout(run_dir).config)
    want = cfg.get("steer") if isinstance(cfg, dict) and isinstance(cfg.get("steer"), dict) else {}
    folder = layout(run_dir).result_dir("steer")
    docs = []
    for path in sorted(folder.glob(f"{base}-*.json")) if folder.is_dir() else []:
        doc = Steering.load(path)
        if doc is None or doc.checkpoint != base or not isinstance(doc.get("arm"), list):
            continue
        # the run's configured steering only (a manual polyfact steer of other languages is not an arm)
        if any(want.get(k) is not None and doc.get(k) != want[k] for k in ("units", "source", "target")):
            continue
        docs.append(doc)
    if len(docs) == 1:
        return {f"steer-{docs[0]['units']}": docs[0]["arm"]}
    return {f"steer-{d['units']}-{d['source']}-{d['target']}": d["arm"] for d in docs}


class Arms:
    """The run's checkpoints by method and seed, with their measures (read once)."""

    def __init__(self, run_dir: str | Path, ids: Sequence[str], base: str) -> None:
        self.run_dir, self.base = run_dir, base
        self.by_method: dict[str, dict[int | None, str]] = {}
        for c in ids:
            name, seed = split_seed(c)
            self.by_method.setdefault(name, {})[seed] = c
        self.changes = {c: checkpoint_changes(run_dir, c, base) for c in ids}
        self.facts = {c: fact_outcomes(run_dir, c) for c in [base, *ids]}
        # training-free arms: the steered base at each steer seed (a draw of its control and text sample,
        # not a training seed: tested against the base only; behavioral measures only)
        self.steered: set[str] = set()
        for name, per_seed in steer_arms(run_dir, base).items():
            if name in self.by_method or self.facts.get(base) is None:
                continue
            self.steered.add(name)
            for s, facts in enumerate(per_seed):
                c = f"{name}@s{s}"
                self.by_method.setdefault(name, {})[s] = c
                self.facts[c] = facts
                self.changes[c] = {}
                for m, v in facts.items():
                    common = [f for f in v if f in self.facts[base][m]]
                    if common:
                        self.changes[c][m] = float(np.mean([v[f] for f in common])) - float(
                            np.mean([self.facts[base][m][f] for f in common]))

    def measures(self) -> list[str]:
        return sorted({m for ch in self.changes.values() for m in ch})

    def contrast(self, measure: str, a: str, b: str) -> V.Estimate | None:
        """``a − b`` on ``measure``, paired by seed (and by fact for a behavioral measure); ``b`` may
        be the base (one checkpoint for every seed). None when the arms are missing."""
        seeds_a = self.by_method.get(a, {})
        if b == self.base:
            pairs = [(seeds_a[s], self.base) for s in sorted(seeds_a, key=_seed_key)]
        else:
            seeds_b = self.by_method.get(b, {})
            pairs = [(seeds_a[s], seeds_b[s]) for s in sorted(set(seeds_a) & set(seeds_b), key=_seed_key)]
        if not pairs:
            return None
        if measure in BEHAVIORAL:
            outcomes = [(self.facts.get(x), self.facts.get(y)) for x, y in pairs]
            if any(fx is None or fy is None for fx, fy in outcomes):
                return None
            common = sorted(set.intersection(*(set(fx[measure]) & set(fy[measure]) for fx, fy in outcomes)))
            if not common:
                return None
            table = np.array([[fx[measure][f] - fy[measure][f] for f in common] for fx, fy in outcomes])
            return V.crossed(table)
        vals = []
        for x, y in pairs:
            vx = self.changes.get(x, {}).get(measure)
            vy = 0.0 if y == self.base else self.changes.get(y, {}).get(measure)
            if vx is None or vy is None:
                return None
            vals.append(vx - vy)
        return V.over_seeds(vals)


def _seed_key(seed: int | None) -> int:
    return -1 if seed is None else seed


def _view(arms: Arms, method: str, measure: str) -> dict[str, Any]:
    """The seed-only view of a method's change: each seed's change, mean, t interval, sign agreement."""
    seeds = arms.by_method[method]
    vals = [arms.changes[seeds[s]].get(measure) for s in sorted(seeds, key=_seed_key)]
    vals = [float(v) for v in vals if v is not None and not math.isnan(v)]
    mean = float(np.mean(vals)) if vals else float("nan")
    return {"seeds": vals, "n": len(vals), "mean": mean, "ci": list(t_interval(vals)),
            "interval": "t over seed means, 95 % (a view; not the verdict)",
            "same_sign": int(sum(np.sign(v) == np.sign(mean) and v != 0 for v in vals))}


def verdict_word(test: V.Test, measure: str) -> str:
    """The table's verdict of a tested change against the base: the direction when the rule passes."""
    n = test.estimate.n_seeds
    if n < 2:
        return f"not resolved at {n} seed" + ("s" if n != 1 else "")
    if test.outcome == "not resolved":
        return f"not resolved (detectable: {_fmt_mde(test.mde)})"
    up = test.estimate.difference > 0
    direction = MEASURES.get(measure, (measure, None))[1]
    if direction is None:
        return "increases" if up else "decreases"
    return "reduces specialization" if (1 if up else -1) == direction else "increases specialization"


def _fmt_mde(x: float) -> str:
    return "nothing at these seeds" if not math.isfinite(x) else f"|δ| ≥ {x:.3g}"


def method_table(arms: Arms) -> tuple[dict[str, dict[str, dict]], list[V.Test]]:
    """Every method against the base and the comparison arms on every measure, one BH family."""
    tests: list[V.Test] = []
    rows: dict[str, dict[str, dict]] = {}
    for m in arms.measures():
        for method in arms.by_method:
            est = arms.contrast(m, method, arms.base)
            if est is None:
                continue
            row = {**_view(arms, method, m), "test": V.Test(m, method, arms.base, claimed_sign(m), est),
                   "versus": {}}
            tests.append(row["test"])
            for ctrl in CONTROLS if method not in arms.steered else ():  # steer draws pair with no training seed
                if ctrl != method and ctrl in arms.by_method and (e2 := arms.contrast(m, method, ctrl)) is not None:
                    row["versus"][ctrl] = V.Test(m, method, ctrl, claimed_sign(m), e2)
                    tests.append(row["versus"][ctrl])
            rows.setdefault(m, {})[method] = row
    V.decide(tests, "bh", with_mde=False)
    for m, by_method in rows.items():
        for method, row in by_method.items():
            t = row["test"]
            t.mde = _table_mde(t.estimate)
            row["verdict"] = verdict_word(t, m)
            row["test"] = t.to_dict()
            row["versus"] = {k: v.to_dict() for k, v in row["versus"].items()}
    return rows, tests


def _table_mde(e: V.Estimate) -> float:
    """The table's detectable effect of one test, at α (BH's most lenient step)."""
    sd = math.sqrt(e.components["seed_mean_var"]) if e.components else float("nan")
    return V.mde(e.n_seeds, sd, e.components.get("fact_var_over_f", 0.0)) if sd == sd else math.inf


def claims(arms: Arms) -> list[dict[str, Any]]:
    """The study's three claims under the rule (Holm within each claim), with their power."""
    out = []
    for key, text, halves in CLAIMS:
        tests: list[V.Test] = []
        for half, items in halves.items():
            for measure, a, b in items:
                est = arms.contrast(measure, a, b)
                if est is not None:
                    tests.append(V.Test(measure, a, b, claimed_sign(measure), est, half=half))
        if not tests:
            out.append({"claim": key, "text": text, "verdict": "not measured (the run lacks the arms or measures)",
                        "tests": [], "mde": None})
            continue
        V.decide(tests, "holm")
        by_half = {h: [t for t in tests if t.half == h] for h in halves}
        verdict = V.claim_verdict(by_half)
        n = min(t.estimate.n_seeds for t in tests)
        row: dict[str, Any] = {"claim": key, "text": text, "verdict": verdict, "n_seeds": n,
                               "halves": {h: V.half_verdict(ts) for h, ts in by_half.items()},
                               "tests": [t.to_dict() for t in tests],
                               "mde": max(t.mde for t in tests), "family": "Holm over the claim's tests",
                               "rule": "polyfact.analyses.verdicts"}
        if verdict == "not resolved":
            row["sentence"] = (f"not resolved at {n} seed{'s' if n != 1 else ''}: "
                               + "; ".join(f"{MEASURES.get(t.measure, (t.measure,))[0]} {t.a} − {t.b} "
                                           f"{t.estimate.difference:+.3g} (detectable: {_fmt_mde(t.mde)})"
                                           for t in tests))
        if key == "consistency":
            t = tests[0]
            e = t.estimate
            row["study_difference"] = {"value": STUDY_TC_DIFFERENCE, "source": STUDY_TC_SOURCE,
                                       "detectable_here": t.mde <= STUDY_TC_DIFFERENCE}
            if e.components:
                sd = math.sqrt(e.components["seed_mean_var"])
                row["study_difference"]["seeds_needed"] = V.seeds_needed(
                    sd, e.components.get("fact_var_over_f", 0.0), STUDY_TC_DIFFERENCE)
        out.append(row)
    return out


def controls(arms: Arms) -> dict[str, Any]:
    """The control arms under the rule: the placebo on every measure against the base (Holm over its
    measures: each must be "not resolved"), the oracle's Total Consistency against the base (it must
    be detected as raised). ``answers_claims`` is False, with the reason, when either fails or is missing."""
    out: dict[str, Any] = {}
    reasons = []
    if PLACEBO in arms.by_method:
        tests = [V.Test(m, PLACEBO, arms.base, claimed_sign(m), e) for m in arms.measures()
                 if (e := arms.contrast(m, PLACEBO, arms.base)) is not None]
        V.decide(tests, "holm")
        moved = [t.measure for t in tests if t.outcome != "not resolved"]
        out["placebo"] = {"arm": PLACEBO, "tests": [t.to_dict() for t in tests], "passes": not moved,
                          "expected": "not resolved on every measure", "moved": moved}
        if moved:
            reasons.append(f"the placebo {PLACEBO} moved {', '.join(moved)} (the rule calls noise an effect)")
    else:
        reasons.append(f"no placebo arm ({PLACEBO})")
    if ORACLE in arms.by_method and (e := arms.contrast("total_consistency", ORACLE, arms.base)) is not None:
        (t,) = V.decide([V.Test("total_consistency", ORACLE, arms.base, +1, e)], "holm")
        out["oracle"] = {"arm": ORACLE, "tests": [t.to_dict()], "passes": t.outcome == "claimed",
                         "expected": "raises Total Consistency"}
        if t.outcome != "claimed":
            reasons.append(f"the oracle {ORACLE} was not detected raising Total Consistency "
                           f"({e.difference:+.3g}; detectable: {_fmt_mde(t.mde)})")
    else:
        reasons.append(f"no oracle arm ({ORACLE})")
    out["answers_claims"] = not reasons
    out["reason"] = "; ".join(reasons) if reasons else "both controls behave as expected"
    return out


def seed_analysis(run_dir: str | Path, checkpoints: Sequence[str] | None = None, base: str = "base",
                  allow_unmatched: bool = False) -> dict[str, Any]:
    """The seed table, the claims and the controls of a run (``results/seeds/summary.json`` and
    ``claims.json``); arms offered different train facts are refused unless ``allow_unmatched``
    (then every output says so)."""
    from polyfact.analyses.curves import budget_table, check_matched

    ids = [c for c in (checkpoints or list_checkpoints(run_dir)) if c != base]
    budgets = budget_table(run_dir, ids)
    unmatched = check_matched(budgets, allow_unmatched)
    arms = Arms(run_dir, ids, base)
    n_seeds = max((len(v) for k, v in arms.by_method.items() if k not in arms.steered), default=0)
    table, tests = method_table(arms)
    independent = [c for c in ids if (read_manifest(run_dir, c).get("parent") or base) == base]
    correlations = {}
    if len(independent) >= 4 and n_seeds >= 2:
        for m in ("neuron_contrast", "neuron_count", "study_head_overlap"):
            xs = [arms.changes[c].get(m) for c in independent]
            ys = [arms.changes[c].get("total_consistency") for c in independent]
            if all(v is not None for v in xs + ys):
                correlations[f"{m}~total_consistency"] = correlation(xs, ys)
    answered = claims(arms)
    ctl = controls(arms)
    # beside the claims: every arm's behavioral change against the base under the table's rule (the
    # training-free steer arm among them), so a claim is read against what else moved the measure
    context = {method: {m: {"difference": table[m][method]["test"]["difference"], "verdict": table[m][method]["verdict"]}
                        for m in BEHAVIORAL if method in table.get(m, {})} for method in arms.by_method}
    if not ctl["answers_claims"]:
        for c in answered:
            c["caveat"] = f"this run cannot answer the claims: {ctl['reason']}"
    drops = [f"{b['checkpoint']} trained on {b['facts']} of the {b['offered']} offered facts" for b in budgets
             if b.get("offered") is not None and b["facts"] < b["offered"]]
    out = {"base": base, "seeds_per_method": {k: sorted(s for s in v if s is not None) or [None]
                                              for k, v in arms.by_method.items()},
           "n_seeds": n_seeds, "checkpoint_changes": arms.changes, "measures": table,
           "labels": {k: v[0] for k, v in MEASURES.items()}, "headline": list(HEADLINE),
           "correlations": correlations, "budgets": budgets, "unmatched": unmatched, "drops": drops,
           "claims": answered, "controls": ctl, "context": context, "n_tests": len(tests),
           "rule": ("primary: crossed seeds × facts random effects (behavioral) or paired t over seeds; exact: "
                    "sign flips over seeds; table p adjusted by Benjamini–Hochberg across all its tests, claims "
                    "by Holm within each claim; a verdict needs both adjusted p below 0.05 in one direction"),
           "correlation_points": "checkpoints trained directly from the base, one point per (method, seed)",
           "note": ("one training seed cannot separate a method's effect from training noise: every verdict is "
                    "'not resolved'; run several seeds (--seeds 0,1,2,…, or --preset replicate)") if n_seeds < 2 else
                   f"{n_seeds} training seeds per method; facts and seeds both treated as noise"}
    run = layout(run_dir)
    atomic_write_json(run.seeds_summary, out)
    atomic_write_json(run.claims,
                      {"claims": answered, "controls": ctl, "context": context, "unmatched": unmatched,
                       "n_seeds": n_seeds,
                       "rule": out["rule"]})
    return out
