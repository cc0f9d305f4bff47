"""Summaries of the study's released mechanistic results, for figures that never compute:
LAPE neurons (``lape_results.json`` + ``meta.json``) and LAHIS heads (``lahis_<lang>.pth`` +
``meta.json``), one checkpoint or the change between two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.errors import PolyFactError
from polyfact.interp import HeadImportance, LapeResult


def released_lape(folder: str | Path, compare: str | Path | None = None) -> dict[str, Any]:
    """``{"checkpoints": [{name, model, per_layer, counts}, …]}`` of one or two released LAPE folders."""
    out = []
    for f in [folder] + ([compare] if compare else []):
        res = LapeResult.read_json(f)
        out.append({"name": Path(f).name, "model": res.meta.get("model", "released"), "per_layer": res.per_layer(),
                    "counts": res.counts()})
    return {"kind": "lape", "checkpoints": out}


def head_summary(imp: HeadImportance, name: str, frac: float = 0.02) -> dict[str, Any]:
    """The study's head measures of one importance table: top-``frac`` heads per language, the
    overlap matrix (|A∩B|/n, %), its off-diagonal mean and the layer profile (%)."""
    return {"name": name, "model": imp.meta.get("model", ""), "languages": imp.languages, "n_layers": imp.n_layers,
            "n_heads": imp.n_heads, "top_frac": frac, "n_top": imp.n_top(frac),
            "top": {lang: [list(h) for h in v] for lang, v in imp.top(frac).items()},
            "overlap_pct": imp.overlap(frac), "mean_overlap_pct": imp.mean_overlap(frac),
            "layer_profile_pct": imp.layer_profile(frac)}


def released_heads(folder: str | Path, compare: str | Path | None = None, frac: float = 0.02) -> dict[str, Any]:
    """Study head measures of one or two released LAHIS folders and, with two, their change
    (overlap and layer profile, second minus first, over the languages both have)."""
    tables = [head_summary(HeadImportance.read_released(f), Path(f).name, frac)
              for f in [folder] + ([compare] if compare else [])]
    out: dict[str, Any] = {"kind": "heads", "checkpoints": tables}
    if compare:
        a, b = tables
        if (a["n_layers"], a["n_heads"]) != (b["n_layers"], b["n_heads"]):
            raise PolyFactError(f"{folder} and {compare} come from differently shaped models "
                                f"({a['n_layers']}×{a['n_heads']} vs {b['n_layers']}×{b['n_heads']}); compare one model's checkpoints")
        langs = [x for x in a["languages"] if x in b["languages"]]
        out["change"] = {
            "languages": langs,
            "overlap_pct": {x: {y: b["overlap_pct"][x][y] - a["overlap_pct"][x][y] for y in langs} for x in langs},
            "mean_overlap_pct": b["mean_overlap_pct"] - a["mean_overlap_pct"],
            "layer_profile_pct": {x: [q - p for p, q in zip(a["layer_profile_pct"][x], b["layer_profile_pct"][x])]
                                  for x in langs},
        }
    return out
