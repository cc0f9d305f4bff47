"""Export: interactive HTML that opens offline and static PNG/PDF through kaleido with a Chromium
browser. A page of figures embeds plotly.js once (the report); a folder of one-figure pages shares
one ``plotly.min.js`` beside them, so a run's figures cost kilobytes each, not 4.6 MB."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_bytes, atomic_write_text


def figure_div(fig: go.Figure, div_id: str, include_plotlyjs: bool) -> str:
    """One figure as an HTML fragment; plotly.js is inlined only when asked (once per page)."""
    return fig.to_html(full_html=False, include_plotlyjs="inline" if include_plotlyjs else False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


PLOTLY_JS = "plotly.min.js"


def shared_plotly_js(folder: str | Path) -> Path:
    """``folder/plotly.min.js``: the one copy of plotly.js that the folder's pages load (written
    once; rewritten only when the installed plotly's differs)."""
    from plotly.offline import get_plotlyjs

    return atomic_write_text(Path(folder) / PLOTLY_JS, get_plotlyjs())


def write_html(figs: Sequence[go.Figure], path: str | Path, title: str = "PolyFact figures",
               shared_js: bool = False) -> Path:
    """A page that opens offline: every figure, with plotly.js embedded once, or (``shared_js``)
    loaded from the ``plotly.min.js`` beside it (:func:`shared_plotly_js` writes it once per folder)."""
    from html import escape

    head = f"<script src='{PLOTLY_JS}'></script>" if shared_js else ""
    body = "\n".join(f"<section>{figure_div(f, f'fig-{i}', i == 0 and not shared_js)}</section>"
                     for i, f in enumerate(figs))
    html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>{head}</head>"
            f"<body style='font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:auto'>"
            f"<h1>{escape(title)}</h1>{body}</body></html>")
    return atomic_write_text(path, html)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_static(fig: go.Figure, path: str | Path, width: int = 1000, height: int = 500, scale: float = 1.0) -> Path:
    """PNG or PDF (by suffix) through kaleido; a one-line error says what to install when no
    Chromium/Chrome is available."""
    path = Path(path)
    if path.suffix not in (".png", ".pdf", ".svg"):
        raise PolyFactError(f"static export writes .png, .pdf or .svg, not {path.suffix!r}")
    try:
        try:
            data = fig.to_image(format=path.suffix[1:], width=width, height=height, scale=scale)
        except Exception as err:  # kaleido's browser page sometimes fails to load under load: one more try
            if chromium_path() is None or "chrom" in str(err).lower():
                raise
            data = fig.to_image(format=path.suffix[1:], width=width, height=height, scale=scale)
    except Exception as err:  # kaleido raises its own types when no browser is found
        if chromium_path() is None or "chrom" in str(err).lower():
            raise PolyFactError(
                "static export needs Chromium or Chrome for kaleido: on Debian/Ubuntu 'apt-get install -y chromium', "
                "elsewhere install Chrome (or run 'plotly_get_chrome'); HTML export works without it"
            ) from None
        raise PolyFactError(f"static export failed: {err}") from None
    return atomic_write_bytes(path, data)
