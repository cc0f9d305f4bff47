"""Every recall/consistency metric against hand-computed values."""

import math

import pytest

from polyfact.analyses import metrics as M


def rec(fact, lang, correct, pred=None, ids=("a", "b", "c", "d"), scores=None, rel="P36"):
    return {"fact_id": fact, "lang": lang, "correct": correct, "relation": rel,
            "pred_index": pred, "option_ids": list(ids), "option_scores": scores}


# 3 facts × 3 languages. en: all correct; de: f1,f2 correct; ja: f1 correct.
# gold is option "a" everywhere; wrong answers pick "b" (de f3, ja f2) or "c" (ja f3).
RECS = [
    rec("f1", "en", True, 0), rec("f1", "de", True, 0), rec("f1", "ja", True, 0),
    rec("f2", "en", True, 0), rec("f2", "de", True, 0), rec("f2", "ja", False, 1),
    rec("f3", "en", True, 0), rec("f3", "de", False, 1), rec("f3", "ja", False, 2, rel="P38"),
]


def test_accuracy_by_language_relation_group():
    assert M.accuracy(RECS) == {"en": 1.0, "de": pytest.approx(2 / 3), "ja": pytest.approx(1 / 3)}
    assert M.accuracy(RECS, "relation") == {"P36": pytest.approx(6 / 8), "P38": 0.0}
    assert M.accuracy(RECS, "group") == {"high": pytest.approx(6 / 9)}


def test_total_consistency():
    assert M.total_consistency(RECS) == pytest.approx(1 / 3)  # only f1 correct everywhere


def test_coverlap_by_hand():
    co = M.coverlap_matrix(RECS)
    assert co["en"]["de"] == pytest.approx(2 / 3)  # both {f1,f2} / either {f1,f2,f3}
    assert co["de"]["ja"] == pytest.approx(1 / 2)  # both {f1} / either {f1,f2}
    assert co["ja"]["ja"] == 1.0


def test_agreement_by_hand():
    ag = M.agreement_matrix(RECS)
    assert ag["en"]["de"] == pytest.approx(2 / 3)  # f1 a=a, f2 a=a, f3 a≠b
    assert ag["de"]["ja"] == pytest.approx(1 / 3)  # f1 a=a, f2 a≠b, f3 b≠c
    # agreement follows the entity, not the position: options shuffled per language
    x = rec("g", "en", True, 0, ids=("q1", "q2"))
    y = rec("g", "fr", False, 0, ids=("q2", "q1"))  # same position, other entity
    assert M.agreement_matrix([x, y])["en"]["fr"] == 0.0
    y2 = rec("g", "fr", True, 0, ids=("q2", "q1"))  # other position, same entity q2
    x2 = rec("g", "en", True, 1, ids=("q1", "q2"))
    assert M.agreement_matrix([x2, y2])["en"]["fr"] == 1.0


def test_rankc_worked_example():
    # N = 3, rankings a>b>c and b>a>c: top1 overlap 0, top2 2/2, top3 3/3
    e = math.e
    w = [e**2 / (e**2 + e + 1), e / (e**2 + e + 1), 1 / (e**2 + e + 1)]
    assert list(M.rankc_weights(3)) == pytest.approx(w)
    assert M.rankc_pair(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx(w[1] + w[2])
    assert M.rankc_pair(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    assert M.rankc_pair(["a", "b", "c"], ["c", "b", "a"]) == pytest.approx(w[1] * 1 / 2 + w[2])
    # through records: scores define the rankings, option ids align languages
    x = rec("q", "en", True, 0, ids=("a", "b", "c"), scores=[-1.0, -2.0, -3.0])
    y = rec("q", "de", True, 1, ids=("c", "a", "b"), scores=[-3.0, -2.0, -1.0])  # b > a > c
    assert M.rankc_matrix([x, y])["en"]["de"] == pytest.approx(w[1] + w[2])


def test_mcnemar_exact_by_hand():
    a = [rec(f"f{i}", "en", i < 10) for i in range(12)]  # A right on f0..f9
    b = [rec(f"f{i}", "en", i >= 10) for i in range(12)]  # B right on f10, f11
    out = M.mcnemar(a, b)
    assert (out["only_a"], out["only_b"]) == (10, 2)
    assert out["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)


def test_bootstrap_intervals_cover_and_are_seeded():
    acc_en = lambda rs: M.accuracy(rs)["en"]
    recs = [rec(f"f{i}", "en", i % 4 != 0) for i in range(40)]  # 75 %
    p, lo, hi = M.bootstrap_ci(recs, acc_en, n=300, seed=1)
    assert p == 0.75 and lo < 0.75 < hi and hi - lo < 0.4
    assert M.bootstrap_ci(recs, acc_en, n=300, seed=1) == (p, lo, hi)
    fast = M.fast_accuracy_ci(recs, n=300, seed=1)["accuracy"]["en"]
    assert fast["value"] == 0.75 and fast["ci"][0] < 0.75 < fast["ci"][1]


def test_fast_ci_total_consistency_matches_slow_definition():
    fast = M.fast_accuracy_ci(RECS, n=50, seed=0)
    assert fast["total_consistency"]["value"] == pytest.approx(M.total_consistency(RECS))
    assert fast["accuracy"]["de"]["value"] == pytest.approx(2 / 3)


def test_paired_bootstrap_difference():
    a = [rec(f"f{i}", "en", True) for i in range(30)]
    b = [rec(f"f{i}", "en", i % 2 == 0) for i in range(30)]
    out = M.paired_bootstrap(a, b, lambda rs: M.accuracy(rs)["en"], n=200, seed=0)
    assert out["difference"] == pytest.approx(0.5)
    assert out["ci"][0] > 0.2 and out["p_value"] < 0.01


def test_summarize_keys():
    s = M.summarize(RECS)
    assert s["n_facts"] == 3 and s["languages"] == ["en", "de", "ja"]
    assert s["coverlap_mean"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)


def test_vectorized_paired_changes_match_the_generic_bootstrap():
    a = [rec(f"f{i}", lang, (i + j) % 3 != 0) for i in range(25) for j, lang in enumerate(["en", "de", "ja"])]
    b = [rec(f"f{i}", lang, (i * j) % 2 == 0) for i in range(25) for j, lang in enumerate(["en", "de", "ja"])]
    fast = M.paired_changes(a, b, n=300, seed=4)

    def mean_acc(rs):
        acc = M.accuracy(rs)
        return sum(acc.values()) / len(acc)

    slow_acc = M.paired_bootstrap(a, b, mean_acc, n=300, seed=4)
    slow_tc = M.paired_bootstrap(a, b, M.total_consistency, n=300, seed=4)
    assert fast["mean_accuracy"]["difference"] == pytest.approx(slow_acc["difference"])
    assert fast["total_consistency"]["difference"] == pytest.approx(slow_tc["difference"])
    assert fast["mean_accuracy"]["ci"] == pytest.approx(slow_acc["ci"], abs=1e-9)
    assert fast["total_consistency"]["ci"] == pytest.approx(slow_tc["ci"], abs=1e-9)


def test_total_consistency_counts_only_facts_in_every_language():
    """The study's rule: a fact missing in one evaluated language does not count (n reported)."""
    recs = [
        {"fact_id": "a", "lang": "en", "correct": True}, {"fact_id": "a", "lang": "de", "correct": True},
        {"fact_id": "a", "lang": "fr", "correct": True},
        {"fact_id": "b", "lang": "en", "correct": True}, {"fact_id": "b", "lang": "de", "correct": False},
        {"fact_id": "b", "lang": "fr", "correct": True},
        {"fact_id": "c", "lang": "en", "correct": True}, {"fact_id": "c", "lang": "de", "correct": True},  # no fr
    ]
    assert M.total_consistency(recs) == 0.5  # a (all correct) and b (one wrong); c is incomplete
    s = M.summarize(recs, with_rankc=False)
    assert s["total_consistency_n"] == 2 and s["n_facts"] == 3
    assert M.fast_accuracy_ci(recs, n=200, seed=0)["total_consistency"]["value"] == 0.5  # the same rule
