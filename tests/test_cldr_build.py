"""The embedded CLDR build: size, options, splits, determinism."""

from collections import defaultdict

import pytest

from polyfact.data.dataset import load_dataset_dir, load_meta
from polyfact.core.io import dir_digest
from polyfact.data.languages import ALL_LANGS
from polyfact.data.make import build_dataset
from polyfact.data.sources.cldr import cldr_facts


@pytest.fixture(scope="module")
def rows(cldr_data):
    dd = load_dataset_dir(cldr_data)
    return [r for split in dd for r in dd[split]]


def test_at_least_1000_facts_in_all_22_languages(cldr_data, rows):
    meta = load_meta(cldr_data)
    assert sum(meta["n_facts"].values()) >= 1000
    langs_per_fact = defaultdict(set)
    for r in rows:
        langs_per_fact[r["fact_id"]].add(r["lang"])
    assert all(v == set(ALL_LANGS) for v in langs_per_fact.values())
    assert meta["training_langs"] == "en de id pt ar bn sw es ru fr ja zh".split()
    assert set(meta["heldout_langs"]) == set("ca el fa he hu ko nl tr uk vi".split())
    assert (cldr_data / "README.md").read_text().count("| P") >= 7


def test_options_are_four_distinct_same_entities_gold_included(rows):
    by_fact = defaultdict(list)
    for r in rows:
        assert len(r["options"]) == 4 and len(set(r["options"])) == 4
        assert r["options"][r["answer_index"]] == r["object"]
        assert r["option_ids"][r["answer_index"]] == r["object_id"]
        by_fact[r["fact_id"]].append(r)
    for fid, group in by_fact.items():
        assert len({frozenset(r["option_ids"]) for r in group}) == 1, fid  # same entities everywhere
    orders = {tuple(r["option_ids"]) for r in by_fact[next(iter(by_fact))]}
    assert len(orders) > 1  # shuffled per language


def test_no_distractor_is_another_true_object(rows):
    truths = defaultdict(set)
    for r in rows:
        truths[(r["subject_id"], r["relation"])].add(r["object_id"])
    for r in rows:
        others = set(r["option_ids"]) - {r["object_id"]}
        assert not others & truths[(r["subject_id"], r["relation"])], r["fact_id"]


def test_splits_are_disjoint_by_fact(rows):
    split_of = defaultdict(set)
    for r in rows:
        split_of[r["fact_id"]].add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
    n = len(split_of)
    test_share = sum(1 for s in split_of.values() if s == {"test"}) / n
    assert 0.38 < test_share < 0.42  # the toy world's split 0.5 / 0.1 / 0.4 (more test facts: power)


def test_labels_are_localized_with_cldr_fallback():
    facts = {f.fact_id: f for f in cldr_facts(["en", "ja", "de"], ["P36", "P38"])}
    paris = facts["territory:FR|P36|zone:Europe/Paris"]
    assert paris.subject == {"en": "France", "ja": "フランス", "de": "Frankreich"}
    assert paris.object["ja"] == "パリ" and paris.object["en"] == "Paris"  # en falls back to the zone id
    assert facts["territory:JP|P38|currency:JPY"].object["en"] == "Japanese Yen"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = build_dataset("cldr", tmp_path / "a", langs="en,de,ja", seed=3)
    b = build_dataset("cldr", tmp_path / "b", langs="en,de,ja", seed=3)
    c = build_dataset("cldr", tmp_path / "c", langs="en,de,ja", seed=4)
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert dir_digest(tmp_path / "a") == dir_digest(tmp_path / "b") != dir_digest(tmp_path / "c")


def test_filters_balance_and_single_object(tmp_path):
    meta = build_dataset("cldr", tmp_path / "d", langs="en,fr", relations="P47,P30", max_per_relation=50,
                         single_object=True)
    ds = load_dataset_dir(tmp_path / "d")
    rows = [r for s in ds for r in ds[s]]
    per_rel = defaultdict(set)
    for r in rows:
        per_rel[r["relation"]].add(r["fact_id"])
    assert {k: len(v) for k, v in per_rel.items()} == {"P47": 50, "P30": 50}
    subj = [r["subject_id"] for r in rows if r["relation"] == "P47" and r["lang"] == "en"]
    assert len(subj) == len(set(subj))
    assert meta["dropped"]["relation balance"] > 0 and meta["dropped"]["single object"] > 0
