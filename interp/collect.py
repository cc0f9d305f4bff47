"""Collect per-language activation statistics through a hook backend (:mod:`polyfact.interp.backends`):
chunk per-language text (or token) streams to ``seq_len``, run batches with padding excluded by
the attention mask, show progress, and reduce with the one :class:`~interp.stats.SiteReducer`."""

from __future__ import annotations

import os

import torch
from tqdm.auto import tqdm

from polyfact.interp.backends import hook_check, make_backend
from polyfact.interp.batching import CollectConfig, Texts, batches, languages_with_text, pad_id, token_chunks
from polyfact.interp.sites import ArchitectureAdapter, adapter_for
from polyfact.interp.stats import ActivationStats, SiteReducer, all_reduce


def collect_stats(
    model: torch.nn.Module,
    tokenizer,
    texts: Texts,
    cfg: CollectConfig | None = None,
    *,
    adapter: ArchitectureAdapter | None = None,
    model_dir: str | os.PathLike | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> ActivationStats:
    """Statistics of ``model`` over ``texts`` (``{lang: [text, …]}`` or token-id lists).

    With ``world_size > 1`` each process takes every ``world_size``-th chunk and the shards are
    summed with an all-reduce (``torch.distributed`` must be initialized)."""
    cfg = cfg or CollectConfig()
    adapter = adapter or adapter_for(model)
    shape = adapter.shape(model)
    langs = languages_with_text(texts)
    pad = pad_id(tokenizer)
    plan = []
    for i, lang in enumerate(langs):
        chunks = token_chunks(tokenizer, texts[lang], cfg.seq_len, cfg.max_tokens, cfg.pack, cfg.separator,
                              cfg.special_tokens)[rank::world_size]
        plan.extend((i, ids, mask) for ids, mask in batches(chunks, cfg.batch_size, pad))
    meta = {"family": adapter.family, "backend": cfg.backend, "seq_len": cfg.seq_len, "pack": cfg.pack,
            "max_tokens": cfg.max_tokens, "moments": cfg.moments, "n_layers": shape.n_layers, "d_mlp": shape.d_mlp,
            "n_heads": shape.n_heads}
    stats = ActivationStats.zeros(langs, shape.n_layers, shape.d_mlp, shape.n_heads, meta)
    reducer = SiteReducer(stats, shape.n_heads, compile=cfg.compile, moments=cfg.moments)
    backend = make_backend(cfg.backend, model, tokenizer, adapter, shape, model_dir)
    was_training = model.training
    model.eval()
    try:
        if plan:  # measuring must not change the model: one probe batch, hooked against bare
            _, ids, mask = plan[0]
            scratch = SiteReducer(ActivationStats.zeros(langs, shape.n_layers, shape.d_mlp, shape.n_heads), shape.n_heads)
            scratch.begin(0, mask)
            stats.meta["hook_check"] = hook_check(model, cfg.backend, lambda: backend.collect(ids, mask, scratch, True),
                                                  ids, mask)
        for lang_i, ids, mask in tqdm(plan, desc=f"collecting ({cfg.backend})", disable=not cfg.progress):
            reducer.begin(lang_i, mask)
            backend.collect(ids, mask, reducer)
    finally:
        backend.close()
        model.train(was_training)
    reducer.finish()
    if world_size > 1:
        all_reduce(stats)
    return stats
