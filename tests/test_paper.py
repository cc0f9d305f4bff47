"""The study's figures and tables from its released results (numbers against the published ones
on the real release, when present), recomputation against per-item records, bad release input,
run figures side by side, table writers, and the BMLAMA-53 / Global-MMLU-Lite importers."""

from __future__ import annotations

import hashlib
import json
import math
from itertools import combinations
from pathlib import Path

import pytest

from polyfact.analyses.paper import numbers as N
from polyfact.analyses.paper.release import open_release, parse_tags, read_consistency, read_klar
from polyfact.core.errors import PolyFactError
from polyfact.figures.paper import paper_outputs
from tests.conftest import shared

PF_LANGS = ["en", "de", "id", "pt", "ar", "bn", "sw", "es", "ru", "fr", "ja", "zh"]
KLAR_LANGS = ["ar", "ca", "el", "en", "es", "fa", "fr", "he", "hu", "ja", "ko", "nl", "ru", "tr", "uk", "vi", "zh"]
QWEN = {"base": "qwen-base", "sft": "qwen-sft-10k", "grpo": "qwen-sw-clip5"}


# --------------------------------------------------------------------------------------------
# The real release (skipped when ../shared/data/paper-release is absent)


@pytest.fixture(scope="module")
def release_run(tmp_path_factory):
    release = shared("paper-release")
    out = tmp_path_factory.mktemp("paper") / "out"
    return release, out, paper_outputs(release, out, static=False)


def _row(rel, fam, role: str) -> dict:
    entry = {}
    for bench, reader in (("polyfact_clean", read_consistency), ("bmlama53", read_consistency),
                          ("gmmlu_lite", read_consistency), ("klar", read_klar)):
        tag = rel.tag_for(fam, role, bench)
        if tag:
            entry[bench] = (tag, reader(rel.path(bench, tag)))
    return N.main_values(entry)


PUBLISHED = {  # the study's emit_main_table.py on its release: PFhi PFlo BMhi BMlo GMhi GMlo KLtr KLood | PFtc PFrk BMrk GMtc GMrk
    "base": [54.2, 42.3, 26.5, 24.7, 68.6, 50.1, 47.7, 35.8, 5.3, 62.4, 43.6, 13.8, 69.8],
    "sft": [61.1, 48.1, 27.1, 26.5, 67.2, 47.2, 50.5, 39.9, 8.7, 65.6, 44.2, 8.8, 68.0],
    "dco": [59.5, 48.1, 28.5, 26.5, 68.2, 49.6, 47.2, 35.8, 11.8, 68.3, 44.1, 13.2, 69.6],
    "cm-align": [57.2, 44.1, 26.8, 24.5, 66.6, 46.9, 53.4, 39.0, 7.0, 63.5, 43.6, 14.0, 71.4],
    "grpo": [59.4, 45.7, 26.6, 24.2, 68.0, 48.0, 57.2, 44.0, 7.7, 64.0, 43.3, 12.5, 69.4],
    "cpt": [49.0, 39.6, 25.3, 24.5, 65.7, 47.0, 39.0, 23.8, 4.0, 61.1, 43.8, 13.2, 68.3],
    "cpt+sft": [56.8, 50.6, 25.7, 25.6, 64.9, 47.2, 38.0, 22.8, 5.4, 63.5, 44.3, 12.0, 68.8],
    "cpt+dco": [56.6, 47.6, 27.5, 27.3, 65.3, 47.8, 38.9, 26.1, 13.4, 68.7, 44.3, 14.5, 68.9],
    "cpt+grpo": [52.2, 44.7, 26.0, 25.7, 65.8, 48.8, 46.0, 30.8, 4.8, 60.6, 43.9, 11.8, 68.6],
}


def test_release_main_table_matches_the_paper(release_run):
    release, out, res = release_run
    rel = open_release(release)
    fam = rel.families[0]
    assert fam.name == "qwen"
    keys = [c.key for c in N.MAIN_COLUMNS]
    for role, published in PUBLISHED.items():
        got = _row(rel, fam, role)
        assert [round(got[k], 1) for k in keys] == pytest.approx(published, abs=1e-9), role
    rows = {r["row"]: r for r in __import__("csv").DictReader((out / "main.csv").open())}
    assert list(rows) == ["base", "sft", "dco", "cm-align", "grpo"]
    assert float(rows["base"]["PolyFact-Clean High"]) == pytest.approx(54.2, abs=0.05)
    assert float(rows["base"]["Consistency PF RankC"]) == pytest.approx(62.4, abs=0.05)
    md = (out / "main.md").read_text()
    assert "5.3 / –" in md and "9/3" in md and "Global-MMLU-Lite 8/3" in md and "BMLAMA-53 9/2" in md
    tex = (out / "main.tex").read_text()
    assert "\\textbf{57.2}" in tex and "\\,/\\,--" in tex and "\\toprule" in tex
    assert not res["skipped"] and res["disagreements"] == [] and res["checked"] > 500


def test_release_klar_lape_mexa_lahis_numbers(release_run):
    rel = open_release(release_run[0])
    fam = rel.families[0]
    klar = N.klar_arms(rel, fam).data
    expected = {"base": (47.7, 35.8), "sft": (50.5, 39.9), "dco": (47.2, 35.8), "cm-align": (53.4, 39.0),
                "grpo": (57.2, 44.0), "cpt": (39.0, 23.8), "cpt+sft": (38.0, 22.8), "cpt+dco": (38.9, 26.1),
                "cpt+grpo": (46.0, 30.8)}
    assert {r: tuple(round(v, 1) for v in a["split"]) for r, a in klar.items()} == expected
    order = N.klar_language_order(klar["base"]["accuracy"])
    assert order == "en es fr ru ar ja zh nl tr uk ca he hu el ko vi fa".split()
    lang_table = N.klar_language_table(klar["base"], klar["grpo"])
    assert "improves 17/17" in lang_table.notes[0]
    assert round(lang_table.row("ar").values["base"], 1) == 28.0 and round(lang_table.row("ar").values["other"], 1) == 50.7
    lape = N.lape_arms(rel, fam).data
    assert {a["tag"] for a in lape.values()} >= {"qwen-base", "qwen-grpo"}  # GRPO's LAPE files carry its other name
    assert all(sum(a["counts"].values()) == 5304 for a in lape.values())
    base = lape["base"]["counts"]
    assert sorted(base, key=lambda x: -base[x]) == "zh ja sw bn ru en de id fr ar pt es".split()
    assert (base["zh"], base["es"], lape["grpo"]["counts"]["zh"]) == (1595, 77, 1589)
    mexa = N.mexa_arms(rel, fam).data
    raw = mexa["base"]["mexa"].per_layer["raw"]["x_y"]
    assert max(range(len(raw)), key=raw.__getitem__) == 14 and round(max(raw), 3) == 0.616
    d = N.delta_curves(mexa, "raw", "x_y")
    assert (round(max(d["sft"]), 3), d["sft"].index(max(d["sft"]))) == (0.022, 8)
    assert (round(max(d["cm-align"]), 3), d["cm-align"].index(max(d["cm-align"]))) == (0.034, 27)
    assert (round(min(d["grpo"]), 3), d["grpo"].index(min(d["grpo"]))) == (-0.009, 20)
    cen = N.delta_curves(mexa, "centered", "x_y")
    assert round(max(mexa["base"]["mexa"].per_layer["centered"]["x_y"]), 3) == 0.857
    assert (round(max(cen["cm-align"]), 3), cen["cm-align"].index(max(cen["cm-align"]))) == (0.046, 28)
    lahis = N.lahis_models(rel).data
    assert {k: (m["n_top"], round(m["mean_overlap_pct"], 1)) for k, m in lahis.items()} == {
        "olmo2": (20, 38.9), "olmo2_ft": (20, 51.2)}
    assert all(math.isclose(sum(p), 100.0) for m in lahis.values() for p in m["layer_profile_pct"].values())


def test_release_outputs_index_sources_and_disagreements(release_run):
    release, out, res = release_run
    names = set(res["written"])
    for f in ("fig4a_klar.html", "fig4a_klar_full.html", "fig4b_klar_per_language.html", "fig5_lape.html",
              "mexa_x_y.html", "fig7_overlap_olmo2.html", "fig8_layers_olmo2_ft.html", "appendix_klar.tex",
              "appendix_gmmlu.csv", "lahis_summary.md", "index.html", "sources.json", "disagreements.md"):
        assert f in names, f
    assert not any(n.endswith((".png", ".pdf", ".pth", ".json")) and n != "sources.json" for n in names)
    index = (out / "index.html").read_text()
    pos = [index.index(f"id='{k}'") for k in ("main", "fig4a", "fig4b", "fig5", "mexa", "fig7", "fig8", "appendix")]
    assert pos == sorted(pos) and "fig5_lape_qwen.png" in index
    src = json.loads((out / "sources.json").read_text())["outputs"]
    entry = next(s for s in src["main.md"] if s["file"] == "summary/qwen-base_polyfact_clean_consistency.json")
    assert entry["sha256"] == hashlib.sha256((release / entry["file"]).read_bytes()).hexdigest()
    assert any(s["file"] == "olmo2/olmo2_en.pth" for s in src["fig7_overlap_olmo2.html"])
    assert "No disagreements" in (out / "disagreements.md").read_text()
    assert any("CPT+GRPO" in m and "Qwen-2.5-7B-TED-grpo" in m for m in res["missing"])
    gm = (out / "appendix_gmmlu.md").read_text()
    assert "column ru dropped" in gm and gm.splitlines()[2].endswith("| High |") and "| 68.59 |" in gm


def test_tags_override_alternates_and_unknown_tags(release_run):
    release = release_run[0]
    rel = open_release(release, {"grpo": "qwen-sw-ladder"})
    klar = N.klar_arms(rel, rel.families[0], ("base", "grpo")).data
    assert tuple(round(v, 1) for v in klar["grpo"]["split"]) == (56.5, 43.6)
    assert parse_tags("base=qwen-base, grpo=qwen-sw-clip5|qwen-grpo") == {"base": "qwen-base",
                                                                         "grpo": "qwen-sw-clip5|qwen-grpo"}
    for bad, words in (({"grpo": "qwen-nope"}, "'qwen-nope' (role grpo) names nothing"),
                       ({"ppo": "qwen-base"}, "unknown role")):
        with pytest.raises(PolyFactError) as err:
            open_release(release, bad)
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(PolyFactError, match="must read role=tag"):
        parse_tags("base")


# --------------------------------------------------------------------------------------------
# Small releases written here


def _rankc(a: list[int], b: list[int]) -> float:
    n = len(a)
    w = [math.exp(n - j) for j in range(1, n + 1)]
    return sum(w[j - 1] / sum(w) * len(set(a[:j]) & set(b[:j])) / j for j in range(1, n + 1))


def consistency_doc(preds: dict, langs: list[str], benchmark: str = "global_mmlu_lite") -> dict:
    """A summary written as the study's evaluator does (options aligned by position)."""
    facts = list(preds.values())
    hist: dict[str, int] = {}
    for p in facts:
        k = sum(p[x]["correct"] for x in langs)
        hist[str(k)] = hist.get(str(k), 0) + 1
    order = {fid: {x: sorted(range(4), key=lambda i: p[x]["scores"][i], reverse=True) for x in langs}
             for fid, p in preds.items()}
    rk = {f"{a}-{b}": sum(_rankc(o[a], o[b]) for o in order.values()) / len(order) for a, b in combinations(langs, 2)}
    ag = {f"{a}-{b}": sum(o[a][0] == o[b][0] for o in order.values()) / len(order) for a, b in combinations(langs, 2)}
    return {"per_language_accuracy": {x: {"accuracy": sum(p[x]["correct"] for p in facts) / len(facts), "n": len(facts)}
                                      for x in langs},
            "total_consistency": {"all_langs_correct_fraction": hist.get(str(len(langs)), 0) / len(facts),
                                  "n_facts_all_langs": len(facts), "n_facts_total": len(facts),
                                  "correct_language_count_histogram": hist,
                                  "mean_languages_correct": sum(int(k) * v for k, v in hist.items()) / len(facts)},
            "rankc": {"pairwise": rk, "average": sum(rk.values()) / len(rk),
                      "average_en_x": sum(v for k, v in rk.items() if k.startswith("en-")) / (len(langs) - 1)},
            "answer_agreement": {"pairwise": ag, "average": sum(ag.values()) / len(ag)},
            "config": {"benchmark": benchmark, "langs": langs, "score_mode": "byte", "n_facts": len(facts)},
            "predictions": preds}


def _predictions(seed: int, langs: list[str], n: int = 6) -> dict:
    out = {}
    for i in range(n):
        out[f"q{i}"] = {}
        for j, x in enumerate(langs):
            scores = [-((i * 7 + j * 3 + k * (seed + 2)) % 5) - 0.1 * k for k in range(4)]
            pred = max(range(4), key=lambda k: scores[k])
            out[f"q{i}"][x] = {"scores": scores, "pred_idx": pred, "correct": pred == (i % 4)}
    return out


def write_release(root: Path, roles=("base", "sft", "grpo"), with_lape: bool = True) -> Path:
    """A small release in the study's layout (summary/, summary/klar/, summary/mexa/, lape/)."""
    (root / "summary" / "klar").mkdir(parents=True)
    (root / "summary" / "mexa").mkdir()
    for r, role in enumerate(roles):
        tag = QWEN[role]
        # 40 facts: 5 + r right in all 12 languages, 26 in 6, the rest in none; counts per language to match
        acc = {x: {"accuracy": (17 + 2 * (i % 2) + r) / 40, "n": 40} for i, x in enumerate(PF_LANGS)}
        hist = {"0": 9 - r, "6": 26, "12": 5 + r}
        pairs = {f"{a}-{b}": 0.5 + 0.01 * r for a, b in combinations(PF_LANGS, 2)}
        doc = {"per_language_accuracy": acc,
               "total_consistency": {"all_langs_correct_fraction": (5 + r) / 40, "n_facts_all_langs": 40,
                                     "n_facts_total": 40, "correct_language_count_histogram": hist,
                                     "mean_languages_correct": (216 + 12 * r) / 40},
               "rankc": {"pairwise": pairs, "average": 0.5 + 0.01 * r}, "config": {"langs": PF_LANGS}}
        (root / "summary" / f"{tag}_polyfact_clean_consistency.json").write_text(json.dumps(doc))
        per_lang = {x: [100 + 10 * i + 20 * r, 400] for i, x in enumerate(KLAR_LANGS)}
        (root / "summary" / "klar" / f"{tag}_klar_alllangs.json").write_text(json.dumps({"per_lang": per_lang}))
        curve = [0.1 * k + 0.01 * r for k in range(5)]
        mexa = {"config": {"n_layers": 5}, "alignment": {v: {"per_layer": {"x_y": curve, "en_x": curve}} for v in
                                                         ("raw", "centered")}, "mid_layer": 2,
                "summary": {"raw": {"x_y": curve[2]}}}
        (root / "summary" / "mexa" / f"{tag}_mexa.json").write_text(json.dumps(mexa))
        if with_lape:
            (root / "lape" / tag).mkdir(parents=True)
            sel = {"1": {"en": [0, 1 + r], "sw": [5]}, "2": {"zh": [0, 1, 2]}}
            (root / "lape" / tag / "lape_results.json").write_text(json.dumps(sel))
            (root / "lape" / tag / "meta.json").write_text(json.dumps(
                {"langs": ["en", "sw", "zh"], "num_layers": 2, "intermediate_size": 8, "n_selected": 6}))
    return root


def test_small_release_outputs_and_missing_inputs_skipped(tmp_path):
    rel = write_release(tmp_path / "rel", roles=("base", "sft"))
    res = paper_outputs(rel, tmp_path / "out", static=False)
    assert "fig4a_klar" in res["figures"] and "fig5_lape" in res["figures"] and "mexa_x_y" in res["figures"]
    assert any(s.startswith("Fig 4b skipped") and "summary/klar/qwen-sw-clip5_klar_alllangs.json" in s
               for s in res["skipped"])
    assert any("Fig 7/8 skipped" in s for s in res["skipped"])
    assert any("no GRPO" in m for m in res["missing"])
    assert res["disagreements"] == [] and res["checked"] > 0
    text = (tmp_path / "out" / "disagreements.md").read_text()
    assert "No disagreements" in text and "carry no 'predictions'" in text
    with pytest.raises(PolyFactError, match="already exists"):
        paper_outputs(rel, tmp_path / "out", static=False)


def test_recomputation_from_predictions_and_records_lists_disagreements(tmp_path):
    root = write_release(tmp_path / "rel", roles=("base", "sft"), with_lape=False)
    langs = ["en", "de", "sw"]
    for r, role in enumerate(("base", "sft")):
        doc = consistency_doc(_predictions(r, langs), langs)
        if role == "sft":
            doc["per_language_accuracy"]["de"]["accuracy"] = 0.5 + 1 / 3 - doc["per_language_accuracy"]["de"]["accuracy"]
            doc["rankc"]["pairwise"]["en-sw"] += 0.01
        (root / "summary" / f"{QWEN[role]}_gmmlu_lite_consistency.json").write_text(json.dumps(doc))
    records = [{"language": x, "relation": "capital", "index": i, "correct": (i + j) % 3 == 0, "contaminated": i < 2}
               for j, x in enumerate(KLAR_LANGS) for i in range(6)]
    per_lang = {x: [sum(r["correct"] for r in records if r["language"] == x), 6] for x in KLAR_LANGS}
    per_lang["en"][0] += 1  # the released count disagrees with its records
    full = [sum(v[0] for v in per_lang.values()), 6 * len(KLAR_LANGS)]
    (root / "summary" / "klar" / "qwen-base_klar_alllangs.json").write_text(json.dumps(
        {"per_lang": per_lang, "records": records, "subset_acc": {"full": [*full, full[0] / full[1]]}}))
    res = paper_outputs(root, tmp_path / "out", static=False)
    found = "\n".join(res["disagreements"])
    assert "per_language_accuracy[de] (from predictions)" in found
    assert "rankc.pairwise[en-sw] (from predictions)" in found and "rankc.average" in found
    assert "per_lang[en] accuracy (from records)" in found and "subset_acc.full accuracy (from records)" in found
    assert "qwen-base_gmmlu_lite" not in found  # the base file is consistent with its predictions
    md = (tmp_path / "out" / "disagreements.md").read_text()
    assert "disagreement(s)" in md and "| summary/qwen-sft-10k_gmmlu_lite_consistency.json |" in md
    assert "significance.md" in res["written"] and "Global-MMLU-Lite SFT mean_accuracy" in (
        tmp_path / "out" / "significance.md").read_text()


def test_study_results_folder_and_full_files_first(tmp_path):
    results = write_release(tmp_path / "repo" / "results", roles=("base", "sft"), with_lape=False)
    langs = ["en", "de", "sw"]
    (results / "qwen-base_gmmlu_lite_consistency.json").write_text(json.dumps(consistency_doc(_predictions(0, langs), langs)))
    stripped = consistency_doc(_predictions(0, langs), langs)
    del stripped["predictions"]
    (results / "summary" / "qwen-base_gmmlu_lite_consistency.json").write_text(json.dumps(stripped))
    for root in (tmp_path / "repo", results):  # a folder holding results/, or results/ itself
        rel = open_release(root)
        assert rel.families[0].name == "qwen" and rel.tag_for(rel.families[0], "sft", "klar") == "qwen-sft-10k"
        assert rel.path("gmmlu_lite", "qwen-base") == results / "qwen-base_gmmlu_lite_consistency.json"
        assert read_consistency(rel.path("gmmlu_lite", "qwen-base")).predictions is not None


def _corrupt(root: Path, name: str) -> None:
    klar = root / "summary" / "klar" / "qwen-base_klar_alllangs.json"
    pf = root / "summary" / "qwen-base_polyfact_clean_consistency.json"
    if name == "missing per_lang":
        klar.write_text(json.dumps({"langs": ["en"]}))
    elif name == "wrong types":
        klar.write_text(json.dumps({"per_lang": {"en": ["many", 10]}}))
    elif name == "correct above total":
        klar.write_text(json.dumps({"per_lang": {"en": [11, 10]}}))
    elif name == "NaN accuracy":
        doc = json.loads(pf.read_text())
        doc["per_language_accuracy"]["en"]["accuracy"] = float("nan")
        pf.write_text(json.dumps(doc))
    elif name == "not JSON":
        pf.write_text("{not json")
    elif name == "lape index beyond meta":
        (root / "lape" / "qwen-base" / "lape_results.json").write_text(json.dumps({"1": {"en": [8]}}))
    elif name == "lape layer beyond meta":
        (root / "lape" / "qwen-base" / "lape_results.json").write_text(json.dumps({"3": {"en": [1]}}))
    elif name == "mexa ragged curves":
        (root / "summary" / "mexa" / "qwen-base_mexa.json").write_text(json.dumps(
            {"alignment": {"raw": {"per_layer": {"x_y": [0.1, 0.2], "en_x": [0.1]}}}}))


BAD = {"missing per_lang": ("qwen-base_klar_alllangs.json", "per_lang"),
       "wrong types": ("qwen-base_klar_alllangs.json", "integer"),
       "correct above total": ("qwen-base_klar_alllangs.json", "correct ≤ total"),
       "NaN accuracy": ("qwen-base_polyfact_clean_consistency.json", "finite number"),
       "not JSON": ("qwen-base_polyfact_clean_consistency.json", "not valid JSON"),
       "lape index beyond meta": ("lape_results.json", "intermediate_size"),
       "lape layer beyond meta": ("lape_results.json", "num_layers"),
       "mexa ragged curves": ("qwen-base_mexa.json", "one length")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_release_files_are_one_line_errors_and_write_nothing(tmp_path, case):
    root = write_release(tmp_path / "rel")
    _corrupt(root, case)
    with pytest.raises(PolyFactError) as err:
        paper_outputs(root, tmp_path / "out", static=False)
    msg = str(err.value)
    assert "\n" not in msg and BAD[case][0] in msg and BAD[case][1] in msg, msg
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_bad_release_directories_tags_and_outputs(tmp_path):
    empty = tmp_path / "empty"
    (empty / "summary").mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    root = write_release(tmp_path / "rel")
    cases = [(lambda: paper_outputs(empty, tmp_path / "o1"), "holds none of the study's result files"),
             (lambda: paper_outputs(tmp_path / "nowhere", tmp_path / "o2"), "release directory not found"),
             (lambda: paper_outputs(root, tmp_path / "o3", tags={"sft": "qwen-sft-1500"}), "names nothing"),
             (lambda: paper_outputs(root, root / "figs"), "lies inside the input"),
             (lambda: paper_outputs(root, root), "lies inside the input"),
             (lambda: paper_outputs(root / "summary", root), "lies inside the input")]
    for call, words in cases:
        with pytest.raises(PolyFactError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)
    assert not any((tmp_path / f"o{i}").exists() for i in (1, 2, 3)) and not (root / "figs").exists()
    # a failure with --force leaves the existing output as it was
    out = tmp_path / "kept"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    _corrupt(root, "missing per_lang")
    with pytest.raises(PolyFactError):
        paper_outputs(root, out, static=False, force=True)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_lahis_tensors_validated(tmp_path):
    torch = pytest.importorskip("torch")
    root = tmp_path / "rel"
    (root / "olmo2").mkdir(parents=True)
    for i, x in enumerate(["en", "de", "sw"]):
        torch.save(torch.arange(16, dtype=torch.float32).reshape(4, 4).roll(i), root / "olmo2" / f"olmo2_{x}.pth")
    rel = open_release(root)
    models = N.lahis_models(rel).data
    assert models["olmo2"]["languages"] == ["en", "de", "sw"] and models["olmo2"]["n_top"] == 1
    torch.save(torch.full((4, 4), float("nan")), root / "olmo2" / "olmo2_de.pth")
    with pytest.raises(PolyFactError, match="olmo2_de.pth: holds NaN"):
        N.lahis_models(open_release(root))
    torch.save(torch.zeros(2, 4, 4), root / "olmo2" / "olmo2_de.pth")
    with pytest.raises(PolyFactError, match="2-D float tensor"):
        N.lahis_models(open_release(root))


# --------------------------------------------------------------------------------------------
# A run beside the release, static export, table writers


def write_run(root: Path) -> Path:
    res = root / "results"
    (root / "data").mkdir(parents=True)
    (root / "data" / "polyfact.json").write_text(json.dumps({"training_langs": ["en", "de"]}))
    for c, shift in (("base", 0.0), ("grpo", 0.1)):
        acc = {"en": 0.6 + shift, "de": 0.4 + shift, "ko": 0.2 + shift}
        for analysis in ("recall", "recall-klar"):
            (res / analysis).mkdir(parents=True, exist_ok=True)
            (res / analysis / f"{c}.json").write_text(json.dumps({"checkpoint": c, "metrics": {
                "accuracy": acc, "accuracy_by_group": {"high": 0.5 + shift, "heldout": 0.2 + shift},
                "total_consistency": 0.1 + shift, "rankc_mean": 0.4 + shift}}))
        for analysis, doc in (("neurons", {"variants": {"polyfact": {"counts": {"en": 3, "de": 2, "ko": 5 - int(10 * shift)}}}}),
                              ("heads", {"study": {"overlap_pct": {a: {b: 100.0 if a == b else 50.0 for b in acc}
                                                                   for a in acc},
                                                   "layer_profile_pct": {a: [50.0, 50.0] for a in acc}}}),
                              ("representations", {"retrieval_all_pairs": [0.1, 0.2 + shift],
                                                   "retrieval": {"de": [0.1, 0.3], "ko": [0.0, 0.1 + shift]}})):
            (res / analysis).mkdir(parents=True, exist_ok=True)
            (res / analysis / f"{c}.json").write_text(json.dumps({"checkpoint": c, **doc}))
        (res / "heads" / f"{c}.importance.json").write_text(json.dumps({"languages": ["en"]}))  # a sidecar, ignored
    return root


def test_run_figures_beside_the_release(tmp_path):
    from polyfact.figures.paper_run import run_paper_figures, run_paper_tables

    run = write_run(tmp_path / "run")
    figs = dict(run_paper_figures(run))
    assert list(figs) == ["fig4a_klar", "fig4b_klar_per_language", "fig5_lape", "mexa_x_y", "fig7_overlap_base",
                          "fig8_layers_base", "fig7_overlap_grpo", "fig8_layers_grpo"]
    bars = figs["fig4a_klar"].data
    assert list(bars[0].y) == pytest.approx([60.0]) and list(bars[1].y) == pytest.approx([30.0])  # (70+50)/2, ko
    assert list(figs["fig4b_klar_per_language"].data[0].x) == ["EN", "DE", "KO"]
    assert figs["mexa_x_y"].data[0].y[1] == pytest.approx(0.1)
    (table, sources), = run_paper_tables(run)
    assert table.row("grpo").values["kl_tr"] == pytest.approx(60.0) and len(sources) == 4
    res = paper_outputs(write_release(tmp_path / "rel"), tmp_path / "out", static=False, run_dir=run)
    assert {"run_fig4a_klar", "run_fig5_lape", "fig4a_klar"} <= set(res["figures"])
    index = (tmp_path / "out" / "index.html").read_text()
    assert "class='pair'" in index and "run_main.md" in index
    src = json.loads((tmp_path / "out" / "sources.json").read_text())["outputs"]
    assert src["run_fig5_lape.html"][0]["origin"] == "run"


def test_static_png_and_pdf(tmp_path):
    from polyfact.figures.export import chromium_path

    if chromium_path() is None:
        pytest.skip("no Chromium/Chrome on this machine: static export is not possible")
    root = tmp_path / "rel"
    (root / "lape" / "qwen-base").mkdir(parents=True)
    (root / "lape" / "qwen-base" / "lape_results.json").write_text(json.dumps({"1": {"en": [0], "sw": [1, 2]}}))
    res = paper_outputs(root, tmp_path / "out", static=True)
    assert res["static"] and {"fig5_lape.png", "fig5_lape.pdf"} <= set(res["written"])
    assert (tmp_path / "out" / "fig5_lape.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "fig5_lape.pdf").read_bytes()[:4] == b"%PDF"


def test_table_writers_rank_escape_and_sign():
    from polyfact.figures.paper_builders import table_csv, table_latex, table_markdown

    t = N.Table("t", "Δ accuracy & 100 %", [N.Column("a", "A_1", "G", rank=True), N.Column("b", "B", "G", suffix=" / –")],
                [N.Row("x", "CPT+SFT", {"a": 1.25, "b": None}, ["t_1"]), N.Row("y", "y", {"a": 3.0, "b": 2.0}),
                 N.Row("z", "z", {"a": 2.0, "b": -1.0}, section="other")], notes=["50 % of #facts"], signed=True)
    md = table_markdown(t)
    assert "**+3.0**" in md and "*+2.0*" in md and "| – |" in md and "+2.0 / –" in md
    tex = table_latex(t)
    assert r"\$\Delta\$" not in tex and r"$\Delta$ accuracy \& 100 \%" in tex and r"A\_1" in tex
    assert r"\textbf{+3.0}" in tex and r"\underline{+2.0}" in tex and r"\multicolumn{2}{c}{G}" in tex
    assert tex.count(r"\midrule") == 2 and "% 50 \\% of \\#facts" in tex
    lines = table_csv(t).splitlines()
    assert lines[0] == "row,label,tags,G A_1,G B" and lines[1] == "x,CPT+SFT,t_1,1.25,"


# --------------------------------------------------------------------------------------------
# Importers


BMLAMA = {  # Prompt, Ans, Candidate Ans, Subject (the format's documentation example, plus parallel rows)
    "en": [("Michelangelo died in <mask>.", "Rome", "Venice, Rome", "Michelangelo"),
           ("The official language of Haiti is <mask>.", "French", "Russian, German, French", "Haiti"),
           ("Paul is <mask> citizen.", "French", "French, German", "Paul"),
           ("Olaf died in <mask>.", "Oslo", "Oslo, Bergen", "Olaf"),
           ("Ann was born in <mask>.", "Lima", "Quito, Cusco", "Ann")],
    "de": [("Michelangelo starb in <mask>.", "Rom", "Venedig, Rom", "Michelangelo"),
           ("Die Amtssprache von Haiti ist <mask>.", "Französisch", "Russisch, Deutsch, Französisch", "Haiti"),
           ("Paul ist <mask> Staatsbürger.", "französischer", "französischer, deutscher", "Paul"),
           ("Olaf starb in <mask>.", "Oslo", "Oslo, Bergen, Trondheim", "Olaf"),
           ("Ann wurde in <mask> geboren.", "Lima", "Quito, Cusco", "Ann")],
    "ja": [("ミケランジェロは<mask>で亡くなった。", "ローマ", "ヴェネツィア, ローマ", "ミケランジェロ"),
           ("<mask>はハイチの公用語です。", "フランス語", "ロシア語, ドイツ語, フランス語", "ハイチ"),
           ("ポールは<mask>の市民です。", "フランス", "フランス, ドイツ", "ポール"),
           ("オーラヴは<mask>で亡くなった。", "オスロ", "オスロ, ベルゲン", "オーラヴ"),
           ("アンは<mask>で生まれた。", "リマ", "キト, クスコ", "アン")],
}


def _write_bmlama(root: Path, langs=("en", "de", "ja")) -> Path:
    root.mkdir(parents=True)
    for x in langs:
        rows = ["Prompt\tAns\tCandidate Ans\tSubject", *("\t".join(r) for r in BMLAMA[x])]
        (root / f"{x}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "it.tsv").write_text("Prompt\tAns\tCandidate Ans\tSubject\n", encoding="utf-8")  # not a toolkit language
    return root


def test_bmlama_importer_follows_the_study(tmp_path):
    from polyfact.data.build import BuildConfig, build_rows
    from polyfact.data.dataset import load_dataset_dir, save_dataset
    from polyfact.data.sources.bmlama import LICENSE, bmlama_facts

    src = _write_bmlama(tmp_path / "BMLAMA53")
    dropped: dict[str, int] = {}
    facts = bmlama_facts(src, langs=["en", "de"], dropped=dropped)
    assert [f.fact_id for f in facts] == ["bmlama53_0", "bmlama53_1", "bmlama53_2"]
    assert dropped == {"candidate pools differ across languages": 1, "gold not among candidates": 1}
    f = facts[2]
    assert f.prompts["en"] == "Paul is" and f.options["en"] == ["French citizen.", "German citizen."]
    assert f.answer_index["de"] == 0 and f.option_ids["de"] == ["bmlama53_2#0", "bmlama53_2#1"] == f.option_ids["en"]
    assert f.questions["en"] == "Paul is <mask> citizen." and f.split == "test"
    dropped = {}
    default = bmlama_facts(src, dropped=dropped)  # toolkit languages present: en de ja (not it)
    assert {x for f in default for x in f.options} == {"en", "de", "ja"}
    assert dropped["<mask> opens the prompt"] == 1 and len(default) == 2
    rows, _ = build_rows(facts, BuildConfig(langs=["en", "de"], split_fracs=(0.0, 0.0, 1.0)))
    save_dataset(rows, tmp_path / "data", source="bmlama", cfg=BuildConfig(langs=["en", "de"]), licenses=LICENSE)
    test = list(load_dataset_dir(tmp_path / "data")["test"])
    assert len(test) == 6 and {len(r["options"]) for r in test} == {2, 3}
    row = next(r for r in test if r["fact_id"] == "bmlama53_0" and r["lang"] == "de")
    assert row["prompt"] == "Michelangelo starb in" and row["options"][row["answer_index"]] == "Rom."


def test_gmmlu_importer_letter_prompts_and_formats(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from polyfact.data.build import BuildConfig, build_rows
    from polyfact.data.dataset import load_dataset_dir, save_dataset
    from polyfact.data.sources.gmmlu import LICENSE, gmmlu_facts

    def row(sid, q, opts, ans, subject="geography"):
        return {"sample_id": sid, "subject": subject, "question": q, "option_a": opts[0], "option_b": opts[1],
                "option_c": opts[2], "option_d": opts[3], "answer": ans, "cultural_sensitivity_label": "CA",
                "is_annotated": False}

    src = tmp_path / "gmmlu"
    (src / "en").mkdir(parents=True)
    en = [row("geo/test/0", "Capital of France?", ["Lyon", "Paris", "Nice", "Rome"], "B"),
          row("geo/test/1", "Largest ocean?", ["Pacific", "Atlantic", None, "Arctic"], "A"),
          row("geo/test/2", "2+2?", ["3", "4", "5", "6"], "E")]
    (src / "en" / "test.jsonl").write_text("\n".join(json.dumps(r) for r in en) + "\n")
    (src / "en" / "dev.jsonl").write_text(json.dumps(row("geo/dev/0", "Q?", ["a", "b", "c", "d"], "C")) + "\n")
    de = [row("geo/test/0", "Hauptstadt von Frankreich?", ["Lyon", "Paris", "Nizza", "Rom"], "B")]
    pq.write_table(pa.Table.from_pylist(de), src / "de.parquet")
    dropped: dict[str, int] = {}
    facts = {f.fact_id: f for f in gmmlu_facts(src, dropped=dropped)}
    assert dropped == {"missing option": 1, "answer not a letter A-D": 1}
    f = facts["gmmlu:geo/test/0"]
    assert f.prompts["de"] == "Question: Hauptstadt von Frankreich?\nA. Lyon\nB. Paris\nC. Nizza\nD. Rom\nAnswer:"
    assert f.options["en"] == ["A", "B", "C", "D"] and f.answer_index["en"] == 1 and f.relation == "geography"
    assert f.option_ids["de"] == f.option_ids["en"] and facts["gmmlu:geo/dev/0"].split == "validation"
    langs = ["en", "de"]
    rows, _ = build_rows(facts.values(), BuildConfig(langs=langs, min_coverage=0.5))
    save_dataset(rows, tmp_path / "data", source="gmmlu-lite", cfg=BuildConfig(langs=langs), licenses=LICENSE)
    dd = load_dataset_dir(tmp_path / "data")
    assert len(dd["test"]) == 2 and len(dd["validation"]) == 1
    from polyfact.data.build import mcq_prompt

    r = next(r for r in dd["test"] if r["lang"] == "en")
    assert mcq_prompt(r, "study") == r["prompt"] == "Question: Capital of France?\nA. Lyon\nB. Paris\nC. Nice\nD. Rome\nAnswer:"


def test_importer_errors(tmp_path):
    from polyfact.data.sources.bmlama import bmlama_facts
    from polyfact.data.sources.gmmlu import gmmlu_facts

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "en.tsv").write_text("Prompt\tAnswer\nX <mask>.\tY\n")
    (tmp_path / "g" / "en").mkdir(parents=True)
    (tmp_path / "g" / "en" / "test.jsonl").write_text(json.dumps({"sample_id": "1", "question": "q"}) + "\n")
    for call, words in ((lambda: bmlama_facts(tmp_path / "b"), "lacks column(s) Ans, Candidate Ans, Subject"),
                        (lambda: bmlama_facts(tmp_path / "b", langs=["fr"]), "has no fr.tsv"),
                        (lambda: bmlama_facts(tmp_path / "none"), "not a directory"),
                        (lambda: gmmlu_facts(tmp_path / "g"), "lacks column(s) option_a"),
                        (lambda: gmmlu_facts(tmp_path / "g", langs=["ru"]), "no Global-MMLU-Lite files for ru"),
                        (lambda: gmmlu_facts(tmp_path / "b"), "no Global-MMLU-Lite files")):
        with pytest.raises(PolyFactError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_benchmarks_import_and_evaluate_from_the_command_line(study, tmp_path):
    """BMLAMA-53 and Global-MMLU-Lite imported with `polyfact data import` and evaluated with the
    same metrics as PolyFact (accuracy per language, Total Consistency, RankC)."""
    from tests.helpers import cli

    r = cli("data", "import", "bmlama", _write_bmlama(tmp_path / "BMLAMA53"), "--out", tmp_path / "bmlama",
            "--langs", "en,de")
    assert r.returncode == 0 and "3 facts" in r.stdout, r.stderr[-1500:]
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "base", "--data", tmp_path / "bmlama",
            "--bootstrap", "20")
    assert r.returncode == 0, r.stderr[-1500:]
    res = json.loads((study / "results" / "recall-bmlama" / "base.json").read_text())
    assert set(res["metrics"]["accuracy"]) == {"en", "de"} and "rankc" in res["metrics"]
    assert 0.0 <= res["metrics"]["total_consistency"] <= 1.0


def test_paper_command_writes_the_release_figures(tmp_path):
    from tests.helpers import cli, one_line_error

    release = shared("paper-release")
    r = cli("paper", "--release", release, "--out", tmp_path / "paper", "--no-static")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "0 disagreement(s)" in r.stdout and (tmp_path / "paper" / "index.html").exists()
    assert "| Baseline | 54.2 | 42.3 |" in (tmp_path / "paper" / "main.md").read_text()
    one_line_error(cli("paper", "--release", release, "--out", release / "figs"), "inside")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("paper", "--release", tmp_path / "empty", "--out", tmp_path / "x"),
                   "holds none of the study's result files")
