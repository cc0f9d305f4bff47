"""The PolyFact study's figures and tables in one call, from its released results and (side by
side) from a toolkit run: :func:`paper_outputs` writes every figure (HTML; PNG/PDF with Chromium)
and table (Markdown, CSV, LaTeX) into OUT with ``index.html`` in the paper's order,
``sources.json`` (the files each output was drawn from, with sha256) and ``disagreements.md``
(released aggregates recomputed with the toolkit's metrics). OUT is built in a temporary
directory and renamed into place, so a failure leaves nothing half-written."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from polyfact.analyses.paper import numbers as N
from polyfact.analyses.paper import recompute as RC
from polyfact.analyses.paper.numbers import Table
from polyfact.analyses.paper.release import (FAMILY_LABELS, ROLE_LABELS, Release, open_release)
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_dir, atomic_write_json, atomic_write_text, check_apart, file_digest
from polyfact.core.layout import layout
from polyfact.figures import paper_builders as PB
from polyfact.figures.export import chromium_path, figure_div, write_html, write_static
from polyfact.figures.paper_run import run_paper_figures, run_paper_figures_with_sources, run_paper_tables

__all__ = ["Output", "disagreements_md", "paper_outputs", "release_outputs", "run_paper_figures", "run_paper_tables",
           "table_html"]

SECTIONS = [("main", "Main table"), ("fig4a", "Figure 4a: KLAR, trained vs held-out languages"),
            ("fig4b", "Figure 4b: KLAR per language"), ("fig5", "Figure 5: language-specific neurons (LAPE)"),
            ("mexa", "MEXA: cross-lingual retrieval per layer"), ("fig7", "Figure 7: top-2 % head overlap (LAHIS)"),
            ("fig8", "Figure 8: where language-important heads cluster (LAHIS)"), ("appendix", "Appendix tables"),
            ("significance", "Significance (paired fact bootstrap)")]
STUDY_RENDERINGS = {"fig5": ["lape/fig5_lape_qwen.png"], "mexa": ["mexa/fig_mexa_layers_x_y_qwen.png"],
                    "fig7": ["fig7_pairwise_overlap_SFT.pdf"], "fig8": ["fig8_head_distribution_by_layer_SFT.pdf"]}


@dataclass
class Output:
    """One figure or table, the section it belongs to, the files it was drawn from, and whether
    it comes from the release or a run."""

    name: str
    section: str
    sources: list[Path]
    figure: go.Figure | None = None
    table: Table | None = None
    origin: str = "release"
    files: list[str] = field(default_factory=list)


def _section(name: str) -> str:
    for key, _ in SECTIONS:
        if name.startswith(key):
            return key
    return "main" if name.startswith("run_main") else "appendix"


def release_outputs(rel: Release) -> tuple[list[Output], list[str], list[str]]:
    """Every figure and table the release allows: (outputs, skipped lines, partial lines)."""
    outs: list[Output] = []
    skipped: list[str] = []
    partial: list[str] = []
    if not rel.families:
        skipped.append("main table, Fig 4a/4b, Fig 5 and MEXA skipped: none of the study's tags (qwen-base, olmo-base, …) "
                       "is in the release; name them with --tags base=<tag>,sft=<tag>,…")
    for fam in rel.families:
        sfx = f"_{fam.name}" if len(rel.families) > 1 else ""
        head = f"{fam.label} — " if fam.label and fam.name != "release" else ""
        main, missing = N.main_tables(rel, fam)
        if main[0].rows:
            outs += [Output(t.name + sfx, "main", t.sources, table=t) for t in main]
            partial += missing
        else:
            skipped.append(f"main table{sfx} skipped: " + "; ".join(missing[:3]))
        k = N.klar_arms(rel, fam, N.FIG4A_FULL, "Fig 4a")
        partial += k.missing
        arms = k.data
        if "base" not in arms:
            skipped.append(f"Fig 4a/4b{sfx} skipped: {rel.expected('klar', fam.roles.get('base', ('base',))[0])} is missing")
        else:
            base = arms["base"]["split"]
            for name, roles in (("fig4a_klar", N.FIG4A_ROLES), ("fig4a_klar_full", N.FIG4A_FULL)):
                drawn = [(ROLE_LABELS[r], *arms[r]["split"]) for r in roles if r in arms and r != "base"]
                if drawn and (name == "fig4a_klar" or len(drawn) > len(N.FIG4A_ROLES) - 1):
                    outs.append(Output(name + sfx, "fig4a", [arms[r]["klar"].path for r in roles if r in arms],
                                       PB.klar_groups(drawn, base, f"{head}KLAR accuracy, trained vs held-out languages")))
            outs.append(Output("fig4a_klar_table" + sfx, "fig4a", k.sources, table=N.klar_table(arms)))
            if "grpo" in arms:
                t = N.klar_language_table(arms["base"], arms["grpo"])
                outs.append(Output("fig4b_klar_per_language" + sfx, "fig4b", t.sources, PB.klar_per_language(
                    arms["base"]["accuracy"], arms["grpo"]["accuracy"], N.KLAR_TRAINED,
                    f"{head}KLAR accuracy per language: Base vs GRPO ({arms['grpo']['tag']})")))
                outs.append(Output("fig4b_klar_table" + sfx, "fig4b", t.sources, table=t))
            else:
                skipped.append(f"Fig 4b{sfx} skipped: {rel.expected('klar', fam.roles.get('grpo', ('grpo',))[0])} is missing")
        lape = N.lape_arms(rel, fam)
        partial += lape.missing
        if lape.data:
            counts = {ROLE_LABELS[r]: a["counts"] for r, a in lape.data.items()}
            outs.append(Output("fig5_lape" + sfx, "fig5", lape.sources, PB.lape_counts(
                counts, f"{head}Language-specific neurons per language (LAPE, top 1 %)")))
            outs.append(Output("fig5_lape_table" + sfx, "fig5", lape.sources, table=N.lape_table(lape.data)))
        else:
            skipped.append(f"Fig 5{sfx} skipped: no LAPE results ({rel.expected('lape', fam.roles.get('base', ('base',))[0])} "
                           "is missing)")
        mexa = N.mexa_arms(rel, fam)
        partial += mexa.missing
        if "base" in mexa.data and len(mexa.data) > 1:
            for metric, what in (("x_y", "non-English pairs (X–Y)"), ("en_x", "English pairs (EN–X)")):
                panels = {var: {ROLE_LABELS[r]: c for r, c in N.delta_curves(mexa.data, var, metric).items()}
                          for var in ("raw", "centered")}
                panels = {k: v for k, v in panels.items() if v}
                if panels:
                    t = N.mexa_table(mexa.data, metric)
                    outs.append(Output(f"mexa_{metric}{sfx}", "mexa", mexa.sources, PB.mexa_deltas(
                        panels, f"{head}Δ top-1 retrieval vs Base per layer, {what}",
                        f"Δ alignment vs base ({what.split('(')[1].rstrip(')')})")))
                    outs.append(Output(f"mexa_{metric}_table{sfx}", "mexa", mexa.sources, table=t))
        else:
            skipped.append(f"MEXA figure{sfx} skipped: {rel.expected('mexa', fam.roles.get('base', ('base',))[0])} "
                           "or every method's file is missing")
        appendix, missing = N.appendix_tables(rel, fam)
        partial += missing
        outs += [Output(t.name + sfx, "appendix", t.sources, table=t) for t in appendix]
        outs += _significance(rel, fam, sfx)
    lahis = N.lahis_models(rel)
    if lahis.data:
        for name, m in lahis.data.items():
            src = m["sources"]
            outs.append(Output(f"fig7_overlap_{name}", "fig7", src, PB.head_overlap(
                m["overlap_pct"], m["languages"], f"Top-2% head overlap (%) — {m['label']}")))
            outs.append(Output(f"fig8_layers_{name}", "fig8", src, PB.head_layers(
                m["layer_profile_pct"], m["languages"], f"Where language-important heads cluster — {m['label']}")))
        for t in N.lahis_tables(lahis.data):
            outs.append(Output(t.name, "fig7" if "overlap" in t.name or "summary" in t.name else "fig8", t.sources, table=t))
    else:
        skipped.append("Fig 7/8 skipped: no LAHIS tensors (olmo2/olmo2_<lang>.pth, olmo2_finetuned/olmo2_ft_<lang>.pth "
                       "or lahis/<tag>/lahis_<lang>.pth are missing)")
    return outs, skipped, list(dict.fromkeys(partial))


def _significance(rel: Release, fam, sfx: str) -> list[Output]:
    """The paired fact-bootstrap table (:func:`polyfact.analyses.paper.numbers.significance_table`)."""
    t = N.significance_table(rel, fam)
    return [Output("significance" + sfx, "significance", t.sources, table=t)] if t else []


def recompute(rel: Release, outputs: Sequence[Output]) -> RC.Recomputation:
    """Every recomputation the release's files allow, over the release files the outputs were drawn
    from (:func:`polyfact.analyses.paper.recompute.recompute_files`)."""
    return RC.recompute_files(p for o in outputs if o.origin == "release" for p in o.sources)


def disagreements_md(rec: RC.Recomputation, rel: Release) -> str:
    """``disagreements.md``: what was recomputed, every disagreement beyond 1e-6, and what could not be."""
    lines = ["# Released aggregates recomputed with the toolkit's metrics", "",
             f"Release: `{rel.root}`. Tolerance: {RC.TOL:g}.", "",
             f"{len(rec.checked)} released values recomputed from the other fields of their files "
             f"({len({c.split(': ')[0] for c in rec.checked})} files).", ""]
    if rec.disagreements:
        lines += [f"## {len(rec.disagreements)} disagreement(s)", "", "| file | quantity | released | recomputed | how |",
                  "|---|---|---:|---:|---|"]
        lines += [f"| {rel.relative(d.file)} | {d.quantity} | {d.released:.10g} | {d.recomputed:.10g} | {d.how} |"
                  for d in rec.disagreements]
    else:
        lines += ["## No disagreements", "", "Every recomputed value agrees with the released one." if rec.checked
                  else "None of the released values could be recomputed from these files."]
    if rec.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rec.notes]
    lines += ["", "## Not recomputable from this release", ""] + [f"- {n}" for n in rec.not_recomputable]
    return "\n".join(lines) + "\n"


def table_html(table: Table) -> str:
    """A table as an HTML fragment (best value per ranked column in bold, second underlined)."""
    ranks = PB._ranks(table)
    head = "".join(f"<th>{html.escape(PB._header(c))}</th>" for c in table.columns)
    body = []
    for r in table.rows:
        cells = []
        for c in table.columns:
            s = PB._cell(r.values.get(c.key), c.digits, table.signed)
            s = "–" if s is None else html.escape(s + c.suffix)
            rank = ranks.get((r.key, c.key))
            cells.append(f"<td>{'<b>' + s + '</b>' if rank == 1 else '<u>' + s + '</u>' if rank == 2 else s}</td>")
        body.append(f"<tr><th>{html.escape(r.label)}</th>{''.join(cells)}</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f"<p><b>{html.escape(table.title)}</b></p><table><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>" + (f"<ul class='note'>{notes}</ul>" if notes else ""))


STYLE = """body{font-family:Helvetica,Arial,sans-serif;max-width:1500px;margin:auto;padding:0 20px;color:#222}
table{border-collapse:collapse;margin:6px 0 12px;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
thead th{background:#f3f3f3}.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}.note{font-size:12px;color:#555}
.files{font-size:12px;color:#555}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}"""


def _index(outs: Sequence[Output], rel: Release, run_dir: Path | None, skipped: Sequence[str], partial: Sequence[str],
           rec: RC.Recomputation, notes: Sequence[str]) -> str:
    parts = ["<h1>The PolyFact study's figures and tables, redrawn from its released results</h1>",
             f"<p>Release: <code>{html.escape(str(rel.root))}</code>"
             + (f"; run: <code>{html.escape(str(run_dir))}</code> (right column)" if run_dir else "") + ".</p>"]
    for fam in rel.families:
        parts.append(f"<p class='note'>{html.escape(FAMILY_LABELS.get(fam.name, fam.name))} tags: " + html.escape(
            "; ".join(f"{ROLE_LABELS[r]} = {' | '.join(t)}" for r, t in fam.roles.items())) + "</p>")
    parts.append(f"<p>Recomputed {len(rec.checked)} released values with the toolkit's metrics: "
                 f"{len(rec.disagreements)} disagreement(s) (<a href='disagreements.md'>disagreements.md</a>). "
                 "Sources and sha256 of every input: <a href='sources.json'>sources.json</a>.</p>")
    first = True
    for key, title in SECTIONS:
        items = [o for o in outs if o.section == key]
        if not items:
            continue
        parts.append(f"<h2 id='{key}'>{html.escape(title)}</h2>")
        for rendering in STUDY_RENDERINGS.get(key, []):
            p = rel.root / rendering
            if p.exists():
                parts.append(f"<p class='note'>The study's own rendering: <a href='{html.escape(p.resolve().as_uri())}'>"
                             f"{html.escape(rendering)}</a> (in the release, not copied).</p>")
        if key in ("fig7", "fig8") and (rel.root / STUDY_RENDERINGS[key][0]).exists():
            parts.append("<p class='note'>The released PDF shows Qwen-2.5-7B (SFT), whose LAHIS tensors are not in the "
                         "release; these figures are drawn from the released OLMo-2 tensors.</p>")
        columns = [[o for o in items if o.origin == "release"], [o for o in items if o.origin == "run"]]
        blocks = []
        for col in columns:
            html_col = []
            for o in col:
                if o.figure is not None:
                    html_col.append(figure_div(o.figure, f"fig-{o.name}", first))
                    first = False
                else:
                    html_col.append(table_html(o.table))
                html_col.append("<p class='files'>files: " + " ".join(
                    f"<a href='{html.escape(f)}'>{html.escape(Path(f).suffix[1:])}</a>" for f in o.files) + "</p>")
            blocks.append("".join(html_col))
        parts.append(f"<div class='pair'><div>{blocks[0]}</div><div>{blocks[1]}</div></div>" if columns[1]
                     else blocks[0])
    lines = [*skipped, *partial, *notes]
    if lines:
        parts.append("<h2>Skipped or incomplete</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>PolyFact paper figures</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def _static(figs: list[tuple[str, go.Figure]], tmp: Path) -> list[str]:
    """PNG and PDF of every figure: one kaleido session for all (far faster than one per image),
    falling back to :func:`polyfact.figures.export.write_static` one by one."""
    import plotly.io as pio

    paths = [tmp / f"{n}{s}" for n, _ in figs for s in (".png", ".pdf")]
    sizes = [(1100 if "fig8" in n else 800 if "fig7" in n else 1000, int(f.layout.height or 450)) for n, f in figs]
    try:
        pio.write_images([f for _, f in figs for _ in (0, 1)], paths, width=[w for w, _ in sizes for _ in (0, 1)],
                         height=[h for _, h in sizes for _ in (0, 1)])
    except Exception:  # noqa: BLE001 - kaleido versions differ; the per-figure path reports real problems
        for (n, f), (w, h) in zip(figs, sizes):
            for s in (".png", ".pdf"):
                write_static(f, tmp / f"{n}{s}", width=w, height=h)
    return [p.name for p in paths]


def paper_outputs(release_dir: str | Path, out_dir: str | Path, tags: Mapping[str, str] | None = None,
                  static: bool = True, run_figures: Sequence[tuple[str, go.Figure]] | None = None,
                  run_dir: str | Path | None = None, force: bool = False) -> dict[str, Any]:
    """Write the study's figures and tables from ``release_dir`` into ``out_dir``.

    ``tags``: role → tag(s) (``{"grpo": "qwen-sw-clip5|qwen-grpo"}``) replacing the defaults read
    from the release. ``run_dir`` (or ready ``run_figures``): the same figure shapes from a
    toolkit run, drawn beside the release's. ``static``: PNG and PDF when Chromium is installed.
    ``force``: replace an existing ``out_dir``. Returns ``{"out", "written", "figures", "tables",
    "skipped", "missing", "notes", "checked", "disagreements", "static"}``; ``skipped`` lines name
    the missing file of each figure or table left out, ``missing`` the arms left out of a drawn one.
    """
    release, out = Path(release_dir), Path(out_dir)
    check_apart([release, run_dir], out, "--out")
    rel = open_release(release, tags)
    outs, skipped, partial = release_outputs(rel)
    notes: list[str] = []
    if run_dir is not None:
        run_dir = Path(run_dir)
        if not layout(run_dir).results.is_dir():
            raise PolyFactError(f"{run_dir} has no results/ folder; pass a run directory of 'polyfact run'")
        outs += [Output(n, _section(n), s, f, origin="run") for n, f, s in run_paper_figures_with_sources(run_dir)]
        outs += [Output(t.name, "main", s, table=t, origin="run") for t, s in run_paper_tables(run_dir)]
    if run_figures:
        outs += [Output(f"run_{n}" if not n.startswith("run_") else n, _section(n), [], f, origin="run")
                 for n, f in run_figures]
    rec = recompute(rel, outs)
    figs = [(("run_" if o.origin == "run" and not o.name.startswith("run_") else "") + o.name, o) for o in outs
            if o.figure is not None]
    do_static = static and chromium_path() is not None
    if static and not do_static:
        notes.append("PNG/PDF not written: no Chromium or Chrome found (HTML is complete); install chromium for them")
    hashes: dict[Path, str] = {}

    def digest(p: Path) -> str:
        if p not in hashes:
            hashes[p] = file_digest(p, 64)
        return hashes[p]

    written: list[str] = []
    with atomic_dir(out, force=force, made_by="paper") as tmp:
        for name, o in figs:
            write_html([o.figure], tmp / f"{name}.html", title=name)
            o.files = [f"{name}.html"]
        for o in outs:
            if o.table is not None:
                name = ("run_" if o.origin == "run" and not o.name.startswith("run_") else "") + o.name
                PB.write_table(o.table, tmp) if name == o.table.name else _write_renamed(o.table, name, tmp)
                o.files = [f"{name}.md", f"{name}.csv", f"{name}.tex"]
        if do_static and figs:
            try:
                made = _static([(n, o.figure) for n, o in figs], tmp)
                for name, o in figs:
                    o.files += [m for m in made if Path(m).stem == name]
            except PolyFactError as err:
                notes.append(f"PNG/PDF not written: {err}")
        atomic_write_text(tmp / "disagreements.md", disagreements_md(rec, rel))
        sources = {f: [{"file": rel.relative(p) if o.origin == "release" else str(p), "origin": o.origin,
                        "sha256": digest(p)} for p in dict.fromkeys(o.sources)] for o in outs for f in o.files}
        atomic_write_json(tmp / "sources.json", {"release": str(rel.root), "run": str(run_dir) if run_dir else None,
                                                 "outputs": sources})
        atomic_write_text(tmp / "index.html", _index(outs, rel, run_dir, skipped, partial, rec, notes))
        written = sorted(p.name for p in tmp.iterdir())
    return {"out": str(out), "written": written, "figures": [n for n, _ in figs],
            "tables": [f[:-3] for o in outs for f in o.files if f.endswith(".md")], "skipped": skipped,
            "missing": partial, "notes": notes + rec.notes, "checked": len(rec.checked),
            "disagreements": [f"{rel.relative(d.file)}: {d.quantity}: released {d.released:.10g}, recomputed "
                              f"{d.recomputed:.10g}" for d in rec.disagreements],
            "static": do_static, "tags": {f.name: {r: list(t) for r, t in f.roles.items()} for f in rel.families}}


def _write_renamed(table: Table, name: str, folder: Path) -> None:
    from dataclasses import replace

    PB.write_table(replace(table, name=name), folder)
