"""Analyzers on tiny models: planted specialization recovered by LAPE and head importance with
every backend, backend agreement, the released LAPE format, merging and distributed collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from polyfact.interp.batching import CollectConfig, token_chunks
from polyfact.interp.collect import collect_stats
from polyfact.interp.heads import head_importance
from polyfact.interp.lape import LapeResult, calibrate, entropy_summary, lape, normalized_entropy
from polyfact.interp.sites import adapter_for
from polyfact.interp.stats import ActivationStats
from polyfact.core.errors import PolyFactError
from tests import planted as P
from tests.conftest import shared

BACKENDS = ["torch", "nnsight", "lens"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    p = P.build()
    return p, p.save(tmp_path_factory.mktemp("planted"))


def _cfg(backend: str) -> CollectConfig:
    return CollectConfig(backend=backend, seq_len=32, batch_size=4, progress=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["tang", "polyfact"])
def test_lape_recovers_planted_neurons(planted, backend, variant):
    p, path = planted
    stats = collect_stats(p.model, p.tokenizer, p.text_strings, _cfg(backend), model_dir=path)
    planted_units = set().union(*p.neurons.values())
    n_units = P.N_LAYERS * P.D_MLP
    res = lape(stats.act_prob(), stats.languages, top_frac=len(planted_units) / n_units, variant=variant)
    found = sum(len(res.units(lang) & p.neurons[lang]) for lang in P.LANGS)
    assert found / len(planted_units) >= 0.95
    false_pos = len(res.all_units() - planted_units) + sum(len(res.units(lang) - p.neurons[lang]) for lang in P.LANGS)
    assert false_pos <= 0.01 * n_units


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["gradient", "ablation"])
def test_head_importance_recovers_planted_heads(planted, backend, method):
    p, path = planted
    imp = head_importance(p.model, p.tokenizer, p.text_strings, method, _cfg(backend), model_dir=path)
    top = imp.top_k(1)
    assert all(top[lang] == [p.heads[lang]] for lang in P.LANGS)
    ent = imp.normalized_entropy()
    for lang, (layer, head) in p.heads.items():
        assert ent[layer, head] < 0.05  # planted heads matter for one language only
    others = [float(ent[layer, h]) for layer in range(P.N_LAYERS) for h in range(P.N_HEADS)
              if (layer, h) not in p.heads.values()]
    assert min(others) > 0.3  # shared heads matter for every language
    assert imp.layer_distribution(1)["sw"] == [0, 0, 1]
    assert imp.topk_jaccard(1)["en"]["de"] == 0.0 and imp.topk_jaccard(1)["en"]["en"] == 1.0


@pytest.fixture(scope="module")
def planted_helpful(tmp_path_factory):
    """Planted heads that help their language (scaling them up lowers its loss) and dominate its
    raw importance: what the study's LAHIS top-2 % selection looks for."""
    p = P.build(helpful_heads=5.0, unembed_scale=0.05)
    return p, p.save(tmp_path_factory.mktemp("planted_helpful"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lahis_recovers_planted_heads(planted_helpful, backend):
    p, path = planted_helpful
    imp = head_importance(p.model, p.tokenizer, p.text_strings, "lahis", _cfg(backend), model_dir=path)
    assert imp.n_top(0.02) == 1  # max(1, int(3 · 4 · 0.02))
    assert imp.top(0.02) == {lang: [p.heads[lang]] for lang in P.LANGS}
    for i, lang in enumerate(imp.languages):  # a helpful head: ∂L/∂m · m < 0 on (nearly) every sample
        assert float(imp.parts["neg_frac"][i][p.heads[lang]]) >= 0.9
    assert imp.overlap(0.02)["en"] == {"en": 100.0, "de": 0.0, "ja": 0.0, "sw": 0.0}
    assert imp.layer_profile(0.02)["sw"] == [0.0, 0.0, 100.0]
    assert imp.mean_overlap(0.02) == 0.0


def test_lahis_accumulation_matches_a_hand_loop(planted_helpful):
    """The study's loop written out directly (mask as the only parameter, AdamW after every sample,
    |g·m|·1000 and the sign counted with the pre-step mask) gives the same importance."""
    p, _ = planted_helpful
    model = p.model
    imp = head_importance(model, p.tokenizer, {"de": p.text_strings["de"]}, "lahis",
                          CollectConfig(backend="torch", seq_len=32, progress=False), max_samples=5)
    chunks = token_chunks(p.tokenizer, p.text_strings["de"], 32)[:5]
    mask = torch.nn.Parameter(torch.ones(P.N_LAYERS, P.N_HEADS))
    opt = torch.optim.AdamW([mask], lr=1e-2)
    total, neg = torch.zeros(P.N_LAYERS, P.N_HEADS), torch.zeros(P.N_LAYERS, P.N_HEADS)
    hooks = [layer.self_attn.o_proj.register_forward_pre_hook(
        lambda mod, args, i=i: (args[0] * mask[i].repeat_interleave(args[0].shape[-1] // P.N_HEADS),))
        for i, layer in enumerate(model.model.layers)]
    for prm in model.parameters():
        prm.requires_grad_(False)
    try:
        for c in chunks:
            ids = torch.tensor([c])
            loss = model(input_ids=ids, labels=ids).loss
            opt.zero_grad()
            loss.backward()
            gm = mask.grad * mask.detach()
            total += gm.abs() * 1000
            neg += (gm < 0).float()
            opt.step()
    finally:
        for h in hooks:
            h.remove()
    expected = (total / len(chunks)) * (neg / len(chunks))
    assert torch.allclose(imp.scores[0].float(), expected, rtol=1e-4, atol=1e-3)
    assert imp.meta["lr"] == 1e-2 and imp.parts["samples"].tolist() == [5.0]


def test_released_lahis_roundtrip_and_errors(tmp_path):
    from polyfact.interp.heads import HeadImportance

    scores = torch.rand(3, 4, 5, dtype=torch.float64)
    imp = HeadImportance(["en", "de", "ja"], scores, "lahis", meta={"seq_len": 512, "max_samples": 500})
    imp.write_released(tmp_path / "rel", model="toy", arch="qwen2")
    back = HeadImportance.read_released(tmp_path / "rel")
    assert back.languages == ["en", "de", "ja"] and torch.allclose(back.scores, scores.float().double())
    assert back.meta["data_num"] == 500 and back.meta["num_heads"] == 5
    (tmp_path / "rel" / "lahis_de.pth").write_bytes(b"not a tensor")
    with pytest.raises(PolyFactError, match="lahis_de.pth"):
        HeadImportance.read_released(tmp_path / "rel")
    with pytest.raises(PolyFactError, match="no lahis_"):
        HeadImportance.read_released(tmp_path)


def test_no_specialization_gives_no_planted_structure():
    p = P.build(specialize=False)
    stats = collect_stats(p.model, p.tokenizer, p.text_strings, _cfg("torch"))
    ent = normalized_entropy(stats.act_prob())
    assert float(torch.nanquantile(ent.flatten(), 0.01)) > 0.9  # every neuron fires for all languages


def test_backends_agree_on_a_random_model_with_padding(tmp_path):
    from polyfact.training.config import TinyModelConfig
    from polyfact.training.models import make_tiny_model, train_tokenizer

    texts = {"en": ["the capital of france is paris"] * 3 + ["a b"],
             "de": ["die hauptstadt von frankreich ist paris", "x"] * 2}
    tok = train_tokenizer([t for v in texts.values() for t in v] * 5, vocab_size=300)
    for family in ("qwen2", "olmo2"):
        model = make_tiny_model(TinyModelConfig(family=family, hidden_size=32, num_layers=2, num_heads=4,
                                                intermediate_size=64), tok, seed=1)
        model.set_attn_implementation("eager")  # the bridge runs eager attention: compare like with like
        path = tmp_path / family
        model.save_pretrained(path)
        tok.save_pretrained(path)
        cfg = dict(seq_len=8, batch_size=3, pack=False, progress=False)
        ref = collect_stats(model, tok, texts, CollectConfig(backend="torch", **cfg))
        assert ref.tokens.tolist() == [len(x) for x in (tok(texts["en"])["input_ids"], tok(texts["de"])["input_ids"])] \
            or ref.tokens.sum() > 0
        for backend in ("nnsight", "lens"):
            other = collect_stats(model, tok, texts, CollectConfig(backend=backend, **cfg), model_dir=path)
            assert torch.equal(ref.tokens, other.tokens)
            assert torch.equal(ref.act_pos, other.act_pos), (family, backend)
            assert torch.allclose(ref.act_sum, other.act_sum, atol=1e-4)
            assert torch.allclose(ref.act_sumsq, other.act_sumsq, atol=1e-4)
            assert torch.allclose(ref.head_norm, other.head_norm, atol=1e-4)


def test_padding_is_excluded(planted):
    p, _ = planted
    texts = {"en": [" ".join(f"en{i}" for i in range(5)), "en1 en2"]}
    packed = collect_stats(p.model, p.tokenizer, texts, CollectConfig(backend="torch", seq_len=8, pack=False,
                                                                         progress=False))
    assert packed.tokens.tolist() == [7]  # 5 + 2 real tokens, padding not counted
    alone = collect_stats(p.model, p.tokenizer, {"en": [texts["en"][1]]},
                          CollectConfig(backend="torch", seq_len=8, pack=False, progress=False))
    first = collect_stats(p.model, p.tokenizer, {"en": [texts["en"][0]]},
                          CollectConfig(backend="torch", seq_len=8, pack=False, progress=False))
    assert torch.equal(packed.act_pos, alone.act_pos + first.act_pos)


def _tang_reference(activation_probs: torch.Tensor, top_rate=0.01, filter_rate=0.95, bar_ratio=0.95):
    """An independent transcription of Tang et al.'s identify.py (per-language lists of (layer, neuron))."""
    normed = activation_probs / activation_probs.sum(dim=-1, keepdim=True)
    normed[torch.isnan(normed)] = 0
    log_probs = torch.where(normed > 0, normed.log(), 0)
    ent = -torch.sum(normed * log_probs, dim=-1)
    flat_probs = activation_probs.flatten()
    top_prob_value = flat_probs.kthvalue(round(len(flat_probs) * filter_rate)).values.item()
    top_position = (activation_probs > top_prob_value).sum(dim=-1)
    ent[top_position == 0] = torch.inf
    flat_ent = ent.flatten()
    _, index = flat_ent.topk(round(len(flat_ent) * top_rate), largest=False)
    row, col = index // ent.size(1), index % ent.size(1)
    selected = activation_probs[row, col].transpose(0, 1)
    bar = flat_probs.kthvalue(round(len(flat_probs) * bar_ratio)).values.item()
    lang, idx = torch.where(selected > bar)
    out = {i: set() for i in range(activation_probs.shape[-1])}
    for lg, j in zip(lang.tolist(), idx.tolist()):
        out[lg].add((int(row[j]), int(col[j])))
    return out


def test_tang_variant_matches_the_reference_script():
    g = torch.Generator().manual_seed(3)
    probs = torch.rand(4, 300, 5, generator=g, dtype=torch.float64) ** 3
    probs[0, :10, 1:] = 0.001  # some language-specific neurons
    langs = ["en", "de", "ja", "zh", "sw"]
    ours = lape(probs, langs, top_frac=0.02, variant="tang")
    ref = _tang_reference(probs.clone(), top_rate=0.02)
    for i, lang in enumerate(langs):
        assert ours.units(lang) == ref[i]


def test_polyfact_variant_by_hand():
    probs = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.0, 0.0], [0.05, 0.6]]], dtype=torch.float64)
    res = lape(probs, ["en", "de"], top_frac=0.5, variant="polyfact")  # 2 of 4 neurons, dead one excluded
    assert res.selected == {0: {"en": [0], "de": [3]}}


def test_calibrated_thresholds_let_counts_change():
    spec = P.build()
    flat = P.build(specialize=False)
    s_spec = collect_stats(spec.model, spec.tokenizer, spec.text_strings, _cfg("torch"))
    s_flat = collect_stats(flat.model, flat.tokenizer, flat.text_strings, _cfg("torch"))
    frac = 36 / (P.N_LAYERS * P.D_MLP)
    th = calibrate(s_spec.act_prob(), top_frac=frac, variant="tang")
    fixed = lape(s_flat.act_prob(), s_flat.languages, top_frac=frac)
    calibrated = lape(s_flat.act_prob(), s_flat.languages, top_frac=frac, thresholds=th)
    assert len(fixed.all_units()) > 0  # a fixed fraction always selects someone
    assert len(calibrated.all_units()) == 0  # against the reference, nothing is specific any more
    assert len(lape(s_spec.act_prob(), s_spec.languages, thresholds=th).all_units()) == 36
    summary = entropy_summary(s_spec.act_prob())
    assert len(summary["mean"]) == P.N_LAYERS and min(summary["quantiles"]["0.05"]) < 0.1


def test_released_lape_format(tmp_path):
    res = LapeResult.read_json(shared("paper-lape", "qwen-base", "lape_results.json"))
    counts = res.counts()
    assert (counts["zh"], counts["ja"], counts["sw"]) == (1595, 1254, 649)
    assert res.n_layers == 28 and res.d_mlp == 18944 and len(res.all_units()) == 5304
    out = res.write_json(tmp_path / "lape_results.json")
    again = LapeResult.read_json(out)
    assert all(again.units(lang) == res.units(lang) for lang in res.languages) and again.counts() == counts
    assert min(res.selected) == 0  # 1-based on disk, 0-based in memory
    (tmp_path / "bad.json").write_text('{"1": [1, 2]}')
    with pytest.raises(PolyFactError, match="LAPE format"):
        LapeResult.read_json(tmp_path / "bad.json")


def test_stats_save_load_merge_and_bounded_memory(planted, tmp_path):
    p, _ = planted
    a = collect_stats(p.model, p.tokenizer, {k: v[:6] for k, v in p.text_strings.items()}, _cfg("torch"))
    b = collect_stats(p.model, p.tokenizer, {k: v[6:] for k, v in p.text_strings.items()}, _cfg("torch"))
    whole = collect_stats(p.model, p.tokenizer, p.text_strings, _cfg("torch"))
    merged = a.merge(b)
    assert torch.equal(merged.act_pos, whole.act_pos) and torch.equal(merged.tokens, whole.tokens)
    assert a.act_pos.shape == whole.act_pos.shape  # state size does not depend on the number of tokens
    a.save(tmp_path / "stats")
    back = ActivationStats.load(tmp_path / "stats")
    assert back.languages == a.languages and torch.equal(back.act_sum, a.act_sum)


@pytest.mark.slow  # over 20 s: CI runs it (CI=true or -m slow)
def test_two_process_gloo_collection_equals_one_process(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "tests.dist_worker", str(r), "2", str(tmp_path / "pg"),
                               str(tmp_path)], cwd=Path(__file__).resolve().parents[1], stderr=subprocess.PIPE,
                              text=True) for r in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for e in errors)
    merged = ActivationStats.load(tmp_path / "merged")
    p = P.build()
    single = collect_stats(p.model, p.tokenizer, p.text_strings,
                           CollectConfig(backend="torch", seq_len=16, batch_size=2, progress=False))
    assert merged.meta["world_size"] == 2
    assert torch.equal(merged.tokens, single.tokens) and torch.equal(merged.act_pos, single.act_pos)
    assert torch.allclose(merged.head_norm, single.head_norm)


def test_an_architecture_without_decoder_blocks_is_one_line():
    class Fake(torch.nn.Module):
        config = type("C", (), {"model_type": "rwkv", "num_hidden_layers": 2})()

    with pytest.raises(PolyFactError, match="^rwkv: no list of 2 blocks in the module tree"):
        adapter_for(Fake())


def test_token_budget_per_language(planted):
    p, _ = planted
    chunks = token_chunks(p.tokenizer, p.text_strings["en"], seq_len=10, max_tokens=25)
    assert sum(len(c) for c in chunks) == 25 and max(len(c) for c in chunks) == 10


def test_released_olmo_base_heads_match_a_hand_computation():
    from polyfact.interp.heads import HeadImportance

    folder = shared("paper-lahis", "olmo-base")
    imp = HeadImportance.read_released(folder)
    assert imp.languages[:3] == ["en", "de", "id"] and (imp.n_layers, imp.n_heads) == (32, 32)
    n = int(32 * 32 * 0.02)  # the study's n_top: 20 heads
    assert imp.n_top(0.02) == n
    hand = {}
    for lang in imp.languages:
        m = torch.load(folder / f"lahis_{lang}.pth", map_location="cpu", weights_only=True)
        hand[lang] = set(torch.topk(m.flatten().double(), n).indices.tolist())
        assert {layer * 32 + head for layer, head in imp.top(0.02)[lang]} == hand[lang]
    ov = imp.overlap(0.02)
    for a in imp.languages:
        for b in imp.languages:
            assert ov[a][b] == pytest.approx(100.0 * len(hand[a] & hand[b]) / n)
    prof = imp.layer_profile(0.02)["en"]
    assert sum(prof) == pytest.approx(100.0)
    assert prof == [100.0 * sum(1 for f in hand["en"] if f // 32 == layer) / n for layer in range(32)]


def test_lahis_terms_signed_and_absolute_on_a_planted_mask():
    from polyfact.interp.heads import lahis_terms

    grad = torch.tensor([[0.5, -2.0], [1.0, 0.0]])
    mask = torch.tensor([[1.0, -0.5], [-2.0, 1.0]])  # AdamW drove two heads' mask below 0
    signed, neg = lahis_terms(grad, mask, signed=True)
    absolute, neg2 = lahis_terms(grad, mask, signed=False)
    assert signed.tolist() == [[500.0, -1000.0], [-2000.0, 0.0]]  # |g| · m · 1000: negative where m < 0
    assert absolute.tolist() == [[500.0, 1000.0], [2000.0, 0.0]]  # |g · m| · 1000
    assert neg.tolist() == neg2.tolist() == [[0.0, 0.0], [1.0, 0.0]]  # g · m < 0


def test_study_text_rules_separator_special_tokens_and_floor():
    from polyfact.interp.batching import token_chunks
    from polyfact.interp.lape import n_selected
    from polyfact.training.config import TinyModelConfig  # noqa: F401 - the toy tokenizer's family
    from polyfact.training.models import train_tokenizer

    tok = train_tokenizer(["one two three four"] * 20, vocab_size=300)
    a, b = tok("one two", add_special_tokens=False)["input_ids"], tok("three", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    assert token_chunks(tok, ["one two", "three"], 64)[0] == a + [eos] + b + [eos]  # the project's: EOS between
    assert token_chunks(tok, ["one two", "three"], 64, separator=False)[0] == a + b  # the study's LAPE: concatenated
    huge = "one " * 2_000_000  # 8 MB in one line: cut before the tokenizer sees it
    assert sum(map(len, token_chunks(tok, [huge], 32, max_tokens=100))) == 100
    # the study floors 1 % (HEAD run_lape.py), its notebook rounded: OLMo-2-7B has 32 x 11008 neurons
    assert (n_selected(352_256, 0.01, "floor"), n_selected(352_256, 0.01, "round")) == (3522, 3523)
    assert n_selected(530_432, 0.01, "floor") == n_selected(530_432, 0.01, "round") == 5304  # Qwen2.5-7B
    assert n_selected(50, 0.01, "floor") == 1  # at least one


def test_lahis_samples_are_shuffled_as_the_study_does():
    import datasets

    from polyfact.analyses.specialization import shuffled

    texts = [f"text {i}" for i in range(40)]
    assert shuffled(texts, 86) == datasets.Dataset.from_dict({"t": texts}).shuffle(seed=86)["t"]
    assert shuffled(texts, 86) != texts and sorted(shuffled(texts, 86)) == sorted(texts)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gate_reduction_matches_a_float64_reference(dtype):
    """The per-neuron count of positive activations, their sum and sum of squares (the CPU path
    squares and sums; other devices take ``vector_norm``) against float64 sums by hand."""
    from polyfact.interp.stats import reduce_gate

    x = torch.randn(300, 64, generator=torch.Generator().manual_seed(0)).to(dtype)
    x[:5, 0] = 0.0  # zeros are not positive
    pos, total, sumsq = reduce_gate(x)
    ref = x.double()
    assert torch.equal(pos, (ref > 0).sum(0).to(torch.int32))
    assert torch.allclose(total.double(), ref.sum(0), rtol=1e-5, atol=1e-4)
    assert torch.allclose(sumsq.double(), (ref * ref).sum(0), rtol=1e-5)
