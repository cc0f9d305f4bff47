"""Training on tiny models: every method with the smoke preset, both families, scorer, corpora."""

from __future__ import annotations


import pytest
import torch

from polyfact.pipeline.config import resolve
from polyfact.core.errors import PolyFactError
from polyfact.core.checkpoints import list_checkpoints, read_manifest
from polyfact.training.evaluation.data import RunData
from polyfact.training.config import CorpusConfig, TinyModelConfig
from polyfact.training.corpus import cpt_corpus, pretraining_corpus
from polyfact.training.methods import train
from polyfact.core.checkpoints import load_checkpoint
from polyfact.training.models import make_tiny_model, train_tokenizer
from polyfact.training.evaluation.scoring import generate_answers, score_options, score_options_naive


def test_corpora_are_seeded_english_heavy_and_cpt_has_no_test_facts(smoke_run):
    run, _ = smoke_run
    rows = RunData(run).rows()
    a = pretraining_corpus(rows, CorpusConfig(seed=1))
    assert a == pretraining_corpus(rows, CorpusConfig(seed=1)) != pretraining_corpus(rows, CorpusConfig(seed=2))
    en = [r for r in rows if r["lang"] == "en"]
    from polyfact.training.corpus import statement

    assert all(statement(r) in a for r in en)  # every fact stated in English
    sw_stated = sum(statement(r) in a for r in rows if r["lang"] == "sw")
    assert sw_stated < 0.45 * len(en)  # a low-resource language sees few facts
    de = {r["fact_id"] for r in rows if r["lang"] == "de" and statement(r) in a}
    assert {r["fact_id"] for r in rows if r["lang"] == "sw" and statement(r) in a} <= de  # shared exposure
    test_statements = {statement(r) for r in rows if r["split"] == "test"}
    cpt = cpt_corpus(rows, CorpusConfig())
    assert not any(line in test_statements for doc in cpt for line in doc.split("\n"))


def test_batched_scorer_equals_one_option_per_forward(smoke_run):
    run, _ = smoke_run
    model, tok = load_checkpoint("base", run)
    rows = RunData(run).rows("test")[:24]
    args = ([r["prompt"] for r in rows], [r["options"] for r in rows], [r["lang"] for r in rows])
    fast = score_options(model, tok, *args, batch_size=5)
    slow = score_options_naive(model, tok, *args)
    for f, s in zip(fast, slow):
        assert f.n_tokens == s.n_tokens
        assert f.logprob == pytest.approx(s.logprob, abs=1e-4)


@pytest.mark.slow  # over 20 s: CI runs it (CI=true or -m slow)
@pytest.mark.parametrize("family", ["qwen2", "olmo2"])
def test_every_method_trains_a_checkpoint_with_a_manifest(smoke_run, family, tmp_path):
    """Every registered method trains a checkpoint on the same budget of facts, records what it spent
    and a learning curve at five points."""
    from dataclasses import replace

    from polyfact.training.config import BudgetConfig

    run, cfg = smoke_run
    if family == "olmo2":  # a second run of the other family from scratch (the shared config stays as it is)
        (tmp_path / "data").symlink_to(run / "data")
        train("pretrain", tmp_path, replace(cfg.pretrain, model=replace(cfg.pretrain.model, family="olmo2")))
        run = tmp_path
    budget = BudgetConfig(facts=6, probe_facts=6, test_facts=6)
    study_sft = replace(cfg.sft, objective="study", consistency_weight=0.5)
    arms = [("cpt", None, cfg.cpt), ("sft", None, cfg.sft), ("grpo", None, cfg.grpo), ("grpo", "cpt", cfg.grpo),
            ("grpo-perlang", None, cfg.grpo), ("grpo-trl", None, cfg.grpo), ("dco", None, cfg.dco),
            ("cm-align", None, cfg.cm_align)]
    hashes = set()
    for method, parent, section in arms:
        m = train(method, run, section, parent=parent, budget=budget)
        assert m["family"] == family and m["method"] == method
        assert m["parent"] == (parent or "base")
        assert m["data_fingerprint"] == RunData(run).fingerprint
        assert m["versions"]["torch"] and m["fingerprint"]
        spent = m["metrics"]["budget"]
        assert spent["facts"] == 6 and spent["steps"] > 0 and spent["forward_tokens"] > 0, (method, spent)
        hashes.add(spent["facts_hash"])
        curve = m["metrics"]["curve"]
        assert curve[0]["step"] == 0 and curve[-1]["step"] == spent["steps"] and len(curve) >= 3, (method, curve)
    assert len(hashes) == 1  # every arm learned from the same facts
    assert read_manifest(run, "grpo-perlang")["config"]["grouping"] == "language"
    m = train("sft", run, study_sft, ckpt_id="sft-study", budget=budget)
    assert m["config"]["objective"] == "study" and m["metrics"]["budget"]["facts_hash"] in hashes
    assert set(list_checkpoints(run)) >= {"base", "cpt", "sft", "grpo", "cpt+grpo", "grpo-trl", "dco", "cm-align"}
    grpo = read_manifest(run, "grpo")
    assert {"reward", "reward_std", "frac_reward_zero_std", "completion_length", "kl", "acc/en"} <= set(grpo["metrics"]["history"][0])
    assert "greedy_reward" in grpo["metrics"]["curve"][0]["probe"] and grpo["metrics"]["budget"]["generated_tokens"] > 0
    assert "en_gap" in read_manifest(run, "base")["metrics"]["test_recall"]
    model, tok = load_checkpoint("cpt+grpo", run)
    (answer,) = generate_answers(model, tok, ["x"], max_new_tokens=2)[0]
    assert isinstance(answer, str) and len(tok(answer, add_special_tokens=False)["input_ids"]) <= 2


def test_bad_input_errors(smoke_run, tmp_path):
    run, cfg = smoke_run
    with pytest.raises(PolyFactError, match="no checkpoint 'nope'"):
        train("sft", run, cfg.sft, parent="nope")
    with pytest.raises(PolyFactError, match="unknown training method 'dpo'; use one of"):
        train("dpo", run, cfg.sft)
    with pytest.raises(PolyFactError, match="not a PolyFact dataset"):
        train("pretrain", tmp_path, cfg.pretrain)
    with pytest.raises(PolyFactError, match="unknown preset"):
        resolve("huge")
    with pytest.raises(PolyFactError, match="grpo.stepz"):
        resolve("smoke", sets=["grpo.stepz=3"])
    with pytest.raises(PolyFactError, match="grpo.steps: expected an integer"):
        resolve("smoke", sets=["grpo.steps=many"])
    # tokenizer/model mismatch
    bad = tmp_path / "bad"
    model, tok = load_checkpoint("base", run)
    small = train_tokenizer(["a b c"] * 10, vocab_size=300)
    big = make_tiny_model(TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32), small)
    big.save_pretrained(bad)
    tok.save_pretrained(bad)
    with pytest.raises(PolyFactError, match="tokenizer/model mismatch"):
        load_checkpoint(bad)


def test_generation_is_seeded(smoke_run):
    run, _ = smoke_run
    model, tok = load_checkpoint("base", run)
    a = generate_answers(model, tok, ["What"], do_sample=True, num_return_sequences=3, seed=5, max_new_tokens=4)
    b = generate_answers(model, tok, ["What"], do_sample=True, num_return_sequences=3, seed=5, max_new_tokens=4)
    assert a == b


def test_sft_with_lora_merges_into_a_plain_checkpoint(smoke_run, tmp_path):
    run, cfg = smoke_run
    cfg.sft.lora.enabled = True
    cfg.sft.lora.r = 4
    from polyfact.training.config import BudgetConfig

    m = train("sft", run, cfg.sft, ckpt_id="sft-lora", budget=BudgetConfig(facts=8, trajectory_points=1))
    assert m["config"]["lora"]["enabled"] is True
    model, _ = load_checkpoint("sft-lora", run)
    assert not any("lora" in name for name, _ in model.named_parameters())  # merged, loads without peft
    cfg.sft.lora.enabled = False
    # its middle state is kept as an adapter only, and loads merged into the parent
    point = run / "checkpoints" / "sft-lora~step-2"
    assert (point / "adapter_config.json").exists() and not (point / "model.safetensors").exists()
    middle, _ = load_checkpoint("sft-lora/step-2", run)
    base, _ = load_checkpoint("base", run)
    names = dict(middle.named_parameters())
    assert set(names) == set(dict(base.named_parameters()))
    moved = [n for n, p in base.named_parameters() if not torch.equal(p, names[n])]
    assert moved and all("proj" in n for n in moved)  # only the adapted projections moved


def test_empty_split_is_a_one_line_error(smoke_run, tmp_path):
    run, cfg = smoke_run
    with pytest.raises(PolyFactError, match="has no rows for these languages"):
        RunData(run).require("train", ["xx"])
