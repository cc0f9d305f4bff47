"""Tiny random models of the non-Qwen families the adapters declare (Llama, Mistral, Gemma2)."""

from __future__ import annotations

import torch
from transformers import (Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM)

SHAPE = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "mistral": (MistralConfig, MistralForCausalLM, {}),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM, {"head_dim": 8}),
}


def tiny_model(family: str, tok, max_positions: int = 128, seed: int = 0, **extra):
    """A 2-layer, d=32, 4-head (2 KV heads) random ``family`` model sized for ``tok``, in eval mode."""
    cfg_cls, model_cls, fam_extra = FAMILIES[family]
    torch.manual_seed(seed)
    cfg = cfg_cls(vocab_size=len(tok), pad_token_id=tok.pad_token_id, max_position_embeddings=max_positions,
                  **{**SHAPE, **fam_extra, **extra})
    return model_cls(cfg).eval()
