"""Validated readers of the PolyFact study's released result files (used by
:mod:`polyfact.analyses.paper.release`): MCQ consistency summaries, KLAR and MEXA summaries, LAPE neuron
lists and LAHIS head-importance tensors. Every value is checked on read (types, finite numbers,
ranges, sizes); a malformed file is a one-line :class:`PolyFactError` naming the file and what was
expected."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from polyfact.core.errors import PolyFactError
from polyfact.core.io import read_json

PAPER_LANGS = ("en", "de", "pt", "ar", "es", "ru", "fr", "ja", "zh", "id", "bn", "sw")  # LAHIS "paper order"
MAX_LAYERS, MAX_HEADS, MAX_PTH_BYTES = 1024, 1024, 64 << 20
_FIX = "fix the file or re-export it from the study's evaluator"


def _fail(path: Path, what: str) -> PolyFactError:
    text = " ".join(f"{path}: {what}; {_FIX}".split())  # always one line
    return PolyFactError(text)


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _num(path: Path, where: str, v: Any, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number within [lo, hi]."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(path, f"{where} must be a finite number, got {_short(v)}")
    if (lo is not None and v < lo - 1e-12) or (hi is not None and v > hi + 1e-12):
        raise _fail(path, f"{where} must lie in [{lo}, {hi}], got {v}")
    return float(v)


def _int(path: Path, where: str, v: Any, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"≥ {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise _fail(path, f"{where} must be an integer {rng}, got {_short(v)}")
    return v


def _obj(path: Path, where: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise _fail(path, f"{where} must be a JSON object, got {type(v).__name__}")
    return v


def _list(path: Path, where: str, v: Any, max_len: int = 100_000) -> list:
    if not isinstance(v, list) or len(v) > max_len:
        raise _fail(path, f"{where} must be a list (at most {max_len} entries), got {_short(v)}")
    return v


def _lang(path: Path, where: str, v: Any) -> str:
    if not isinstance(v, str) or not 1 <= len(v) <= 16 or not v.replace("-", "").replace("_", "").isalnum():
        raise _fail(path, f"{where} must be a language code, got {_short(v)}")
    return v


def _read(path: Path) -> dict:
    return _obj(path, "the file", read_json(path, "released result", _FIX))


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Consistency:
    """One ``<tag>_<benchmark>_consistency.json``: per-language accuracy, Total Consistency
    (with its histogram of languages correct per fact), RankC and answer agreement; ``predictions``
    (``{fact: {lang: {correct, pred_idx, scores}}}``) only in the study's full files."""

    path: Path
    benchmark: str
    langs: list[str]
    accuracy: dict[str, float]
    n: dict[str, int]
    totc: float
    histogram: dict[int, int]
    n_facts_all: int
    n_facts_total: int
    mean_correct: float | None
    rankc: dict[str, Any]
    agreement: dict[str, Any] | None
    score_mode: str | None
    predictions: dict[str, dict[str, dict]] | None = None


def read_consistency(path: str | Path) -> Consistency:
    """Read and validate an MCQ consistency summary."""
    path = Path(path)
    d = _read(path)
    if "per_language_accuracy" not in d:
        raise _fail(path, "lacks 'per_language_accuracy' ({lang: {accuracy, n}})")
    pla = _obj(path, "per_language_accuracy", d["per_language_accuracy"])
    if not pla:
        raise _fail(path, "per_language_accuracy is empty")
    acc, n = {}, {}
    for lang, v in pla.items():
        _lang(path, "per_language_accuracy key", lang)
        v = _obj(path, f"per_language_accuracy[{lang!r}]", v)
        acc[lang] = _num(path, f"per_language_accuracy[{lang!r}].accuracy", v.get("accuracy"), 0, 1)
        n[lang] = _int(path, f"per_language_accuracy[{lang!r}].n", v.get("n"), 1)
    cfg = _obj(path, "config", d.get("config", {}))
    langs = cfg.get("langs", list(pla))
    langs = [_lang(path, "config.langs entry", x) for x in _list(path, "config.langs", langs, 1000)]
    if set(langs) != set(pla):
        raise _fail(path, f"config.langs {langs} and per_language_accuracy {sorted(pla)} name different languages")
    if "total_consistency" not in d:
        raise _fail(path, "lacks 'total_consistency' ({all_langs_correct_fraction, correct_language_count_histogram, …})")
    tc = _obj(path, "total_consistency", d["total_consistency"])
    hist_raw = _obj(path, "total_consistency.correct_language_count_histogram",
                    tc.get("correct_language_count_histogram", {}))
    hist = {}
    for k, v in hist_raw.items():
        if not str(k).isdigit() or int(k) > len(langs):
            raise _fail(path, f"histogram key {k!r} must be a language count 0..{len(langs)}")
        hist[int(k)] = _int(path, f"histogram[{k!r}]", v)
    mean_correct = tc.get("mean_languages_correct")
    rk = _obj(path, "rankc", d.get("rankc"))
    pairwise = _obj(path, "rankc.pairwise", rk.get("pairwise", {}))
    rankc: dict[str, Any] = {"average": _num(path, "rankc.average", rk.get("average"), 0, 1),
                             "pairwise": {str(k): _num(path, f"rankc.pairwise[{k!r}]", v, 0, 1)
                                          for k, v in pairwise.items()}}
    for key, lo, hi in (("average_en_x", 0, 1), ("average_rescaled", -1, 1), ("floor", 0, 1), ("chance", 0, 1),
                        ("n_candidates", 1, 10_000)):
        if key in rk:
            rankc[key] = _num(path, f"rankc.{key}", rk[key], lo, hi)
    if "weights" in rk:
        rankc["weights"] = [_num(path, "rankc.weights entry", w, 0, 1) for w in _list(path, "rankc.weights", rk["weights"], 10_000)]
    if "n_candidates_hist" in rk:
        h = _obj(path, "rankc.n_candidates_hist", rk["n_candidates_hist"])
        if not all(str(k).isdigit() and 1 <= int(k) <= 10_000 for k in h):
            raise _fail(path, "rankc.n_candidates_hist keys must be pool sizes 1..10000")
        rankc["n_candidates_hist"] = {int(k): _int(path, f"rankc.n_candidates_hist[{k!r}]", v) for k, v in h.items()}
    agreement = None
    if "answer_agreement" in d:
        aa = _obj(path, "answer_agreement", d["answer_agreement"])
        agreement = {"average": _num(path, "answer_agreement.average", aa.get("average"), 0, 1),
                     "pairwise": {str(k): _num(path, f"answer_agreement.pairwise[{k!r}]", v, 0, 1)
                                  for k, v in _obj(path, "answer_agreement.pairwise", aa.get("pairwise", {})).items()}}
    score_mode = cfg.get("score_mode")
    n_all = _int(path, "total_consistency.n_facts_all_langs", tc.get("n_facts_all_langs"), 1)
    if sum(hist.values()) > n_all:  # counts above the item total are impossible, not a number to recompute
        raise _fail(path, f"the correct-language histogram counts {sum(hist.values()):,} facts, more than "
                          f"n_facts_all_langs {n_all:,}")
    if any(x > max(n.values(), default=0) for x in (n_all,)):
        raise _fail(path, f"n_facts_all_langs {n_all:,} exceeds every language's item count")
    return Consistency(
        path=path, benchmark=str(cfg.get("benchmark", "")), langs=langs, accuracy=acc, n=n,
        totc=_num(path, "total_consistency.all_langs_correct_fraction", tc.get("all_langs_correct_fraction"), 0, 1),
        histogram=hist, n_facts_all=n_all,
        n_facts_total=_int(path, "total_consistency.n_facts_total", tc.get("n_facts_total", tc.get("n_facts_all_langs")), 1),
        mean_correct=None if mean_correct is None else _num(path, "total_consistency.mean_languages_correct",
                                                            mean_correct, 0, len(langs)),
        rankc=rankc, agreement=agreement, score_mode=score_mode if isinstance(score_mode, str) else None,
        predictions=_predictions(path, d["predictions"], set(langs)) if "predictions" in d else None)


def _predictions(path: Path, raw: Any, langs: set[str]) -> dict[str, dict[str, dict]]:
    """``predictions[fact][lang] = {correct: bool, pred_idx: int, scores: [finite]}`` validated."""
    out: dict[str, dict[str, dict]] = {}
    for fid, per_lang in _obj(path, "predictions", raw).items():
        out[str(fid)] = {}
        for lang, p in _obj(path, f"predictions[{fid!r}]", per_lang).items():
            if lang not in langs:
                raise _fail(path, f"predictions[{fid!r}] has language {lang!r} outside config.langs")
            p = _obj(path, f"predictions[{fid!r}][{lang!r}]", p)
            if not isinstance(p.get("correct"), bool):
                raise _fail(path, f"predictions[{fid!r}][{lang!r}].correct must be true or false")
            scores = [_num(path, f"predictions[{fid!r}][{lang!r}].scores entry", s)
                      for s in _list(path, f"predictions[{fid!r}][{lang!r}].scores", p.get("scores", []), 10_000)]
            hi = len(scores) - 1 if scores else None
            out[str(fid)][lang] = {"correct": p["correct"], "scores": scores,
                                   "pred_idx": _int(path, f"predictions[{fid!r}][{lang!r}].pred_idx", p.get("pred_idx"), 0, hi)}
    return out


@dataclass(frozen=True)
class Klar:
    """One ``klar/<tag>_klar_alllangs.json``: ``per_lang[lang] = (correct, total)``, the pooled
    subsets, and (full files only) the evaluator's per-sample ``records``."""

    path: Path
    per_lang: dict[str, tuple[int, int]]
    subset_acc: dict[str, tuple[int, int, float]]
    records: list[dict] | None = None

    def accuracy(self) -> dict[str, float]:
        """Per-language accuracy in percent."""
        return {lang: 100.0 * c / n for lang, (c, n) in self.per_lang.items()}


def read_klar(path: str | Path) -> Klar:
    """Read and validate a KLAR summary."""
    path = Path(path)
    d = _read(path)
    if "per_lang" not in d:
        raise _fail(path, "lacks 'per_lang' ({lang: [correct, total]})")
    per_lang = {}
    for lang, v in _obj(path, "per_lang", d["per_lang"]).items():
        _lang(path, "per_lang key", lang)
        if not isinstance(v, list) or len(v) != 2:
            raise _fail(path, f"per_lang[{lang!r}] must be [correct, total], got {_short(v)}")
        total = _int(path, f"per_lang[{lang!r}] total", v[1], 1)
        per_lang[lang] = (_int(path, f"per_lang[{lang!r}] correct (0 ≤ correct ≤ total)", v[0], 0, total), total)
    if not per_lang:
        raise _fail(path, "per_lang is empty")
    subsets = {}
    for name, v in _obj(path, "subset_acc", d.get("subset_acc") or {}).items():
        if not isinstance(v, list) or len(v) != 3:
            raise _fail(path, f"subset_acc[{name!r}] must be [correct, total, accuracy], got {_short(v)}")
        total = _int(path, f"subset_acc[{name!r}] total", v[1])
        subsets[str(name)] = (_int(path, f"subset_acc[{name!r}] correct (0 ≤ correct ≤ total)", v[0], 0, total), total,
                              _num(path, f"subset_acc[{name!r}] accuracy", v[2], 0, 1))
    records = None
    if "records" in d:
        records = []
        for i, r in enumerate(_list(path, "records", d["records"], 10_000_000)):
            r = _obj(path, f"records[{i}]", r)
            if not isinstance(r.get("correct"), bool) or not isinstance(r.get("relation", ""), str):
                raise _fail(path, f"records[{i}] needs 'correct' (true/false) and 'relation' (text)")
            idx = r.get("index")
            if isinstance(idx, bool) or not isinstance(idx, (int, str)):
                raise _fail(path, f"records[{i}].index must be an integer or text, got {_short(idx)}")
            records.append({"language": _lang(path, f"records[{i}].language", r.get("language")),
                            "relation": r.get("relation", ""), "index": idx, "correct": r["correct"],
                            "contaminated": bool(r.get("contaminated", False))})
    return Klar(path, per_lang, subsets, records)


@dataclass(frozen=True)
class Mexa:
    """One ``mexa/<tag>_mexa.json``: per-layer retrieval curves ``per_layer[variant][metric]``
    (variant raw/centered, metric x_y/en_x), the mid layer, and the mid-layer summary and pairs."""

    path: Path
    n_layers: int
    mid_layer: int | None
    per_layer: dict[str, dict[str, list[float]]]
    summary: dict[str, dict[str, float]]
    pairs: dict[str, dict[str, float]]  # variant -> pair -> top1_a2b (mid layer)


def read_mexa(path: str | Path) -> Mexa:
    """Read and validate a MEXA summary."""
    path = Path(path)
    d = _read(path)
    align = _obj(path, "alignment", d.get("alignment"))
    cfg = _obj(path, "config", d.get("config", {}))
    per_layer: dict[str, dict[str, list[float]]] = {}
    pairs: dict[str, dict[str, float]] = {}
    lengths = set()
    for variant, v in align.items():
        v = _obj(path, f"alignment[{variant!r}]", v)
        curves = _obj(path, f"alignment[{variant!r}].per_layer", v.get("per_layer"))
        per_layer[variant] = {}
        for metric, values in curves.items():
            vals = _list(path, f"alignment[{variant!r}].per_layer[{metric!r}]", values, MAX_LAYERS + 1)
            per_layer[variant][metric] = [_num(path, f"alignment[{variant!r}].per_layer[{metric!r}] entry", x, 0, 1)
                                          for x in vals]
            lengths.add(len(vals))
        pairs[variant] = {str(k): _num(path, f"alignment[{variant!r}].pairs[{k!r}].top1_a2b",
                                       _obj(path, f"alignment[{variant!r}].pairs[{k!r}]", p).get("top1_a2b"), 0, 1)
                          for k, p in _obj(path, f"alignment[{variant!r}].pairs", v.get("pairs", {})).items()}
    if not per_layer or len(lengths) != 1 or 0 in lengths:
        raise _fail(path, "alignment[variant].per_layer must hold non-empty curves of one length")
    (n_layers,) = lengths
    if "n_layers" in cfg and cfg["n_layers"] != n_layers:
        raise _fail(path, f"config.n_layers is {cfg['n_layers']} but the curves have {n_layers} entries")
    mid = d.get("mid_layer")
    summary = {str(var): {str(k): _num(path, f"summary[{var!r}][{k!r}]", x, 0, 1)
                          for k, x in _obj(path, f"summary[{var!r}]", s).items()}
               for var, s in _obj(path, "summary", d.get("summary", {})).items()}
    return Mexa(path, n_layers, None if mid is None else _int(path, "mid_layer", mid, 0, n_layers - 1),
                per_layer, summary, pairs)


@dataclass(frozen=True)
class Lape:
    """``lape/<tag>/``: selected neurons ``selected[layer (0-based)][lang] = [indices]`` and meta."""

    path: Path
    meta_path: Path | None
    selected: dict[int, dict[str, list[int]]]
    languages: list[str]
    n_layers: int
    d_mlp: int
    n_selected: int | None
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Neurons per language over all layers (the study's Fig 5 count)."""
        return {lang: sum(len(v.get(lang, [])) for v in self.selected.values()) for lang in self.languages}


def read_lape(folder: str | Path) -> Lape:
    """Read and validate ``lape_results.json`` (+ ``meta.json``): layer keys 1..num_layers,
    languages among meta's, neuron indices distinct non-negative integers below intermediate_size."""
    folder = Path(folder)
    path = folder / "lape_results.json"
    raw = _read(path)
    meta_path = folder / "meta.json"
    meta = _read(meta_path) if meta_path.exists() else {}
    n_layers = _int(meta_path, "num_layers", meta["num_layers"], 1, MAX_LAYERS) if "num_layers" in meta else MAX_LAYERS
    d_mlp = _int(meta_path, "intermediate_size", meta["intermediate_size"], 1, 10_000_000) \
        if "intermediate_size" in meta else 10_000_000
    langs = [_lang(meta_path, "langs entry", x) for x in _list(meta_path, "langs", meta.get("langs", []), 1000)]
    selected: dict[int, dict[str, list[int]]] = {}
    for key, per_lang in raw.items():
        if not str(key).isdigit() or not 1 <= int(key) <= n_layers:
            raise _fail(path, f"layer key {key!r} must be a 1-based layer number ≤ num_layers ({n_layers})")
        layer = int(key) - 1
        selected[layer] = {}
        seen: set[int] = set()
        for lang, idx in _obj(path, f"layer {key}", per_lang).items():
            _lang(path, f"layer {key} language", lang)
            if langs and lang not in langs:
                raise _fail(path, f"layer {key} names language {lang!r}, not among meta.json langs {langs}")
            values = [_int(path, f"layer {key} {lang} neuron index (< intermediate_size {d_mlp})", i, 0, d_mlp - 1)
                      for i in _list(path, f"layer {key} {lang}", idx, d_mlp)]
            if seen & set(values) or len(set(values)) != len(values):
                raise _fail(path, f"layer {key} lists a neuron twice ({lang})")
            seen.update(values)
            selected[layer][lang] = values
    order = langs or sorted({lang for v in selected.values() for lang in v})
    n_sel = meta.get("n_selected")
    return Lape(folder, meta_path if meta else None, selected, order,
                n_layers if "num_layers" in meta else 1 + max(selected, default=-1), d_mlp,
                None if n_sel is None else _int(meta_path, "n_selected", n_sel), meta)


def read_lahis(files: Mapping[str, Path], name: str):
    """``{lang: .pth}`` → :class:`polyfact.interp.HeadImportance` (method ``lahis``): each file a torch
    float tensor [layers, heads] (``weights_only`` loading, at most 64 MiB and 1024×1024, finite,
    all of one shape)."""
    import torch

    from polyfact.interp import HeadImportance

    mats, langs = [], []
    for lang in [x for x in PAPER_LANGS if x in files] + sorted(x for x in files if x not in PAPER_LANGS):
        p = files[lang]
        if p.stat().st_size > MAX_PTH_BYTES:
            raise _fail(p, f"is {p.stat().st_size} bytes; a LAHIS tensor [layers, heads] is far smaller")
        try:
            t = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
            raise _fail(p, f"cannot be read as a tensor ({type(err).__name__}); expected a torch.save'd float "
                           "tensor [layers, heads]") from None
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
            raise _fail(p, f"must hold a 2-D float tensor [layers, heads], got {type(t).__name__} "
                           f"{tuple(getattr(t, 'shape', ()))}")
        if not (1 <= t.shape[0] <= MAX_LAYERS and 1 <= t.shape[1] <= MAX_HEADS):
            raise _fail(p, f"has shape {tuple(t.shape)}; expected at most {MAX_LAYERS} layers × {MAX_HEADS} heads")
        if not bool(torch.isfinite(t).all()):
            raise _fail(p, "holds NaN or infinite importances")
        mats.append(t.double())
        langs.append(lang)
    shapes = {tuple(m.shape) for m in mats}
    if len(shapes) != 1:
        raise PolyFactError(f"the LAHIS files of {name} have different shapes {sorted(shapes)}; {_FIX}")
    return HeadImportance(langs, torch.stack(mats), "lahis", meta={"model": name})
