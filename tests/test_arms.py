"""The fair comparison by hand: DCO's loss, GRPO's advantages for both groupings, the study's SFT
loss, CM-Align's pair choice, fact budgets, the matched-arms check, the claims' answers, and the
smoke study's learning curves."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from polyfact.core.checkpoints import load_checkpoint
from polyfact.core.errors import PolyFactError
from polyfact.training.arms import budget_facts, curve_steps, facts_hash, objective_change
from polyfact.training.config import BudgetConfig


def test_dco_loss_by_hand():
    from polyfact.training.dco import dco_loss

    t = lambda *v: torch.tensor(v)  # noqa: E731
    # instance 1: r1 = (-1 - -2) - (-3 - -3) = 1; r2 = (-2 - -1) - (-1 - -2) = -2; offsets 1 and 1
    # beta 1: |1 - 1| + |-2 - 1| = 3 ; instance 2 all equal: r = 0, offsets 0 -> 0
    out = dco_loss(t(-1.0, -1.0), t(-3.0, -1.0), t(-2.0, -1.0), t(-1.0, -1.0),
                   t(-2.0, -1.0), t(-3.0, -1.0), t(-1.0, -1.0), t(-2.0, -1.0))
    assert out.shape == (2,) and out.tolist() == pytest.approx([3.0, 0.0])
    # beta 2: |1 - 1/2| + |-2 - 2·1| = 4.5
    assert dco_loss(t(-1.0), t(-3.0), t(-2.0), t(-1.0), t(-2.0), t(-3.0), t(-1.0), t(-2.0), beta=2.0).item() == \
        pytest.approx(4.5)


def _rewards(total, per_lang):
    from polyfact.training.grpo import RolloutRewards

    return RolloutRewards(torch.tensor(total), torch.tensor(per_lang), ["en", "de"], {})


def test_advantages_by_hand_for_both_groupings():
    from polyfact.training.grpo import advantages

    nan = float("nan")
    # one fact, two languages, G = 2 rollouts; rollout totals 3 and 1 (bonus included)
    r = _rewards([[3.0, 1.0]], [[[1.0, 0.5], [2.0, 0.5]]])
    fact = advantages(r, "fact", "study")  # (x - 2) / (pop. std 1 + 1e-6), shared by both languages
    assert fact.shape == (1, 2, 2)
    assert fact[0, 0].tolist() == pytest.approx([1.0, -1.0], abs=1e-5) == fact[0, 1].tolist()
    lang = advantages(r, "language", "study")  # each language over its own rewards
    assert lang[0, 0].tolist() == pytest.approx([1.0, -1.0], abs=1e-5)
    assert lang[0, 1].tolist() == pytest.approx([1.0, -1.0], abs=1e-5)
    r = _rewards([[1.0, 1.0]], [[[1.0, 0.0], [0.0, 1.0]]])  # equal totals: no signal for the fact group
    assert advantages(r, "fact", "study").abs().max() < 1e-5
    assert advantages(r, "language", "none")[0].tolist() == [[0.5, -0.5], [-0.5, 0.5]]
    r = _rewards([[2.0, 0.0]], [[[1.0, 0.0], [nan, nan]]])  # a fact without German: NaN stays NaN
    assert torch.isnan(advantages(r, "fact", "study")[0, 1]).all()
    assert torch.isnan(advantages(r, "language", "study")[0, 1]).all()
    with pytest.raises(PolyFactError, match="grouping"):
        advantages(r, "prompt", "study")


def test_study_sft_loss_by_hand():
    from polyfact.training.sft import study_sft_loss

    scores = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    gold = torch.tensor([0, 0])
    ce = -(math.log(math.exp(2) / (math.exp(2) + 3)) + math.log(1 / (math.exp(2) + 3))) / 2
    assert study_sft_loss(scores, gold, [[0, 1]]).item() == pytest.approx(ce, rel=1e-5)
    p = torch.softmax(scores, -1)
    mean = p.mean(0)
    kl = sum((mean * (mean.log() - p[i].log())).sum() for i in range(2)) / 2
    assert study_sft_loss(scores, gold, [[0, 1]], 0.5).item() == pytest.approx(ce + 0.5 * kl.item(), rel=1e-5)
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # identical distributions: no KL
    assert study_sft_loss(same, torch.tensor([0, 0]), [[0, 1]], 3.0).item() == pytest.approx(
        study_sft_loss(same, torch.tensor([0, 0]), [[0, 1]]).item())


def test_cm_align_pairs_from_planted_embeddings():
    from polyfact.training.cmalign import choose_pairs

    vecs = {"Paris": [1.0, 0.0], "paris": [0.9, 0.1], "Lyon": [0.0, 1.0], "Parigi": [0.95, 0.05],
            "Lione": [0.1, 0.9], "Roma": [0.5, 0.5]}

    def embed(texts):
        return torch.nn.functional.normalize(torch.tensor([vecs[t] for t in texts]), dim=-1)

    pairs = choose_pairs({"en": ["Paris", "paris", "Lyon"], "it": ["Lione", "Parigi", "Roma"],
                          "de": ["Roma", "Roma"]}, embed)
    assert [p["lang"] for p in pairs] == ["it"]  # de's candidates are identical: no pair
    assert pairs[0]["anchor"] in ("Paris", "paris") and pairs[0]["chosen"] == "Parigi" and pairs[0]["rejected"] == "Lione"
    assert choose_pairs({"en": ["", " "], "it": ["a", "b"]}, embed) == []  # no English anchor


def test_answer_ids_keep_the_tokens_as_generated():
    """A generated completion's answer line and the ids that spell it: leading space kept, the line's
    end and what follows cut; a line that ends inside a token falls back to the port's " " + text."""
    from polyfact.training.models import train_tokenizer
    from polyfact.training.evaluation.scoring import answer_ids

    tok = train_tokenizer(["Answer text: Paris\nmore text", "Paris is big. Lyon too."] * 50, vocab_size=300)
    ids = tok(" Paris\nmore", add_special_tokens=False)["input_ids"]
    got = answer_ids(tok, ids + [tok.eos_token_id])
    assert got.text == "Paris" and got.ids == tok(" Paris", add_special_tokens=False)["input_ids"]
    split = tok("Pa", add_special_tokens=False)["input_ids"] + tok("ris", add_special_tokens=False)["input_ids"]
    assert answer_ids(tok, split).ids == split  # as sampled, not re-tokenized
    assert answer_ids(tok, [tok.eos_token_id]).text == ""


def test_cm_align_trains_dpo_on_the_sampled_token_ids(smoke_run, tmp_path):
    """The DPO rows' chosen and rejected ids are the ids the model generated (plus EOS), not TRL's
    re-tokenization of prompt + text; the pairs are shuffled with the port's seed and the last
    partial batch is dropped."""
    from polyfact.training.arms import Spend, budget_facts, fact_groups, rows_of
    from polyfact.training.cmalign import cmalign_pairs, dpo_trainer, training_order
    from polyfact.training.evaluation.data import RunData

    run, cfg = smoke_run
    model, tok = load_checkpoint("base", run)
    generated: list[list[int]] = []
    original = model.generate

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        width = kwargs["input_ids"].shape[1]
        generated.extend(out[:, width:].tolist())
        return out

    model.generate = recording
    data = RunData(run)
    rows = data.require("train", data.training_langs)
    facts = budget_facts(rows, BudgetConfig(facts=8), None, 0)
    c = replace(cfg.cm_align, candidates=4, max_new_tokens=4, temperature=1.5)
    pairs = cmalign_pairs(model, tok, fact_groups(rows_of(rows, facts), facts), c, 0, Spend(facts))
    assert pairs, "the smoke model gave no pair"
    eos = tok.eos_token_id
    for p in pairs:
        for kind in ("chosen", "rejected"):
            ids = p[f"{kind}_ids"]
            assert ids[-1] == eos and tok.decode(ids[:-1]).strip() == p[kind]
            assert any(g[: len(ids) - 1] == ids[:-1] for g in generated), (kind, ids)  # a generated prefix
        assert p["prompt_ids"] == tok(p["prompt"])["input_ids"]
    ordered = training_order(pairs, 3, 42)
    assert len(ordered) == len(pairs) - len(pairs) % 3 and ordered == training_order(pairs, 3, 42)
    trainer = dpo_trainer(model, tok, ordered, replace(c, train=replace(c.train, batch_size=3)), tmp_path, 0)
    ds = trainer.train_dataset
    assert ds["chosen_ids"] == [p["chosen_ids"] for p in ordered]
    assert ds["rejected_ids"] == [p["rejected_ids"] for p in ordered]
    assert ds["prompt_ids"] == [p["prompt_ids"] for p in ordered]


def test_fact_budget_is_the_same_subset_and_order_for_every_arm():
    rows = [{"fact_id": f"f{i}", "lang": lang} for i in range(30) for lang in ("en", "de")]
    rows += [{"fact_id": "solo", "lang": "en"}]  # one language only: never in a budget
    b = BudgetConfig(facts=10)
    a1 = budget_facts(rows, b, None, seed=3)
    a2 = budget_facts(list(reversed(rows)), b, 40, seed=3)  # another arm: other row order, other max_facts
    assert a1 == a2 and len(set(a1)) == 10 and "solo" not in a1
    assert budget_facts(rows, b, None, seed=4) != a1 and facts_hash(a1) == facts_hash(sorted(a1))
    assert budget_facts(rows, None, 5, seed=3) == sorted(budget_facts(rows, None, 5, seed=3))  # no budget: id order
    with pytest.raises(PolyFactError, match="budget.facts=31 is more than the 30 train facts"):
        budget_facts(rows, BudgetConfig(facts=31), None, seed=0)


def test_curve_points_and_objective():
    assert curve_steps(10, 5) == [0, 2, 5, 8, 10] and curve_steps(3, 5) == [0, 1, 2, 3]
    curve = [{"step": 0, "probe": {"greedy_reward": -2.0}}, {"step": 4, "probe": {"greedy_reward": -1.0}}]
    assert objective_change(curve, "greedy_reward") == {"measure": "greedy_reward", "first": -2.0, "last": -1.0,
                                                         "improved": True}
    assert objective_change(curve[:1], "greedy_reward") is None


def test_unmatched_arms_are_refused_unless_allowed():
    from polyfact.analyses.curves import check_matched

    rows = [{"checkpoint": "sft", "facts": 490, "facts_hash": "aaaa"},
            {"checkpoint": "grpo", "facts": 40, "facts_hash": "bbbb"}]
    with pytest.raises(PolyFactError, match="different train facts .*sft: 490 facts.*budget.allow_unmatched=true"):
        check_matched(rows, False)
    assert "grpo: 40 facts" in check_matched(rows, True)
    assert check_matched(rows[:1] + [{**rows[1], "facts_hash": "aaaa"}], False) is None
    # each training seed draws its own facts: arms must match within a seed, not across seeds
    seeds = [{"checkpoint": f"{m}@s{s}", "facts": 40, "facts_hash": h} for s, h in ((0, "aaaa"), (1, "cccc"))
             for m in ("sft", "grpo")]
    assert check_matched(seeds, False) is None
    with pytest.raises(PolyFactError, match=r"grpo@s1: 40 facts \(dddd"):
        check_matched(seeds[:3] + [{**seeds[3], "facts_hash": "dddd"}], False)


def test_claims_are_answered_by_the_rule():
    """The three claims from planted contrasts at 8 seeds: Total Consistency supported, held-out
    accuracy contradicted, specialization not resolved (GRPO reduces it against the base but not
    more than SFT: one half unresolved), and a run without the arms: not measured."""
    from polyfact.analyses import verdicts as V
    from polyfact.analyses.seeds import claims

    rng = np.random.default_rng(4)
    planted = {("total_consistency", "grpo", "sft"): 0.08, ("heldout_accuracy", "grpo", "sft"): -0.08,
               ("neuron_count", "grpo", "base"): -30.0, ("study_head_overlap", "grpo", "base"): 0.0,
               ("neuron_count", "grpo", "sft"): 0.0, ("study_head_overlap", "grpo", "sft"): 0.0}

    class Arms:  # what claims() reads of a run: one estimate per contrast
        def contrast(self, measure, a, b):
            delta = planted[(measure, a, b)]
            if measure in ("total_consistency", "heldout_accuracy"):
                return V.crossed(delta + rng.normal(0, 0.3, (8, 150)))
            return V.over_seeds(delta + rng.normal(0, 3.0, 8))

    out = {c["claim"]: c for c in claims(Arms())}
    assert out["consistency"]["verdict"] == "supported"
    assert out["heldout"]["verdict"] == "contradicted"
    spec = out["specialization"]
    assert spec["verdict"] == "not resolved" and spec["halves"] == {"GRPO − base": "supported",
                                                                     "GRPO − SFT": "not resolved"}
    assert len(spec["tests"]) == 4 and all(t["p_adjusted"] >= t["p"] for t in spec["tests"])  # Holm over all 4
    assert out["consistency"]["tests"][0]["difference"] == pytest.approx(0.08, abs=0.01)
    assert out["consistency"]["study_difference"]["value"] == pytest.approx(0.0265)

    class Empty:
        def contrast(self, measure, a, b):
            return None

    assert claims(Empty())[0]["verdict"].startswith("not measured")


def test_smoke_grpo_raises_its_greedy_reward_on_its_probe_facts(smoke_study):
    """The smoke preset's learning curves: every arm recorded five points on the same facts, and
    GRPO's greedy reward on its own probe facts rises."""
    run, _ = smoke_study
    grpo = json.loads((run / "results" / "curves" / "grpo.json").read_text())
    assert len(grpo["curve"]) == 5 and grpo["objective"]["measure"] == "greedy_reward"
    assert grpo["objective"]["improved"] and grpo["objective"]["last"] > grpo["objective"]["first"]
    hashes = {json.loads(p.read_text())["budget"]["offered_hash"] for p in (run / "results" / "curves").glob("*.json")}
    assert len(hashes) == 1  # every arm was offered the same facts (the oracle trains on test facts besides)
    summary = json.loads((run / "results" / "summary.json").read_text())
    assert {r["checkpoint"]: r.get("objective", {}).get("measure") for r in summary["rows"]}["grpo"] == "greedy_reward"


def test_letter_scores_read_the_answer_position_of_each_row():
    """The study's SFT scores the option letters after each row's prompt from logits at the answer
    positions only (rows of different lengths, right padding): the same values as the full-length
    logits read by hand at each row's last prompt token, and gradients reach the weights."""
    from polyfact.data.build import letter_prompt
    from polyfact.training.config import TinyModelConfig
    from polyfact.training.models import make_tiny_model, train_tokenizer
    from polyfact.training.sft import letter_scores

    rows = [{"question": "What is the capital of " + "very " * i + "big land?", "options": opts}
            for i, opts in enumerate([["Paris", "Rome", "Oslo", "Bern"], ["Lima", "Quito", "Kyiv"],
                                      ["Baku", "Doha", "Riga", "Male"]])]
    tok = train_tokenizer([letter_prompt(r) + " A B C D" for r in rows] * 30, vocab_size=300)
    model = make_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64), tok)
    scores, tokens = letter_scores(model, tok, rows)
    letters = [tok(" " + x, add_special_tokens=False)["input_ids"] for x in "ABCD"]
    assert all(len(x) == 1 for x in letters)  # the single-token path
    prompts = [tok(letter_prompt(r), add_special_tokens=False)["input_ids"] for r in rows]
    assert len({len(p) for p in prompts}) == 3 and tokens == sum(len(p) for p in prompts)
    with torch.no_grad():
        for i, (p, r) in enumerate(zip(prompts, rows)):
            ref = model(input_ids=torch.tensor([p])).logits[0, -1, [x[0] for x in letters]]
            k = len(r["options"])
            torch.testing.assert_close(scores[i, :k].detach(), ref[:k], rtol=1e-5, atol=1e-5)
            assert torch.isinf(scores[i, k:]).all()
        # and exactly what the whole padded batch's full-length logits give at those positions
        width = max(len(p) for p in prompts)
        ids = torch.tensor([p + [tok.pad_token_id] * (width - len(p)) for p in prompts])
        attn = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prompts])
        full = model(input_ids=ids, attention_mask=attn).logits
        at_answer = full[torch.arange(len(rows)), attn.sum(1) - 1][:, [x[0] for x in letters]]
        finite = torch.isfinite(scores)
        assert torch.equal(scores.detach()[finite], at_answer[finite])
    scores[:, :3].sum().backward()
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("accumulation, factor", [("mean", 1 / 4), ("sum", 1.0)])
def test_the_study_sft_sums_its_accumulated_loss(smoke_run, tmp_path, accumulation, factor):
    """With 4 micro-batches per step, transformers divides each micro-batch's loss by 4 unless the
    trainer says its loss is already scaled: the study's SFT (``accumulation=sum``) keeps the full
    loss, so its gradient per micro-batch is 4× the averaging trainer's."""
    from transformers import TrainingArguments

    from polyfact.training.arms import Spend
    from polyfact.training.evaluation.data import RunData
    from polyfact.training.config import LMTrainConfig
    from polyfact.training.lm import training_args
    from polyfact.training.sft import StudySftTrainer, letter_scores, study_sft_loss

    run, cfg = smoke_run
    model, tok = load_checkpoint("base", run)
    rows = RunData(run).rows("train")[:10]
    facts = [[r for r in rows if r["fact_id"] == f] for f in dict.fromkeys(r["fact_id"] for r in rows)][:2]
    sft = replace(cfg.sft, objective="study", accumulation=accumulation,
                  train=LMTrainConfig(batch_size=1, gradient_accumulation=4, max_steps=1))
    args = TrainingArguments(**training_args(tmp_path, sft.train, 0, remove_unused_columns=False))
    trainer = StudySftTrainer(model=model, args=args, facts=facts, tokenizer=tok, cfg=sft, spend=Spend([]))
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    trainer.current_gradient_accumulation_steps = 4  # what the training loop sets for its window
    model.zero_grad()
    trainer.training_step(model, {"fact_index": torch.tensor([0])})
    got = model.get_input_embeddings().weight.grad.clone()
    model.zero_grad()
    scores, _ = letter_scores(model, tok, facts[0])
    study_sft_loss(scores, torch.tensor([r["answer_index"] for r in facts[0]]), [list(range(len(facts[0])))]).backward()
    full = model.get_input_embeddings().weight.grad
    torch.testing.assert_close(got, full * factor, rtol=1e-4, atol=1e-7)
