"""The toolkit's one verdict rule, fixed before any number is read (docs/STUDY.md, "Verdicts").

A *test* compares two arms on one measure, paired by training seed (and, for behavioral measures,
by test fact): the difference table ``D[s, f]`` (arm a's outcome on fact f at seed s minus arm b's)
or, for a measure with no per-fact outcome, the per-seed differences ``D[s]``.

* **Primary test, facts and seeds both as noise.** The crossed random-effects model
  ``D[s, f] = δ + a_s + b_f + e_sf`` (seed, fact and seed × fact effects). Its grand mean has
  variance ``σ²_a/S + σ²_b/F + σ²_e/(SF)``, estimated by the two-way ANOVA mean squares as
  ``(MS_seed + MS_fact − MS_resid)/(SF)`` — the REML estimate of a balanced crossed mixed model
  when the components are positive; a negative fact component is set to 0 — with Satterthwaite's
  degrees of freedom. Without facts it is the paired t test over seeds (df S − 1).
* **Exact test.** Sign flips of the per-seed mean differences over all 2^S relabellings (the
  two arms' labels swapped within a seed): exact under the null that a seed's difference is
  symmetric about 0. Its smallest two-sided p is 2/2^S, so it alone says how many seeds a
  verdict needs.
* **Family-wise correction.** Every test that feeds a claim is one family: Holm's step-down on
  the primary p values and, separately, on the exact p values. A descriptive table of many tests
  uses Benjamini–Hochberg instead (:data:`ADJUSTMENTS`).
* **Verdict of a test.** ``claimed`` when the adjusted primary p and the adjusted exact p are both
  below α and the difference has the claimed sign; ``opposite`` under the same rule with the other
  sign; else ``not resolved``, with the minimum detectable effect: the smallest |δ| this rule
  would detect with probability 0.8 at α/k (the first Holm step), given the seeds, facts and the
  observed variance components (Monte Carlo of the rule on the seed means, fixed seed).
* **Verdict of a claim** (:func:`claim_verdict`): each half is ``supported`` when one of its tests
  is ``claimed`` and none ``opposite``, ``contradicted`` in the mirror case, else ``not resolved``;
  a claim is supported when every half is, contradicted when any half is, else not resolved.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

ALPHA = 0.05
POWER = 0.8
ADJUSTMENTS = ("holm", "bh")
_SIMS = 4000  # Monte Carlo draws per power evaluation of the minimum detectable effect


# ------------------------------------------------------------------------------------------ corrections
def _ranked(ps: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p values, the output filled with NaN, and the indices of the non-NaN ones in increasing
    order (NaN is not a test and does not count)."""
    p = np.asarray(ps, float)
    ok = np.flatnonzero(~np.isnan(p))
    return p, np.full(len(p), np.nan), ok[np.argsort(p[ok], kind="stable")]


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values (NaN stays NaN and is not counted)."""
    p, out, order = _ranked(ps)
    running, m = 0.0, len(order)
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out.tolist()


def bh(ps: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p values (NaN stays NaN and is not counted)."""
    p, out, order = _ranked(ps)
    running, m = 1.0, len(order)
    for i in range(m - 1, -1, -1):
        running = min(running, p[order[i]] * m / (i + 1))
        out[order[i]] = min(1.0, running)
    return out.tolist()


def adjust(ps: Sequence[float], method: str) -> list[float]:
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjustment {method!r}; use one of {', '.join(ADJUSTMENTS)}")
    return holm(ps) if method == "holm" else bh(ps)


# --------------------------------------------------------------------------------------------- tests
def sign_flip_p(seed_means: Sequence[float]) -> float:
    """Exact two-sided sign-flip p of the mean of ``seed_means`` over all 2^S relabellings (the
    observed labelling counted; ties count as extreme). NaN with no seeds; S > 20 uses 2^20 random
    flips plus the observed one."""
    x = np.asarray(seed_means, float)
    s = len(x)
    if s == 0 or np.isnan(x).any():
        return float("nan")
    if s <= 20:
        signs = 1 - 2 * ((np.arange(2 ** s)[:, None] >> np.arange(s)) & 1)
    else:
        rng = np.random.default_rng(0)
        signs = np.vstack([np.ones(s), rng.choice([-1.0, 1.0], size=(2 ** 20, s))])
    stats = np.abs(signs @ x)
    observed = abs(x.sum())
    return float(np.mean(stats >= observed - 1e-12 * max(1.0, observed)))


@dataclass
class Estimate:
    """A paired difference ``a − b`` with its primary and exact tests."""

    difference: float
    se: float
    df: float
    p: float
    exact_p: float
    ci: tuple[float, float]
    n_seeds: int
    n_facts: int | None
    seed_means: list[float]
    components: dict[str, float] = field(default_factory=dict)  # variance of seed means, fact term

    def to_dict(self) -> dict:
        return {**asdict(self), "ci": list(self.ci)}


def _t_p(estimate: float, se: float, df: float) -> tuple[float, tuple[float, float]]:
    from scipy.stats import t

    if not (se > 0 and df > 0 and math.isfinite(se)):  # no spread at all: the t test is undefined
        return float("nan"), (estimate, estimate)
    stat = estimate / se
    half = float(t.ppf(1 - ALPHA / 2, df)) * se
    return float(2 * t.sf(abs(stat), df)), (estimate - half, estimate + half)


def crossed(table: np.ndarray | Sequence[Sequence[float]]) -> Estimate:
    """The primary test on a seeds × facts table of paired differences (no NaN): the crossed
    random-effects model described in the module docstring."""
    d = np.asarray(table, float)
    if d.ndim != 2 or d.size == 0:
        raise ValueError("crossed() takes a non-empty seeds × facts table")
    if np.isnan(d).any():
        raise ValueError("crossed() needs every (seed, fact) difference; drop facts with a missing outcome")
    s, f = d.shape
    grand = float(d.mean())
    seed_means = d.mean(1)
    fact_means = d.mean(0)
    if s < 2:
        return Estimate(grand, float("nan"), float("nan"), float("nan"), sign_flip_p(seed_means), (grand, grand),
                        s, f, seed_means.tolist())
    ms_seed = f * float(((seed_means - grand) ** 2).sum()) / (s - 1)
    if f >= 2:
        ms_fact = s * float(((fact_means - grand) ** 2).sum()) / (f - 1)
        resid = d - seed_means[:, None] - fact_means[None, :] + grand
        ms_res = float((resid ** 2).sum()) / ((s - 1) * (f - 1))
    else:
        ms_fact = ms_res = 0.0
    fact_term = max(0.0, ms_fact - ms_res)
    if fact_term > 0:
        v = ms_seed + ms_fact - ms_res
        denom = ms_seed ** 2 / (s - 1) + ms_fact ** 2 / (f - 1) + ms_res ** 2 / ((s - 1) * (f - 1))
        df = v ** 2 / denom if denom > 0 else float(s - 1)
    else:
        v, df = ms_seed, float(s - 1)
    se = math.sqrt(v / (s * f))
    p, ci = _t_p(grand, se, df)
    return Estimate(grand, se, df, p, sign_flip_p(seed_means), ci, s, f, seed_means.tolist(),
                    {"seed_mean_var": float(np.var(seed_means, ddof=1)), "fact_var_over_f": fact_term / (s * f),
                     # unit-level components (σ²_a seed, σ²_b fact, σ²_e seed × fact), for planning other sizes
                     "seed_var": max(0.0, (ms_seed - ms_res) / f), "fact_var": fact_term / s, "resid_var": ms_res})


def over_seeds(values: Sequence[float]) -> Estimate:
    """The primary test of per-seed paired differences with no fact dimension: paired t over seeds."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], float)
    if not len(x):
        nan = float("nan")
        return Estimate(nan, nan, nan, nan, nan, (nan, nan), 0, None, [])
    est = crossed(x[:, None])
    est.n_facts = None
    return est


# ------------------------------------------------------------------------------- power and the rule
def _rule_passes(means: np.ndarray, fact_var_over_f: float, crit: float) -> np.ndarray:
    """For each row of simulated seed means ``[n, S]``: do the primary test (t with the fact term)
    and the exact sign-flip test both fall below ``crit`` in the positive direction?"""
    from scipy.stats import t

    n, s = means.shape
    mean = means.mean(1)
    var_m = means.var(1, ddof=1)
    se = np.sqrt(var_m / s + fact_var_over_f)
    df = np.full(n, float(s - 1))
    if fact_var_over_f > 0:  # Satterthwaite on the two parts (the fact part known to its estimate)
        a, b = var_m / s, fact_var_over_f
        df = (a + b) ** 2 / (a ** 2 / (s - 1) + 1e-300)
    primary = 2 * t.sf(np.abs(mean) / np.maximum(se, 1e-300), df)
    signs = 1 - 2 * ((np.arange(2 ** s)[:, None] >> np.arange(s)) & 1)
    flipped = np.abs(means @ signs.T)
    exact = (flipped >= np.abs(means.sum(1))[:, None] - 1e-12).mean(1)
    return (primary < crit) & (exact < crit) & (mean > 0)


def power(delta: float, n_seeds: int, seed_mean_sd: float, fact_var_over_f: float = 0.0, k: int = 1,
          alpha: float = ALPHA, sims: int = _SIMS, seed: int = 0) -> float:
    """Probability that the rule calls a true difference ``delta`` in its direction, with ``k``
    tests in the family (the first Holm step, α/k), S seeds whose means scatter with
    ``seed_mean_sd`` and a fact term of the grand mean's variance (common to all seeds)."""
    if n_seeds < 2 or not (seed_mean_sd > 0 or fact_var_over_f > 0):
        return 0.0  # no seed spread observed: the rule's t test is undefined
    if n_seeds > 10:  # the sign-flip floor is negligible: the t test's noncentral power
        from scipy.stats import nct, t

        se = math.sqrt(seed_mean_sd ** 2 / n_seeds + fact_var_over_f)
        crit = t.ppf(1 - alpha / (2 * k), n_seeds - 1)
        return float(nct.sf(crit, n_seeds - 1, abs(delta) / se))
    rng = np.random.default_rng(seed)
    common = rng.normal(0, math.sqrt(fact_var_over_f), (sims, 1)) if fact_var_over_f > 0 else 0.0
    means = abs(delta) + common + rng.normal(0, seed_mean_sd, (sims, n_seeds))
    return float(_rule_passes(means, fact_var_over_f, alpha / k).mean())


def exact_floor(n_seeds: int) -> float:
    """The smallest two-sided p the sign-flip test can give with ``n_seeds`` seeds."""
    return 2.0 / 2 ** n_seeds if n_seeds >= 1 else 1.0


def mde(n_seeds: int, seed_mean_sd: float, fact_var_over_f: float = 0.0, k: int = 1, alpha: float = ALPHA,
        target: float = POWER) -> float:
    """The minimum detectable effect: the smallest |δ| the rule detects with probability ``target``
    (inf when the exact test cannot reach α/k with ``n_seeds`` seeds, or nothing is known of the
    noise)."""
    if n_seeds < 2 or exact_floor(n_seeds) >= alpha / k:
        return math.inf
    scale = math.sqrt(seed_mean_sd ** 2 / n_seeds + fact_var_over_f)
    if not (scale > 0 and math.isfinite(scale)):
        return math.inf
    lo, hi = 0.0, scale
    while power(hi, n_seeds, seed_mean_sd, fact_var_over_f, k, alpha) < target:
        hi *= 2
        if hi > 1e6 * scale:
            return math.inf
    for _ in range(30):
        mid = (lo + hi) / 2
        if power(mid, n_seeds, seed_mean_sd, fact_var_over_f, k, alpha) >= target:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-3 * scale:
            break
    return float(hi)


def planned_mde(n_seeds: int, n_facts: int | None, noise: dict[str, float], k: int = 1) -> float:
    """The minimum detectable effect of a planned run from unit-level noise (``seed_var``, ``fact_var``,
    ``resid_var`` of a crossed test measured elsewhere; or ``seed_var`` alone for a measure without
    facts) at ``n_seeds`` seeds and ``n_facts`` test facts."""
    if n_facts:
        sd = math.sqrt(noise["seed_var"] + noise.get("resid_var", 0.0) / n_facts)
        return mde(n_seeds, sd, noise.get("fact_var", 0.0) / n_facts, k)
    return mde(n_seeds, math.sqrt(noise["seed_var"]), 0.0, k)


def seeds_needed(seed_mean_sd: float, fact_var_over_f: float, effect: float, k: int = 1, alpha: float = ALPHA,
                 most: int = 40) -> int | None:
    """The fewest seeds at which the rule detects ``effect`` with power 0.8 (None: more than ``most``)."""
    for s in range(2, most + 1):
        if exact_floor(s) < alpha / k and power(effect, s, seed_mean_sd, fact_var_over_f, k, alpha) >= POWER:
            return s
    return None


# ------------------------------------------------------------------------------------------ verdicts
@dataclass
class Test:
    """One test of a family: a contrast ``a − b`` on ``measure`` with the sign the claim predicts."""

    measure: str
    a: str
    b: str
    direction: int  # +1: the claim predicts a − b > 0
    estimate: Estimate
    p_adjusted: float = float("nan")
    exact_adjusted: float = float("nan")
    outcome: str = "not resolved"  # claimed | opposite | not resolved
    mde: float = float("nan")
    half: str = ""

    def to_dict(self) -> dict:
        e = self.estimate
        return {"measure": self.measure, "contrast": f"{self.a} − {self.b}", "a": self.a, "b": self.b,
                "half": self.half, "claimed_sign": self.direction, "difference": e.difference, "se": e.se,
                "df": e.df, "ci": list(e.ci), "p": e.p, "p_adjusted": self.p_adjusted, "exact_p": e.exact_p,
                "exact_p_adjusted": self.exact_adjusted, "n_seeds": e.n_seeds, "n_facts": e.n_facts,
                "seed_means": e.seed_means, "components": e.components, "outcome": self.outcome, "mde": self.mde}


def decide(tests: list[Test], adjustment: str = "holm", alpha: float = ALPHA, with_mde: bool = True) -> list[Test]:
    """Adjust the family's p values, give each test its outcome and minimum detectable effect."""
    p_adj = adjust([t.estimate.p for t in tests], adjustment)
    ex_adj = adjust([t.estimate.exact_p for t in tests], adjustment)
    k = sum(1 for t in tests if not math.isnan(t.estimate.p)) or 1
    for t, p, ex in zip(tests, p_adj, ex_adj):
        t.p_adjusted, t.exact_adjusted = p, ex
        sign = np.sign(t.estimate.difference) if math.isfinite(t.estimate.difference) else 0
        passed = p == p and ex == ex and p < alpha and ex < alpha and sign != 0
        t.outcome = ("claimed" if sign == t.direction else "opposite") if passed else "not resolved"
        if with_mde:
            e = t.estimate
            sd = math.sqrt(e.components.get("seed_mean_var", float("nan"))) if e.components else float("nan")
            t.mde = mde(e.n_seeds, sd, e.components.get("fact_var_over_f", 0.0) if e.components else 0.0, k, alpha) \
                if sd == sd else math.inf
    return tests


def half_verdict(tests: Iterable[Test]) -> str:
    out = {t.outcome for t in tests}
    if "claimed" in out and "opposite" not in out:
        return "supported"
    if "opposite" in out and "claimed" not in out:
        return "contradicted"
    return "not resolved"


def claim_verdict(halves: dict[str, list[Test]]) -> str:
    """Supported when every half is, contradicted when any half is (the claim is their conjunction)."""
    verdicts = [half_verdict(ts) for ts in halves.values()]
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    if "contradicted" in verdicts:
        return "contradicted"
    return "not resolved"
