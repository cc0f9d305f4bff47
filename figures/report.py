"""The run's report: one self-contained HTML page with the config, the dataset card summary,
every table and figure of the run, and provenance; plus each figure as HTML (and PNG/PDF)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Callable

import plotly.graph_objects as go

from figures import builders as B
from figures.export import figure_div, write_html, write_static
from figures.load import checkpoint_order, results, routing_summary
from polyfact.errors import PolyFactError
from polyfact.io import atomic_write_text
from polyfact.languages import order_langs


def run_figures(run_dir: str | Path) -> list[tuple[str, str, go.Figure]]:
    """``(section, name, figure)`` for every figure the run's results allow."""
    run_dir = Path(run_dir)
    ids = checkpoint_order(run_dir)
    out: list[tuple[str, str, go.Figure]] = []

    def add(section: str, name: str, build: Callable[[], go.Figure]) -> None:
        out.append((section, name, build()))

    recall = results(run_dir, "recall", ids)
    if recall:
        add("Recall and consistency", "recall_by_language", lambda: B.recall_by_language(recall))
        add("Recall and consistency", "recall_by_group", lambda: B.recall_by_group(recall))
        add("Recall and consistency", "total_consistency", lambda: B.total_consistency(recall))
        for kind in ("agreement", "coverlap", "rankc"):
            if any(kind in r["metrics"] for r in recall.values()):
                add("Recall and consistency", f"consistency_{kind}", lambda k=kind: B.consistency_heatmaps(recall, k))
    neurons = results(run_dir, "neurons", ids)
    if neurons:
        for c, r in neurons.items():
            add("Language-specific neurons", f"lape_{c}",
                lambda r=r, c=c: B.lape_per_layer(r["variants"]["tang"]["per_layer"],
                                                  f"Language-specific neurons per layer ({c}, LAPE, top 1%)"))
        if "base" in neurons:
            for c, r in neurons.items():
                if c != "base":
                    add("Language-specific neurons", f"lape_change_{c}", lambda r=r, c=c: B.lape_change(
                        r["variants"]["tang"]["calibrated_per_layer"],
                        neurons["base"]["variants"]["tang"]["calibrated_per_layer"],
                        f"Change against base ({c}, base-calibrated thresholds)"))
        add("Language-specific neurons", "lape_totals",
            lambda: B.lape_totals({c: r["variants"]["tang"]["counts"] for c, r in neurons.items()}))
        add("Language-specific neurons", "entropy_by_layer", lambda: B.entropy_by_layer(neurons))
    heads = results(run_dir, "heads", ids)
    for c in [x for x in ("base", ids[-1] if ids else None) if x in heads]:
        add("Attention heads", f"head_entropy_{c}", lambda c=c: B.head_importance_heatmap(heads[c]))
        add("Attention heads", f"top_heads_{c}", lambda c=c: B.top_heads_by_layer(heads[c]))
        add("Attention heads", f"head_overlap_{c}", lambda c=c: B.head_overlap(heads[c]))
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
        langs = [x for x in order_langs(first["logit_lens"]) if x != first["reference"]][:4]
        add("Shared representations", "logit_lens", lambda: B.logit_lens_curves(first, langs))
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
        return f"{x['delta']:+.3g} [{x['ci'][0]:+.3g}, {x['ci'][1]:+.3g}] p={x['p_value']:.3f}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _provenance(run_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((run_dir / "results").glob("*/*.json")):
        try:
            prov = json.loads(path.read_text()).get("provenance")
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if prov:
            rows.append({"file": str(path.relative_to(run_dir)), "checkpoint": prov.get("checkpoint"),
                         "checkpoint_fp": prov.get("checkpoint_fingerprint"), "data_fp": prov.get("data_fingerprint"),
                         "key": prov.get("key")})
    return rows


STYLE = """body{font-family:Helvetica,Arial,sans-serif;max-width:1250px;margin:auto;padding:0 20px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:12px;max-height:420px}
section{margin-bottom:30px}h2{border-bottom:1px solid #ddd;padding-bottom:4px}"""


def build_report(run_dir: str | Path, static: bool = False) -> Path:
    """Write ``<run>/report.html`` and ``<run>/figures/*.html`` (``static``: also PNG and PDF)."""
    run_dir = Path(run_dir)
    if not (run_dir / "results").exists():
        raise PolyFactError(f"{run_dir} has no results yet; run 'polyfact run --run {run_dir}' first")
    figs = run_figures(run_dir)
    fig_dir = run_dir / "figures"
    for _, name, fig in figs:
        write_html([fig], fig_dir / f"{name}.html", title=name)
        if static:
            for suffix in (".png", ".pdf"):
                write_static(fig, fig_dir / f"{name}{suffix}")
    parts = [f"<h1>PolyFact run report: {html.escape(run_dir.name)}</h1>"]
    timings = run_dir / ".polyfact" / "timings.json"
    if timings.exists():
        t = json.loads(timings.read_text())
        parts.append("<p>Stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
                     + f" (total {sum(t.values()):.0f} s)</p>")
    summary_path = run_dir / "results" / "summary.json"
    if summary_path.exists():
        rows = json.loads(summary_path.read_text())["rows"]
        parts.append("<section><h2>Summary</h2>" + _table(rows, [
            ("checkpoint", lambda r: r["checkpoint"]), ("mean accuracy", lambda r: _fmt(r["mean_accuracy"])),
            ("English", lambda r: _fmt(r.get("en"))),
            ("Total Consistency (all)", lambda r: _fmt(r["total_consistency"])),
            ("Total Consistency (training langs)", lambda r: _fmt(r.get("total_consistency_training"))),
            ("Δ neuron entropy vs base", lambda r: _fmt(r.get("delta_neuron_entropy"))),
            ("Δ head entropy vs base", lambda r: _fmt(r.get("delta_head_entropy"))),
        ]) + "</section>")
    section = None
    for i, (sec, name, fig) in enumerate(figs):
        if sec != section:
            parts.append(f"<h2>{html.escape(sec)}</h2>")
            section = sec
        parts.append(f"<section class='figure' id='{name}'>{figure_div(fig, f'fig-{name}', i == 0)}</section>")
    card = run_dir / "data" / "README.md"
    if card.exists():
        parts.append(f"<section><h2>Dataset card</h2><pre>{html.escape(card.read_text())}</pre></section>")
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        parts.append(f"<section><h2>Configuration</h2><pre>{html.escape(cfg.read_text())}</pre></section>")
    prov = _provenance(run_dir)
    if prov:
        parts.append("<section><h2>Provenance</h2>" + _table(prov, [(k, lambda r, k=k: r[k]) for k in prov[0]])
                     + "</section>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>PolyFact report {html.escape(run_dir.name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(run_dir / "report.html", page)


def paper_lape_figures(paper_dir: str | Path, out: str | Path, compare: str | Path | None = None,
                       static: bool = True) -> list[Path]:
    """Figures of the released LAPE results (one checkpoint, or the change between two)."""
    from interp.lape import LapeResult

    a = LapeResult.read_json(paper_dir)
    name_a = Path(paper_dir).name
    figs = [B.lape_per_layer(a.per_layer(), f"Language-specific neurons per layer ({name_a}, "
                                            f"{a.meta.get('model', 'released')})")]
    counts = {name_a: a.counts()}
    if compare:
        b = LapeResult.read_json(compare)
        name_b = Path(compare).name
        counts[name_b] = b.counts()
        figs.append(B.lape_per_layer(b.per_layer(), f"Language-specific neurons per layer ({name_b})"))
        figs.append(B.lape_change(b.per_layer(), a.per_layer(), f"{name_b} − {name_a}: change per language and layer"))
    figs.append(B.lape_totals(counts))
    out = Path(out)
    written = [write_html(figs, out / "lape.html", title="Released LAPE results")]
    if static:
        for i, fig in enumerate(figs):
            for suffix in (".png", ".pdf"):
                written.append(write_static(fig, out / f"lape_{i}{suffix}", width=1100, height=600))
    return written
