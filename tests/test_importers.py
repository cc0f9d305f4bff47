"""KLAR and released-PolyFact importers; per-language export round-trips."""

import json
from collections import defaultdict

import pytest

from polyfact.data.dataset import export_configs, load_dataset_dir
from polyfact.core.errors import PolyFactError
from polyfact.data.make import import_dataset
from tests.conftest import shared


def _write_klar(root, langs=("en", "fr")):
    samples = {
        "en": [("France", "Paris", "Lyon, Paris, Nice"), ("Italy", "Rome", "Rome, Milan, Turin"),
               ("Spain", "Madrid", "Madrid, Seville, Bilbao")],
        "fr": [("France", "Paris", "Lyon, Paris, Nice"), ("Italie", "Rome", "Rome, Milan, Turin"),
               ("Espagne", "Madrid", "Madrid, Séville, Bilbao")],
    }
    tpl = {"en": ["What is the capital of <subject>? The answer is: <mask>.", "<subject>'s capital is <mask>."],
           "fr": ["Quelle est la capitale de <subject> ? La réponse est : <mask>.", "La capitale de <subject> est <mask>."]}
    for lang in langs:
        (root / lang).mkdir(parents=True)
        data = {"name": "capital", "prompt_templates": tpl[lang],
                "samples": [{"subject": s, "object": o, "object_candidates": c, "index": i}
                            for i, (s, o, c) in enumerate(samples[lang])]}
        (root / lang / "capital.json").write_text(json.dumps(data, ensure_ascii=False))
    return root


def test_klar_fixture_import(tmp_path):
    src = _write_klar(tmp_path / "klar")
    meta = import_dataset("klar", src, tmp_path / "out")
    assert meta["n_facts"] == {"train": 0, "validation": 0, "test": 3}
    rows = list(load_dataset_dir(tmp_path / "out")["test"])
    assert {r["relation"] for r in rows} == {"P36"}
    r = next(r for r in rows if r["lang"] == "fr" and r["object"] == "Paris")
    assert r["prompt"] == "Quelle est la capitale de France ? La réponse est :"
    assert len(r["paraphrases"]) == 2 and r["options"][r["answer_index"]] == "Paris"
    same = [x for x in rows if x["fact_id"] == r["fact_id"]]
    en, fr = sorted(same, key=lambda x: x["lang"])
    # option ids align candidates across languages, whatever each language's shuffle
    assert dict(zip(en["option_ids"], en["options"]))[en["option_ids"][en["answer_index"]]] == "Paris"
    assert fr["option_ids"][fr["answer_index"]] == en["option_ids"][en["answer_index"]]


@pytest.mark.slow  # over 20 s: CI runs it (CI=true or -m slow)
def test_klar_release_2619_facts_17_languages(tmp_path):
    src = shared("klar")
    meta = import_dataset("klar", src, tmp_path / "klar")
    assert sum(meta["n_facts"].values()) == 2619
    assert len(meta["languages"]) == 17
    rows = load_dataset_dir(tmp_path / "klar")["test"]
    assert len(rows) == 2619 * 17
    assert all(o[i] == obj for o, i, obj in zip(rows["options"], rows["answer_index"], rows["object"]))
    per_fact = defaultdict(set)
    for fid, lang in zip(rows["fact_id"], rows["lang"]):
        per_fact[fid].add(lang)
    assert {len(v) for v in per_fact.values()} == {17}


def test_released_format_round_trip(tmp_path):
    from polyfact.data.make import build_dataset

    cldr_data = tmp_path / "cldr"
    build_dataset("cldr", cldr_data, langs="en,de,ja,sw,ar", max_per_relation=40)
    export_configs(cldr_data, tmp_path / "released")
    line = json.loads((tmp_path / "released" / "ja" / "test.jsonl").read_text().splitlines()[0])
    assert set(line["options"]) == {"A", "B", "C", "D"} and line["answer"] in "ABCD"
    meta = import_dataset("polyfact", tmp_path / "released", tmp_path / "back")
    orig = load_dataset_dir(cldr_data)
    back = load_dataset_dir(tmp_path / "back")
    for split in ("train", "validation", "test"):
        assert len(back[split]) == len(orig[split])  # released splits kept
        a = {(r["fact_id"], r["lang"]): (r["question"], r["options"], r["answer_index"]) for r in orig[split]}
        b = {(r["fact_id"], r["lang"]): (r["question"], r["options"], r["answer_index"]) for r in back[split]}
        assert a == b
    assert meta["source"] == "polyfact"


def test_released_format_with_letter_columns(tmp_path):
    d = tmp_path / "rel" / "de"
    d.mkdir(parents=True)
    rows = [{"fact_id": "Q142|P36|Q90", "question": "Was ist die Hauptstadt von Frankreich?",
             "A": "Berlin", "B": "Paris", "C": "Rom", "D": "Wien", "answer": "B"}]
    (d / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    import_dataset("polyfact", tmp_path / "rel", tmp_path / "out")
    r = load_dataset_dir(tmp_path / "out")["test"][0]
    assert r["relation"] == "P36" and r["object"] == "Paris" and r["answer_index"] == 1
    assert r["prompt"].endswith("Antwort:")


def test_import_errors(tmp_path):
    with pytest.raises(PolyFactError, match="not a directory"):
        import_dataset("klar", tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolyFactError, match="no KLAR files"):
        import_dataset("klar", tmp_path / "empty", tmp_path / "o")
    bad = tmp_path / "bad" / "en"
    bad.mkdir(parents=True)
    (bad / "capital.json").write_text("{not json")
    with pytest.raises(PolyFactError, match="KLAR file .* is not valid JSON"):
        import_dataset("klar", tmp_path / "bad", tmp_path / "o")
    with pytest.raises(PolyFactError, match="unknown import format"):
        import_dataset("mlama", tmp_path, tmp_path / "o")


def _release(tmp_path, with_ids: bool):
    """One fact in three languages, options shuffled per language (as released)."""
    rows = {
        "en": (["Paris", "Lyon", "Rome", "Bern"], 0, ["Q90", "Q456", "Q220", "Q70"]),
        "de": (["Rom", "Paris", "Bern", "Lyon"], 1, ["Q220", "Q90", "Q70", "Q456"]),
        "fr": (["Lyon", "Berne", "Paris", "Rome"], 2, ["Q456", "Q70", "Q90", "Q220"]),
    }
    for lang, (opts, gold, ids) in rows.items():
        (tmp_path / "rel" / lang).mkdir(parents=True)
        row = {"fact_id": "Q142|P36|Q90", "question": f"capital? ({lang})", "options": opts, "answer_index": gold}
        if with_ids:
            row["option_ids"] = ids
        (tmp_path / "rel" / lang / "test.jsonl").write_text(json.dumps(row) + "\n")
    return tmp_path / "rel"


@pytest.mark.parametrize("with_ids", [True, False])
def test_imported_release_compares_entities_not_positions(tmp_path, with_ids):
    """Options are shuffled per language: two languages that both choose Paris agree, whatever
    its position; with released ids they are kept, without them options are aligned to English."""
    from polyfact.analyses import metrics as M

    import_dataset("polyfact", _release(tmp_path, with_ids), tmp_path / "out")
    rows = {r["lang"]: r for r in load_dataset_dir(tmp_path / "out")["test"]}
    paris = {lang: r["option_ids"][r["options"].index("Paris")] for lang, r in rows.items()}
    assert len(set(paris.values())) == 1 and (paris["en"] == "Q90") is with_ids
    recs = [{"fact_id": "f", "lang": lang, "correct": True, "option_ids": r["option_ids"],
             "pred_index": r["options"].index("Paris")} for lang, r in rows.items()]
    assert M.agreement_matrix(recs)["de"]["fr"] == 1.0
    lyon = [{**rec, "pred_index": rows[rec["lang"]]["options"].index("Lyon"), "correct": False} for rec in recs]
    assert M.agreement_matrix(lyon)["en"]["de"] == 1.0  # the same wrong entity agrees too
    if not with_ids:  # "Berne" vs "Bern": text differs, but it is the single leftover option
        fr = rows["fr"]
        assert fr["option_ids"][fr["options"].index("Berne")] == rows["en"]["option_ids"][3]


def test_alignment_leaves_ambiguous_options_unknown():
    from polyfact.data.sources.released import align_options

    ids = align_options("f", {"en": ["Paris", "Lyon", "Rome", "Bern"], "ja": ["パリ", "リヨン", "ローマ", "ベルン"]},
                        {"en": 0, "ja": 0})
    assert ids["en"] == ["f#0", "f#1", "f#2", "f#3"] and ids["ja"] == ["f#0", None, None, None]
