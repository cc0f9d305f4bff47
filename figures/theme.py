"""One theme for every figure: colorblind-safe colors, the study's language order, labelled axes."""

from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go
import plotly.io as pio

from polyfact.data.languages import LANGUAGES, order_langs

# Okabe–Ito (colorblind-safe) for methods/checkpoints, in a fixed order.
OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
SEQUENTIAL = "Viridis"  # perceptually uniform, colorblind-safe
DIVERGING = "RdBu"

pio.templates["polyfact"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Helvetica, Arial, sans-serif", size=13),
        colorway=OKABE_ITO,
        plot_bgcolor="white",
        xaxis=dict(showgrid=False, linecolor="#444", ticks="outside"),
        yaxis=dict(gridcolor="#e5e5e5", linecolor="#444", ticks="outside"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        margin=dict(l=70, r=30, t=80, b=60),
    )
)
TEMPLATE = "plotly_white+polyfact"


def language_order(langs: Iterable[str]) -> list[str]:
    """The study's order: en de id pt ar bn sw es ru fr ja zh, then held-out languages."""
    return order_langs(langs)


def language_label(code: str) -> str:
    lang = LANGUAGES.get(code)
    return f"{code}" if lang is None else f"{code} ({lang.name})"


def method_color(i: int) -> str:
    return OKABE_ITO[(i + 1) % len(OKABE_ITO)] if i else OKABE_ITO[0]


def style(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, height: int = 450) -> go.Figure:
    """Apply the theme, the title and axis labels (with units)."""
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0), height=height)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig
