"""Any decoder-only causal LM: the sites found from the module tree of 18 families' tiny random
models equal the hand-written ones; LAPE counts through the torch and nnsight backends equal a
reference taken with a plain ``register_forward_hook``; head importance runs through each family's
output projection; mixture-of-experts and unmappable models are refused in one line."""

from __future__ import annotations

import pytest
import torch

from polyfact.core.errors import PolyFactError
from polyfact.interp import CollectConfig, collect_stats, head_importance
from polyfact.interp.sites import adapter_for, discover
from polyfact.training.models import train_tokenizer
from tests.families import FAMILIES, MOE, reference_site, tiny_model

TEXTS = {"en": ["the capital of france is paris", "paris is big"], "de": ["die hauptstadt ist berlin"]}


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["the capital of france is paris", "die hauptstadt ist berlin", "paris is big"] * 20,
                           vocab_size=300)


def _reference_counts(model, family: str, tok) -> torch.Tensor:
    """Activations > 0 per layer and neuron over TEXTS, read by plain hooks on the hand-written site."""
    n_layers = model.config.get_text_config().num_hidden_layers if hasattr(model.config, "get_text_config") else 2
    counts: list[torch.Tensor] = []
    for lang in TEXTS:
        per_layer = []
        for layer in range(n_layers):
            module, side = reference_site(model, family, layer)
            seen = []
            hook = (module.register_forward_hook(lambda m, i, o: seen.append(o)) if side == "output" else
                    module.register_forward_pre_hook(lambda m, i: seen.append(i[0])))
            with torch.no_grad():
                for text in TEXTS[lang]:
                    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :16]
                    model(input_ids=ids)
            hook.remove()
            per_layer.append(sum((s.reshape(-1, s.shape[-1]) > 0).sum(0) for s in seen))
        counts.append(torch.stack(per_layer))
    return torch.stack(counts)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sites_are_found_and_counts_equal_a_plain_hook_reference(family, tok):
    model = tiny_model(family, tok, max_positions=64)
    model.set_attn_implementation("eager")
    found = discover(model)
    for layer in range(2):
        module, side = reference_site(model, family, layer)
        assert found.module(model, "mlp.gate_act", layer) is module and found.mlp_hook == side
    cfg = CollectConfig(backend="torch", seq_len=16, pack=False, progress=False)
    ref = collect_stats(model, tok, TEXTS, cfg)
    nn = collect_stats(model, tok, TEXTS, CollectConfig(backend="nnsight", seq_len=16, pack=False, progress=False))
    expected = _reference_counts(model, family, tok)
    assert torch.equal(ref.act_pos[:, :, :].long(), expected.long()), family
    assert torch.equal(ref.act_pos, nn.act_pos) and torch.allclose(ref.act_sum, nn.act_sum, atol=1e-5)
    assert float(ref.head_norm.sum()) > 0 and ref.head_norm.shape == (2, 2, 4)
    imp = head_importance(model, tok, TEXTS, "gradient", CollectConfig(backend="torch", seq_len=16, progress=False))
    assert imp.scores.shape == (2, 2, 4) and float(imp.scores.sum()) > 0


@pytest.mark.parametrize("family", sorted(MOE))
def test_mixture_of_experts_is_refused_in_one_line(family, tok):
    model = tiny_model(family, tok, max_positions=64)
    with pytest.raises(PolyFactError, match=f"^{family}: a mixture-of-experts MLP, whose per-expert neurons"):
        adapter_for(model)


def test_an_unmappable_model_names_what_is_missing():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = torch.nn.Linear(4, 4)

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"model_type": "odd", "num_hidden_layers": 2, "num_attention_heads": 2})()
            self.layers = torch.nn.ModuleList([Block(), Block()])

    with pytest.raises(PolyFactError, match="^odd: a decoder block has no attention module"):
        adapter_for(Odd())


@pytest.mark.parametrize("family", ["gpt2", "falcon", "bloom", "opt", "phi3"])  # one per attention layout
def test_lahis_scores_agree_between_hook_libraries(family, tok):
    """LAHIS (a trained head mask) through plain torch hooks and through nnsight traces gives the
    same scores on Conv1D fused QKV, multi-query parallel, ALiBi, flat-batch and fused-QKV models."""
    model = tiny_model(family, tok, max_positions=64)
    model.set_attn_implementation("eager")
    runs = {b: head_importance(model, tok, TEXTS, "lahis", CollectConfig(backend=b, seq_len=16, progress=False),
                               max_samples=3) for b in ("torch", "nnsight")}
    assert float(runs["torch"].scores.abs().sum()) > 0
    torch.testing.assert_close(runs["torch"].scores, runs["nnsight"].scores, rtol=1e-4, atol=1e-8)
