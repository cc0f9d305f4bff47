"""Language specialization of one checkpoint: activation statistics → LAPE neurons (both
variants, fixed fraction and reference-calibrated thresholds, entropy summaries), and head
importance (LAHIS, gradient or ablation). Writes ``results/neurons/<id>.*`` and
``results/heads/<id>.*`` with provenance, and the study's released formats beside them.

Statistics and importance are computed per ``lang#shard`` (interleaved text groups, the units of
the measurement-error bootstrap in :mod:`polyfact.analyses.routing`) and merged per language."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from polyfact.analyses.texts import TextSource, text_source
from polyfact.core.checkpoints import list_checkpoints, load_checkpoint, resolve_checkpoint
from polyfact.core.errors import PolyFactError
from polyfact.core.layout import layout
from polyfact.core.provenance import current, fresh, provenance, write_result
from polyfact.interp import ActivationStats, CollectConfig, HeadImportance, LapeResult, collect_stats, head_importance
from polyfact.interp.lape import calibrate, entropy_summary, lape
from polyfact.analyses.config import SpecializationConfig

T = TypeVar("T")


def effective_reference(run_dir: str | Path, cfg: SpecializationConfig, ckpt_id: str | None = None) -> str | None:
    """The reference checkpoint when the run has it (and it is not ``ckpt_id`` itself), else None."""
    ref = cfg.reference
    if not ref or ref == ckpt_id or ref not in list_checkpoints(run_dir):
        return None
    return ref


def shuffled(texts: list[str], seed: int) -> list[str]:
    """``texts`` in the order ``datasets.Dataset.shuffle(seed=seed)`` gives (numpy's ``default_rng``
    permutation), as the study draws its LAHIS samples."""
    import numpy as np

    return [texts[i] for i in np.random.default_rng(seed).permutation(len(texts))]


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


def language_groups(keys: list[str]) -> tuple[list[str], list[list[int]]]:
    """Languages in first-seen order and the indices of each language's ``lang#shard`` keys."""
    langs: list[str] = []
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        lang = shard_language(k)
        if lang not in groups:
            langs.append(lang)
            groups[lang] = []
        groups[lang].append(i)
    return langs, [groups[lang] for lang in langs]


def merge_shards(stats: ActivationStats) -> ActivationStats:
    """Statistics per language from statistics per ``lang#shard`` (sums add)."""
    langs, _ = language_groups(stats.languages)
    out = ActivationStats.zeros(langs, stats.n_layers, stats.act_pos.shape[2], stats.head_norm.shape[2],
                                dict(stats.meta))
    idx = torch.tensor([langs.index(shard_language(k)) for k in stats.languages])
    for name in ("tokens", "act_pos", "act_sum", "act_sumsq", "head_norm"):
        getattr(out, name).index_add_(0, idx, getattr(stats, name))
    return out


def merge_head_shards(imp: HeadImportance) -> HeadImportance:
    """Importance per language. LAHIS: its accumulators pooled over the shards' samples
    (sample-weighted means of the score and of the negative fraction, then their product);
    gradient and ablation: the mean over shards."""
    langs, groups = language_groups(imp.languages)
    if imp.parts:
        w = imp.parts["samples"]
        parts = {"samples": torch.stack([w[g].sum() for g in groups])}
        for name in ("mean_score", "neg_frac"):
            parts[name] = torch.stack([(imp.parts[name][g] * w[g][:, None, None]).sum(0) / w[g].sum().clamp(min=1)
                                       for g in groups])
        return HeadImportance(langs, parts["mean_score"] * parts["neg_frac"], imp.method, None, dict(imp.meta), parts)
    scores = torch.stack([imp.scores[g].mean(0) for g in groups])
    delta = torch.stack([imp.delta[g].mean(0) for g in groups]) if imp.delta is not None else None
    return HeadImportance(langs, scores, imp.method, delta, dict(imp.meta))


def _load_model(run_dir: str | Path, ckpt_id: str, backend: str):
    model, tok = load_checkpoint(ckpt_id, run_dir)
    if backend == "lens":  # the bridge runs eager attention: match it for identical numbers
        model.set_attn_implementation("eager")
    return model, tok


def _sharded(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, *, analysis: str, path: Path,
             config: dict, source: TextSource, ccfg: CollectConfig, seed: int, force: bool,
             load: Callable[[Path], T], compute: Callable[[dict, CollectConfig], T]) -> tuple[T, dict]:
    """Per ``lang#shard`` results of a checkpoint, recomputed only when their provenance changed
    (a missing or damaged file counts as changed)."""
    prov = provenance(run_dir, ckpt_id, analysis=analysis, data_fingerprint=source.fingerprint,
                      config={**config, "texts": cfg.texts, "seq_len": ccfg.seq_len, "shards": cfg.shards}, seed=seed)
    if not force and current(path, prov["key"], path.with_name(path.name + ".safetensors")):
        try:
            return load(path), prov
        except PolyFactError:
            pass  # damaged arrays: recompute
    out = compute(shard_texts(source.texts, cfg.shards), ccfg)
    out.meta["provenance_key"] = prov["key"]
    out.meta["text_source"] = source.description
    out.save(path)
    return out, prov


def _budget(total: int | None, cfg: SpecializationConfig) -> int | None:
    return total // max(cfg.shards, 1) if total else None


def collect(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, seed: int = 0, force: bool = False
            ) -> tuple[ActivationStats, dict]:
    """Activation statistics of a checkpoint per ``lang#shard`` (reused when the provenance
    matches); :func:`merge_shards` gives them per language."""
    source = text_source(run_dir, cfg.texts, max_chars=cfg.max_tokens * 8 if cfg.max_tokens else None)
    ccfg = CollectConfig(backend=cfg.backend, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                         max_tokens=_budget(cfg.max_tokens, cfg), compile=cfg.compile, separator=cfg.lape_separator)

    def compute(texts, c):
        model, tok = _load_model(run_dir, ckpt_id, cfg.backend)
        return collect_stats(model, tok, texts, c, model_dir=resolve_checkpoint(ckpt_id, run_dir))

    return _sharded(run_dir, ckpt_id, cfg, analysis="activation-stats", path=layout(run_dir).result("neurons", ckpt_id, ".stats"),
                    config={"backend": cfg.backend, "max_tokens": cfg.max_tokens, "separator": cfg.lape_separator},
                    source=source, ccfg=ccfg,
                    seed=seed, force=force, load=ActivationStats.load, compute=compute)


def neuron_analysis(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig | None = None, seed: int = 0,
                    force: bool = False) -> dict[str, Any]:
    """LAPE of a checkpoint: both variants at ``top_frac``, counts under the reference model's
    calibrated thresholds (its own without a reference), and entropy summaries per layer."""
    cfg = cfg or SpecializationConfig()
    sharded, stats_prov = collect(run_dir, ckpt_id, cfg, seed, force)
    stats = merge_shards(sharded)
    reference = effective_reference(run_dir, cfg, ckpt_id)
    ref_key = ref_probs = None
    if reference:
        ref_sharded, ref_prov = collect(run_dir, reference, cfg, seed, force=False)
        ref_probs, ref_key = merge_shards(ref_sharded).act_prob(), ref_prov["key"]
    prov = provenance(run_dir, ckpt_id, analysis="neurons", data_fingerprint=stats_prov["data_fingerprint"],
                      config={**asdict(cfg), "stats": stats_prov["key"], "reference_stats": ref_key}, seed=seed)
    path = layout(run_dir).result("neurons", ckpt_id)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    probs = stats.act_prob()
    payload: dict[str, Any] = {"checkpoint": ckpt_id, "reference": reference,
                               "languages": stats.languages,
                               "tokens": dict(zip(stats.languages, stats.tokens.tolist())),
                               "text_source": sharded.meta.get("text_source"),
                               "n_layers": stats.n_layers, "d_mlp": int(probs.shape[1]),
                               "entropy": entropy_summary(probs), "variants": {}}
    for variant in ("tang", "polyfact"):
        thresholds = calibrate(ref_probs if ref_probs is not None else probs, cfg.top_frac, variant,
                               count=cfg.lape_count)
        fixed = lape(probs, stats.languages, cfg.top_frac, variant, count=cfg.lape_count)
        calibrated = lape(probs, stats.languages, cfg.top_frac, variant, thresholds=thresholds, count=cfg.lape_count)
        fixed.write_json(layout(run_dir).lape_dir(ckpt_id, variant) / "lape_results.json")
        payload["variants"][variant] = {
            "counts": fixed.counts(), "per_layer": fixed.per_layer(),
            "calibrated_counts": calibrated.counts(), "calibrated_per_layer": calibrated.per_layer(),
            "thresholds": thresholds.to_dict(),
        }
    return write_result(path, payload, {**prov, "hook_check": sharded.meta.get("hook_check")})


def load_lape(run_dir: str | Path, ckpt_id: str, variant: str = "tang") -> LapeResult:
    return LapeResult.read_json(layout(run_dir).lape_dir(ckpt_id, variant) / "lape_results.json")


def collect_heads(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig, seed: int = 0, force: bool = False
                  ) -> tuple[HeadImportance, dict]:
    """Head importance per ``lang#shard`` (reused when the provenance matches)."""
    lahis = cfg.head_method == "lahis"
    seq_len = cfg.head_seq_len or cfg.seq_len
    source = text_source(run_dir, cfg.texts, join=cfg.head_join if lahis else 1,
                         max_chars=cfg.head_max_tokens * 8 if cfg.head_max_tokens else None)
    per_shard = -(-cfg.head_max_samples // max(cfg.shards, 1)) if lahis and cfg.head_max_samples else None
    ccfg = CollectConfig(backend=cfg.head_backend, seq_len=seq_len, batch_size=cfg.batch_size,
                         max_tokens=_budget(cfg.head_max_tokens, cfg), pack=not lahis or not cfg.texts or
                         not cfg.texts.startswith("multiway:"), special_tokens=lahis and cfg.head_special_tokens)
    config = {"method": cfg.head_method, "backend": cfg.head_backend, "max_tokens": cfg.head_max_tokens}
    if lahis:
        config.update({"lr": cfg.head_lr, "max_samples": cfg.head_max_samples, "join": cfg.head_join,
                       "accumulation": cfg.lahis_accumulation, "shuffle_seed": cfg.head_shuffle_seed,
                       "special_tokens": cfg.head_special_tokens})
        if cfg.head_shuffle_seed is not None:  # the study: dataset.shuffle(seed=86), then the first N samples
            source = TextSource({lang: shuffled(v, cfg.head_shuffle_seed) for lang, v in source.texts.items()},
                                source.fingerprint, source.description)

    def compute(texts, c):
        model, tok = _load_model(run_dir, ckpt_id, cfg.head_backend)
        return head_importance(model, tok, texts, cfg.head_method, c, model_dir=resolve_checkpoint(ckpt_id, run_dir),
                               lr=cfg.head_lr, max_samples=per_shard, lahis_accumulation=cfg.lahis_accumulation)

    return _sharded(run_dir, ckpt_id, cfg, analysis="heads", path=layout(run_dir).result("heads", ckpt_id, ".shards"),
                    config=config, source=source, ccfg=ccfg, seed=seed, force=force, load=HeadImportance.load,
                    compute=compute)


def head_analysis(run_dir: str | Path, ckpt_id: str, cfg: SpecializationConfig | None = None, seed: int = 0,
                  force: bool = False) -> dict[str, Any]:
    """Per-language head importance: the study's top-2 % heads, overlaps (|A∩B|/n) and layer
    profile, and the project's top-k by specificity, Jaccard overlaps and entropy."""
    cfg = cfg or SpecializationConfig()
    sharded, shard_prov = collect_heads(run_dir, ckpt_id, cfg, seed, force)
    prov = provenance(run_dir, ckpt_id, analysis="heads-summary", data_fingerprint=shard_prov["data_fingerprint"],
                      config={**asdict(cfg), "shards_key": shard_prov["key"]}, seed=seed)
    path = layout(run_dir).result("heads", ckpt_id)
    imp_path = layout(run_dir).result("heads", ckpt_id, ".importance")
    if not force and current(path, prov["key"], imp_path.with_name(imp_path.name + ".safetensors")):
        done = fresh(path, prov)
        if done is not None:
            return done
    imp = merge_head_shards(sharded)
    imp.save(imp_path)
    if imp.method == "lahis":
        imp.write_released(layout(run_dir).lahis_dir(ckpt_id), model=ckpt_id)
    k, frac = cfg.top_k_heads, cfg.head_top_frac
    ent = imp.normalized_entropy()
    payload = {"checkpoint": ckpt_id, "method": imp.method, "languages": imp.languages, "n_layers": imp.n_layers,
               "n_heads": imp.n_heads, "k": k, "top_k": {lang: [list(h) for h in v] for lang, v in imp.top_k(k).items()},
               "overlap": imp.topk_jaccard(k), "layer_distribution": imp.layer_distribution(k),
               "entropy_mean": float(ent.mean()), "entropy_per_layer": ent.mean(1).tolist(),
               "entropy_by_head": ent.tolist(), "importance": imp.scores.tolist(),
               "study": {"top_frac": frac, "n_top": imp.n_top(frac),
                         "top": {lang: [list(h) for h in v] for lang, v in imp.top(frac).items()},
                         "overlap_pct": imp.overlap(frac), "mean_overlap_pct": imp.mean_overlap(frac),
                         "layer_profile_pct": imp.layer_profile(frac)},
               "text_source": sharded.meta.get("text_source")}
    if imp.meta.get("skipped_nonfinite"):
        payload["skipped_nonfinite"] = imp.meta["skipped_nonfinite"]
    return write_result(path, payload, {**prov, "hook_check": sharded.meta.get("hook_check")})


def load_heads(run_dir: str | Path, ckpt_id: str) -> HeadImportance:
    return HeadImportance.load(layout(run_dir).result("heads", ckpt_id, ".importance"))
