"""Language activation probability entropy (LAPE) and its threshold-free summaries.

Two variants of neuron selection from ``act_prob`` (``[layers, d_mlp, languages]``, P(act > 0)):

``tang`` — Tang et al. 2024, their released ``identify.py``: normalize each neuron's probabilities
over languages and take the entropy; neurons with no language above the ``filter_quantile``
probability (over all layers × neurons × languages) are excluded; the lowest-entropy ``top_frac``
of *all* neurons are selected; a selected neuron belongs to every language whose probability
exceeds the ``bar_quantile`` probability (so it can belong to several, or to none).

``polyfact`` — the PolyFact study's ``run_lape.py``: only neurons that never fire are excluded;
the lowest-entropy ``top_frac`` are selected; each belongs to its single most probable language.

``thresholds`` calibrated on a reference (base) model fix the entropy cut and the probability
bars, so the *number* of language-specific neurons of another checkpoint can change (a fixed
``top_frac`` can only move neurons, not remove them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from polyfact.core.errors import PolyFactError
from polyfact.interp.registry import LAPE_COUNTS, LAPE_VARIANTS

MAX_LAYERS = 4096  # a released layer key beyond this (or meta's num_layers) is refused, never allocated
from polyfact.core.io import atomic_write_json, read_json



@dataclass(frozen=True)
class LapeThresholds:
    """Cuts calibrated on a reference model: entropy at its ``top_frac`` quantile, and its filter
    and bar probabilities."""

    entropy: float
    filter_prob: float
    bar_prob: float

    def to_dict(self) -> dict[str, float]:
        return {"entropy": self.entropy, "filter_prob": self.filter_prob, "bar_prob": self.bar_prob}


def entropy(act_prob: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each neuron's probabilities normalized over languages ``[layers, d_mlp]``;
    neurons that never fire get NaN."""
    p = act_prob.double()
    total = p.sum(-1, keepdim=True)
    normed = torch.where(total > 0, p / total.clamp(min=1e-300), torch.zeros_like(p))
    logs = torch.where(normed > 0, normed.log(), torch.zeros_like(normed))
    ent = -(normed * logs).sum(-1)
    return torch.where(total.squeeze(-1) > 0, ent, torch.full_like(ent, float("nan")))


def normalized_entropy(act_prob: torch.Tensor) -> torch.Tensor:
    """Entropy divided by log(#languages): 0 = one language only, 1 = uniform."""
    n = act_prob.shape[-1]
    return entropy(act_prob) / math.log(n) if n > 1 else torch.zeros(act_prob.shape[:-1], dtype=torch.float64)


def _quantile_value(values: torch.Tensor, q: float) -> float:
    """``kthvalue(round(n · q))`` of the flattened values, as in Tang et al.'s script."""
    flat = values.flatten().double()
    k = min(max(int(round(flat.numel() * q)), 1), flat.numel())
    return float(flat.kthvalue(k).values)


@dataclass
class LapeResult:
    """Selected neurons: ``selected[layer][lang] = [neuron indices]`` (layers 0-based)."""

    selected: dict[int, dict[str, list[int]]]
    languages: list[str]
    n_layers: int
    d_mlp: int
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Neurons per language over all layers."""
        return {lang: sum(len(self.selected.get(layer, {}).get(lang, [])) for layer in range(self.n_layers))
                for lang in self.languages}

    def per_layer(self) -> dict[str, list[int]]:
        """Neurons per language per layer."""
        return {lang: [len(self.selected.get(layer, {}).get(lang, [])) for layer in range(self.n_layers)]
                for lang in self.languages}

    def units(self, lang: str) -> set[tuple[int, int]]:
        """``{(layer, neuron)}`` of one language."""
        return {(layer, n) for layer, langs in self.selected.items() for n in langs.get(lang, [])}

    def all_units(self) -> set[tuple[int, int]]:
        return {u for lang in self.languages for u in self.units(lang)}

    def write_json(self, path: str | Path) -> Path:
        """The released format: ``{layer (1-based, str): {lang: [indices]}}`` + ``meta.json`` beside."""
        path = Path(path)
        out = {str(layer + 1): {lang: sorted(idx) for lang, idx in langs.items()}
               for layer, langs in sorted(self.selected.items())}
        atomic_write_json(path, out)
        meta = {**self.meta, "langs": self.languages, "num_layers": self.n_layers, "intermediate_size": self.d_mlp,
                "n_selected": len(self.all_units())}
        atomic_write_json(path.with_name("meta.json"), meta)
        return path

    @classmethod
    def read_json(cls, path: str | Path) -> "LapeResult":
        """Read the released format (layers 1-based); ``meta.json`` beside it is used when present."""
        path = Path(path)
        if path.is_dir():
            path = path / "lape_results.json"
        raw = read_json(path, "LAPE results", "re-download the release")
        meta_path = path.with_name("meta.json")
        meta = read_json(meta_path, "LAPE metadata", "re-download the release") if meta_path.exists() else {}
        if not isinstance(meta, dict):
            raise PolyFactError(f"{meta_path} must hold a JSON object (langs, num_layers, intermediate_size, …)")
        from polyfact.interp.heads import check_meta

        check_meta(meta, meta_path, {"langs": list, "num_layers": int, "intermediate_size": int, "n_selected": int})
        if not isinstance(raw, dict):
            raise PolyFactError(f"{path} is not in the LAPE format {{layer: {{lang: [indices]}}}}")
        n_layers = meta.get("num_layers") or MAX_LAYERS
        d_mlp = meta.get("intermediate_size")
        selected: dict[int, dict[str, list[int]]] = {}
        for layer, langs in raw.items():
            if not (isinstance(layer, str) and layer.isdigit() and 1 <= int(layer) <= n_layers):
                raise PolyFactError(f"{path}: layer key {str(layer)[:20]!r} must be a 1-based layer number up to "
                                    f"{n_layers}")
            if not isinstance(langs, dict) or not all(isinstance(v, list) for v in langs.values()):
                raise PolyFactError(f"{path}: layer {layer} is not in the LAPE format; it must map languages to lists "
                                    "of neuron indices")
            for lang, idx in langs.items():
                if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                           and (d_mlp is None or i < d_mlp) for i in idx):
                    raise PolyFactError(f"{path}: layer {layer}, {lang}: neuron indices must be integers in "
                                        f"[0, {d_mlp if d_mlp else 'the MLP width'})")
            selected[int(layer) - 1] = {lang: list(idx) for lang, idx in langs.items()}
        langs_seen = {lang for langs in selected.values() for lang in langs}
        if meta.get("langs") and not langs_seen <= set(meta["langs"]):
            raise PolyFactError(f"{path} has neurons for {sorted(langs_seen - set(meta['langs']))}, which "
                                f"{meta_path.name} does not list; make them agree")
        languages = list(meta.get("langs") or sorted(langs_seen))
        n_layers = int(meta.get("num_layers") or (max(selected) + 1 if selected else 0))
        d_mlp = int(d_mlp or 1 + max((i for langs in selected.values() for idx in langs.values() for i in idx),
                                      default=0))
        return cls(selected, languages, n_layers, d_mlp, meta)


def _eligible_entropy(probs: torch.Tensor, variant: str, filter_prob: float | None) -> torch.Tensor:
    """Entropy per neuron with +inf for neurons the variant excludes (tang: no language above the
    filter probability; polyfact: never fires)."""
    ent = entropy(probs)
    eligible = (probs > filter_prob).sum(-1) > 0 if variant == "tang" else probs.sum(-1) > 0
    return torch.where(eligible & ~torch.isnan(ent), ent, torch.full_like(ent, float("inf")))


def n_selected(n: int, top_frac: float, count: str = "floor") -> int:
    """How many of ``n`` neurons a ``top_frac`` selects: ``max(1, int(n · top_frac))`` (``floor``, the
    study's HEAD) or ``round(n · top_frac)`` (``round``, its paper-era notebook)."""
    LAPE_COUNTS.check(count, "count")
    return max(1, int(n * top_frac)) if count == "floor" else int(round(n * top_frac))


def calibrate(act_prob: torch.Tensor, top_frac: float = 0.01, variant: str = "tang", filter_quantile: float = 0.95,
              bar_quantile: float = 0.95, count: str = "floor") -> LapeThresholds:
    """Thresholds of a reference model: the entropy of its ``top_frac``-th lowest eligible neuron
    (as the variant selects them), and its filter and bar probabilities."""
    probs = act_prob.double()
    filter_prob = _quantile_value(probs, filter_quantile)
    ent = _eligible_entropy(probs, variant, filter_prob if variant == "tang" else None).flatten()
    finite = ent[torch.isfinite(ent)].sort().values
    k = max(1, n_selected(ent.numel(), top_frac, count))
    cut = float(finite[min(k, finite.numel()) - 1]) if finite.numel() else float("-inf")
    return LapeThresholds(cut, filter_prob, _quantile_value(probs, bar_quantile))


def lape(
    act_prob: torch.Tensor,
    languages: list[str],
    top_frac: float = 0.01,
    variant: str = "tang",
    filter_quantile: float = 0.95,
    bar_quantile: float = 0.95,
    thresholds: LapeThresholds | None = None,
    count: str = "floor",
) -> LapeResult:
    """Language-specific neurons from ``act_prob`` ``[layers, d_mlp, languages]``.

    With ``thresholds`` (from :func:`calibrate` on a reference model) every eligible neuron whose
    entropy is at most the reference cut is selected, and the reference bars are used."""
    LAPE_VARIANTS.check(variant, "variant")
    if act_prob.dim() != 3 or act_prob.shape[-1] != len(languages):
        raise PolyFactError(f"act_prob must be [layers, d_mlp, {len(languages)} languages], got {tuple(act_prob.shape)}")
    n_layers, d_mlp, _ = act_prob.shape
    probs = act_prob.double()
    filter_prob = None
    if variant == "tang":
        filter_prob = thresholds.filter_prob if thresholds else _quantile_value(probs, filter_quantile)
    ent = _eligible_entropy(probs, variant, filter_prob)
    flat = ent.flatten()
    if thresholds is not None:
        index = torch.nonzero(flat <= thresholds.entropy + 1e-12).flatten()
    else:
        k = n_selected(flat.numel(), top_frac, count)
        n_eligible = int(torch.isfinite(flat).sum())
        index = torch.topk(flat, min(k, n_eligible), largest=False).indices if k else torch.zeros(0, dtype=torch.long)
    rows, cols = index // d_mlp, index % d_mlp
    chosen = probs[rows, cols]  # [n, languages]
    selected: dict[int, dict[str, list[int]]] = {}
    if variant == "tang":
        bar = thresholds.bar_prob if thresholds else _quantile_value(probs, bar_quantile)
        for lang_i, lang in enumerate(languages):
            hit = chosen[:, lang_i] > bar
            for layer, neuron in zip(rows[hit].tolist(), cols[hit].tolist()):
                selected.setdefault(layer, {}).setdefault(lang, []).append(neuron)
    else:
        bar = None
        best = chosen.argmax(-1)
        for layer, neuron, lang_i in zip(rows.tolist(), cols.tolist(), best.tolist()):
            selected.setdefault(layer, {}).setdefault(languages[lang_i], []).append(neuron)
    selected = {layer: {lang: sorted(v) for lang, v in langs.items()} for layer, langs in sorted(selected.items())}
    meta = {"variant": variant, "top_frac": top_frac, "filter_quantile": filter_quantile,
            "bar_quantile": bar_quantile, "filter_prob": filter_prob, "bar_prob": bar, "count": count,
            "n_candidates": int(index.numel()), "calibrated": thresholds.to_dict() if thresholds else None}
    return LapeResult(selected, list(languages), n_layers, d_mlp, meta)


def entropy_summary(act_prob: torch.Tensor, quantiles: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5)) -> dict[str, Any]:
    """Threshold-free summary: per layer the mean normalized entropy of firing neurons, its
    quantiles, and the share of dead neurons."""
    ne = normalized_entropy(act_prob)
    out: dict[str, Any] = {"mean": [], "quantiles": {str(q): [] for q in quantiles}, "dead_share": []}
    for layer in range(ne.shape[0]):
        row = ne[layer]
        alive = row[~torch.isnan(row)]
        out["dead_share"].append(float(torch.isnan(row).double().mean()))
        out["mean"].append(float(alive.mean()) if alive.numel() else float("nan"))
        for q in quantiles:
            out["quantiles"][str(q)].append(float(torch.quantile(alive, q)) if alive.numel() else float("nan"))
    return out
