"""The run's report: one self-contained HTML page with the config, the dataset card summary,
every table and figure of the run, and provenance; plus each figure as HTML (and PNG/PDF)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import plotly.graph_objects as go

from polyfact.figures import builders as B
from polyfact.figures.export import figure_div, shared_plotly_js, write_html, write_static
from polyfact.figures.load import checkpoint_order, results, routing_summary, seeds_summary
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text, read_cached
from polyfact.core.layout import layout, split_seed
from polyfact.core.results import Recall
from polyfact.data.languages import order_langs


def run_figures(run_dir: str | Path) -> list[tuple[str, str, go.Figure]]:
    """``(section, name, figure)`` for every figure the run's results allow."""
    run_dir = Path(run_dir)
    ids = checkpoint_order(run_dir)
    out: list[tuple[str, str, go.Figure]] = []

    def add(section: str, name: str, build: Callable[[], go.Figure]) -> None:
        out.append((section, name, build()))

    curves = {c: r for c, r in results(run_dir, "curves", ids).items() if r.curve}
    if curves:
        add("Did each arm learn? Learning curves", "curves_accuracy", lambda: B.learning_curves(curves))
        if any("greedy_reward" in r.probe_measures for r in curves.values()):
            grpo_like = {c: r for c, r in curves.items() if "greedy_reward" in r.probe_measures}
            add("Did each arm learn? Learning curves", "curves_reward",
                lambda: B.learning_curves(grpo_like, "greedy_reward"))
        add("Did each arm learn? Learning curves", "curves_consistency",
            lambda: B.learning_curves(curves, "total_consistency"))
    recall = results(run_dir, "recall", ids)
    first = {c: r for c, r in recall.items() if split_seed(c)[1] in (None, min((split_seed(x)[1] for x in recall
                                                                                  if split_seed(x)[1] is not None),
                                                                                 default=None))}
    if recall:
        add("Recall and consistency", "recall_by_language", lambda: B.recall_by_language(recall))
        add("Recall and consistency", "recall_by_group", lambda: B.recall_by_group(recall))
        add("Recall and consistency", "total_consistency", lambda: B.total_consistency(recall))
        for kind in ("agreement", "coverlap", "rankc"):
            if any(r.metric(kind) is not None for r in recall.values()):
                add("Recall and consistency", f"consistency_{kind}", lambda k=kind: B.consistency_heatmaps(first, k))
    neurons = results(run_dir, "neurons", ids)
    if neurons:
        for c, r in neurons.items():
            add("Language-specific neurons", f"lape_{c}",
                lambda r=r, c=c: B.lape_per_layer(r.per_layer(),
                                                  f"Language-specific neurons per layer ({c}, LAPE, top 1%)"))
        if "base" in neurons:
            for c, r in neurons.items():
                if c != "base":
                    add("Language-specific neurons", f"lape_change_{c}", lambda r=r, c=c: B.lape_change(
                        r.calibrated_per_layer(), neurons["base"].calibrated_per_layer(),
                        f"Change against base ({c}, base-calibrated thresholds)"))
        add("Language-specific neurons", "lape_totals",
            lambda: B.lape_totals({c: r.counts("tang") for c, r in neurons.items()}))
        add("Language-specific neurons", "entropy_by_layer", lambda: B.entropy_by_layer(neurons))
    heads = results(run_dir, "heads", ids)
    for c in [x for x in ("base", ids[-1] if ids else None) if x in heads]:
        add("Attention heads", f"head_entropy_{c}", lambda c=c: B.head_importance_heatmap(heads[c]))
        add("Attention heads", f"top_heads_{c}", lambda c=c: B.top_heads_by_layer(heads[c]))
        add("Attention heads", f"head_overlap_{c}", lambda c=c: B.head_overlap(heads[c]))
        if heads[c].study:
            study = {**heads[c].study, "name": c, "n_layers": heads[c].n_layers}
            add("Attention heads", f"study_head_layers_{c}", lambda s=study: B.study_head_layers(s))
            add("Attention heads", f"study_head_overlap_{c}", lambda s=study: B.study_head_overlap(s))
    seeds = seeds_summary(run_dir)
    if seeds and seeds.get("measures"):
        add("Method effects across seeds", "seed_forest", lambda: B.seed_forest(seeds))
    summary = routing_summary(run_dir)
    if summary and summary.get("rows"):
        add("Routing before/after", "routing_summary", lambda: B.routing_summary(summary))
    for c, r in results(run_dir, "ablate", ids).items():
        add("Causal deactivation", f"deactivation_neurons_{c}", lambda r=r: B.deactivation_matrix(r, "neurons"))
        add("Causal deactivation", f"deactivation_heads_{c}", lambda r=r: B.deactivation_matrix(r, "heads"))
    reps = results(run_dir, "representations", ids)
    if reps:
        for key in ("cka_all_pairs", "retrieval_all_pairs", "probe_accuracy"):
            add("Shared representations", key, lambda k=key: B.representation_curves(reps, k))
        first = next(iter(reps.values()))
        langs = [x for x in order_langs(first.logit_lens) if x != first.reference][:4]
        add("Shared representations", "logit_lens", lambda: B.logit_lens_curves(first, langs))
    steer = steering_results(run_dir)
    if steer:
        add("Steering recall across languages", "steering", lambda: B.steering(steer))
    traj = read_cached(layout(run_dir).result("trajectory", "summary"))
    if isinstance(traj, dict) and traj.get("methods"):
        add("How specialization moves during training", "trajectory", lambda: B.trajectory(traj))
    from polyfact.figures.paper_run import run_paper_figures

    for name, fig in run_paper_figures(run_dir):  # the paper's shapes, to lay beside `polyfact paper`
        out.append(("Paper figures (the study's shapes, from this run)", f"paper_{name}", fig))
    return out


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, Callable[[dict], Any]]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(fn(r)))}</td>" for _, fn in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, dict) and "delta" in x:
        return f"{x['delta']:+.3g} [{x['ci'][0]:+.3g}, {x['ci'][1]:+.3g}]"
    if isinstance(x, float):
        return "-" if x != x else f"{x:.{digits}f}"
    return str(x)


def _headline(run_dir: Path) -> tuple[str, go.Figure | None]:
    """The report's first screen: three sentences (the base's gap by language, each arm's change,
    what the rule says) and one figure, written from the result files."""
    from polyfact.core.layout import split_seed
    from polyfact.data.languages import language_group

    from polyfact.analyses.summary import summary_table

    base = Recall.load(layout(run_dir).result("recall", "base"))
    if base is None:
        return "", None
    summary = summary_table(run_dir, checkpoint_order(run_dir))
    acc = base.accuracy
    training = [x for x in acc if x != "en" and language_group(x) in ("high", "low")]
    heldout = [x for x in acc if language_group(x) == "heldout"]
    mean = lambda xs: sum(acc[x] for x in xs) / len(xs) if xs else float("nan")  # noqa: E731
    tc_base = base.consistency("training")
    s1 = (f"The base answers {acc.get('en', float('nan')):.2f} of the test facts in English, {mean(training):.2f} "
          f"in the other training languages and {mean(heldout):.2f} in held-out ones; "
          f"{_fmt(tc_base, 2)} of the facts are right in every training language (Total Consistency).")
    rows = {r["checkpoint"]: r for r in summary.get("rows", [])}
    changes: dict[str, list[float]] = {}
    for c, r in rows.items():
        if c != "base" and r.get("total_consistency_training") is not None and tc_base is not None:
            changes.setdefault(split_seed(c)[0], []).append(r["total_consistency_training"] - tc_base)
    said = [f"{arm} {sum(v) / len(v):+.3f}" + (f" (mean of {len(v)} seeds)" if len(v) > 1 else "")
            for arm, v in changes.items()]
    s2 = ("Against the base, Total Consistency changed by " + ", ".join(said) + "." if said else
          "No arm was trained.")
    seeds = seeds_summary(run_dir) or {}
    n = seeds.get("n_seeds", 0)
    if n < 2:
        s3 = ("One training seed per arm: no change above is a verdict (training noise cannot be told apart); "
              "--preset replicate runs the claims at 8 seeds with both controls.")
    else:
        ctl = seeds.get("controls") or {}
        verdicts = "; ".join(f"{c['claim']}: {c['verdict']}" for c in seeds.get("claims", []))
        s3 = (f"At {n} seeds, under the rule fixed before the numbers: {verdicts}"
              + ("." if ctl.get("answers_claims") else f" — but this run cannot answer the claims ({ctl.get('reason')})."))
    groups = {x: language_group(x) for x in acc}
    fig = B.headline(base, changes, groups)
    return (f"<section id='found'><h2>What this run found</h2><p>{html.escape(s1)} {html.escape(s2)} "
            f"{html.escape(s3)}</p>"), fig


def _claims_section(seeds: dict[str, Any]) -> str:
    """The study's three claims and this run's answer to each under the one rule (analyses.verdicts),
    with every test behind it, the minimum detectable effect and the controls' outcome."""
    rows = []
    for c in seeds.get("claims", []):
        tests = "; ".join(f"{t['measure']} {t['contrast']} {t['difference']:+.3g} [{_fmt(t['ci'][0])}, "
                          f"{_fmt(t['ci'][1])}], p {_fmt(t['p'])} (Holm {_fmt(t['p_adjusted'])}), exact p "
                          f"{_fmt(t['exact_p'])} (Holm {_fmt(t['exact_p_adjusted'])})" for t in c.get("tests", []))
        mde = c.get("mde")
        rows.append({"claim": c["text"], "verdict": c["verdict"], "tests": tests or "-",
                     "detectable": "-" if mde is None else ("nothing at these seeds" if mde == float("inf")
                                                            else f"|δ| ≥ {mde:.3g}")})
    if not rows:
        return ""
    ctl = seeds.get("controls") or {}
    controls = (f"<p class='{'note' if ctl.get('answers_claims') else 'warn'}'><b>Controls:</b> "
                f"{html.escape(ctl.get('reason', 'none'))}.</p>")
    if not ctl.get("answers_claims"):
        controls += ("<p class='warn'><b>This run cannot answer the claims</b>: the verdicts below are reported "
                     "but carry no weight until the placebo comes out unresolved and the oracle is detected.</p>")
    study = next((c.get("study_difference") for c in seeds.get("claims", []) if c.get("study_difference")), None)
    power = ""
    if study:
        power = (f"<p class='note'>The study's own difference: {study['value']:+.4f} ({html.escape(study['source'])}); "
                 f"this run {'can' if study.get('detectable_here') else 'cannot'} detect a difference of that size"
                 + (f"; seeds needed at this run's noise: {study['seeds_needed']}" if study.get("seeds_needed") else "")
                 + ".</p>")
    rule = ("<p class='note'>Rule (fixed before the numbers): a claim's tests are one family, Holm-corrected; a test "
            "passes when its crossed seeds × facts test (or paired t over seeds) and its exact sign-flip test over "
            "seeds are both below 0.05 after correction, in the same direction. Supported: every half passes in the "
            "claimed direction; contradicted: a half passes in the opposite one; otherwise not resolved.</p>")
    return (f"<section id='claims'><h2>The study's claims, as this run answers them ({seeds.get('n_seeds', 0)} "
            f"training seed(s) per method)</h2>{_unmatched(seeds)}{controls}"
            + _table(rows, [(k, lambda r, k=k: r[k]) for k in ("claim", "verdict", "tests", "detectable")])
            + power + rule + "</section>")


def _unmatched(seeds: dict[str, Any]) -> str:
    text = seeds.get("unmatched")
    return (f"<p class='warn'><b>The arms below learned from different train facts</b> ({html.escape(text)}): "
            "their comparison is not fact-matched.</p>") if text else ""


def steering_results(run_dir: Path) -> dict[str, Any]:
    """The run's steering results by file name (``<checkpoint>-<units>-<source>-<target>``)."""
    folder = layout(run_dir).result_dir("steer")
    out = {p.stem: read_cached(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    return {k: v for k, v in out.items() if isinstance(v, dict) and v.get("tests")}


def _steering_section(run_dir: Path) -> str:
    """One sentence per steered checkpoint: the rule's verdict on test facts against the control."""
    res = steering_results(run_dir)
    if not res:
        return ""
    said = [f"{html.escape(r['checkpoint'])} ({html.escape(r['units'])}, {html.escape(r['source'])} → "
            f"{html.escape(r['target'])}, chosen on train facts: layers {r['chosen']['layers']}, strength "
            f"{r['chosen']['strength']:+g}): {html.escape(r['verdict'])}" for r in res.values()]
    return ("<section id='steering'><h2>Steering recall across languages</h2><p>" + "<br>".join(said)
            + "</p><p class='note'>Test facts × seeds (control draws and text samples), Holm over the measures; "
              "the random control has the same number of units (matched activation rates) or the same norm.</p>"
              "</section>")


def _trajectory_section(run_dir: Path) -> str:
    """Which moves first, per method: a sentence with its numbers."""
    traj = read_cached(layout(run_dir).result("trajectory", "summary"))
    if not isinstance(traj, dict) or not traj.get("methods"):
        return ""
    said = [f"{html.escape(m)}: {html.escape(s['order']['reading'])}" for m, s in traj["methods"].items()]
    return ("<section id='order'><h2>Which moves first: specialization or consistency</h2><p>"
            + "<br>".join(said) + "</p><p class='note'>The step at which neuron κ and Total Consistency reach half "
            "of their final change, per seed; the difference is tested over seeds (paired t).</p></section>")


def _budget_section(run_dir: Path) -> str:
    """The budget table of the run's arms: what each learned from and spent, and whether its objective improved."""
    from polyfact.core.checkpoints import read_manifest

    rows = [r for r in results(run_dir, "curves", checkpoint_order(run_dir)).values() if r.budget]
    if not rows:
        return ""
    metrics = {r.checkpoint: read_manifest(run_dir, r.checkpoint).get("metrics") or {} for r in rows}
    # wall seconds live in the manifest only (result files repeat exactly)
    seconds = {c: (m.get("budget") or {}).get("seconds", "-") for c, m in metrics.items()}
    cols = [("checkpoint", lambda r: r.checkpoint), ("facts", lambda r: r.budget["facts"]),
            ("facts hash", lambda r: r.budget["facts_hash"][:8]), ("examples", lambda r: r.budget["examples"]),
            ("optimizer steps", lambda r: r.budget["steps"]),
            ("forward tokens", lambda r: r.budget["forward_tokens"]),
            ("generated tokens", lambda r: r.budget["generated_tokens"]),
            ("seconds", lambda r: seconds[r.checkpoint]),
            ("own objective (probe facts)", lambda r: r.objective.get("measure", "-")),
            ("first → last", lambda r: "{} → {}".format(_fmt(r.objective.get("first")), _fmt(r.objective.get("last")))),
            ("improved", lambda r: "yes" if r.objective.get("improved") else "no")]
    injected = [c for c, m in metrics.items() if (m.get("corpus") or {}).get("states_run_facts")]
    note = (f"<p class='warn'>{html.escape(', '.join(injected))}: CPT trained on statements of this run's own "
            "train facts (cpt.text=statements), so it injects the facts it is then evaluated on; the study's CPT "
            "trains on parallel text (cpt.text=multiway:FILE or files:DIR).</p>") if injected else ""
    return ("<section id='budget'><h2>What each arm learned from</h2>" + note + _table(rows, cols)
            + "<p class='note'>Arms are compared only on the same train facts (the same facts hash); "
              "budget.facts sets them.</p></section>")


def _seed_section(seeds: dict[str, Any]) -> str:
    """The seed-level table of the headline measures (BH across the whole table) and a reading of it."""
    labels = seeds.get("labels", {})
    rows = []
    for m in seeds.get("headline", []):
        for method, r in seeds.get("measures", {}).get(m, {}).items():
            t = r["test"]
            versus = "; ".join(f"vs {k}: {v['difference']:+.3g} (p {_fmt(v['p'])}, BH {_fmt(v['p_adjusted'])})"
                               for k, v in r.get("versus", {}).items())
            rows.append({"method": method, "measure": labels.get(m, m), "change": f"{t['difference']:+.4g}",
                         "interval": f"[{_fmt(t['ci'][0], 4)}, {_fmt(t['ci'][1], 4)}]",
                         "p (BH)": f"{_fmt(t['p'])} ({_fmt(t['p_adjusted'])})",
                         "exact p (BH)": f"{_fmt(t['exact_p'])} ({_fmt(t['exact_p_adjusted'])})",
                         "seeds": " ".join(f"{v:+.3g}" for v in r["seeds"]), "versus": versus or "-",
                         "verdict": r["verdict"]})
    table = _table(rows, [(k, lambda r, k=k: r[k]) for k in ("method", "measure", "change", "interval", "p (BH)",
                                                               "exact p (BH)", "seeds", "versus", "verdict")]) \
        if rows else ""
    return (f"<section id='seed-summary'><h2>Method effects across training seeds</h2>{_unmatched(seeds)}"
            f"<p>{html.escape(_reading(seeds))}</p>{table}<p class='note'>Each row: a method's change against the "
            f"base, paired by seed and, for accuracy and Total Consistency, by test fact (both are noise); its "
            f"interval is the crossed test's; p values are adjusted by Benjamini–Hochberg across all "
            f"{seeds.get('n_tests', 0)} tests of the table, and a verdict needs both adjusted p below 0.05. "
            "Intervals elsewhere in this report resample text shards of one model: they measure measurement error "
            "only.</p></section>")


def _reading(seeds: dict[str, Any]) -> str:
    """One paragraph reading the seed table (written from its verdicts, never from a model)."""
    n = seeds.get("n_seeds", 0)
    if n < 2:
        return ("This run trained each method with one seed. One seed cannot separate a method's effect from "
                "training noise, so no row below is evidence that a method changed anything; rerun with "
                "--seeds 0,1,2,… (or --preset replicate).")
    labels = seeds.get("labels", {})
    moved = [f"{method} {r['verdict']} {labels.get(m, m)} ({r['test']['difference']:+.3g})"
             for m in seeds.get("headline", []) for method, r in seeds.get("measures", {}).get(m, {}).items()
             if not r["verdict"].startswith("not resolved")]
    if not moved:
        return (f"Across {n} training seeds per method, no headline change passes the rule (Benjamini–Hochberg "
                f"across the table): every row is not resolved.")
    return f"Across {n} training seeds per method, the rule resolves: " + "; ".join(moved) + "; every other row is not resolved."


def _provenance(run_dir: Path) -> list[dict[str, Any]]:
    rows = []
    run = layout(run_dir)
    for path in sorted(run.results.glob("*/*.json")):
        doc = read_cached(path)
        prov = doc.get("provenance") if isinstance(doc, dict) else None
        if prov:
            rows.append({"file": run.relative(path), "checkpoint": prov.get("checkpoint"),
                         "checkpoint_fp": prov.get("checkpoint_fingerprint"), "data_fp": prov.get("data_fingerprint"),
                         "key": prov.get("key")})
    return rows


STYLE = """body{font-family:Helvetica,Arial,sans-serif;max-width:1250px;margin:auto;padding:0 20px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:12px;max-height:420px}
section{margin-bottom:30px}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:6px 10px}"""


def build_report(run_dir: str | Path, static: bool = False) -> Path:
    """Write ``<run>/report.html`` and ``<run>/figures/*.html`` (``static``: also PNG and PDF)."""
    run_dir = Path(run_dir)
    run = layout(run_dir)
    if not run.results.exists():
        raise PolyFactError(f"{run_dir} has no results yet; run 'polyfact run --run {run_dir}' first")
    figs = run_figures(run_dir)
    if figs:
        shared_plotly_js(run.figures)
    for _, name, fig in figs:
        write_html([fig], run.figure(name), title=name, shared_js=True)
        if static:
            for suffix in (".png", ".pdf"):
                write_static(fig, run.figure(name, suffix))
    parts = [f"<h1>PolyFact run report: {html.escape(run_dir.name)}</h1>"]
    text, fig = _headline(run_dir)
    js_inlined = bool(text and fig is not None)
    if text:
        parts.append(text + (f"<div class='figure'>{figure_div(fig, 'fig-found', True)}</div>" if fig is not None
                             else "") + "</section>")
    t = read_cached(run.timings)
    if isinstance(t, dict) and t:
        parts.append("<p>Stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
                     + f" (total {sum(t.values()):.0f} s)</p>")
    seeds = seeds_summary(run_dir)
    if seeds and seeds.get("measures"):
        parts.append(_claims_section(seeds))
        parts.append(_seed_section(seeds))
    parts.append(_budget_section(run_dir))
    parts.append(_trajectory_section(run_dir))
    parts.append(_steering_section(run_dir))
    summary = read_cached(run.summary)
    if isinstance(summary, dict) and summary.get("rows"):
        rows = summary["rows"]
        parts.append("<section><h2>Checkpoints</h2>" + _table(rows, [
            ("checkpoint", lambda r: r["checkpoint"]), ("mean accuracy", lambda r: _fmt(r["mean_accuracy"])),
            ("English", lambda r: _fmt(r.get("en"))),
            ("Total Consistency (all)", lambda r: _fmt(r["total_consistency"])),
            ("Total Consistency (training langs)", lambda r: _fmt(r.get("total_consistency_training"))),
            ("neuron contrast change κ (measurement error)", lambda r: _fmt(r.get("delta_neuron_contrast"))),
            ("Δ head overlap % (study)", lambda r: _fmt(r.get("study_head_overlap_change"), 1)),
            ("Δ top-1 % neurons per language (study)",
             lambda r: " ".join(f"{k} {v:+d}" for k, v in (r.get("study_neuron_counts") or {}).items()) or "-"),
        ]) + "</section>")
    ids = checkpoint_order(run_dir)
    neurons_res = results(run_dir, "neurons", ids)
    sources = {r.text_source for r in (*neurons_res.values(), *results(run_dir, "heads", ids).values())}
    if neurons_res:
        tokens = next(iter(neurons_res.values())).tokens
        parts.append(f"<p>Analyzer text: {html.escape('; '.join(sorted(x for x in sources if x)) or 'unrecorded')}; "
                     f"tokens per language (neurons): {html.escape(', '.join(f'{k} {v}' for k, v in tokens.items()))}.</p>")
    section = None
    for i, (sec, name, fig) in enumerate(figs):
        if sec != section:
            parts.append(f"<h2>{html.escape(sec)}</h2>")
            section = sec
        parts.append(f"<section class='figure' id='{html.escape(name, quote=True)}'>"
                     f"{figure_div(fig, html.escape(f'fig-{name}', quote=True), i == 0 and not js_inlined)}</section>")
    card = run.data / "README.md"
    if card.exists():
        parts.append(f"<section><h2>Dataset card</h2><pre>{html.escape(card.read_text())}</pre></section>")
    cfg = run.config
    if cfg.exists():
        parts.append(f"<section><h2>Configuration</h2><pre>{html.escape(cfg.read_text())}</pre></section>")
    prov = _provenance(run_dir)
    if prov:
        parts.append("<section><h2>Provenance</h2>" + _table(prov, [(k, lambda r, k=k: r[k]) for k in prov[0]])
                     + "</section>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>PolyFact report {html.escape(run_dir.name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(run.report, page)


def paper_lape_figures(summary: dict[str, Any], out: str | Path, static: bool = True) -> list[Path]:
    """Figures of released LAPE results (``polyfact.analyses.paper.released.released_lape``): per language and
    layer for each checkpoint, the change between two, and the totals."""
    cks = summary["checkpoints"]
    figs = [B.lape_per_layer(c["per_layer"], f"Language-specific neurons per layer ({c['name']}, {c['model']})")
            for c in cks]
    if len(cks) == 2:
        figs.append(B.lape_change(cks[1]["per_layer"], cks[0]["per_layer"],
                                  f"{cks[1]['name']} − {cks[0]['name']}: change per language and layer"))
    figs.append(B.lape_totals({c["name"]: c["counts"] for c in cks}))
    return _write_figures(figs, Path(out), "lape", "Released LAPE results", static)


def paper_head_figures(summary: dict[str, Any], out: str | Path, static: bool = True) -> list[Path]:
    """Figures of released LAHIS results (``polyfact.analyses.paper.released.released_heads``): where each
    language's top heads cluster by layer, the pairwise overlap matrix, and with two checkpoints
    the change in overlap and in per-layer profile."""
    figs = []
    for c in summary["checkpoints"]:
        figs.append(B.study_head_layers(c))
        figs.append(B.study_head_overlap(c))
    if "change" in summary:
        names = [c["name"] for c in summary["checkpoints"]]
        figs.append(B.study_head_overlap_change(summary["change"], names))
        figs.append(B.study_head_layer_change(summary["change"], names))
    return _write_figures(figs, Path(out), "heads", "Released LAHIS head importance", static)


def _write_figures(figs: list[go.Figure], out: Path, stem: str, title: str, static: bool) -> list[Path]:
    written = [write_html(figs, out / f"{stem}.html", title=title)]
    if static:
        for i, fig in enumerate(figs):
            for suffix in (".png", ".pdf"):
                written.append(write_static(fig, out / f"{stem}_{i}{suffix}", width=1100, height=600))
    return written
