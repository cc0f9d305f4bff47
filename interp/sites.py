"""Declarative architecture adapters: one mapping per model family from the canonical sites to
module paths (Hugging Face modules) and hook names (TransformerLens' TransformerBridge).

Canonical sites:
    ``mlp.gate_act``   act(gate(x)) of each layer's MLP — the activation LAPE counts (SiLU for Qwen2/
                       OLMo2/Llama/Mistral, GELU-tanh for Gemma2) — the *output* of ``mlp.act_fn``;
    ``attn.head_out``  the attention heads' outputs concatenated: the *input* of ``self_attn.o_proj``,
                       shaped ``[batch, seq, heads · d_head]``;
    ``resid_post``     the residual stream after the layer: the decoder layer's output.

To support another family, add an :class:`ArchitectureAdapter` to :data:`ADAPTERS` (usually only
the paths differ) or pass one to the collectors directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from polyfact.core.errors import PolyFactError

SITES = ("mlp.gate_act", "attn.head_out", "resid_post")


@dataclass(frozen=True)
class ArchitectureAdapter:
    """Where the canonical sites live in one family's modules and TransformerLens hooks."""

    family: str
    layers: str = "model.layers"
    mlp_act: str = "mlp.act_fn"
    attn_out_proj: str = "self_attn.o_proj"
    final_norm: str = "model.norm"
    unembed: str = "lm_head"
    activation: str = "silu"
    lens_gate_pre: str = "blocks.{layer}.mlp.gate.hook_out"
    lens_head_out: str = "blocks.{layer}.attn.o.hook_in"
    lens_resid_post: str = "blocks.{layer}.hook_resid_post"

    def layer_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(_get(model, self.layers))

    def module(self, root, site: str, layer: int):
        """The module whose output (``mlp.gate_act``, ``resid_post``) or input (``attn.head_out``)
        is the site: on a transformers model, or on the same model wrapped by nnsight (whose
        envoys follow the same attribute paths)."""
        block = _get(root, self.layers)[layer]
        if site == "mlp.gate_act":
            return _get(block, self.mlp_act)
        if site == "attn.head_out":
            return _get(block, self.attn_out_proj)
        if site == "resid_post":
            return block
        raise PolyFactError(f"unknown site {site!r}; use one of: {', '.join(SITES)}")

    def apply_activation(self, gate_pre: torch.Tensor) -> torch.Tensor:
        """act(gate) from the gate pre-activation (for backends that expose only the latter)."""
        if self.activation == "silu":
            return F.silu(gate_pre)
        if self.activation == "gelu_tanh":
            return F.gelu(gate_pre, approximate="tanh")
        raise PolyFactError(f"unknown activation {self.activation!r}")

    def lens_hook(self, site: str, layer: int) -> str:
        name = {"mlp.gate_act": self.lens_gate_pre, "attn.head_out": self.lens_head_out,
                "resid_post": self.lens_resid_post}[site]
        return name.format(layer=layer)


@dataclass(frozen=True)
class ModelShape:
    """Sizes the statistics need, read from a transformers config."""

    n_layers: int
    d_mlp: int
    n_heads: int
    d_head: int
    d_model: int


def _get(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


ADAPTERS: dict[str, ArchitectureAdapter] = {
    "qwen2": ArchitectureAdapter("qwen2"),
    "olmo2": ArchitectureAdapter("olmo2"),
    "llama": ArchitectureAdapter("llama"),
    "mistral": ArchitectureAdapter("mistral"),
    "gemma2": ArchitectureAdapter("gemma2", activation="gelu_tanh"),
}


def adapter_for(model: torch.nn.Module) -> ArchitectureAdapter:
    """The adapter of ``model``'s family (``config.model_type``)."""
    family = getattr(getattr(model, "config", None), "model_type", None)
    if family not in ADAPTERS:
        raise PolyFactError(
            f"no architecture adapter for model_type {family!r}; supported: {', '.join(ADAPTERS)}. "
            "Add one to interp.sites.ADAPTERS (module paths of the MLP activation, o_proj and layers)"
        )
    return ADAPTERS[family]


def model_shape(model: torch.nn.Module) -> ModelShape:
    cfg = model.config
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n_heads = cfg.num_attention_heads
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return ModelShape(cfg.num_hidden_layers, cfg.intermediate_size, n_heads, d_head, cfg.hidden_size)
