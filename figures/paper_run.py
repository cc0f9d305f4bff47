"""The study's figure shapes and main table drawn from a toolkit run's own result files, so a run
(a 7B model on a GPU, or the toy world) can be laid beside the paper. Reads only result files
(:func:`polyfact.core.io.read_cached`); a figure whose inputs are absent is left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from polyfact.analyses.paper.numbers import Column, Row, Table, klar_split
from polyfact.analyses.paper.release import ROLE_LABELS
from polyfact.core.io import read_cached
from polyfact.core.layout import layout
from polyfact.core.results import Neurons, Recall, Result
from polyfact.core.run import checkpoint_order
from polyfact.figures import paper_builders as PB
from polyfact.figures.load import results
from polyfact.data.languages import POLYFACT_LANGS, order_langs



def klar_analysis(run_dir: Path) -> str:
    """The result folder of the run's KLAR import (``<run>/klar``): :func:`analysis_name`'s rule."""
    from polyfact.analyses.recall import analysis_name

    return analysis_name(run_dir, layout(run_dir).klar)


def run_label(ckpt: str) -> str:
    """The study's label of a checkpoint id that names a method (``cpt+grpo`` → ``CPT+GRPO``)."""
    return ROLE_LABELS.get(ckpt, ckpt)


def _results(run_dir: Path, analysis: str) -> dict[str, tuple[Path, Result]]:
    """``{checkpoint: (file, typed result)}`` in the run's checkpoint order (:func:`results`)."""
    return {c: (layout(run_dir).result(analysis, c), r)
            for c, r in results(run_dir, analysis, checkpoint_order(run_dir, analysis)).items()}


def training_langs(run_dir: Path) -> list[str]:
    """The run dataset's training languages (``polyfact.json``), else the study's 12."""
    meta = read_cached(layout(run_dir).data / "polyfact.json")
    langs = meta.get("training_langs") if isinstance(meta, dict) else None
    return list(langs) if isinstance(langs, list) and langs else list(POLYFACT_LANGS)


def _pick(ids: list[str], want: str = "grpo") -> str | None:
    """The checkpoint standing for ``want``: exact id, else the first starting with it or naming it."""
    others = [c for c in ids if c != "base"]
    return next((c for c in others if c == want), None) or next((c for c in others if c.startswith(want)), None) \
        or next((c for c in others if want in c), None) or (others[-1] if others else None)


def _accuracy(doc: dict[str, Any]) -> dict[str, float] | None:
    acc = Recall(doc).accuracy
    return {k: 100.0 * v for k, v in acc.items() if isinstance(v, (int, float)) and v == v} or None


def klar_source(run_dir: Path) -> tuple[dict[str, tuple[Path, dict]], str]:
    """The run's KLAR results (``results/recall-klar``), else its own recall results, and a label."""
    klar = _results(run_dir, klar_analysis(run_dir))
    return (klar, "KLAR") if klar else (_results(run_dir, "recall"), "Run-dataset")


def run_paper_figures_with_sources(run_dir: str | Path) -> list[tuple[str, go.Figure, list[Path]]]:
    """:func:`run_paper_figures` with the result files each figure was drawn from."""
    run_dir = Path(run_dir)
    name = run_dir.name
    out: list[tuple[str, go.Figure, list[Path]]] = []
    trained = training_langs(run_dir)
    klar, what = klar_source(run_dir)
    acc = {c: (p, a) for c, (p, d) in klar.items() if (a := _accuracy(d))}
    if acc:
        n_tr = len({x for a in acc.values() for x in a[1] if x in trained})
        n_ho = len({x for a in acc.values() for x in a[1] if x not in trained})
        split = {c: klar_split(a, trained) for c, (_, a) in acc.items()}
        arms = [(run_label(c), *split[c]) for c in acc if c != "base"] or [(run_label(c), *split[c]) for c in acc]
        out.append(("fig4a_klar", PB.klar_groups(arms, split.get("base"),
                                                 f"{what} accuracy, trained vs held-out languages (run {name})",
                                                 n_tr, n_ho, f"{what} accuracy (%)"), [p for p, _ in acc.values()]))
        other = _pick(list(acc))
        if "base" in acc and other:
            out.append(("fig4b_klar_per_language", PB.klar_per_language(
                acc["base"][1], acc[other][1], trained, f"{what} accuracy per language: base vs {other} (run {name})",
                "base", run_label(other), f"{what} accuracy (%)"), [acc["base"][0], acc[other][0]]))
    neurons = {c: (p, Neurons(d).counts()) for c, (p, d) in _results(run_dir, "neurons").items()
               if "polyfact" in Neurons(d).variants}
    if neurons:
        counts = {run_label(c): v for c, (_, v) in neurons.items()}
        out.append(("fig5_lape", PB.lape_counts(
            counts, f"Language-specific neurons per language (LAPE top 1 %, study variant; run {name})",
            log=all(v > 0 for c in counts.values() for v in c.values())), [p for p, _ in neurons.values()]))
    reps = {c: (p, d) for c, (p, d) in _results(run_dir, "representations").items()
            if isinstance(d.get("retrieval_all_pairs"), list)}
    if "base" in reps and len(reps) > 1:
        out.append(("mexa_x_y", _retrieval_figure(reps, name), [p for p, _ in reps.values()]))
    heads = {c: (p, d.study) for c, (p, d) in _results(run_dir, "heads").items() if d.study}
    for c in [x for x in dict.fromkeys(["base", _pick(list(heads))]) if x in heads]:
        path, study = heads[c]
        langs = order_langs(study.get("overlap_pct", {}))
        if langs:
            out.append((f"fig7_overlap_{c}", PB.head_overlap(
                study["overlap_pct"], langs, f"Top-2% head overlap (%) — {c} (run {name})"), [path]))
        if study.get("layer_profile_pct"):
            out.append((f"fig8_layers_{c}", PB.head_layers(
                study["layer_profile_pct"], order_langs(study["layer_profile_pct"]),
                f"Where language-important heads cluster — {c} (run {name})"), [path]))
    return out


def run_paper_figures(run_dir: str | Path) -> list[tuple[str, go.Figure]]:
    """``(name, figure)`` in the paper's shapes from a run's result files: Fig 4a/4b from
    ``results/recall-klar`` (else the run's own recall, trained vs held-out languages of its
    dataset), Fig 5 from ``results/neurons`` (study LAPE counts), a MEXA-style figure from
    ``results/representations`` (retrieval P@1 change against base: all pairs and EN–X), Fig 7/8
    from ``results/heads`` (study overlap and layer profile) for base and the GRPO checkpoint."""
    return [(n, f) for n, f, _ in run_paper_figures_with_sources(run_dir)]


def _retrieval_figure(reps: dict[str, tuple[Path, dict]], name: str) -> go.Figure:
    base = reps["base"][1]
    panels: dict[str, dict[str, list[float]]] = {"all language pairs": {}, "EN–X pairs": {}}
    base_en = _en_x(base)
    for c, (_, d) in reps.items():
        if c == "base":
            continue
        if len(d["retrieval_all_pairs"]) == len(base["retrieval_all_pairs"]):
            panels["all language pairs"][run_label(c)] = [a - b for a, b in zip(d["retrieval_all_pairs"],
                                                                                base["retrieval_all_pairs"])]
        en = _en_x(d)
        if en and base_en and len(en) == len(base_en):
            panels["EN–X pairs"][run_label(c)] = [a - b for a, b in zip(en, base_en)]
    return PB.mexa_deltas({k: v for k, v in panels.items() if v},
                          f"Cross-lingual retrieval (top-1) per layer, change against base (run {name})",
                          "Δ retrieval vs base")


def _en_x(doc: dict[str, Any]) -> list[float] | None:
    curves = [v for v in (doc.get("retrieval") or {}).values() if isinstance(v, list)]
    if not curves or len({len(v) for v in curves}) != 1:
        return None
    return [sum(x) / len(x) for x in zip(*curves)]


def run_paper_tables(run_dir: str | Path) -> list[tuple[Table, list[Path]]]:
    """The main table's columns a run can fill, one row per checkpoint: High / Low / held-out
    accuracy on the run's dataset, KLAR trained / held-out, Total Consistency (all and training
    languages) and RankC, all × 100."""
    run_dir = Path(run_dir)
    recall = _results(run_dir, "recall")
    klar = _results(run_dir, klar_analysis(run_dir))
    if not recall and not klar:
        return []
    trained = training_langs(run_dir)
    cols = [Column("hi", "High", "run dataset", rank=True), Column("lo", "Low", "run dataset", rank=True),
            Column("ho", "Held-out", "run dataset", rank=True), Column("kl_tr", "Train", "KLAR", rank=True),
            Column("kl_ood", "OOD", "KLAR", rank=True), Column("tc", "TotC", "Consistency", rank=True),
            Column("tc_train", "TotC (training langs)", "Consistency", rank=True),
            Column("rk", "RankC", "Consistency", rank=True)]
    rows = []
    for c in list(dict.fromkeys([*recall, *klar])):
        rec = Recall(recall.get(c, (None, {}))[1])
        by = rec.accuracy_by_group

        def pct(v: Any) -> float | None:
            return 100.0 * v if isinstance(v, (int, float)) and v == v else None

        vals = {"hi": pct(by.get("high")), "lo": pct(by.get("low")), "ho": pct(by.get("heldout")),
                "tc": pct(rec.total_consistency), "rk": pct(rec.metric("rankc_mean")),
                "tc_train": pct(rec.consistency("training")),
                "kl_tr": None, "kl_ood": None}
        if c in klar and (a := _accuracy(klar[c][1])):
            vals["kl_tr"], vals["kl_ood"] = klar_split(a, trained)
        rows.append(Row(c, run_label(c), vals, [c], "baseline" if c == "base" else "methods"))
    table = Table("run_main", f"Main table of run {run_dir.name} (accuracy and consistency, ×100)", cols, rows,
                  notes=[f"Training languages: {' '.join(trained)}; High/Low are the run's high- and low-resource "
                         "training languages, held-out the rest.",
                         "KLAR columns need 'polyfact eval' on the run's KLAR import (results/recall-klar)."])
    return [(table, [p for p, _ in (*recall.values(), *klar.values())])]
