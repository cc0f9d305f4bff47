"""Collect per-language activation statistics through one of three backends behind one interface:

``nnsight`` (default): one ``TransformersModel.trace`` per batch, reading each layer's ``o_proj`` input and
MLP activation in execution order and reducing them inside the trace;
``lens``: TransformerLens' ``TransformerBridge.boot_transformers`` on a local checkpoint with
``run_with_hooks`` on the canonical hook names;
``torch``: plain forward hooks on the adapter's modules (the reference, and the fastest).

All three chunk per-language text (or token) streams to ``seq_len``, run batches with padding
excluded by the attention mask, show progress, and reduce with the same :class:`SiteReducer`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

import torch
from tqdm.auto import tqdm

from interp.sites import ArchitectureAdapter, ModelShape, adapter_for, model_shape
from interp.stats import ActivationStats, SiteReducer, all_reduce
from polyfact.errors import PolyFactError

BACKENDS = ("nnsight", "lens", "torch")
Texts = Mapping[str, Sequence[str] | Sequence[Sequence[int]]]


@dataclass
class CollectConfig:
    """Chunking and batching. ``max_tokens`` is a per-language budget; ``pack`` concatenates a
    language's texts (EOS between them) into full ``seq_len`` chunks, otherwise each text is one
    (truncated, padded) sequence."""

    seq_len: int = 256
    batch_size: int = 8
    max_tokens: int | None = None
    pack: bool = True
    backend: str = "nnsight"
    progress: bool = True
    compile: bool = False  # fuse the per-layer reductions with torch.compile (GPU: ~1.0x bare forward)
    moments: bool = True  # also sum act and act² per neuron (means/variances); LAPE needs only counts

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise PolyFactError(f"unknown backend {self.backend!r}; use one of: {', '.join(BACKENDS)}")
        if self.seq_len < 2 or self.batch_size < 1:
            raise PolyFactError("seq_len must be at least 2 and batch_size at least 1")


def pad_id(tokenizer) -> int:
    """The id used to pad batches: the pad token, else EOS, else 0 (padding is masked anyway)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id or 0)


def languages_with_text(texts: Texts, what: str = "statistics") -> list[str]:
    """Languages that have at least one text (a one-line error when none has)."""
    langs = [lang for lang, items in texts.items() if len(items)]
    if not langs:
        raise PolyFactError(f"no text for {what}; pass {{lang: [texts]}} with at least one text")
    return langs


def token_chunks(tokenizer, items: Sequence[str] | Sequence[Sequence[int]], seq_len: int,
                 max_tokens: int | None = None, pack: bool = True) -> list[list[int]]:
    """Token sequences of at most ``seq_len`` tokens (and ``max_tokens`` in total)."""
    if items and isinstance(items[0], str):
        ids = tokenizer(list(items), add_special_tokens=False)["input_ids"]
    else:
        ids = [list(x) for x in items]
    budget = max_tokens if max_tokens is not None else float("inf")
    chunks: list[list[int]] = []
    if pack:
        eos = tokenizer.eos_token_id
        stream: list[int] = []
        for seq in ids:
            stream.extend(seq)
            if eos is not None:
                stream.append(eos)
            if len(stream) >= budget:
                break
        stream = stream[: int(min(len(stream), budget))]
        chunks = [stream[i : i + seq_len] for i in range(0, len(stream), seq_len)]
    else:
        used = 0
        for seq in ids:
            if used >= budget:
                break
            seq = seq[: int(min(seq_len, budget - used))]
            if seq:
                chunks.append(seq)
                used += len(seq)
    return [c for c in chunks if len(c) >= 2 or not pack]


def batches(chunks: list[list[int]], batch_size: int, pad_id: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Right-padded ``(input_ids, attention_mask)`` batches (chunks of similar length together)."""
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i]))
    out = []
    for start in range(0, len(order), batch_size):
        group = [chunks[i] for i in order[start : start + batch_size]]
        width = max(len(c) for c in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for r, c in enumerate(group):
            ids[r, : len(c)] = torch.tensor(c)
            mask[r, : len(c)] = 1
        out.append((ids, mask))
    return out


class Backend(Protocol):
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer) -> None: ...


class TorchHooksBackend:
    """Plain forward hooks on the adapter's modules."""

    def __init__(self, model: torch.nn.Module, adapter: ArchitectureAdapter, shape: ModelShape) -> None:
        self.model, self.adapter, self.shape = model, adapter, shape
        self.reducer: SiteReducer | None = None
        self.handles = []
        for layer in range(shape.n_layers):
            self.handles.append(adapter.module(model, "mlp.gate_act", layer).register_forward_hook(
                lambda mod, inp, out, layer=layer: self.reducer.gate_act(layer, out)))
            self.handles.append(adapter.module(model, "attn.head_out", layer).register_forward_pre_hook(
                lambda mod, inp, layer=layer: self.reducer.head_out(layer, inp[0])))

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer) -> None:
        self.reducer = reducer
        dev = next(self.model.parameters()).device
        self.model(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev), use_cache=False)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


class NnsightBackend:
    """nnsight ``TransformersModel`` traces (0.8 deprecates ``LanguageModel``); reductions run inside the
    trace, only sums leave it."""

    def __init__(self, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape) -> None:
        from nnsight import TransformersModel

        self.lm = TransformersModel(model, task="text-generation", tokenizer=tokenizer)
        self.model, self.adapter, self.shape = model, adapter, shape

    def _module(self, layer: int, path: str):
        obj = self.lm
        for part in self.adapter.layers.split("."):
            obj = getattr(obj, part)
        obj = obj[layer]
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer) -> None:
        dev = next(self.model.parameters()).device
        mask = attention_mask.bool().to(dev)
        full = reducer.full
        n_heads = self.shape.n_heads
        heads, gates = [], []
        with self.lm.trace({"input_ids": input_ids.to(dev), "attention_mask": attention_mask.to(dev)}):
            for layer in range(self.shape.n_layers):  # execution order: attention, then MLP
                z = self._module(layer, self.adapter.attn_out_proj).input
                z = z.reshape(-1, z.shape[-1]) if full else z[mask]
                heads.append(reducer.reduce_heads(z, n_heads).save())
                act = self._module(layer, self.adapter.mlp_act).output
                act = act.reshape(-1, act.shape[-1]) if full else act[mask]
                gates.append(reducer.reduce_gate(act).save())
        for layer in range(self.shape.n_layers):
            reducer.add_heads(layer, heads[layer])
            reducer.add_gate(layer, *gates[layer])


class LensBackend:
    """TransformerLens ``TransformerBridge`` booted from a local checkpoint directory."""

    def __init__(self, model_dir: str | os.PathLike, adapter: ArchitectureAdapter, shape: ModelShape,
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> None:
        from transformer_lens.model_bridge import TransformerBridge

        kwargs = {"dtype": dtype} if dtype is not None else {}
        self.bridge = TransformerBridge.boot_transformers(str(model_dir), device=str(device), **kwargs)
        self.adapter, self.shape, self.device = adapter, shape, device

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer) -> None:
        hooks = []
        for layer in range(self.shape.n_layers):
            hooks.append((self.adapter.lens_hook("mlp.gate_act", layer),
                          lambda x, hook, layer=layer: reducer.gate_act(layer, self.adapter.apply_activation(x))))
            hooks.append((self.adapter.lens_hook("attn.head_out", layer),
                          lambda x, hook, layer=layer: reducer.head_out(layer, x.flatten(2))))  # [B,T,H,D]
        self.bridge.run_with_hooks(input_ids.to(self.device), fwd_hooks=hooks, return_type=None,
                                   attention_mask=attention_mask.to(self.device))


def make_backend(name: str, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape,
                 model_dir: str | os.PathLike | None = None) -> Backend:
    if name == "torch":
        return TorchHooksBackend(model, adapter, shape)
    if name == "nnsight":
        return NnsightBackend(model, tokenizer, adapter, shape)
    if name == "lens":
        if model_dir is None:
            raise PolyFactError("the lens backend boots TransformerBridge from a checkpoint directory; pass model_dir")
        dev = next(model.parameters()).device
        return LensBackend(model_dir, adapter, shape, device=dev, dtype=next(model.parameters()).dtype)
    raise PolyFactError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}")


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
    shape = model_shape(model)
    langs = languages_with_text(texts)
    pad = pad_id(tokenizer)
    plan = []
    for i, lang in enumerate(langs):
        chunks = token_chunks(tokenizer, texts[lang], cfg.seq_len, cfg.max_tokens, cfg.pack)[rank::world_size]
        plan.extend((i, ids, mask) for ids, mask in batches(chunks, cfg.batch_size, pad))
    meta = {"family": adapter.family, "backend": cfg.backend, "seq_len": cfg.seq_len, "pack": cfg.pack,
            "max_tokens": cfg.max_tokens, "moments": cfg.moments, "n_layers": shape.n_layers, "d_mlp": shape.d_mlp, "n_heads": shape.n_heads}
    stats = ActivationStats.zeros(langs, shape.n_layers, shape.d_mlp, shape.n_heads, meta)
    reducer = SiteReducer(stats, shape.n_heads, compile=cfg.compile, moments=cfg.moments)
    backend = make_backend(cfg.backend, model, tokenizer, adapter, shape, model_dir)
    was_training = model.training
    model.eval()
    try:
        for lang_i, ids, mask in tqdm(plan, desc=f"collecting ({cfg.backend})", disable=not cfg.progress):
            reducer.begin(lang_i, mask)
            backend.run(ids, mask, reducer)
    finally:
        if isinstance(backend, TorchHooksBackend):
            backend.close()
        model.train(was_training)
    reducer.finish()
    if world_size > 1:
        all_reduce(stats)
    return stats
