"""Hook backends: one class per hook library, each serving both activation statistics
(:meth:`collect`, read-only) and head editing for importance and gradients (:meth:`logits`, with
the head outputs replaced by ``edit(layer, z)``), through the architecture adapter's sites.

``torch``   plain forward hooks on the adapter's modules (the reference, and the fastest);
``nnsight`` ``TransformersModel`` traces, reading modules in execution order (attention's
            ``o_proj`` input before the MLP activation of each layer) and reducing inside the trace;
``lens``    TransformerLens' ``TransformerBridge`` booted from a local checkpoint directory, with
            ``run_with_hooks`` on the canonical hook names (it runs eager attention).

Adding a hook library is one class here plus one line in ``polyfact.interp.registry.BACKENDS``.
"""

from __future__ import annotations

import os
from typing import Callable, Protocol

import torch

from polyfact.core.errors import PolyFactError
from polyfact.interp.registry import BACKENDS
from polyfact.interp.sites import ArchitectureAdapter, ModelShape
from polyfact.interp.stats import SiteReducer, real_tokens

HeadEdit = Callable[[int, torch.Tensor], torch.Tensor]


class HookBackend(Protocol):
    """What every backend offers."""

    def collect(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer,
                logits: bool = False) -> torch.Tensor | None: ...

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, edit: HeadEdit) -> torch.Tensor: ...

    def close(self) -> None: ...


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class TorchHooks:
    """Plain forward hooks, registered on first use of each mode and removed by :meth:`close`."""

    @classmethod
    def open(cls, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape,
             model_dir: str | os.PathLike | None = None) -> "TorchHooks":
        return cls(model, adapter, shape)

    def __init__(self, model: torch.nn.Module, adapter: ArchitectureAdapter, shape: ModelShape) -> None:
        self.model, self.adapter, self.shape = model, adapter, shape
        self.reducer: SiteReducer | None = None
        self.edit: HeadEdit | None = None
        self._stats_hooks: list = []
        self._edit_hooks: list = []

    def collect(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer,
                logits: bool = False) -> torch.Tensor | None:
        if not self._stats_hooks:
            for layer in range(self.shape.n_layers):
                self._stats_hooks.append(self.adapter.hook_mlp_act(
                    self.model, layer, lambda act, layer=layer: self.reducer.gate_act(layer, act)))
                self._stats_hooks.append(self.adapter.module(self.model, "attn.head_out", layer)
                                         .register_forward_pre_hook(
                    lambda mod, inp, layer=layer: self.reducer.head_out(layer, inp[0])))
        self.reducer = reducer
        dev = _device(self.model)
        with torch.inference_mode():
            # statistics need no logits: the LM head runs for the last position only (unless asked)
            out = self.model(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev), use_cache=False,
                             logits_to_keep=0 if logits else 1)
        return out.logits if logits else None

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, edit: HeadEdit) -> torch.Tensor:
        if not self._edit_hooks:
            for layer in range(self.shape.n_layers):
                self._edit_hooks.append(self.adapter.module(self.model, "attn.head_out", layer).register_forward_pre_hook(
                    lambda mod, args, layer=layer: (self.edit(layer, args[0]), *args[1:])))
        self.edit = edit
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def close(self) -> None:
        for h in self._stats_hooks + self._edit_hooks:
            h.remove()
        self._stats_hooks, self._edit_hooks = [], []


class NnsightHooks:
    """nnsight ``TransformersModel`` traces (0.8 deprecates ``LanguageModel``); statistics are
    reduced inside the trace, only sums leave it."""

    @classmethod
    def open(cls, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape,
             model_dir: str | os.PathLike | None = None) -> "NnsightHooks":
        return cls(model, tokenizer, adapter, shape)

    def __init__(self, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape) -> None:
        from nnsight import TransformersModel

        self.lm = TransformersModel(model, task="text-generation", tokenizer=tokenizer)
        self.model, self.adapter, self.shape = model, adapter, shape

    def collect(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer,
                logits: bool = False) -> torch.Tensor | None:
        dev = _device(self.model)
        mask = attention_mask.bool().to(dev)
        full, n_heads = reducer.full, self.shape.n_heads
        heads, gates, out = [], [], []
        with torch.inference_mode():
            with self.lm.trace({"input_ids": input_ids.to(dev), "attention_mask": attention_mask.to(dev)},
                               logits_to_keep=0 if logits else 1):
                for layer in range(self.shape.n_layers):  # execution order: attention, then MLP
                    z = real_tokens(self.adapter.module(self.lm, "attn.head_out", layer).input, mask, full)
                    heads.append(reducer.reduce_heads(z, n_heads).save())
                    site = self.adapter.module(self.lm, "mlp.gate_act", layer)
                    act = real_tokens(site.output if self.adapter.mlp_hook == "output" else site.input, mask, full)
                    gates.append(reducer.reduce_gate(act).save())
                if logits:
                    out.append(self.lm.output.logits.save())
        for layer in range(self.shape.n_layers):
            reducer.add_heads(layer, heads[layer])
            reducer.add_gate(layer, *gates[layer])
        return out[0] if logits else None

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, edit: HeadEdit) -> torch.Tensor:
        with self.lm.trace({"input_ids": input_ids, "attention_mask": attention_mask}):
            for layer in range(self.shape.n_layers):
                proj = self.adapter.module(self.lm, "attn.head_out", layer)
                proj.input = edit(layer, proj.input)
            logits = self.lm.output.logits.save()
        return logits

    def close(self) -> None:
        pass


class LensHooks:
    """TransformerLens ``TransformerBridge`` booted from a local checkpoint directory."""

    @classmethod
    def open(cls, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape,
             model_dir: str | os.PathLike | None = None) -> "LensHooks":
        if model_dir is None:
            raise PolyFactError("the lens backend boots TransformerBridge from a checkpoint directory; pass model_dir")
        if not adapter.lens:
            raise PolyFactError(f"the lens backend knows TransformerBridge's hook names for {', '.join(_lens_families())} "
                                f"only, not {adapter.family}; use --backend torch or nnsight (same statistics)")
        return cls(model_dir, adapter, shape, device=_device(model), dtype=next(model.parameters()).dtype)

    def __init__(self, model_dir: str | os.PathLike, adapter: ArchitectureAdapter, shape: ModelShape,
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> None:
        from transformer_lens.model_bridge import TransformerBridge

        kwargs = {"dtype": dtype} if dtype is not None else {}
        self.bridge = TransformerBridge.boot_transformers(str(model_dir), device=str(device), **kwargs)
        self.adapter, self.shape, self.device = adapter, shape, device

    def collect(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reducer: SiteReducer,
                logits: bool = False) -> torch.Tensor | None:
        hooks = []
        for layer in range(self.shape.n_layers):
            hooks.append((self.adapter.lens_hook("mlp.gate_act", layer),
                          lambda x, hook, layer=layer: reducer.gate_act(layer, self.adapter.apply_activation(x))))
            hooks.append((self.adapter.lens_hook("attn.head_out", layer),
                          lambda x, hook, layer=layer: reducer.head_out(layer, x.flatten(2))))  # [B,T,H,D]
        with torch.inference_mode():
            return self.bridge.run_with_hooks(input_ids.to(self.device), fwd_hooks=hooks,
                                              return_type="logits" if logits else None,
                                              attention_mask=attention_mask.to(self.device))

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, edit: HeadEdit) -> torch.Tensor:
        hooks = [(self.adapter.lens_hook("attn.head_out", layer), lambda x, hook, layer=layer: edit(layer, x))
                 for layer in range(self.shape.n_layers)]
        return self.bridge.run_with_hooks(input_ids, fwd_hooks=hooks, return_type="logits",
                                          attention_mask=attention_mask)

    def close(self) -> None:
        pass



# the TransformerLens bridge recomputes the model in its own modules (eager attention, its own
# layer norms): its logits match the bare forward to this relative tolerance, not exactly
LENS_TOLERANCE = 1e-4


def hook_check(model: torch.nn.Module, backend_name: str, hooked: Callable[[], torch.Tensor],
               input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
    """Proof that measuring did not change the model: the logits of one probe batch through the
    backend's hooks (``hooked()``) against the bare forward of ``model``. Exact equality for the
    read-only torch and nnsight hooks; within :data:`LENS_TOLERANCE` of the largest logit for the
    TransformerLens bridge. Raises on a mismatch; returns the record a result keeps."""
    dev = _device(model)
    with torch.inference_mode():
        bare = model(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev), use_cache=False).logits
    with torch.inference_mode():
        got = hooked().to(bare.device, bare.dtype)
    mask = attention_mask.bool().to(bare.device)
    diff = float((got - bare)[mask].abs().max()) if got.shape == bare.shape else float("inf")
    scale = float(bare[mask].abs().max())
    tolerance = LENS_TOLERANCE * scale if backend_name == "lens" else 0.0
    record = {"backend": backend_name, "tokens": int(mask.sum()), "max_abs_diff": diff, "tolerance": tolerance,
              "rule": "exact" if tolerance == 0 else f"≤ {LENS_TOLERANCE:g} × max |logit|"}
    if not diff <= tolerance:
        raise PolyFactError(f"the {backend_name} hooks changed the model's logits on a probe batch (max |Δ| {diff:.3g}, "
                            f"allowed {tolerance:.3g}); its statistics would not describe the model: report this, "
                            "and use --backend torch meanwhile")
    return record


def _lens_families() -> list[str]:
    from polyfact.interp.sites import ADAPTERS

    return [k for k, a in ADAPTERS.items() if a.lens]


def make_backend(name: str, model: torch.nn.Module, tokenizer, adapter: ArchitectureAdapter, shape: ModelShape,
                 model_dir: str | os.PathLike | None = None) -> HookBackend:
    """The registered backend ``name`` on ``model`` (``lens`` boots its own bridge from ``model_dir``)."""
    return BACKENDS.load(name, "backend").open(model, tokenizer, adapter, shape, model_dir)
