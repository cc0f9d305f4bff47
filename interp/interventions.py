"""Interventions through hooks: zero chosen MLP neurons (their ``mlp.gate_act`` output) or
attention heads (their slice of the ``o_proj`` input), and per-language language-model loss."""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Mapping, Sequence

import torch

from polyfact.interp.batching import CollectConfig, batches, next_token_loss, pad_id, token_chunks
from polyfact.interp.sites import ArchitectureAdapter, adapter_for


@contextlib.contextmanager
def deactivate(
    model: torch.nn.Module,
    neurons: Mapping[int, Sequence[int]] | None = None,
    heads: Iterable[tuple[int, int]] = (),
    adapter: ArchitectureAdapter | None = None,
) -> Iterator[None]:
    """Within the block, ``neurons`` (``{layer: [index]}``) output 0 and ``heads`` (``(layer, head)``)
    contribute nothing to ``o_proj``."""
    adapter = adapter or adapter_for(model)
    shape = adapter.shape(model)
    handles = []
    for layer, idx in (neurons or {}).items():
        if len(idx):
            index = torch.tensor(sorted(idx), dtype=torch.long)

            def zero_neurons(act, index=index):
                act = act.clone()
                act[..., index.to(act.device)] = 0
                return act

            handles.append(adapter.hook_mlp_act(model, layer, zero_neurons))
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    for layer, hs in by_layer.items():
        def zero_heads(mod, args, hs=tuple(hs)):
            z = args[0]
            b, t, width = z.shape
            view = z.reshape(b, t, shape.n_heads, width // shape.n_heads).clone()
            view[:, :, list(hs), :] = 0
            return (view.reshape(b, t, width), *args[1:])

        handles.append(adapter.module(model, "attn.head_out", layer).register_forward_pre_hook(zero_heads))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.inference_mode()
def lm_loss(model: torch.nn.Module, tokenizer, texts: Mapping[str, Sequence[str] | Sequence[Sequence[int]]],
            cfg: CollectConfig | None = None) -> dict[str, float]:
    """Mean next-token cross-entropy per language over its texts (padding excluded). All
    languages' sequences share batches; each token's loss is credited to its language."""
    cfg = cfg or CollectConfig(backend="torch", progress=False)
    dev = next(model.parameters()).device
    langs = list(texts)
    chunks, owner = [], []
    for i, lang in enumerate(langs):
        for c in token_chunks(tokenizer, texts[lang], cfg.seq_len, cfg.max_tokens, cfg.pack):
            chunks.append(c)
            owner.append(i)
    order = sorted(range(len(chunks)), key=lambda k: -len(chunks[k]))
    total = torch.zeros(len(langs), dtype=torch.float64)
    count = torch.zeros(len(langs), dtype=torch.float64)
    pad = pad_id(tokenizer)
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        (ids, mask), = batches([chunks[k] for k in idx], len(idx), pad)
        ids, mask = ids.to(dev), mask.to(dev)
        seq_loss, seq_n = next_token_loss(model(input_ids=ids, attention_mask=mask, use_cache=False).logits, ids, mask,
                                          per_sequence=True)
        seq_loss, seq_n = seq_loss.double().cpu(), seq_n.double().cpu()
        for row, k in enumerate(idx):  # batches() keeps the order it was given
            total[owner[k]] += seq_loss[row]
            count[owner[k]] += seq_n[row]
    return {lang: float(total[i] / count[i].clamp(min=1)) for i, lang in enumerate(langs)}
