"""Language specialization of one checkpoint: activation statistics → LAPE neurons (both
variants, fixed fraction and base-calibrated thresholds, entropy summaries), and head importance.
Writes ``results/neurons/<id>.*`` and ``results/heads/<id>.*`` with provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analyses.provenance import fresh, provenance, result_path, write_result
from interp import (ActivationStats, CollectConfig, HeadImportance, LapeResult, calibrate, collect_stats,
                    entropy_summary, head_importance, lape)
import torch

from polyfact.errors import PolyFactError
from training.common import RunData
from training.models import load_checkpoint, resolve_checkpoint


@dataclass
class SpecializationConfig:
    """Analyzer settings shared by neurons and heads."""

    backend: str = "nnsight"
    texts: str | None = None
    max_tokens: int | None = 20000
    seq_len: int = 128
    batch_size: int = 16
    top_frac: float = 0.01
    head_method: str = "gradient"
    head_backend: str = "torch"
    head_max_tokens: int | None = 4000
    top_k_heads: int = 4
    reference: str = "base"
    shards: int = 8  # interleaved text groups per language: the units of the routing bootstrap


def text_source(run_dir: str | Path, spec: str | None, langs: list[str] | None = None) -> tuple[dict[str, list[str]], str | None]:
    """Texts per language and the data fingerprint they come from.

    ``None``/``dataset``: the run dataset's questions (all splits); ``dataset:SPLIT``: one split;
    ``files:DIR``: ``DIR/<lang>.txt``, one text per line; ``hf:PATH:COLUMN[:LANG_COLUMN]``: a
    dataset saved with ``save_to_disk`` (or a local dataset script/directory), grouped by the
    language column (default ``lang``)."""
    spec = spec or "dataset"
    if spec == "dataset" or spec.startswith("dataset:"):
        data = RunData(run_dir)
        split = spec.split(":", 1)[1] if ":" in spec else None
        rows = data.rows(split)
        keep = set(langs) if langs else None
        out: dict[str, list[str]] = {}
        for r in rows:
            if keep is None or r["lang"] in keep:
                out.setdefault(r["lang"], []).append(r["question"])
        return out, data.fingerprint
    if spec.startswith("files:"):
        folder = Path(spec[6:])
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise PolyFactError(f"no <lang>.txt files in {folder}; write one file per language")
        texts = {f.stem: [line for line in f.read_text(encoding="utf-8").splitlines() if line.strip()] for f in files}
        from polyfact.io import fingerprint

        return {k: v for k, v in texts.items() if not langs or k in langs}, fingerprint(texts)
    if spec.startswith("hf:"):
        parts = spec[3:].split(":")
        if len(parts) < 2:
            raise PolyFactError("--texts hf:PATH:COLUMN[:LANG_COLUMN] needs a path and a text column")
        import datasets

        path, column = parts[0], parts[1]
        lang_col = parts[2] if len(parts) > 2 else "lang"
        try:
            ds = datasets.load_from_disk(path)
        except FileNotFoundError:
            raise PolyFactError(f"no dataset saved at {path} (datasets.save_to_disk)") from None
        if isinstance(ds, datasets.DatasetDict):
            ds = datasets.concatenate_datasets(list(ds.values()))
        for col in (column, lang_col):
            if col not in ds.column_names:
                raise PolyFactError(f"dataset {path} has no column {col!r}; it has {', '.join(ds.column_names)}")
        out = {}
        for text, lang in zip(ds[column], ds[lang_col]):
            if not langs or lang in langs:
                out.setdefault(lang, []).append(text)
        return out, ds._fingerprint
    raise PolyFactError(f"unknown text source {spec!r}; use dataset, dataset:SPLIT, files:DIR or hf:PATH:COLUMN")


def shard_texts(texts: dict[str, list[str]], shards: int) -> dict[str, list[str]]:
    """``{lang: texts}`` → ``{"lang#s": every shards-th text}`` (interleaved, deterministic)."""
    out = {}
    for lang, items in texts.items():
        for s in range(max(shards, 1)):
            part = items[s :: max(shards, 1)]
            if part:
                out[f"{lang}#{s}"] = part
    return out


def shard_language(key: str) -> str:
    return key.split("#")[0]


def merge_shards(stats: ActivationStats) -> ActivationStats:
    """Statistics per language from statistics per ``lang#shard``."""
    langs: list[str] = []
    for key in stats.languages:
        if shard_language(key) not in langs:
            langs.append(shard_language(key))
    out = ActivationStats.zeros(langs, stats.n_layers, stats.act_pos.shape[2], stats.head_norm.shape[2],
                                dict(stats.meta))
    idx = torch.tensor([langs.index(shard_language(k)) for k in stats.languages])
    for name in ("tokens", "act_pos", "act_sum", "act_sumsq", "head_norm"):
        getattr(out, name).index_add_(0, idx, getattr(stats, name))
    return out


def _stored_key(path: Path) -> str | None:
    """Provenance key stored in the ``.json`` beside statistics or importance saved at ``path``."""
    import json

    meta = path.with_name(path.name + ".json")
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("meta", {}).get("provenance_key")
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _load_model(run_dir: str | Path, ckpt_id: str, backend: str):
    model, tok = load_checkpoint(ckpt_id, run_dir)
    if backend == "lens":  # the bridge runs eager attention: match it for identical numbers
        model.set_attn_implementation("eager")
    return model, tok


def _sharded(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, *, analysis: str, path: Path,
             config: dict, budget: int | None, seed: int, force: bool, load, compute):
    """Per ``lang#shard`` results of a checkpoint, recomputed only when their provenance changed."""
    texts, data_fp = text_source(run_dir, cfg.texts)
    prov = provenance(run_dir, ckpt_id, analysis=analysis, data_fingerprint=data_fp,
                      config={**config, "texts": cfg.texts, "seq_len": cfg.seq_len, "shards": cfg.shards}, seed=seed)
    if not force and _stored_key(path) == prov["key"]:
        return load(path), prov
    per_shard = budget // max(cfg.shards, 1) if budget else None
    out = compute(shard_texts(texts, cfg.shards), CollectConfig(backend=config["backend"], seq_len=cfg.seq_len,
                                                               batch_size=cfg.batch_size, max_tokens=per_shard))
    out.meta["provenance_key"] = prov["key"]
    out.save(path)
    return out, prov


def collect(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, seed: int = 0, force: bool = False
            ) -> tuple[ActivationStats, dict]:
    """Activation statistics of a checkpoint per ``lang#shard`` (reused when the provenance
    matches); :func:`merge_shards` gives them per language."""
    def compute(texts, ccfg):
        model, tok = _load_model(run_dir, ckpt_id, cfg.backend)
        return collect_stats(model, tok, texts, ccfg, model_dir=resolve_checkpoint(ckpt_id, run_dir))

    return _sharded(run_dir, ckpt_id, cfg, analysis="activation-stats",
                    path=result_path(run_dir, "neurons", ckpt_id, ".stats"),
                    config={"backend": cfg.backend, "max_tokens": cfg.max_tokens}, budget=cfg.max_tokens, seed=seed,
                    force=force, load=ActivationStats.load, compute=compute)


def neuron_analysis(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig | None = None, seed: int = 0,
                    force: bool = False) -> dict[str, Any]:
    """LAPE of a checkpoint: both variants at ``top_frac``, counts under the reference model's
    calibrated thresholds, and entropy summaries per layer."""
    cfg = cfg or SpecializationConfig()
    sharded, stats_prov = collect(run_dir, ckpt_id, cfg, seed, force)
    stats = merge_shards(sharded)
    ref_key = None
    ref_probs = None
    if cfg.reference and cfg.reference != ckpt_id:
        ref_sharded, ref_prov = collect(run_dir, cfg.reference, cfg, seed, force=False)
        ref_probs, ref_key = merge_shards(ref_sharded).act_prob(), ref_prov["key"]
    prov = provenance(run_dir, ckpt_id, analysis="neurons", data_fingerprint=stats_prov["data_fingerprint"],
                      config={**asdict(cfg), "stats": stats_prov["key"], "reference_stats": ref_key}, seed=seed)
    path = result_path(run_dir, "neurons", ckpt_id)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    probs = stats.act_prob()
    payload: dict[str, Any] = {"checkpoint": ckpt_id, "reference": cfg.reference, "languages": stats.languages,
                               "tokens": dict(zip(stats.languages, stats.tokens.tolist())),
                               "n_layers": stats.n_layers, "d_mlp": int(probs.shape[1]),
                               "entropy": entropy_summary(probs), "variants": {}}
    for variant in ("tang", "polyfact"):
        thresholds = calibrate(ref_probs if ref_probs is not None else probs, cfg.top_frac, variant)
        fixed = lape(probs, stats.languages, cfg.top_frac, variant)
        calibrated = lape(probs, stats.languages, cfg.top_frac, variant, thresholds=thresholds)
        fixed.write_json(Path(run_dir) / "results" / "neurons" / ckpt_id / variant / "lape_results.json")
        payload["variants"][variant] = {
            "counts": fixed.counts(), "per_layer": fixed.per_layer(),
            "calibrated_counts": calibrated.counts(), "calibrated_per_layer": calibrated.per_layer(),
            "thresholds": thresholds.to_dict(),
        }
    return write_result(path, payload, prov)


def load_lape(run_dir: str | Path, ckpt_id: str, variant: str = "tang") -> LapeResult:
    return LapeResult.read_json(Path(run_dir) / "results" / "neurons" / ckpt_id / variant / "lape_results.json")


def collect_heads(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, seed: int = 0, force: bool = False
                  ) -> tuple[HeadImportance, dict]:
    """Head importance per ``lang#shard`` (reused when the provenance matches)."""
    def compute(texts, ccfg):
        model, tok = _load_model(run_dir, ckpt_id, cfg.head_backend)
        return head_importance(model, tok, texts, cfg.head_method, ccfg,
                               model_dir=resolve_checkpoint(ckpt_id, run_dir))

    return _sharded(run_dir, ckpt_id, cfg, analysis="heads", path=result_path(run_dir, "heads", ckpt_id, ".shards"),
                    config={"method": cfg.head_method, "backend": cfg.head_backend, "max_tokens": cfg.head_max_tokens},
                    budget=cfg.head_max_tokens, seed=seed, force=force, load=HeadImportance.load, compute=compute)


def merge_head_shards(imp: HeadImportance) -> HeadImportance:
    """Importance per language: the mean over its shards."""
    langs: list[str] = []
    for key in imp.languages:
        if shard_language(key) not in langs:
            langs.append(shard_language(key))
    groups = [[i for i, k in enumerate(imp.languages) if shard_language(k) == lang] for lang in langs]
    scores = torch.stack([imp.scores[g].mean(0) for g in groups])
    delta = torch.stack([imp.delta[g].mean(0) for g in groups]) if imp.delta is not None else None
    return HeadImportance(langs, scores, imp.method, delta, dict(imp.meta))


def head_analysis(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig | None = None, seed: int = 0,
                  force: bool = False) -> dict[str, Any]:
    """Per-language head importance; top-k heads, overlaps, layer distribution, entropy."""
    cfg = cfg or SpecializationConfig()
    sharded, shard_prov = collect_heads(run_dir, ckpt_id, cfg, seed, force)
    prov = provenance(run_dir, ckpt_id, analysis="heads-summary", data_fingerprint=shard_prov["data_fingerprint"],
                      config={**asdict(cfg), "shards_key": shard_prov["key"]}, seed=seed)
    path = result_path(run_dir, "heads", ckpt_id)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    imp = merge_head_shards(sharded)
    imp.save(result_path(run_dir, "heads", ckpt_id, ".importance"))
    k = cfg.top_k_heads
    ent = imp.normalized_entropy()
    payload = {"checkpoint": ckpt_id, "method": imp.method, "languages": imp.languages, "n_layers": imp.n_layers,
               "n_heads": imp.n_heads, "k": k, "top_k": {lang: [list(h) for h in v] for lang, v in imp.top_k(k).items()},
               "overlap": imp.overlap(k), "layer_distribution": imp.layer_distribution(k),
               "entropy_mean": float(ent.mean()), "entropy_per_layer": ent.mean(1).tolist(),
               "importance": imp.scores.tolist()}
    return write_result(path, payload, prov)


def load_heads(run_dir: str | Path, ckpt_id: str) -> HeadImportance:
    return HeadImportance.load(result_path(run_dir, "heads", ckpt_id, ".importance"))

