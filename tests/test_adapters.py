"""Every declared architecture adapter points at real modules: statistics through hooks and
nnsight on tiny random models of each family, and head importance through its o_proj."""

import pytest
import torch

from polyfact.interp import ADAPTERS, CollectConfig, collect_stats, head_importance
from tests.families import FAMILIES, tiny_model
from polyfact.training.models import train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["the capital of france is paris", "die hauptstadt ist berlin"] * 20, vocab_size=300)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_adapter_sites_exist_and_backends_agree(family, tok):
    assert family in ADAPTERS
    model = tiny_model(family, tok, max_positions=64)
    model.set_attn_implementation("eager")
    texts = {"en": ["the capital of france is paris"], "de": ["die hauptstadt ist berlin"]}
    ref = collect_stats(model, tok, texts, CollectConfig(backend="torch", seq_len=16, progress=False))
    nn = collect_stats(model, tok, texts, CollectConfig(backend="nnsight", seq_len=16, progress=False))
    assert ref.act_pos.shape == (2, 2, 48) and ref.head_norm.shape == (2, 2, 4)
    assert int(ref.act_pos.sum()) > 0 and float(ref.head_norm.sum()) > 0
    assert torch.equal(ref.act_pos, nn.act_pos) and torch.allclose(ref.act_sum, nn.act_sum, atol=1e-5)
    imp = head_importance(model, tok, texts, "gradient", CollectConfig(backend="torch", seq_len=16, progress=False))
    assert imp.scores.shape == (2, 2, 4) and float(imp.scores.sum()) > 0
