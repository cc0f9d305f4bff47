"""The one verdict rule (analyses.verdicts) on synthetic seed tables: corrections and tests against
hand computations, planted effects called in either direction, family-wise false positives at most
5 % over 1,000 null families, power at least 0.8 at the planted minimum detectable effect, and the
README's replicate numbers for Total Consistency left unresolved."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from polyfact.analyses import verdicts as V


def _table(rng: np.random.Generator, delta: float, s: int, f: int, sd_seed: float, sd_fact: float,
           sd_res: float) -> np.ndarray:
    """A seeds × facts table from the crossed model δ + a_s + b_f + e_sf."""
    return (delta + rng.normal(0, sd_seed, (s, 1)) + rng.normal(0, sd_fact, (1, f))
            + rng.normal(0, sd_res, (s, f)))


def test_corrections_by_hand():
    # Holm: sorted 0.01, 0.03, 0.04 → 3·0.01, max(0.03, 2·0.03), max(0.06, 1·0.04)
    assert V.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # BH: 0.01·3/1, min(0.03·3/2, 0.04·3/3) = 0.04, 0.04
    assert V.bh([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    out = V.holm([0.2, float("nan"), 0.01])  # NaN is not a test: the family has two
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert V.bh([0.5, 0.5]) == pytest.approx([0.5, 0.5])


def test_exact_sign_flip_by_hand():
    assert V.sign_flip_p([1, 2, 3]) == pytest.approx(2 / 8)  # all positive: the identity and its mirror
    assert V.sign_flip_p([1, -2, 3]) == pytest.approx(6 / 8)  # |±1±2±3| ≥ 2 for 6 of the 8 labellings
    assert V.exact_floor(3) == pytest.approx(0.25) and V.exact_floor(6) == pytest.approx(1 / 32)


def test_crossed_by_hand_and_against_the_paired_t_test():
    d = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 3.0]])
    e = V.crossed(d)
    # grand 2.5; seed means 2, 3; fact means 1.5, 3, 3: MS_seed = 3·0.5 = 1.5, MS_fact = 2·1.5/2 = 1.5,
    # residuals ±0.5, ±0.5, 0 → MS_res = 1/2; var = (1.5 + 1.5 − 0.5)/6
    assert e.difference == pytest.approx(2.5) and e.se == pytest.approx(math.sqrt(2.5 / 6))
    assert e.df == pytest.approx(2.5 ** 2 / (1.5 ** 2 + 1.5 ** 2 / 2 + 0.5 ** 2 / 2))
    # no fact main effect: the test is the paired t over seed means
    rng = np.random.default_rng(3)
    x = rng.normal(0.1, 1, (6, 1)) + np.zeros((6, 40))
    t = V.crossed(x)
    assert t.p == pytest.approx(ttest_1samp(x[:, 0], 0).pvalue)
    one = V.over_seeds([0.3, 0.1, 0.2, 0.25])
    assert one.p == pytest.approx(ttest_1samp([0.3, 0.1, 0.2, 0.25], 0).pvalue) and one.n_facts is None


def test_the_readme_replicate_numbers_are_not_resolved():
    """Total Consistency changes of the README's replicate (3 seeds): GRPO −6, −3, −1 facts of 140,
    SFT +2, +4, 0. Paired by seed, three seeds cannot reach the exact test's α (floor 0.25)."""
    grpo = [-0.0429, -0.0214, -0.00714]
    sft = [0.0143, 0.0286, 0.0]
    (t,) = V.decide([V.Test("total_consistency", "grpo", "sft", +1, V.over_seeds(np.subtract(grpo, sft)))])
    assert t.outcome == "not resolved" and t.estimate.exact_p == pytest.approx(0.25)
    assert t.mde == math.inf  # nothing is detectable at 3 seeds under the rule
    assert V.claim_verdict({"GRPO − SFT": [t]}) == "not resolved"


@pytest.mark.parametrize("sign", [+1, -1])
def test_planted_effects_are_called_in_either_direction(sign):
    rng = np.random.default_rng(11 if sign > 0 else 12)
    claimed = V.Test("tc", "grpo", "sft", +1, V.crossed(_table(rng, sign * 0.1, 8, 200, 0.01, 0.05, 0.3)))
    other = V.Test("acc", "grpo", "sft", +1, V.crossed(_table(rng, 0.0, 8, 200, 0.01, 0.05, 0.3)))
    V.decide([claimed, other])
    assert claimed.outcome == ("claimed" if sign > 0 else "opposite")
    assert V.half_verdict([claimed, other]) == ("supported" if sign > 0 else "contradicted")
    mixed = V.Test("x", "a", "b", -1, claimed.estimate, outcome="claimed" if sign < 0 else "opposite")
    assert V.half_verdict([claimed, mixed]) == "not resolved"  # one each way: not resolved
    # a conjunctive claim is supported only when every half is, contradicted when any half is
    assert V.claim_verdict({"a": [claimed], "b": [other]}) == ("not resolved" if sign > 0 else "contradicted")


def test_null_families_have_at_most_5_percent_false_positives():
    """1,000 families of three null tests (one crossed, two over seeds), Holm within each family:
    at most 5 % of the families call anything (the rule needs the exact test too, so it is below)."""
    rng = np.random.default_rng(2026)
    hits = 0
    for _ in range(1000):
        tests = [V.Test("tc", "a", "b", +1, V.crossed(_table(rng, 0.0, 7, 60, 0.02, 0.03, 0.3))),
                 V.Test("k", "a", "b", -1, V.over_seeds(rng.normal(0, 1, 7))),
                 V.Test("o", "a", "b", +1, V.over_seeds(rng.normal(0, 5, 7)))]
        V.decide(tests, with_mde=False)
        hits += any(t.outcome != "not resolved" for t in tests)
    assert hits <= 50, hits


def test_power_at_the_planted_minimum_detectable_effect():
    """The MDE the rule states for 8 seeds and its noise is detected in ≥ 80 % of 1,000 tables drawn
    with that effect (at least 0.77: three binomial standard errors below 0.8)."""
    s, f, sd_seed, sd_fact, sd_res = 8, 150, 0.015, 0.04, 0.3
    seed_mean_sd = math.sqrt(sd_seed ** 2 + sd_res ** 2 / f)
    delta = V.mde(s, seed_mean_sd, sd_fact ** 2 / f)
    assert 0 < delta < 0.1
    rng = np.random.default_rng(5)
    passed = 0
    for _ in range(1000):
        (t,) = V.decide([V.Test("tc", "a", "b", +1, V.crossed(_table(rng, delta, s, f, sd_seed, sd_fact, sd_res)))],
                        with_mde=False)
        passed += t.outcome == "claimed"
    assert passed >= 770, passed
    # a smaller effect is detected less often; 3 seeds detect nothing (the exact floor 0.25)
    assert V.power(delta / 2, s, seed_mean_sd, sd_fact ** 2 / f) < 0.8
    assert V.mde(3, seed_mean_sd) == math.inf and V.seeds_needed(seed_mean_sd, 0.0, delta) is not None
