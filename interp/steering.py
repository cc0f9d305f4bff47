"""Steering: interventions on language units at inference, as a context manager on any model the
sites map (:mod:`polyfact.interp.sites`). Hooks are removed on exit, so the model's logits return
exactly to the bare forward's.

Kinds (:data:`STEERING`):
    ``neurons``   MLP neurons ``{layer: [index]}``: ``mode`` ``zero`` (deactivate), ``mean`` (set to
                  ``values``, e.g. the target language's mean activation) or ``scale`` (times ``strength``);
    ``heads``     attention heads ``[(layer, head)]``: their output times ``strength`` (0: deactivated);
    ``diffmean``  residual vectors ``{layer: v}`` (e.g. the target language's mean residual minus the
                  source's) added with strength α after each of those layers;
    ``project``   the directions ``{layer: v}`` projected out of the residual stream after those
                  layers (is recall then language-agnostic?).

Size-matched random controls: :func:`random_neurons` (the same number per layer, drawn among neurons
of matched activation rate) and :func:`random_like` (random vectors of the same norms)."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Mapping, Sequence

import torch

from polyfact.core.errors import PolyFactError
from polyfact.core.registry import choices
from polyfact.interp.sites import ArchitectureAdapter, adapter_for

STEERING = choices("steering kind", {
    "neurons": "MLP neurons: zero, set to a mean, or scale",
    "heads": "attention heads: scale their output",
    "diffmean": "add a residual vector (target mean − source mean) after chosen layers",
    "project": "project language-difference directions out of the residual stream",
})
NEURON_MODES = choices("neuron steering mode", {"zero": "deactivate", "mean": "set to given values",
                                                "scale": "multiply by the strength"})


def _check_strength(strength: float) -> float:
    if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not math.isfinite(strength):
        raise PolyFactError(f"steering strength must be a finite number, got {strength!r}")
    return float(strength)


def _check_layers(layers: Sequence[int], n_layers: int) -> None:
    bad = [x for x in layers if not 0 <= int(x) < n_layers]
    if bad:
        raise PolyFactError(f"layer(s) {', '.join(map(str, bad))} out of range: the model has layers 0–{n_layers - 1}")


def _on_residual(block: torch.nn.Module, fn) -> torch.utils.hooks.RemovableHandle:
    """A forward hook that edits a decoder block's output hidden states (a tensor, or the first
    item of a tuple)."""
    def hook(mod, args, out):
        if isinstance(out, tuple):
            return (fn(out[0]), *out[1:])
        return fn(out)

    return block.register_forward_hook(hook)


@contextlib.contextmanager
def steer(model: torch.nn.Module, kind: str, *, neurons: Mapping[int, Sequence[int]] | None = None,
          values: Mapping[int, torch.Tensor] | None = None, mode: str = "zero",
          heads: Sequence[tuple[int, int]] = (), vectors: Mapping[int, torch.Tensor] | None = None,
          strength: float = 1.0, adapter: ArchitectureAdapter | None = None) -> Iterator[None]:
    """Within the block, ``model`` runs steered (see the module docstring); on exit every hook is
    removed. Bad input (an unknown kind or mode, a layer out of range, a non-finite strength) is a
    one-line :class:`PolyFactError` before any hook is placed."""
    STEERING.check(kind, "kind")
    strength = _check_strength(strength)
    adapter = adapter or adapter_for(model)
    shape = adapter.shape(model)
    handles: list = []
    if kind == "neurons":
        NEURON_MODES.check(mode, "mode")
        neurons = {int(k): list(v) for k, v in (neurons or {}).items() if len(v)}
        _check_layers(list(neurons), shape.n_layers)
        if mode == "mean" and (values is None or any(layer not in values for layer in neurons)):
            raise PolyFactError("neuron steering to a mean needs values per layer (e.g. the target language's "
                                "mean activation)")
        for layer, idx in neurons.items():
            index = torch.tensor(sorted(idx), dtype=torch.long)

            def edit(act, layer=layer, index=index):
                act = act.clone()
                i = index.to(act.device)
                if mode == "zero":
                    act[..., i] = 0
                elif mode == "scale":
                    act[..., i] = act[..., i] * strength
                else:
                    act[..., i] = values[layer].to(act.device, act.dtype)[i]
                return act

            handles.append(adapter.hook_mlp_act(model, layer, edit))
    elif kind == "heads":
        by_layer: dict[int, list[int]] = {}
        for layer, head in heads:
            by_layer.setdefault(int(layer), []).append(int(head))
        _check_layers(list(by_layer), shape.n_layers)
        bad = [h for hs in by_layer.values() for h in hs if not 0 <= h < shape.n_heads]
        if bad:
            raise PolyFactError(f"head(s) {bad} out of range: the model has heads 0–{shape.n_heads - 1} per layer")
        for layer, hs in by_layer.items():
            def scale(mod, args, hs=tuple(hs)):
                z = args[0]
                lead = z.shape[:-1]
                view = z.reshape(*lead, shape.n_heads, z.shape[-1] // shape.n_heads).clone()
                view[..., list(hs), :] = view[..., list(hs), :] * strength
                return (view.reshape(z.shape), *args[1:])

            handles.append(adapter.module(model, "attn.head_out", layer).register_forward_pre_hook(scale))
    else:
        vectors = {int(k): v for k, v in (vectors or {}).items()}
        if not vectors:
            raise PolyFactError(f"{kind} steering needs a vector per layer (polyfact.analyses.steering.diffmean)")
        _check_layers(list(vectors), shape.n_layers)
        for layer, v in vectors.items():
            if kind == "diffmean":
                def add(h, v=v):
                    return h + strength * v.to(h.device, h.dtype)
                handles.append(_on_residual(adapter.module(model, "resid_post", layer), add))
            else:
                def project(h, v=v):
                    u = (v / v.norm().clamp(min=1e-12)).to(h.device, h.dtype)
                    return h - strength * (h @ u)[..., None] * u
                handles.append(_on_residual(adapter.module(model, "resid_post", layer), project))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def random_neurons(neurons: Mapping[int, Sequence[int]], rates: torch.Tensor, seed: int,
                   bins: int = 10) -> dict[int, list[int]]:
    """A size-matched random control: per layer, as many neurons as ``neurons`` has, each drawn among
    the neurons whose activation rate (``rates`` ``[layers, d_mlp]``, e.g. P(act > 0) over all
    languages) falls in the same of ``bins`` quantile bins, none of the chosen ones."""
    g = torch.Generator().manual_seed(seed)
    out: dict[int, list[int]] = {}
    for layer, idx in neurons.items():
        r = rates[layer].float()
        edges = torch.quantile(r, torch.linspace(0, 1, bins + 1))
        which = torch.bucketize(r, edges[1:-1])
        chosen, taken = [], set(int(i) for i in idx)
        for i in idx:
            pool = [int(j) for j in torch.nonzero(which == which[int(i)]).flatten() if int(j) not in taken]
            if not pool:
                pool = [j for j in range(len(r)) if j not in taken]
            j = pool[int(torch.randint(len(pool), (1,), generator=g))]
            chosen.append(j)
            taken.add(j)
        out[layer] = sorted(chosen)
    return out


def random_like(vectors: Mapping[int, torch.Tensor], seed: int) -> dict[int, torch.Tensor]:
    """A random vector of the same norm per layer (the control of a DiffMean or projected direction)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for layer, v in vectors.items():
        r = torch.randn(v.shape, generator=g, dtype=torch.float32)
        out[layer] = (r / r.norm() * v.float().norm()).to(v.dtype)
    return out


def random_heads(heads: Sequence[tuple[int, int]], n_layers: int, n_heads: int, seed: int) -> list[tuple[int, int]]:
    """As many random heads as ``heads``, none of them (the control of a head intervention)."""
    g = torch.Generator().manual_seed(seed)
    taken = {tuple(h) for h in heads}
    pool = [(a, b) for a in range(n_layers) for b in range(n_heads) if (a, b) not in taken]
    order = torch.randperm(len(pool), generator=g).tolist()
    return [pool[i] for i in order[: len(heads)]]
