"""Architecture sites of any decoder-only causal LM, found from its module tree and config
(:func:`discover`), with a table of overrides (:data:`ADAPTERS`) for families whose TransformerLens
hook names are known.

Canonical sites:
    ``mlp.gate_act``   the MLP's activation, whose sign LAPE counts: act(gate(x)) of a gated MLP
                       (SwiGLU, GeGLU: the *output* of its activation module, as the study's LAPE
                       reads ``mlp.act_fn``), or act(fc(x)) of a plain MLP (GELU, ReLU: the *input*
                       of its down projection);
    ``attn.head_out``  the attention heads' outputs concatenated: the *input* of the attention's
                       output projection (``o_proj``, ``out_proj``, ``c_proj``, ``dense``), shaped
                       ``[batch, seq, heads · d_head]``;
    ``resid_post``     the residual stream after the layer: the decoder layer's output.

Covered: gated and plain MLPs, fused QKV and fused gate/up projections, parallel attention + MLP
blocks, ALiBi and rotary positions, tied and untied heads, grouped-query attention (tests build 18
families). Mixture-of-experts MLPs are refused in one line (no per-expert neurons yet).
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
    mlp_hook: str = "output"  # "output" of mlp_act (a gated MLP's activation), or "input" (a plain MLP's down projection)
    lens: bool = True  # whether TransformerLens' bridge names are known for this family

    def layer_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(_get(model, self.layers))

    def module(self, root, site: str, layer: int):
        """The module whose output (``mlp.gate_act``, ``resid_post``) or input (``attn.head_out``)
        is the site: on a transformers model, or on the same model wrapped by nnsight (whose
        envoys follow the same attribute paths)."""
        block = _get(root, self.layers)[layer]
        if site == "mlp.gate_act":
            return _get(block, self.mlp_act) if self.mlp_act else block
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

    def hook_mlp_act(self, model: torch.nn.Module, layer: int, fn) -> torch.utils.hooks.RemovableHandle:
        """A hook that passes layer ``layer``'s MLP activation through ``fn`` (which may read it, or
        return an edited tensor to use instead): on the activation module's output, or on the down
        projection's input. Remove the returned handle to undo it."""
        module = self.module(model, "mlp.gate_act", layer)
        if self.mlp_hook == "output":
            return module.register_forward_hook(lambda mod, inp, out: fn(out))

        def pre(mod, args):
            new = fn(args[0])
            return None if new is None else (new, *args[1:])

        return module.register_forward_pre_hook(pre)

    def shape(self, model: torch.nn.Module) -> ModelShape:
        """Sizes read from the modules themselves: the MLP activation's width, the heads of the
        output projection's input, the residual width."""
        block = self.layer_modules(model)[0]
        n_layers = len(self.layer_modules(model))
        proj = _get(block, self.attn_out_proj)
        n_heads = _n_heads(model)
        d_in = _in_features(proj)
        if self.mlp_hook == "input":
            d_mlp = _in_features(_get(block, self.mlp_act))
        else:
            d_mlp = _gate_width(_get(block, self.mlp_act.rpartition(".")[0]) if "." in self.mlp_act else block)
        return ModelShape(n_layers, d_mlp, n_heads, d_in // n_heads, _out_features(proj))

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
    # overrides of :func:`discover`: the families whose TransformerLens bridge names are checked
    "qwen2": ArchitectureAdapter("qwen2"),
    "olmo2": ArchitectureAdapter("olmo2"),
    "llama": ArchitectureAdapter("llama"),
    "mistral": ArchitectureAdapter("mistral"),
    "gemma2": ArchitectureAdapter("gemma2", activation="gelu_tanh"),
}

_ATTN = ("self_attn", "attn", "attention", "self_attention")
_OUT_PROJ = ("o_proj", "out_proj", "c_proj", "dense", "wo", "o")
_MLP = ("mlp", "feed_forward", "ffn")
_ACT = ("act_fn", "activation_fn", "act", "activation", "gelu_impl")
_DOWN = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "fc_out", "w2", "out_proj", "wo")
_GATE = ("gate_proj", "gate_up_proj", "w1", "w3")
_EXPERTS = ("experts", "block_sparse_moe")


def _linear_like(m: object) -> bool:
    return isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"  # GPT-2's transposed linear


def _in_features(m: torch.nn.Module) -> int:
    return m.in_features if isinstance(m, torch.nn.Linear) else int(m.weight.shape[0])


def _out_features(m: torch.nn.Module) -> int:
    return m.out_features if isinstance(m, torch.nn.Linear) else int(m.weight.shape[1])


def _gate_width(mlp: torch.nn.Module) -> int:
    if hasattr(mlp, "gate_up_proj"):
        return _out_features(mlp.gate_up_proj) // 2
    for name in _GATE:
        if hasattr(mlp, name) and _linear_like(getattr(mlp, name)):
            return _out_features(getattr(mlp, name))
    raise PolyFactError("the gated MLP has no gate projection to size its activation")


def _text_config(model: torch.nn.Module):
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


def _n_heads(model: torch.nn.Module) -> int:
    cfg = _text_config(model)
    for key in ("num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads"):
        if isinstance(getattr(cfg, key, None), int):
            return getattr(cfg, key)
    raise PolyFactError(f"{type(model).__name__}: its config names no number of attention heads "
                        "(num_attention_heads, n_head, num_heads); pass an ArchitectureAdapter")


def _n_layers(model: torch.nn.Module) -> int | None:
    cfg = _text_config(model)
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        if isinstance(getattr(cfg, key, None), int):
            return getattr(cfg, key)
    return None


def _child(module: torch.nn.Module, names: tuple[str, ...], ok=lambda m: True) -> str | None:
    return next((n for n in names if isinstance(getattr(module, n, None), torch.nn.Module) and ok(getattr(module, n))),
                None)


def discover(model: torch.nn.Module) -> ArchitectureAdapter:
    """The sites of any decoder-only causal LM from its module tree: the decoder blocks (the module
    list as long as the config's layers), the attention's output projection, the MLP's activation
    (a gated MLP's activation module, or a plain MLP's down projection), the final norm and the
    unembedding. One line naming what is missing when the model does not fit."""
    family = getattr(_text_config(model), "model_type", None) or type(model).__name__
    n = _n_layers(model)
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
             and (n is None or len(m) == n)]
    lists = [(name, m) for name, m in lists if not any(name.startswith(o + ".") for o, _ in lists if o != name)]
    if not lists:
        raise PolyFactError(f"{family}: no list of {n or 'decoder'} blocks in the module tree; "
                            "pass an ArchitectureAdapter with the path of its layers")
    layers, blocks = lists[0]
    block = blocks[0]
    attn = _child(block, _ATTN)
    if attn is None:
        raise PolyFactError(f"{family}: a decoder block has no attention module (looked for {', '.join(_ATTN)})")
    out = _child(getattr(block, attn), _OUT_PROJ, _linear_like)
    if out is None:
        raise PolyFactError(f"{family}: the attention module has no output projection (looked for "
                            f"{', '.join(_OUT_PROJ)})")
    mlp_name = _child(block, _MLP)
    mlp = getattr(block, mlp_name) if mlp_name else block  # OPT and XGLM keep fc1/fc2 on the block
    prefix = f"{mlp_name}." if mlp_name else ""
    if any(isinstance(getattr(mlp, e, None), torch.nn.Module) for e in _EXPERTS):
        raise PolyFactError(f"{family}: a mixture-of-experts MLP, whose per-expert neurons are not supported; "
                            "use a dense model")
    gated = _child(mlp, _GATE, _linear_like) is not None
    if gated:
        act = _child(mlp, _ACT)
        if act is None:
            raise PolyFactError(f"{family}: a gated MLP without an activation module (looked for {', '.join(_ACT)}) "
                                "to read act(gate) from")
        acts = [getattr(getattr(b, mlp_name) if mlp_name else b, act) for b in blocks]
        if len({id(a) for a in acts}) != len(acts):
            raise PolyFactError(f"{family}: the layers share one activation module, so its hook cannot tell them "
                                "apart; pass an ArchitectureAdapter")
        mlp_act, hook = prefix + act, "output"
    else:
        down = _child(mlp, _DOWN, _linear_like)
        if down is None:
            raise PolyFactError(f"{family}: the MLP has no down projection (looked for {', '.join(_DOWN)})")
        mlp_act, hook = prefix + down, "input"
    base = layers.rpartition(".")[0]
    owner = _get(model, base) if base else model
    norms = [n for n, m in owner.named_children() if "norm" in type(m).__name__.lower() or n == "ln_f"]
    norm = norms[-1] if norms else None  # the last one: BLOOM also norms its embeddings first
    unembed = next((n for n, m in model.named_modules() if m is model.get_output_embeddings()), "lm_head")
    return ArchitectureAdapter(family, layers=layers, mlp_act=mlp_act, attn_out_proj=f"{attn}.{out}",
                               final_norm=f"{base}.{norm}" if base and norm else (norm or ""), unembed=unembed,
                               mlp_hook=hook, lens=False)


def adapter_for(model: torch.nn.Module) -> ArchitectureAdapter:
    """The adapter of ``model``: its family's entry in :data:`ADAPTERS`, else found by :func:`discover`."""
    family = getattr(_text_config(model), "model_type", None) if hasattr(model, "config") else None
    if family in ADAPTERS:
        return ADAPTERS[family]
    if not hasattr(model, "config"):
        raise PolyFactError(f"{type(model).__name__} is not a transformers model (no config); pass an "
                            "ArchitectureAdapter")
    return discover(model)


def model_shape(model: torch.nn.Module) -> ModelShape:
    """Layers, MLP width, heads, head width and residual width of ``model``'s sites."""
    return adapter_for(model).shape(model)
