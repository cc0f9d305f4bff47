"""Figure builders. Each takes result data (as written by ``analyses/`` or the released LAPE
files) and returns a ``plotly`` figure; :mod:`polyfact.figures.load` reads a run's result files."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from polyfact.figures.theme import DIVERGING, SEQUENTIAL, language_order, method_color, style

from polyfact.core.results import Recall, Result


def _recalls(recall: Mapping[str, Recall]) -> dict[str, Recall]:
    return {c: Recall.of(r) for c, r in recall.items()}


def headline(base: Recall, changes: Mapping[str, Sequence[float]], groups: Mapping[str, str]) -> go.Figure:
    """The run at a glance: the base's accuracy per language, coloured by group (left), and each arm's
    change in Total Consistency over the training languages against the base, one dot per seed and
    the mean (right)."""
    base = Recall.of(base)
    langs = language_order(base.accuracy)
    colors = {"en": "#1f3b73", "high": "#4f7cac", "low": "#c0504d", "heldout": "#9a9a9a"}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], subplot_titles=(
        "The base: accuracy per language", "Each arm: Δ Total Consistency vs base"))
    fig.add_bar(x=langs, y=[base.accuracy[x] for x in langs], showlegend=False,
                marker_color=[colors.get("en" if x == "en" else groups.get(x, "high"), "#4f7cac") for x in langs],
                row=1, col=1)
    for i, (arm, vals) in enumerate(changes.items()):
        fig.add_scatter(x=list(vals), y=[arm] * len(vals), mode="markers", marker=dict(color=method_color(i), size=7,
                        opacity=0.6), showlegend=False, row=1, col=2)
        if vals:
            fig.add_scatter(x=[sum(vals) / len(vals)], y=[arm], mode="markers", showlegend=False,
                            marker=dict(symbol="diamond", size=12, color=method_color(i)), row=1, col=2)
    fig.add_vline(x=0, line_dash="dot", line_color="#888", row=1, col=2)
    fig.update_yaxes(title_text="accuracy", range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="change (share of test facts)", row=1, col=2)
    return style(fig, "What this run found", None, None)


def recall_by_language(recall: Mapping[str, Recall]) -> go.Figure:
    """Grouped bars: accuracy per language per checkpoint, with 95% bootstrap intervals."""
    recall = _recalls(recall)
    langs = language_order({lang for r in recall.values() for lang in r.accuracy})
    fig = go.Figure()
    for i, (ckpt, r) in enumerate(recall.items()):
        ci = {lang: r.accuracy_ci(lang) for lang in langs}
        y = [r.accuracy.get(lang) for lang in langs]
        err_hi = [ci[lang][1] - v if ci[lang] and v is not None else 0 for lang, v in zip(langs, y)]
        err_lo = [v - ci[lang][0] if ci[lang] and v is not None else 0 for lang, v in zip(langs, y)]
        fig.add_bar(name=ckpt, x=langs, y=y, marker_color=method_color(i),
                    error_y=dict(type="data", array=err_hi, arrayminus=err_lo, thickness=1))
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=langs)
    return style(fig, "Recall per language (MCQ, 95% bootstrap CI over facts)", "language", "accuracy (share correct)")


def recall_by_group(recall: Mapping[str, Recall]) -> go.Figure:
    """Accuracy of seen (training) vs held-out languages per checkpoint."""
    recall = _recalls(recall)
    groups = ["high", "low", "heldout"]
    names = {"high": "high-resource (seen)", "low": "low-resource (seen)", "heldout": "held-out (unseen)"}
    fig = go.Figure()
    for i, (ckpt, r) in enumerate(recall.items()):
        by = r.accuracy_by_group
        present = [g for g in groups if g in by]
        fig.add_bar(name=ckpt, x=[names[g] for g in present], y=[by[g] for g in present], marker_color=method_color(i))
    fig.update_layout(barmode="group")
    return style(fig, "Recall of seen vs held-out languages", "language group", "accuracy (share correct)")


def total_consistency(recall: Mapping[str, Recall]) -> go.Figure:
    """Total Consistency per checkpoint (all languages, and training languages) with intervals."""
    recall = _recalls(recall)
    ckpts = list(recall)
    fig = go.Figure()
    tc = [recall[c].total_consistency for c in ckpts]
    ci = [recall[c].total_consistency_ci or [v, v] for c, v in zip(ckpts, tc)]
    fig.add_bar(name="all languages", x=ckpts, y=tc, marker_color=method_color(0),
                error_y=dict(type="data", array=[c[1] - v for c, v in zip(ci, tc)],
                             arrayminus=[v - c[0] for c, v in zip(ci, tc)]))
    train = [recall[c].consistency("training") for c in ckpts]
    if any(v is not None for v in train):
        tci = [recall[c].consistency_ci("training") or [v, v] for c, v in zip(ckpts, train)]
        fig.add_bar(name="training languages", x=ckpts, y=train, marker_color=method_color(1),
                    error_y=dict(type="data", array=[(c[1] - v) if v is not None else 0 for c, v in zip(tci, train)],
                                 arrayminus=[(v - c[0]) if v is not None else 0 for c, v in zip(tci, train)]))
    fig.update_layout(barmode="group")
    return style(fig, "Total Consistency (fact correct in every language)", "checkpoint", "share of facts")


def consistency_heatmaps(recall: Mapping[str, Recall], kind: str = "coverlap") -> go.Figure:
    """One language × language heatmap per checkpoint: ``agreement``, ``coverlap`` or ``rankc``."""
    recall = _recalls(recall)
    titles = {"agreement": "Answer agreement", "coverlap": "COverlap", "rankc": "RankC"}
    ckpts = [c for c in recall if recall[c].metric(kind) is not None]
    cols = max(1, min(len(ckpts), 4))  # a grid of at most 4 per row (a replicate has dozens of checkpoints)
    rows = max(1, -(-len(ckpts) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=ckpts, horizontal_spacing=0.04,
                        vertical_spacing=min(0.08, 0.5 / max(rows - 1, 1)))
    for i, c in enumerate(ckpts):
        m = recall[c].metric(kind)
        langs = language_order(m)
        z = [[m[a].get(b) for b in langs] for a in langs]
        fig.add_heatmap(z=z, x=langs, y=langs, zmin=0, zmax=1, colorscale=SEQUENTIAL, showscale=i == len(ckpts) - 1,
                        colorbar=dict(title="share"), row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(autorange="reversed", row=i // cols + 1, col=i % cols + 1)
    return style(fig, f"{titles[kind]} between languages (rows × columns)", None, None, height=380 * rows)


def lape_per_layer(per_layer: Mapping[str, Sequence[int]], title: str) -> go.Figure:
    """Language-specific neurons per language (rows) and layer (columns)."""
    langs = language_order(per_layer)
    n_layers = max(len(v) for v in per_layer.values())
    fig = go.Figure(go.Heatmap(z=[list(per_layer[lang]) for lang in langs], x=list(range(n_layers)), y=langs,
                               colorscale=SEQUENTIAL, colorbar=dict(title="neurons")))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "layer (0-based)", "language")


def lape_totals(counts: Mapping[str, Mapping[str, int]], title: str = "Language-specific neurons per language"
                ) -> go.Figure:
    """Total specific neurons per language, one bar group per checkpoint."""
    langs = language_order({lang for c in counts.values() for lang in c})
    fig = go.Figure()
    for i, (name, c) in enumerate(counts.items()):
        fig.add_bar(name=name, x=langs, y=[c.get(lang, 0) for lang in langs], marker_color=method_color(i))
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=langs)
    return style(fig, title, "language", "neurons (count)")


def lape_change(per_layer: Mapping[str, Sequence[int]], reference: Mapping[str, Sequence[int]], title: str
                ) -> go.Figure:
    """Change in specific neurons per language and layer against a reference (diverging scale)."""
    langs = language_order(set(per_layer) | set(reference))
    n_layers = max(len(v) for v in [*per_layer.values(), *reference.values()])
    z = [[(per_layer.get(lang, [0] * n_layers)[i] - reference.get(lang, [0] * n_layers)[i]) for i in range(n_layers)]
         for lang in langs]
    bound = max(1, max(abs(v) for row in z for v in row))
    fig = go.Figure(go.Heatmap(z=z, x=list(range(n_layers)), y=langs, colorscale=DIVERGING, zmid=0, zmin=-bound,
                               zmax=bound, colorbar=dict(title="Δ neurons")))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "layer (0-based)", "language")


def entropy_by_layer(neurons: Mapping[str, Result]) -> go.Figure:
    """Mean normalized entropy of neurons per layer (and its 5% quantile) per checkpoint."""
    fig = go.Figure()
    for i, (c, r) in enumerate(neurons.items()):
        ent = r["entropy"]
        x = list(range(len(ent["mean"])))
        fig.add_scatter(x=x, y=ent["mean"], mode="lines+markers", name=f"{c} mean", line=dict(color=method_color(i)))
        q = ent["quantiles"].get("0.05")
        if q:
            fig.add_scatter(x=x, y=q, mode="lines", name=f"{c} 5% quantile",
                            line=dict(color=method_color(i), dash="dot"))
    return style(fig, "Normalized entropy of neuron activation over languages (1 = shared, 0 = one language)",
                 "layer (0-based)", "normalized entropy")


def head_importance_heatmap(heads: Result, lang: str | None = None) -> go.Figure:
    """Head importance (layer × head) for one language, or the normalized entropy over languages."""
    imp = heads["importance"]  # [languages][layers][heads]
    langs = heads["languages"]
    if lang is None:
        z = heads["entropy_by_head"]
        title, scale, cbar = f"Head importance entropy over languages ({heads['checkpoint']})", SEQUENTIAL, "entropy"
    else:
        z = imp[langs.index(lang)]
        title, scale, cbar = f"Head importance for {lang} ({heads['checkpoint']}, {heads['method']})", SEQUENTIAL, "importance"
    fig = go.Figure(go.Heatmap(z=z, x=list(range(heads["n_heads"])), y=list(range(heads["n_layers"])),
                               colorscale=scale, colorbar=dict(title=cbar)))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "head", "layer")


def top_heads_by_layer(heads: Result) -> go.Figure:
    """How many of each language's top-k heads sit in each layer."""
    dist = heads["layer_distribution"]
    langs = language_order(dist)
    fig = go.Figure(go.Heatmap(z=[dist[lang] for lang in langs], x=list(range(heads["n_layers"])), y=langs,
                               colorscale=SEQUENTIAL, colorbar=dict(title="heads")))
    fig.update_yaxes(autorange="reversed")
    return style(fig, f"Top-{heads['k']} heads per language by layer ({heads['checkpoint']})", "layer (0-based)",
                 "language")


def _language_matrix(m: Mapping[str, Mapping[str, float]], title: str, colorbar: str, **heatmap) -> go.Figure:
    """A language × language heatmap in the project's language order."""
    langs = language_order(m)
    fig = go.Figure(go.Heatmap(z=[[m[a][b] for b in langs] for a in langs], x=langs, y=langs,
                               colorbar=dict(title=colorbar), **heatmap))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "language", "language")


def head_overlap(heads: Result) -> go.Figure:
    """Jaccard overlap of the languages' top-k head sets."""
    return _language_matrix(heads["overlap"], f"Overlap of top-{heads['k']} head sets ({heads['checkpoint']})",
                            "Jaccard", zmin=0, zmax=1, colorscale=SEQUENTIAL)


def deactivation_matrix(ablate: Result, unit: str = "neurons") -> go.Figure:
    """Δloss when one language's units (rows) are zeroed, measured on every language (columns),
    beside the random-unit control."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"{unit}: language-specific", f"{unit}: random control"],
                        horizontal_spacing=0.12)
    mats = [ablate[unit]["loss"], ablate[f"{unit}_control"]["loss"]]
    bound = max([abs(v) for m in mats for row in m.values() for v in row.values()] + [1e-6])
    for i, m in enumerate(mats, 1):
        rows = language_order(m)
        cols = language_order({b for r in m.values() for b in r})
        fig.add_heatmap(z=[[m[a].get(b) for b in cols] for a in rows], x=cols, y=rows, colorscale=DIVERGING, zmid=0,
                        zmin=-bound, zmax=bound, showscale=i == 2, colorbar=dict(title="Δ loss (nats)"), row=1, col=i)
        fig.update_yaxes(autorange="reversed", row=1, col=i)
    dom = ablate[unit]["loss_dominance"]
    return style(fig, f"Deactivation ({ablate['checkpoint']}): diagonal margin {dom['margin']:.3g}, "
                      f"diagonal largest in {dom['share']:.0%} of rows", None, None)


def representation_curves(reps: Mapping[str, Result], key: str = "cka_all_pairs") -> go.Figure:
    """A per-layer curve per checkpoint: ``cka_all_pairs``, ``retrieval_all_pairs`` or ``probe_accuracy``."""
    labels = {"cka_all_pairs": "linear CKA (mean over language pairs)",
              "retrieval_all_pairs": "retrieval P@1 (mean over language pairs)",
              "probe_accuracy": "language-ID probe accuracy (5-fold CV)"}
    fig = go.Figure()
    for i, (c, r) in enumerate(reps.items()):
        fig.add_scatter(x=list(range(r["n_layers"])), y=r[key], mode="lines+markers", name=c,
                        line=dict(color=method_color(i)))
    return style(fig, labels[key] + " per layer", "layer (0-based)", labels[key].split(" (")[0])


def logit_lens_curves(reps: Result, langs: Sequence[str] | None = None) -> go.Figure:
    """Probability of the answer's first token in the question's language vs in English, per layer."""
    lens = reps["logit_lens"]
    langs = language_order(langs or [x for x in lens if x != reps["reference"]])
    fig = go.Figure()
    for i, lang in enumerate(langs):
        x = list(range(len(lens[lang]["own"])))
        fig.add_scatter(x=x, y=lens[lang]["own"], mode="lines", name=f"{lang}: own language",
                        line=dict(color=method_color(i % 7 + 1)))
        fig.add_scatter(x=x, y=lens[lang]["english"], mode="lines", name=f"{lang}: English",
                        line=dict(color=method_color(i % 7 + 1), dash="dot"))
    return style(fig, f"Logit lens ({reps['checkpoint']}): answer token probability per layer", "layer (0-based)",
                 "probability")


def routing_summary(summary: Result) -> go.Figure:
    """Neuron and head contrast change κ against the base (text-shard intervals: measurement
    error) beside Δ Total Consistency."""
    rows = summary["rows"]
    names = [r["checkpoint"] for r in rows]
    fig = make_subplots(rows=1, cols=3, subplot_titles=["neuron contrast change κ", "head contrast change κ",
                                                        "Δ Total Consistency"])
    for col, key in enumerate(("neuron_contrast", "head_contrast"), 1):
        vals = [r[key]["delta"] for r in rows]
        fig.add_bar(x=names, y=vals, marker_color=method_color(col), showlegend=False, row=1, col=col,
                    error_y=dict(type="data", array=[r[key]["ci"][1] - r[key]["delta"] for r in rows],
                                 arrayminus=[r[key]["delta"] - r[key]["ci"][0] for r in rows]))
    tc = [r["total_consistency"]["difference"] if r.get("total_consistency") else None for r in rows]
    fig.add_bar(x=names, y=tc, marker_color=method_color(3), showlegend=False, row=1, col=3)
    return style(fig, "Change against the base (one model per method; intervals: measurement error; κ < 0 = the "
                      "base's language differences shrank)", None, None)


def study_head_layers(heads: Result) -> go.Figure:
    """The study's "where heads cluster": percentage of each language's top heads per layer."""
    prof = heads["layer_profile_pct"]
    langs = language_order(prof)
    fig = go.Figure(go.Heatmap(z=[prof[lang] for lang in langs], x=list(range(heads["n_layers"])), y=langs,
                               colorscale=SEQUENTIAL, zmin=0, colorbar=dict(title="% of top heads")))
    fig.update_yaxes(autorange="reversed")
    return style(fig, f"Top {heads['top_frac']:.0%} heads per language by layer ({heads['name']}, "
                      f"n = {heads['n_top']})", "layer (0-based)", "language")


def study_head_overlap(heads: Result) -> go.Figure:
    """The study's overlap of top-head sets: |A ∩ B| / n in percent."""
    return _language_matrix(heads["overlap_pct"], f"Overlap of top-head sets ({heads['name']}; mean off-diagonal "
                                                  f"{heads['mean_overlap_pct']:.1f} %)", "% shared", zmin=0, zmax=100,
                            colorscale=SEQUENTIAL)


def study_head_overlap_change(change: Result, names: Sequence[str]) -> go.Figure:
    """Change in pairwise overlap (percentage points), second checkpoint minus first."""
    m = change["overlap_pct"]
    bound = max([abs(v) for row in m.values() for v in row.values()] + [1.0])
    return _language_matrix(m, f"Change in head overlap, {names[1]} − {names[0]} (mean {change['mean_overlap_pct']:+.1f} "
                               "points; positive = more shared heads)", "Δ points", colorscale=DIVERGING, zmid=0,
                            zmin=-bound, zmax=bound)


def study_head_layer_change(change: Result, names: Sequence[str]) -> go.Figure:
    """Change in the per-layer profile of each language's top heads (percentage points)."""
    prof = change["layer_profile_pct"]
    langs = language_order(prof)
    bound = max([abs(v) for lang in langs for v in prof[lang]] + [1.0])
    fig = go.Figure(go.Heatmap(z=[prof[lang] for lang in langs], x=list(range(len(prof[langs[0]]))), y=langs,
                               colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound, colorbar=dict(title="Δ points")))
    fig.update_yaxes(autorange="reversed")
    return style(fig, f"Change in where top heads sit, {names[1]} − {names[0]}", "layer (0-based)", "language")


def seed_forest(seeds: Result, measures: Sequence[str] = ("neuron_count", "study_head_overlap", "total_consistency")
                ) -> go.Figure:
    """Each method's change against the base per training seed (dots), with the mean and its t
    interval over seeds (diamond and bar), one panel per measure."""
    present = [m for m in measures if m in seeds["measures"]]
    labels = seeds.get("labels", {})
    fig = make_subplots(rows=1, cols=max(len(present), 1), subplot_titles=[labels.get(m, m) for m in present],
                        horizontal_spacing=0.08)
    for col, m in enumerate(present, 1):
        table = seeds["measures"][m]
        methods = list(table)
        for i, method in enumerate(methods):
            row = table[method]
            fig.add_scatter(x=row["seeds"], y=[method] * len(row["seeds"]), mode="markers", showlegend=False,
                            marker=dict(color=method_color(i + 1), size=8, opacity=0.6), row=1, col=col,
                            name=f"{method} seeds")
            lo, hi = row["ci"]
            has_ci = lo == lo and hi == hi  # not NaN
            fig.add_scatter(x=[row["mean"]], y=[method], mode="markers", showlegend=False, row=1, col=col,
                            marker=dict(color=method_color(i + 1), size=13, symbol="diamond",
                                        line=dict(color="black", width=1)), name=f"{method} mean",
                            error_x=dict(type="data", array=[hi - row["mean"]], arrayminus=[row["mean"] - lo],
                                         thickness=2) if has_ci else None)
        fig.add_vline(x=0, line=dict(color="grey", dash="dot"), row=1, col=col)
    return style(fig, f"Change against the base per training seed (n = {seeds.get('n_seeds')}; mean and 95 % t "
                      "interval over seeds)", None, None)


def learning_curves(curves: Mapping[str, Result], measure: str = "mean_accuracy") -> go.Figure:
    """Each arm's learning curve: ``measure`` on its own probe facts (left) and on fixed test facts
    (right) against the share of its training done, one line per method (the mean over seeds) with
    a band from the lowest to the highest seed."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train facts (the arm's own probe)", "test facts"),
                        shared_yaxes=True)
    by_arm: dict[str, list[Result]] = {}
    for r in curves.values():
        by_arm.setdefault(r.get("arm", r["checkpoint"]), []).append(r)
    for i, (arm, runs) in enumerate(by_arm.items()):
        color = method_color(i)
        n = min(len(r["curve"]) for r in runs)
        x = [p["step"] / max(runs[0]["curve"][-1]["step"], 1) for p in runs[0]["curve"][:n]]
        for col, part in ((1, "probe"), (2, "test")):
            ys = [[r["curve"][k][part].get(measure) for r in runs] for k in range(n)]
            if any(v is None for vs in ys for v in vs):  # e.g. the greedy reward: probe facts only
                continue
            mean = [sum(v) / len(v) for v in ys]
            if len(runs) > 1:
                fig.add_scatter(x=x + x[::-1], y=[max(v) for v in ys] + [min(v) for v in ys][::-1], fill="toself",
                                line=dict(width=0), fillcolor=color, opacity=0.2, showlegend=False, hoverinfo="skip",
                                row=1, col=col)
            fig.add_scatter(x=x, y=mean, mode="lines+markers", name=f"{arm} (n={len(runs)})", line=dict(color=color),
                            showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="share of training done", range=[0, 1])
    return style(fig, f"Learning curves: {measure.replace('_', ' ')} at evenly spaced points of each arm's training",
                 None, measure.replace("_", " "))


def trajectory(summary: Result, panels: Mapping[str, str] | None = None) -> go.Figure:
    """Measures against the share of training, one line per method (the mean over seeds) with a
    band from the lowest to the highest seed: the study's measures, the project's, and behavior."""
    labels, panel_of = summary.get("labels", {}), panels or summary.get("panels", {})
    groups = {"study": [m for m, p in panel_of.items() if p == "study"],
              "project": [m for m, p in panel_of.items() if p == "project"],
              "behavior": ["probe_accuracy", "test_accuracy", "total_consistency"]}
    rows = [(g, m) for g, ms in groups.items() for m in ms
            if any(m in s["points"] for s in summary["methods"].values())]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=[f"{g}: {labels.get(m, m)}" for g, m in rows])
    for i, (method, s) in enumerate(summary["methods"].items()):
        color = method_color(i)
        for r, (_, m) in enumerate(rows, 1):
            pts = s["points"].get(m)
            if not pts:
                continue
            x = [p["share"] for p in pts]
            if s["n_seeds"] > 1:
                fig.add_scatter(x=x + x[::-1], y=[max(p["seeds"]) for p in pts] + [min(p["seeds"]) for p in pts][::-1],
                                fill="toself", line=dict(width=0), fillcolor=color, opacity=0.2, showlegend=False,
                                hoverinfo="skip", row=r, col=1)
            fig.add_scatter(x=x, y=[p["mean"] for p in pts], mode="lines+markers", line=dict(color=color),
                            name=f"{method} (n={s['n_seeds']})", showlegend=r == 1, row=r, col=1)
    fig.update_xaxes(title_text="share of training", row=len(rows), col=1)
    return style(fig, "How specialization moves during training (mean over seeds; band: lowest to highest seed)",
                 None, None, height=max(450, 220 * len(rows)))


def steering(results: Mapping[str, Result]) -> go.Figure:
    """Steering at a glance. Left: the sweep on train facts, the target's accuracy gain against the
    English accuracy change (harm), one point per layer × strength, per checkpoint and unit kind.
    Right: on test facts, the chosen steering's change minus its size-matched random control, with
    the crossed test's 95 % interval, per checkpoint (does a trained arm respond differently?)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("sweep on train facts: gain vs harm",
                                                        "test facts: steered − random control"))
    for i, (name, r) in enumerate(results.items()):
        sw = r["sweep"]
        fig.add_scatter(x=[p["english_change"] for p in sw], y=[p["target_gain"] for p in sw], mode="markers",
                        name=f"{name} sweep", marker=dict(color=method_color(i), size=7),
                        text=[f"layers {p['layers']}, strength {p['strength']:+g}" for p in sw], row=1, col=1)
        c = r["chosen"]
        fig.add_scatter(x=[c["english_change"]], y=[c["target_gain"]], mode="markers", showlegend=False,
                        marker=dict(color=method_color(i), size=14, symbol="star"), row=1, col=1)
        t = next(x for x in r["tests"] if x["measure"] == "target_accuracy")
        fig.add_scatter(x=[t["difference"]], y=[name], mode="markers", showlegend=False,
                        error_x=dict(type="data", array=[t["ci"][1] - t["difference"]],
                                     arrayminus=[t["difference"] - t["ci"][0]]),
                        marker=dict(color=method_color(i), size=10, symbol="diamond"), row=1, col=2)
    fig.add_vline(x=0, line_dash="dot", line_color="#888", row=1, col=2)
    fig.update_xaxes(title_text="English accuracy change (harm < 0)", row=1, col=1)
    fig.update_yaxes(title_text="target accuracy gain", row=1, col=1)
    fig.update_xaxes(title_text="target accuracy, steered − control", row=1, col=2)
    return style(fig, "Steering recall across languages", None, None, height=460)
