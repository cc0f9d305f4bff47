"""Streaming activation statistics per language, in memory that does not grow with tokens.

Per language: token count; per MLP neuron the count of positive ``mlp.gate_act`` and the sum and
sum of squares of the activation (``[layers, d_mlp]``); per head the summed L2 norm of its output
(``[layers, heads]``). Statistics are sums, so shards merge by addition (``merge``, or an
all-reduce across processes with :func:`all_reduce`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from polyfact.core.arrays import load_arrays, save_arrays
from polyfact.core.errors import PolyFactError

FIELDS = ("tokens", "act_pos", "act_sum", "act_sumsq", "head_norm")


@dataclass
class ActivationStats:
    """Summed statistics of one model over per-language token streams."""

    languages: list[str]
    tokens: torch.Tensor  # [L] int64
    act_pos: torch.Tensor  # [L, layers, d_mlp] int64
    act_sum: torch.Tensor  # [L, layers, d_mlp] float64
    act_sumsq: torch.Tensor  # [L, layers, d_mlp] float64
    head_norm: torch.Tensor  # [L, layers, heads] float64
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def zeros(cls, languages: list[str], n_layers: int, d_mlp: int, n_heads: int, meta: dict | None = None
              ) -> "ActivationStats":
        n = len(languages)
        return cls(list(languages), torch.zeros(n, dtype=torch.int64),
                   torch.zeros(n, n_layers, d_mlp, dtype=torch.int64),
                   torch.zeros(n, n_layers, d_mlp, dtype=torch.float64),
                   torch.zeros(n, n_layers, d_mlp, dtype=torch.float64),
                   torch.zeros(n, n_layers, n_heads, dtype=torch.float64), dict(meta or {}))

    @property
    def n_layers(self) -> int:
        return self.act_pos.shape[1]

    def index(self, lang: str) -> int:
        try:
            return self.languages.index(lang)
        except ValueError:
            raise PolyFactError(f"no statistics for language {lang!r}; have {', '.join(self.languages)}") from None

    def act_prob(self) -> torch.Tensor:
        """P(act > 0) per neuron and language: ``[layers, d_mlp, languages]`` (LAPE's input)."""
        return (self.act_pos.double() / self.tokens.clamp(min=1)[:, None, None].double()).permute(1, 2, 0)

    def act_mean(self) -> torch.Tensor:
        return (self.act_sum / self.tokens.clamp(min=1)[:, None, None]).permute(1, 2, 0)

    def act_var(self) -> torch.Tensor:
        n = self.tokens.clamp(min=1)[:, None, None].double()
        mean = self.act_sum / n
        return (self.act_sumsq / n - mean**2).clamp(min=0).permute(1, 2, 0)

    def head_norm_mean(self) -> torch.Tensor:
        """Mean output norm per head and language: ``[layers, heads, languages]``."""
        return (self.head_norm / self.tokens.clamp(min=1)[:, None, None]).permute(1, 2, 0)

    def merge(self, other: "ActivationStats") -> "ActivationStats":
        """Sum of two shards (languages are matched by code; new languages are appended)."""
        if other.act_pos.shape[1:] != self.act_pos.shape[1:] or other.head_norm.shape[1:] != self.head_norm.shape[1:]:
            raise PolyFactError("cannot merge statistics of differently shaped models")
        langs = self.languages + [x for x in other.languages if x not in self.languages]
        out = ActivationStats.zeros(langs, self.n_layers, self.act_pos.shape[2], self.head_norm.shape[2], self.meta)
        for src in (self, other):
            idx = torch.tensor([langs.index(x) for x in src.languages])
            for name in FIELDS:
                getattr(out, name).index_add_(0, idx, getattr(src, name))
        out.meta["merged_shards"] = self.meta.get("merged_shards", 1) + other.meta.get("merged_shards", 1)
        return out

    def subset(self, languages: list[str]) -> "ActivationStats":
        idx = [self.index(x) for x in languages]
        return ActivationStats(list(languages), *[getattr(self, f)[idx] for f in FIELDS], meta=dict(self.meta))

    def save(self, path: str | Path) -> Path:
        """``<path>.safetensors`` (tensors) + ``<path>.json`` (languages and meta), atomically."""
        return save_arrays(path, {f: getattr(self, f) for f in FIELDS},
                           {"languages": self.languages, "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> "ActivationStats":
        tensors, info = load_arrays(path, "statistics")
        try:
            return cls(list(info["languages"]), *[tensors[f] for f in FIELDS], meta=dict(info.get("meta", {})))
        except (KeyError, TypeError) as err:
            raise PolyFactError(f"cannot read statistics at {path} (missing {err}); recompute them") from None


def all_reduce(stats: ActivationStats) -> ActivationStats:
    """Sum statistics across ``torch.distributed`` processes (every rank must hold the same
    languages in the same order); a no-op outside a process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stats
    for name in FIELDS:
        t = getattr(stats, name)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    stats.meta["world_size"] = dist.get_world_size()
    return stats


def real_tokens(x: torch.Tensor, mask: torch.Tensor, full: bool = False) -> torch.Tensor:
    """``[tokens, width]``: the rows of ``x`` at the real (unpadded) positions of ``mask`` ``[B, T]``;
    ``x`` is ``[B, T, width]`` or already flattened to ``[B·T, width]`` (OPT's MLP runs on the flat batch)."""
    if full:
        return x.reshape(-1, x.shape[-1])
    mask = mask.to(x.device)
    return x[mask.reshape(-1)] if x.dim() == 2 else x[mask]


class SiteReducer:
    """Adds one batch's site activations into the statistics of one language, over the
    positions where ``mask`` is true (padding excluded). One implementation for every backend.

    Sums stay on the activations' device (no host sync per layer) until :meth:`finish` adds them
    to the statistics; ``compile=True`` fuses each reduction into one kernel with ``torch.compile``."""

    def __init__(self, stats: ActivationStats, n_heads: int, compile: bool = False, moments: bool = True) -> None:
        self.stats, self.n_heads = stats, n_heads
        self.lang = 0
        self.mask: torch.Tensor | None = None
        self.full = True
        self._acc: dict[int, dict[str, torch.Tensor]] = {}
        gate = reduce_gate if moments else reduce_gate_counts
        self.reduce_gate = torch.compile(gate, dynamic=False) if compile else gate
        self.reduce_heads = torch.compile(reduce_heads, dynamic=False) if compile else reduce_heads

    def begin(self, lang_index: int, mask: torch.Tensor) -> None:
        """Start a batch of language ``lang_index``; ``mask`` marks its real (unpadded) tokens."""
        self.lang = lang_index
        self.mask = mask.bool()
        n = int(self.mask.sum())
        self.stats.tokens[lang_index] += n
        self.full = n == self.mask.numel()  # decided once per batch: no host sync per layer

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        assert self.mask is not None
        return real_tokens(x, self.mask, self.full)

    def _slot(self, device: torch.device) -> dict[str, torch.Tensor]:
        acc = self._acc.get(self.lang)
        if acc is None:
            st = self.stats
            shape, heads = st.act_pos.shape[1:], st.head_norm.shape[1:]
            acc = {"act_pos": torch.zeros(shape, dtype=torch.int64, device=device),
                   "act_sum": torch.zeros(shape, dtype=torch.float64, device=device),
                   "act_sumsq": torch.zeros(shape, dtype=torch.float64, device=device),
                   "head_norm": torch.zeros(heads, dtype=torch.float64, device=device)}
            self._acc[self.lang] = acc
        return acc

    def gate_act(self, layer: int, act: torch.Tensor) -> None:
        self.add_gate(layer, *self.reduce_gate(self._flat(act)))

    def add_gate(self, layer: int, pos: torch.Tensor, s: torch.Tensor | None = None,
                 ss: torch.Tensor | None = None) -> None:
        acc = self._slot(pos.device)
        acc["act_pos"][layer] += pos
        if s is not None:
            acc["act_sum"][layer] += s
            acc["act_sumsq"][layer] += ss

    def head_out(self, layer: int, z: torch.Tensor) -> None:
        self.add_heads(layer, self.reduce_heads(self._flat(z), self.n_heads))

    def add_heads(self, layer: int, norms: torch.Tensor) -> None:
        self._slot(norms.device)["head_norm"][layer] += norms

    def finish(self) -> ActivationStats:
        """Move the device sums into the statistics (once, at the end)."""
        for lang, acc in self._acc.items():
            for name, t in acc.items():
                getattr(self.stats, name)[lang] += t.to("cpu", getattr(self.stats, name).dtype)
        self._acc.clear()
        return self.stats


def reduce_gate(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[n, d_mlp]`` activations → (count > 0, sum, sum of squares) per neuron, accumulated in
    float32. On a GPU each reduction reads the activations once, without a float copy of them (the
    copy cost more than the forward's own MLP at 7B shape); on a CPU the sum of squares is a product
    and a sum, because ``vector_norm`` over the token dimension runs 10x slower there (516 against
    51 µs on 512 x 1024 floats, ``bench/bench_families.py``)."""
    pos = torch.sum(flat > 0, dim=0, dtype=torch.int32)
    total = torch.sum(flat, dim=0, dtype=torch.float32)
    if flat.device.type == "cpu":
        f = flat.float()  # the tensor itself when already float32
        sumsq = torch.sum(f * f, dim=0)
    else:
        sumsq = torch.linalg.vector_norm(flat, ord=2, dim=0, dtype=torch.float32).square()
    return pos, total, sumsq


def reduce_gate_counts(flat: torch.Tensor) -> tuple[torch.Tensor]:
    """``[n, d_mlp]`` activations → (count > 0,) per neuron: all LAPE needs."""
    return (torch.sum(flat > 0, dim=0, dtype=torch.int32),)


def reduce_heads(flat: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[n, heads · d_head]`` → summed L2 norm of each head's output ``[heads]``."""
    return torch.linalg.vector_norm(flat.reshape(flat.shape[0], n_heads, -1), dim=-1, dtype=torch.float32).sum(0)
