"""Plotly builders in the shapes of the PolyFact study's figures, and writers of its tables.

Figures: KLAR trained vs held-out per arm (Fig 4a, Base as reference lines), KLAR per language
Base vs another arm (Fig 4b), LAPE neurons per language (Fig 5, log y), top-2 % head overlap
(Fig 7), head layer distribution (Fig 8), MEXA per-layer change against Base. Colours and markers
are the study's (Paul Tol); layout, fonts and axes follow :mod:`polyfact.figures.theme`. Builders take plain
numbers and never compute a measure. Tables (:class:`polyfact.analyses.paper.numbers.Table`) are written as
Markdown, CSV and LaTeX (booktabs), atomically.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from polyfact.analyses.paper.numbers import Table
from polyfact.core.io import atomic_write_text
from polyfact.figures.theme import TEMPLATE, method_color

TRAINED_COLOR, HELDOUT_COLOR, OTHER_COLOR = "#4477AA", "#EE6677", "#EE7733"
ARM_COLORS = {"Base": "#BBBBBB", "SFT": "#4477AA", "DCO": "#228833", "CM-Align": "#CCBB44", "GRPO": "#EE6677",
              "CPT+GRPO": "#AA3377", "CPT": "#66CCEE", "CPT+SFT": "#332288", "CPT+DCO": "#117733"}
LANG_STYLE = {  # the study's make_lahis_figures.py: (plotly marker, colour)
    "en": ("circle", "#4477AA"), "de": ("square", "#EE6677"), "pt": ("triangle-up", "#228833"),
    "ar": ("triangle-down", "#CCBB44"), "es": ("diamond", "#66CCEE"), "ru": ("cross", "#AA3377"),
    "fr": ("x", "#BBBBBB"), "ja": ("star", "#EE7733"), "zh": ("triangle-left", "#0077BB"),
    "id": ("triangle-right", "#009988"), "bn": ("hexagon", "#CC3311"), "sw": ("pentagon", "#332288")}
LOW = ("id", "bn", "sw")


def arm_color(label: str, i: int) -> str:
    """The study's colour of an arm label, else the theme's i-th method colour."""
    return ARM_COLORS.get(label, method_color(i + 1))


_MERGED: list[go.layout.Template] = []


def _template() -> go.layout.Template:
    """The theme's template (:data:`polyfact.figures.theme.TEMPLATE`), merged once rather than per figure."""
    if not _MERGED:
        _MERGED.append(go.Figure(layout=dict(template=TEMPLATE)).layout.template)
    return _MERGED[0]


def _style(fig: go.Figure, title: str, x: str | None, y: str | None, height: int, right: int = 30,
           top: int = 80) -> go.Figure:
    """:func:`polyfact.figures.theme.style` (the theme's template, title and axis labels), with the title
    inside the frame and room for labels at the right and top."""
    fig.update_layout(template=_template(), title=dict(text=title, x=0.01), height=height, margin=dict(r=right, t=top))
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def _tick(lang: str, low: Sequence[str] = LOW) -> str:
    return f"<b>{lang.upper()}</b>" if lang in low else lang.upper()


def klar_groups(arms: Sequence[tuple[str, float, float]], base: tuple[float, float] | None, title: str,
                n_trained: int = 7, n_heldout: int = 10, ylabel: str = "KLAR accuracy (%)") -> go.Figure:
    """Fig 4a: per arm, bars of mean accuracy on trained and held-out languages; Base as two
    dashed reference lines."""
    labels = [a[0] for a in arms]
    fig = go.Figure()
    for k, (name, color) in enumerate(((f"Trained ({n_trained} lang.)", TRAINED_COLOR),
                                       (f"Held-out ({n_heldout} lang.)", HELDOUT_COLOR))):
        y = [a[1 + k] for a in arms]
        fig.add_bar(name=name, x=labels, y=y, marker_color=color, marker_line=dict(color="black", width=0.6),
                    text=[f"{v:.1f}" if v is not None else "" for v in y], textposition="outside")
    if base is not None:
        for value, color, what in ((base[0], TRAINED_COLOR, "trained"), (base[1], HELDOUT_COLOR, "held-out")):
            if value is not None:
                fig.add_hline(y=value, line_dash="dash", line_color=color, line_width=1.2,
                              annotation_text=f"Base {what}<br>{value:.1f}", annotation_position="right",
                              annotation_font_size=11, annotation_font_color=color)
    fig.update_layout(barmode="group", bargap=0.3)
    fig.update_xaxes(tickangle=-20 if len(arms) > 4 else 0)
    return _style(fig, title, None, ylabel, height=420, right=110)


def klar_per_language(base: Mapping[str, float], other: Mapping[str, float], trained: Sequence[str], title: str,
                      base_label: str = "Base", other_label: str = "GRPO",
                      ylabel: str = "KLAR accuracy (%)") -> go.Figure:
    """Fig 4b: per language, Base and another arm side by side; trained languages (by Base accuracy)
    left of a dotted divider, held-out ones right."""
    left = sorted((x for x in base if x in trained), key=lambda x: -base[x])
    right = sorted((x for x in base if x not in trained), key=lambda x: -base[x])
    order = left + right
    fig = go.Figure()
    fig.add_bar(name=base_label, x=[x.upper() for x in order], y=[base[x] for x in order], marker_color=TRAINED_COLOR,
                marker_line=dict(color="black", width=0.6))
    fig.add_bar(name=other_label, x=[x.upper() for x in order], y=[other.get(x) for x in order],
                marker_color=OTHER_COLOR, marker_line=dict(color="black", width=0.6))
    top = max([v for v in (*base.values(), *other.values()) if v is not None] or [1.0])
    if left and right:
        fig.add_vline(x=len(left) - 0.5, line_dash="dot", line_color="#444444", line_width=1)
    for names, what in ((left, "trained"), (right, "held-out")):
        if names:
            mid = order.index(names[0]) + (len(names) - 1) / 2
            fig.add_annotation(x=mid, y=top * 1.04, text=f"<i>{what}</i>", showarrow=False, font_size=12)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(range=[0, top * 1.12])
    return _style(fig, title, "language", ylabel, height=420)


def lape_counts(counts: Mapping[str, Mapping[str, int]], title: str, log: bool = True) -> go.Figure:
    """Fig 5: language-specific neurons per language, one bar per arm, languages by the first
    arm's (Base's) count, log y; low-resource languages in bold."""
    first = next(iter(counts.values()))
    langs = sorted(first, key=lambda x: -first[x])
    fig = go.Figure()
    for i, (label, c) in enumerate(counts.items()):
        fig.add_bar(name=label, x=langs, y=[max(c.get(x, 0), 0) for x in langs], marker_color=arm_color(label, i))
    fig.update_layout(barmode="group", bargap=0.2)
    fig.update_xaxes(tickmode="array", tickvals=langs, ticktext=[_tick(x) for x in langs])
    if log:
        fig.update_yaxes(type="log")
    return _style(fig, title, "Language", "Language-specific neurons", height=420)


def head_overlap(overlap: Mapping[str, Mapping[str, float]], langs: Sequence[str], title: str) -> go.Figure:
    """Fig 7: pairwise overlap (%) of the languages' top-2 % heads, cividis 0–100, values in cells."""
    z = [[overlap[a][b] for b in langs] for a in langs]
    ticks = [x.upper() for x in langs]
    fig = go.Figure(go.Heatmap(z=z, x=ticks, y=ticks, zmin=0, zmax=100, colorscale="Cividis",
                               texttemplate="%{z:.0f}", textfont=dict(size=10),
                               colorbar=dict(title="% shared heads")))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-45)
    return _style(fig, title, None, None, height=620)


def head_layers(profile: Mapping[str, Sequence[float]], langs: Sequence[str], title: str) -> go.Figure:
    """Fig 8: share of each language's top-2 % heads per layer, one line per language (dodged
    within a layer), dashed for low-resource languages."""
    n = len(langs)
    fig = go.Figure()
    for i, lang in enumerate(langs):
        marker, color = LANG_STYLE.get(lang, ("circle", method_color(i)))
        dodge = -0.36 + 0.72 * i / (n - 1) if n > 1 else 0.0
        ys = list(profile[lang])
        fig.add_scatter(x=[k + dodge for k in range(len(ys))], y=ys, name=lang.upper(), mode="lines+markers",
                        line=dict(color=color, width=1.3, dash="dash" if lang in LOW else "solid"),
                        marker=dict(symbol=marker, size=7, color=color, line=dict(color="black", width=0.5)),
                        opacity=0.9, hovertemplate=f"{lang}: layer %{{x:.0f}}, %{{y:.1f}} %<extra></extra>")
    fig.update_xaxes(dtick=1 if len(next(iter(profile.values()), [])) <= 16 else 2)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return _style(fig, title, "Layer", "% of top-2% heads in layer", height=500)


def mexa_deltas(panels: Mapping[str, Mapping[str, Sequence[float]]], title: str, ylabel: str) -> go.Figure:
    """MEXA: per-layer change of retrieval against Base (the zero line), one line per arm, one
    panel per variant (raw, centered) with a shared y axis."""
    names = list(panels)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names, shared_yaxes=True,
                        horizontal_spacing=0.05)
    markers = ["square", "triangle-up", "diamond", "circle", "triangle-down", "x", "star"]
    seen: set[str] = set()
    for col, name in enumerate(names, 1):
        for i, (label, curve) in enumerate(panels[name].items()):
            fig.add_scatter(x=list(range(len(curve))), y=list(curve), name=label, legendgroup=label,
                            showlegend=label not in seen, mode="lines+markers", row=1, col=col,
                            line=dict(color=arm_color(label, i), width=1.4),
                            marker=dict(symbol=markers[i % len(markers)], size=5, color=arm_color(label, i)))
            seen.add(label)
        fig.add_hline(y=0, line_color="#666666", line_width=0.8, row=1, col=col)
        n = max((len(c) for c in panels[name].values()), default=0)
        fig.update_xaxes(title_text="Layer", dtick=1 if n <= 12 else 5, row=1, col=col)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    _style(fig, title, None, None, height=440, top=120)
    fig.update_layout(legend=dict(y=1.1))
    return fig


# --------------------------------------------------------------------------------------------
# Tables


def _ranks(table: Table) -> dict[tuple[str, str], int]:
    """(row, column) → 1 (best) or 2 (second) in the columns marked ``rank`` (higher is better)."""
    out = {}
    for c in table.columns:
        if not c.rank:
            continue
        vals = sorted({round(r.values[c.key], c.digits) for r in table.rows if r.values.get(c.key) is not None},
                      reverse=True)
        for r in table.rows:
            v = r.values.get(c.key)
            if v is not None and vals and round(v, c.digits) == vals[0]:
                out[(r.key, c.key)] = 1
            elif v is not None and len(vals) > 1 and round(v, c.digits) == vals[1]:
                out[(r.key, c.key)] = 2
    return out


def _cell(v: float | None, digits: int, signed: bool) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _header(c) -> str:
    return f"{c.group} {c.label}".strip()


def table_markdown(table: Table) -> str:
    """GitHub Markdown: title, the table (best in bold, second in italics), notes."""
    ranks = _ranks(table)
    lines = [f"### {table.title}", "", "| | " + " | ".join(_header(c) for c in table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for r in table.rows:
        cells = []
        for c in table.columns:
            s = _cell(r.values.get(c.key), c.digits, table.signed)
            s = "–" if s is None else s
            rank = ranks.get((r.key, c.key))
            s = f"**{s}**" if rank == 1 else f"*{s}*" if rank == 2 else s
            cells.append(s + (c.suffix if r.values.get(c.key) is not None else ""))
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    if ranks:
        lines += ["", "Best value per column in bold, second in italics."]
    lines += [""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def table_csv(table: Table) -> str:
    """CSV: one row per table row, full precision, empty cells where a value is missing."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "label", "tags", *[_header(c) for c in table.columns]])
    for r in table.rows:
        w.writerow([r.key, r.label, " ".join(r.tags),
                    *["" if r.values.get(c.key) is None else repr(float(r.values[c.key])) for c in table.columns]])
    return buf.getvalue()


_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "Δ": r"$\Delta$", "–": "--", "×": r"$\times$",
        "≈": r"$\approx$", "≥": r"$\geq$", "≤": r"$\leq$", "·": r"$\cdot$", "→": r"$\to$"}


def tex(text: str) -> str:
    """LaTeX-escape plain text."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def table_latex(table: Table) -> str:
    """A booktabs ``table`` environment: group headers, best in bold and second underlined,
    sections separated by ``\\midrule``; notes as comments."""
    ranks = _ranks(table)
    groups: list[tuple[str, int]] = []
    for c in table.columns:
        if groups and groups[-1][0] == c.group:
            groups[-1] = (c.group, groups[-1][1] + 1)
        else:
            groups.append((c.group, 1))
    out = ["% " + tex(n).replace("\n", " ") for n in table.notes]
    out += ["% needs \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering", "\\small",
            "\\begin{tabular}{l" + "r" * len(table.columns) + "}", "\\toprule"]
    if any(g for g, _ in groups):
        cells, rules, col = [], [], 2
        for g, k in groups:
            cells.append(f"\\multicolumn{{{k}}}{{c}}{{{tex(g)}}}" if k > 1 else tex(g))
            if g:
                rules.append(f"\\cmidrule(lr){{{col}-{col + k - 1}}}")
            col += k
        out += [" & " + " & ".join(cells) + " \\\\", " ".join(rules)]
    out.append(" & " + " & ".join(tex(c.label) for c in table.columns) + " \\\\")
    out.append("\\midrule")
    section = table.rows[0].section if table.rows else ""
    for r in table.rows:
        if r.section != section:
            out.append("\\midrule")
            section = r.section
        cells = []
        for c in table.columns:
            s = _cell(r.values.get(c.key), c.digits, table.signed)
            if s is None:
                cells.append("--")
                continue
            rank = ranks.get((r.key, c.key))
            s = f"\\textbf{{{s}}}" if rank == 1 else f"\\underline{{{s}}}" if rank == 2 else s
            cells.append(s + ("\\,/\\,--" if c.suffix else ""))
        out.append(f"{tex(r.label)} & " + " & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex(table.title)}}}"]
    if table.label:
        out.append(f"\\label{{{table.label}}}")
    out.append("\\end{table}")
    return "\n".join(out) + "\n"


def write_table(table: Table, folder: str | Path) -> list[Path]:
    """``<folder>/<name>.md``, ``.csv`` and ``.tex``, each written atomically."""
    folder = Path(folder)
    return [atomic_write_text(folder / f"{table.name}.md", table_markdown(table)),
            atomic_write_text(folder / f"{table.name}.csv", table_csv(table)),
            atomic_write_text(folder / f"{table.name}.tex", table_latex(table))]
