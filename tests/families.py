"""Tiny random-weight models of 18 decoder-only families (plus three mixture-of-experts ones), built
from ``transformers``' config classes, with each family's MLP activation and head-output sites
written out by hand (the reference the discovered sites are checked against)."""

from __future__ import annotations

import torch
import transformers as T

# family: (config class, model class, config keywords, (MLP activation site, "output"/"input"),
#          attention output projection, layers path) — the hand-written reference
FAMILIES: dict[str, tuple] = {
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj", "model.layers"),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj", "model.layers"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj", "model.layers"),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj",
                "model.layers"),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 8}, ("mlp.act_fn", "output"), "self_attn.o_proj",
               "model.layers"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 8}, ("mlp.act_fn", "output"), "self_attn.o_proj",
              "model.layers"),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 8}, ("mlp.act_fn", "output"),
                    "self_attn.o_proj", "model.layers"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}, ("mlp.activation_fn", "output"), "self_attn.o_proj",
             "model.layers"),  # fused QKV and fused gate/up
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj",
                 "model.layers"),
    "cohere": ("CohereConfig", "CohereForCausalLM", {}, ("mlp.act_fn", "output"), "self_attn.o_proj",
               "model.layers"),  # parallel attention + MLP
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 48},
             ("mlp.c_proj", "input"), "attn.c_proj", "transformer.h"),  # Conv1D, fused QKV
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {}, ("mlp.dense_4h_to_h", "input"), "attention.dense",
                 "gpt_neox.layers"),  # parallel residual, partial rotary
    "bloom": ("BloomConfig", "BloomForCausalLM", {"n_layer": 2, "n_head": 4}, ("mlp.dense_4h_to_h", "input"),
              "self_attention.dense", "transformer.h"),  # ALiBi
    "opt": ("OPTConfig", "OPTForCausalLM", {"ffn_dim": 48, "word_embed_proj_dim": 32}, ("fc2", "input"),
            "self_attn.out_proj", "model.decoder.layers"),  # ReLU, MLP on the block
    "falcon": ("FalconConfig", "FalconForCausalLM", {}, ("mlp.dense_4h_to_h", "input"), "self_attention.dense",
               "transformer.h"),  # parallel attention, multi-query
    "xglm": ("XGLMConfig", "XGLMForCausalLM", {"d_model": 32, "num_layers": 2, "attention_heads": 4, "ffn_dim": 48},
             ("fc2", "input"), "self_attn.out_proj", "model.layers"),
    "gptj": ("GPTJConfig", "GPTJForCausalLM", {"n_embd": 32, "n_layer": 2, "n_head": 4, "rotary_dim": 4,
                                               "n_inner": 48}, ("mlp.fc_out", "input"), "attn.out_proj",
             "transformer.h"),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", {}, ("mlp.c_proj", "input"), "self_attn.o_proj",
                   "model.layers"),
}
MOE = {
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", {"moe_intermediate_size": 16, "num_experts": 4,
                                                             "shared_expert_intermediate_size": 16}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {"num_local_experts": 4}),
    "olmoe": ("OlmoeConfig", "OlmoeForCausalLM", {"num_experts": 4, "num_experts_per_tok": 2}),
}
SHAPE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def tiny_config(family: str, tok, max_positions: int = 128, **extra):
    """The family's config: 2 layers, width 32, 4 heads (2 KV heads where it has them), MLP 48."""
    cfg_name, _, fam_extra, *_ = {**FAMILIES, **MOE}[family]
    cls = getattr(T, cfg_name)
    ids = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.eos_token_id}
    kwargs = {**SHAPE, **ids, "vocab_size": len(tok), "max_position_embeddings": max_positions, **fam_extra, **extra}
    cfg = cls(**kwargs)  # families that name sizes differently ignore the common names
    if family == "gpt2":
        cfg.n_positions = max_positions
    return cfg


def tiny_model(family: str, tok, max_positions: int = 128, seed: int = 0, **extra):
    """A tiny random ``family`` model sized for ``tok``, in eval mode."""
    _, model_name, *_ = {**FAMILIES, **MOE}[family]
    torch.manual_seed(seed)
    return getattr(T, model_name)(tiny_config(family, tok, max_positions, **extra)).eval()


def reference_site(model, family: str, layer: int):
    """The hand-written MLP activation module of ``family`` at ``layer``, and which side holds it."""
    (path, side), layers = FAMILIES[family][3], FAMILIES[family][5]
    obj = model
    for part in f"{layers}.{layer}.{path}".split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj, side
