"""Routing analyses: deactivation on planted models, permutation nulls without specialization,
representation measures against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from polyfact.analyses.ablate import deactivation_matrices, diagonal_dominance
from polyfact.analyses.config import RoutingConfig, SpecializationConfig
from polyfact.analyses.routing import compare
from polyfact.analyses.seeds import correlation
from polyfact.interp.representations import cosine, layer_states, linear_cka, logit_lens, probe_accuracy, retrieval_p1
from tests import planted as P
from polyfact.core.checkpoints import save_checkpoint


def _units(p: P.Planted) -> dict[str, dict[int, list[int]]]:
    out = {}
    for lang, units in p.neurons.items():
        by_layer: dict[int, list[int]] = {}
        for layer, n in sorted(units):
            by_layer.setdefault(layer, []).append(n)
        out[lang] = by_layer
    return out


def test_deactivating_a_languages_planted_units_hurts_that_language_most():
    p = P.build()
    for units, heads in ((_units(p), False), ({k: [v] for k, v in p.heads.items()}, True)):
        res = deactivation_matrices(p.model, p.tokenizer, p.text_strings, units, heads=heads, seq_len=32)
        for lang in P.LANGS:
            row = res["loss"][lang]
            assert max(row, key=lambda m: abs(row[m])) == lang
            assert all(abs(v) < 1e-6 for m, v in row.items() if m != lang)  # nothing leaks to other languages
        assert diagonal_dominance({a: {b: abs(v) for b, v in r.items()} for a, r in res["loss"].items()})["share"] == 1.0


def test_diagonal_dominance_by_hand():
    m = {"a": {"a": 3.0, "b": 1.0, "c": 2.0}, "b": {"a": 1.0, "b": 0.0, "c": 2.0}}
    d = diagonal_dominance(m)
    assert d["margin"] == pytest.approx(((3 - 1.5) + (0 - 1.5)) / 2)
    assert d["share"] == 0.5


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """A run whose base and another checkpoint have no specialization, and a planted one."""
    run = tmp_path_factory.mktemp("prun")
    for ckpt, seed, spec in (("base", 0, False), ("other", 1, False), ("planted", 0, True)):
        p = P.build(seed=seed, specialize=spec, n_texts=48)
        save_checkpoint(p.model, p.tokenizer, run, ckpt, {"method": "test", "parent": "base" if ckpt != "base" else None,
                                                          "seed": seed, "family": "qwen2"})
    texts = run / "texts"
    texts.mkdir()
    for lang, items in p.text_strings.items():
        (texts / f"{lang}.txt").write_text("\n".join(items))
    spec = SpecializationConfig(backend="torch", texts=f"files:{texts}", max_tokens=None, head_max_tokens=None,
                                seq_len=32, batch_size=8, shards=6, top_frac=36 / (P.N_LAYERS * P.D_MLP))
    return run, spec


def test_two_models_without_specialization_show_no_language_dependent_change(planted_run):
    """Two unspecialized models (different random weights): their change does not depend on the
    language (differential test), and κ's measurement-error interval covers 0."""
    run, spec = planted_run
    res = compare(run, "other", "base", spec, RoutingConfig(bootstrap=50, permutations=100), seed=0)
    assert res["differential"]["neurons"]["p_value"] > 0.05 and res["differential"]["heads"]["p_value"] > 0.05
    assert res["differential"]["neurons"]["p_floor"] == pytest.approx(1 / 101)
    k = res["neurons"]["contrast"]  # the base has no language contrasts at all: κ is undefined or covers 0
    assert math.isnan(k["delta"][0]) or k["ci"][0][0] <= 0 <= k["ci"][1][0]
    assert "measurement error" in res["neurons"]["entropy_mean"]["interval"]


def test_planted_specialization_is_detected_as_a_change(planted_run):
    from polyfact.analyses.specialization import head_analysis, neuron_analysis

    run, spec = planted_run
    for ckpt in ("base", "planted"):
        neuron_analysis(run, ckpt, spec)
        head_analysis(run, ckpt, spec)
    res = compare(run, "planted", "base", spec, RoutingConfig(bootstrap=50, permutations=100), seed=0)
    ent = res["neurons"]["entropy_mean"]
    assert ent["delta"][0] < 0 and ent["ci"][1][0] < 0
    assert res["neurons"]["count_total"]["delta"][0] > 0
    heads = res["heads"]["entropy_mean"]
    assert heads["delta"][0] < 0 and heads["ci"][1][0] < 0
    assert res["differential"]["neurons"]["p_value"] < 0.05 and res["differential"]["heads"]["p_value"] < 0.05
    study = res["study"]
    assert set(study["neuron_counts"]) == set(P.LANGS) and "mean_pairwise_overlap_pct" in study


def test_linear_cka_cosine_retrieval_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    y = torch.tensor([[1.0], [0.0], [-1.0], [0.0]])
    assert linear_cka(x, y) == pytest.approx(4 / (math.sqrt(8) * 2))
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    assert linear_cka(x, x @ rot) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x + 1) == pytest.approx(1.0)
    assert cosine(x, x @ rot) == pytest.approx((0.6 + 0.6 + 0.6 + 0.6) / 4)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.1], [0.1, 1.0], [-1.0, -1.0]])
    assert retrieval_p1(a, b) == pytest.approx(2 / 3)
    assert retrieval_p1(a, a) == 1.0


def test_probe_separates_languages_in_separable_states():
    g = torch.Generator().manual_seed(0)
    states = torch.cat([torch.randn(20, 4, generator=g) + 5, torch.randn(20, 4, generator=g) - 5])
    assert probe_accuracy(states, ["en"] * 20 + ["de"] * 20) == 1.0
    noise = torch.randn(40, 4, generator=g)
    assert probe_accuracy(noise, ["en", "de"] * 20) < 0.9


def test_logit_lens_last_layer_is_the_model_output():
    p = P.build()
    prompts = p.text_strings["en"][:3]
    tok_ids = [p.tokenizer(t)["input_ids"] for t in prompts]
    targets = [[5, 7]] * 3
    lens = logit_lens(p.model, p.tokenizer, prompts, targets)
    with torch.no_grad():
        out = torch.stack([p.model(input_ids=torch.tensor([ids])).logits[0, -1].softmax(-1)[[5, 7]] for ids in tok_ids])
    assert torch.allclose(lens[:, -1, :], out, atol=1e-5)
    states = layer_states(p.model, p.tokenizer, prompts)
    assert states.mean.shape == (3, P.N_LAYERS, p.model.config.hidden_size)


def test_correlation_with_interval():
    c = correlation([0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 2.1, 2.9, 4.2, 5.0])
    assert c["pearson"] > 0.99 and c["ci"][0] < c["pearson"] < c["ci"][1] and c["spearman"] == pytest.approx(1.0)
    assert math.isnan(correlation([1.0], [2.0])["pearson"])


def test_lm_loss_shares_batches_across_languages_without_mixing_them():
    from polyfact.interp.interventions import lm_loss
    from polyfact.interp import CollectConfig

    p = P.build()
    cfg = CollectConfig(backend="torch", seq_len=16, batch_size=5, pack=False, progress=False)
    together = lm_loss(p.model, p.tokenizer, p.text_strings, cfg)
    for lang, items in p.text_strings.items():
        assert together[lang] == pytest.approx(lm_loss(p.model, p.tokenizer, {lang: items}, cfg)[lang], rel=1e-6)
