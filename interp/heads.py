"""Per-language attention-head importance, through hooks only (no patched model code).

``gradient`` (LAHIS-style): a head mask ``m`` (ones, ``[layers, heads]``) scales each head's slice
of the ``o_proj`` input; importance is |∂L/∂m|·m, the per-batch magnitude averaged over the
language's tokens (Michel et al. 2019 take the magnitude per batch so signs do not cancel).

``ablation``: each head's slice is replaced by its mean over the language's tokens and the change
in loss is measured, ``Δloss = loss(ablated) − loss(clean)``; importance is |Δloss|.

Summaries: normalized entropy of importance across languages per head, top-k heads per
language, pairwise overlap of the top-k sets, and their distribution over layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from interp.collect import CollectConfig, batches, languages_with_text, pad_id, token_chunks
from interp.sites import ArchitectureAdapter, adapter_for, model_shape
from interp.stats import _with
from polyfact.errors import PolyFactError
from polyfact.io import atomic_write_bytes, atomic_write_json

METHODS = ("gradient", "ablation")


@dataclass
class HeadImportance:
    """``scores[lang_index, layer, head]`` (≥ 0) per language; ``delta`` keeps signed Δloss."""

    languages: list[str]
    scores: torch.Tensor
    method: str
    delta: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return self.scores.shape[1]

    @property
    def n_heads(self) -> int:
        return self.scores.shape[2]

    def normalized_entropy(self) -> torch.Tensor:
        """Entropy of each head's importance distribution over languages / log(#languages)."""
        s = self.scores.double().clamp(min=0).permute(1, 2, 0)
        total = s.sum(-1, keepdim=True)
        p = torch.where(total > 0, s / total.clamp(min=1e-300), torch.full_like(s, 1.0 / s.shape[-1]))
        ent = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(-1)
        return ent / math.log(len(self.languages)) if len(self.languages) > 1 else torch.zeros_like(ent)

    def specificity(self) -> torch.Tensor:
        """Share of each head's importance that falls on each language ``[languages, layers, heads]``."""
        s = self.scores.double().clamp(min=0)
        return s / s.sum(0, keepdim=True).clamp(min=1e-300)

    def top_k(self, k: int, by: str = "specificity") -> dict[str, list[tuple[int, int]]]:
        """The ``k`` heads of each language with the largest ``specificity`` (default: importance
        relative to the other languages) or raw ``importance``."""
        base = self.specificity() if by == "specificity" else self.scores.double()
        out = {}
        for i, lang in enumerate(self.languages):
            flat = base[i].flatten()
            idx = torch.topk(flat, min(k, flat.numel())).indices.tolist()
            out[lang] = [(j // self.n_heads, j % self.n_heads) for j in idx]
        return out

    def overlap(self, k: int) -> dict[str, dict[str, float]]:
        """Jaccard overlap of the languages' top-k head sets."""
        tops = {lang: set(v) for lang, v in self.top_k(k).items()}
        return {a: {b: len(tops[a] & tops[b]) / len(tops[a] | tops[b]) if tops[a] | tops[b] else float("nan")
                    for b in self.languages} for a in self.languages}

    def layer_distribution(self, k: int) -> dict[str, list[int]]:
        """How many of each language's top-k heads sit in each layer."""
        out = {}
        for lang, heads in self.top_k(k).items():
            counts = [0] * self.n_layers
            for layer, _ in heads:
                counts[layer] += 1
            out[lang] = counts
        return out

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save as save_bytes

        path = Path(path)
        tensors = {"scores": self.scores.contiguous().double()}
        if self.delta is not None:
            tensors["delta"] = self.delta.contiguous().double()
        atomic_write_bytes(_with(path, ".safetensors"), save_bytes(tensors))
        atomic_write_json(_with(path, ".json"), {"languages": self.languages, "method": self.method,
                                                      "meta": self.meta})
        return _with(path, ".safetensors")

    @classmethod
    def load(cls, path: str | Path) -> "HeadImportance":
        import json

        from safetensors.torch import load_file

        path = Path(path)
        if not _with(path, ".safetensors").exists():
            raise PolyFactError(f"no head importance at {path}; compute it first")
        t = load_file(str(_with(path, ".safetensors")))
        info = json.loads(_with(path, ".json").read_text(encoding="utf-8"))
        return cls(info["languages"], t["scores"], info["method"], t.get("delta"), info.get("meta", {}))


class _HeadEdit:
    """The one edit every backend applies to a layer's head outputs ``z`` (``[B, T, H·D]`` or
    ``[B, T, H, D]``): ``z' = m ⊙ z + (1 − m) ⊙ μ`` per head, with mask ``m`` ``[layers, heads]``
    and optional means ``μ`` ``[layers, heads, d_head]``; it can also accumulate head-output sums
    over real tokens (to compute ``μ``)."""

    def __init__(self, n_layers: int, n_heads: int, d_head: int, device: torch.device) -> None:
        self.n_heads, self.d_head = n_heads, d_head
        self.mask = torch.ones(n_layers, n_heads, device=device)
        self.mean: torch.Tensor | None = None
        self.record: torch.Tensor | None = None
        self.token_mask: torch.Tensor | None = None

    def __call__(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[:2]
        heads = z.reshape(b, t, self.n_heads, self.d_head)
        if self.record is not None and self.token_mask is not None:
            self.record[layer] += heads[self.token_mask.to(heads.device)].detach().float().sum(0)
        m = self.mask[layer].to(z.dtype)[None, None, :, None]
        out = heads * m
        if self.mean is not None:
            out = out + (1 - m) * self.mean[layer].to(z.dtype)[None, None]
        return out.reshape(z.shape)


class _TorchHeads:
    """Forward pre-hooks on every ``o_proj``."""

    def __init__(self, model, adapter: ArchitectureAdapter, edit: _HeadEdit, n_layers: int) -> None:
        self.model = model
        self.handles = [adapter.module(model, "attn.head_out", layer).register_forward_pre_hook(
            lambda mod, args, layer=layer: (edit(layer, args[0]), *args[1:])) for layer in range(n_layers)]

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits

    def close(self) -> None:
        for h in self.handles:
            h.remove()


class _NnsightHeads:
    """An nnsight trace that replaces each ``o_proj`` input by its edited version."""

    def __init__(self, model, tokenizer, adapter: ArchitectureAdapter, edit: _HeadEdit, n_layers: int) -> None:
        from nnsight import TransformersModel

        self.lm = TransformersModel(model, task="text-generation", tokenizer=tokenizer)
        self.adapter, self.edit, self.n_layers = adapter, edit, n_layers

    def _proj(self, layer: int):
        obj = self.lm
        for part in self.adapter.layers.split("."):
            obj = getattr(obj, part)
        obj = obj[layer]
        for part in self.adapter.attn_out_proj.split("."):
            obj = getattr(obj, part)
        return obj

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with self.lm.trace({"input_ids": ids, "attention_mask": mask}):
            for layer in range(self.n_layers):
                proj = self._proj(layer)
                proj.input = self.edit(layer, proj.input)
            logits = self.lm.output.logits.save()
        return logits

    def close(self) -> None:
        pass


class _LensHeads:
    """TransformerBridge with a hook on each layer's ``attn.o.hook_in``."""

    def __init__(self, model_dir, adapter: ArchitectureAdapter, edit: _HeadEdit, n_layers: int, device, dtype) -> None:
        from transformer_lens.model_bridge import TransformerBridge

        self.bridge = TransformerBridge.boot_transformers(str(model_dir), device=str(device), dtype=dtype)
        self.hooks = [(adapter.lens_hook("attn.head_out", layer), lambda x, hook, layer=layer: edit(layer, x))
                      for layer in range(n_layers)]

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bridge.run_with_hooks(ids, fwd_hooks=self.hooks, return_type="logits", attention_mask=mask)

    def close(self) -> None:
        pass


def _loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over real (unpadded) target positions, and their count."""
    logits = logits[:, :-1].float()
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    n = int((targets != -100).sum())
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100), n


def head_importance(
    model: torch.nn.Module,
    tokenizer,
    texts: Mapping[str, Sequence[str] | Sequence[Sequence[int]]],
    method: str = "gradient",
    cfg: CollectConfig | None = None,
    adapter: ArchitectureAdapter | None = None,
    model_dir: str | Path | None = None,
) -> HeadImportance:
    """Importance of every head for every language's text, through ``cfg.backend`` (``torch``
    hooks, ``nnsight`` or ``lens``; the latter boots TransformerBridge from ``model_dir``)."""
    if method not in METHODS:
        raise PolyFactError(f"unknown head-importance method {method!r}; use one of: {', '.join(METHODS)}")
    cfg = cfg or CollectConfig(backend="torch")
    adapter = adapter or adapter_for(model)
    shape = model_shape(model)
    langs = languages_with_text(texts, "head importance")
    pad = pad_id(tokenizer)
    dev = next(model.parameters()).device
    edit = _HeadEdit(shape.n_layers, shape.n_heads, shape.d_head, dev)
    if cfg.backend == "torch":
        runner = _TorchHeads(model, adapter, edit, shape.n_layers)
    elif cfg.backend == "nnsight":
        runner = _NnsightHeads(model, tokenizer, adapter, edit, shape.n_layers)
    else:
        if model_dir is None:
            raise PolyFactError("the lens backend boots TransformerBridge from a checkpoint directory; pass model_dir")
        runner = _LensHeads(model_dir, adapter, edit, shape.n_layers, dev, next(model.parameters()).dtype)
    scores = torch.zeros(len(langs), shape.n_layers, shape.n_heads, dtype=torch.float64)
    delta = torch.zeros_like(scores) if method == "ablation" else None
    was_training = model.training
    grads_needed = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for i, lang in enumerate(tqdm(langs, desc=f"head importance ({method}, {cfg.backend})",
                                      disable=not cfg.progress)):
            chunks = token_chunks(tokenizer, texts[lang], cfg.seq_len, cfg.max_tokens, cfg.pack)
            data = [(ids.to(dev), m.to(dev)) for ids, m in batches(chunks, cfg.batch_size, pad)]
            if method == "gradient":
                scores[i] = _gradient(runner, edit, data)
            else:
                delta[i] = _ablation(runner, edit, data, shape.n_layers, shape.n_heads, shape.d_head)
                scores[i] = delta[i].abs()
    finally:
        runner.close()
        for p, g in zip(model.parameters(), grads_needed):
            p.requires_grad_(g)
        model.train(was_training)
    meta = {"family": adapter.family, "backend": cfg.backend, "seq_len": cfg.seq_len, "max_tokens": cfg.max_tokens,
            "pack": cfg.pack}
    return HeadImportance(langs, scores, method, delta, meta)


def _gradient(runner, edit: _HeadEdit, data: list) -> torch.Tensor:
    total = torch.zeros(edit.mask.shape, dtype=torch.float64)
    n_tokens = 0
    edit.mean = None
    for ids, mask in data:
        edit.mask = torch.ones_like(edit.mask).requires_grad_(True)
        with torch.enable_grad():
            loss, n = _loss(runner.logits(ids, mask), ids, mask)
            (grad,) = torch.autograd.grad(loss, edit.mask)
        total += grad.abs().double().cpu() * n
        n_tokens += n
    edit.mask = torch.ones_like(edit.mask).detach()
    return total / max(n_tokens, 1)


@torch.no_grad()
def _ablation(runner, edit: _HeadEdit, data: list, n_layers: int, n_heads: int, d_head: int) -> torch.Tensor:
    def mean_loss() -> float:
        total, count = 0.0, 0
        for ids, mask in data:
            edit.token_mask = mask.bool()
            loss, n = _loss(runner.logits(ids, mask), ids, mask)
            total += float(loss) * n
            count += n
        return total / max(count, 1)

    edit.mask = torch.ones_like(edit.mask)
    edit.mean = None
    edit.record = torch.zeros(n_layers, n_heads, d_head, device=edit.mask.device)
    clean = mean_loss()
    n_positions = sum(int(m.sum()) for _, m in data)
    edit.mean = edit.record / max(n_positions, 1)
    edit.record, edit.token_mask = None, None
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        for head in range(n_heads):
            edit.mask = torch.ones_like(edit.mask)
            edit.mask[layer, head] = 0.0
            out[layer, head] = mean_loss() - clean
    edit.mask = torch.ones_like(edit.mask)
    edit.mean = None
    return out
