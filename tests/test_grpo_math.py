"""GRPO advantages, clipped loss (DAPO/GRPO/Dr.GRPO), k3 KL and rewards against hand-computed values."""

import math

import pytest
import torch

from polyfact.training.config import GrpoConfig, RewardConfig
from polyfact.training.grpo import group_advantages, policy_loss
from polyfact.training.rewards import consistency_bonus, rollout_reward
from polyfact.core.errors import PolyFactError


def test_group_advantages_z_score_with_unbiased_std():
    r = torch.tensor([[1.0, 0.0, -1.0], [2.0, 2.0, 2.0]])
    a = group_advantages(r, "group")
    # group 1: mean 0, unbiased std sqrt(2/2) = 1; group 2: no spread -> zero advantage
    assert torch.allclose(a[0], torch.tensor([1.0, 0.0, -1.0]) / (1 + 1e-4))
    assert torch.equal(a[1], torch.zeros(3))
    assert torch.allclose(group_advantages(r, "none")[0], torch.tensor([1.0, 0.0, -1.0]))


# Three sequences with 2, 1 and 3 completion tokens; advantages +1, 0, -1.
MASK = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]])
ADV = torch.tensor([1.0, 0.0, -1.0])


def test_loss_normalizations_at_ratio_one():
    logp = torch.zeros(3, 4)
    dapo, _ = policy_loss(logp, logp, ADV, MASK, loss_type="dapo")
    grpo, _ = policy_loss(logp, logp, ADV, MASK, loss_type="grpo")
    dr, _ = policy_loss(logp, logp, ADV, MASK, loss_type="dr_grpo", max_completion_length=4)
    assert dapo.item() == pytest.approx((-1 * 2 + 0 + 1 * 3) / 6)
    assert grpo.item() == pytest.approx((-1 + 0 + 1) / 3)
    assert dr.item() == pytest.approx((-2 + 3) / (3 * 4))


def test_clipping_by_hand():
    old = torch.zeros(3, 4)
    new = old.clone()
    new[0] = math.log(1.5)  # A > 0, ratio 1.5 -> clipped at 1.2
    new[2] = math.log(0.5)  # A < 0, ratio 0.5 -> min(-0.5, -0.8) = -0.8
    loss, stats = policy_loss(new, old, ADV, MASK, clip_eps=0.2, loss_type="dapo")
    expected = (2 * -1.2 + 0 + 3 * 0.8) / 6
    assert loss.item() == pytest.approx(expected)
    assert stats["clip_ratio"] == pytest.approx(5 / 6)
    high, _ = policy_loss(new, old, ADV, MASK, clip_eps=0.2, clip_eps_high=0.28, loss_type="dapo")
    assert high.item() == pytest.approx((2 * -1.28 + 3 * 0.8) / 6)


def test_k3_kl_term():
    logp = torch.zeros(3, 4)
    ref = torch.full((3, 4), math.log(2.0))
    loss, stats = policy_loss(logp, logp, torch.zeros(3), MASK, beta=0.1, ref_logp=ref, loss_type="dapo")
    k3 = 2.0 - math.log(2.0) - 1.0
    assert stats["kl"] == pytest.approx(k3)
    assert loss.item() == pytest.approx(0.1 * k3)


def test_gradient_is_minus_advantage_over_tokens():
    logp = torch.zeros(3, 4, requires_grad=True)
    loss, _ = policy_loss(logp, logp.detach(), ADV, MASK, loss_type="dapo")
    loss.backward()
    expected = -(ADV[:, None] * MASK) / 6
    assert torch.allclose(logp.grad, expected)


@pytest.mark.parametrize("bonus, k, n, expected", [
    ("none", 3, 3, 0.0), ("all", 3, 3, 2.0), ("all", 2, 3, 0.0),
    ("power", 2, 4, 2.0 * (0.5 ** 4)), ("power", 4, 4, 2.0),
    ("ladder", 2, 4, 2.0 * 2 / 4), ("ladder", 3, 4, 2.0 * 3 / 4), ("ladder", 1, 3, 2.0 * 1 / 4),
])
def test_consistency_bonus(bonus, k, n, expected):
    assert consistency_bonus(k, n, RewardConfig(bonus=bonus, bonus_weight=2.0)) == pytest.approx(expected)


ROWS = {
    "en": {"lang": "en", "object": "Paris", "aliases": [], "options": ["Paris", "Lyon"], "option_ids": ["Q90", "Q456"]},
    "de": {"lang": "de", "object": "Paris", "aliases": [], "options": ["Lyon", "Paris"], "option_ids": ["Q456", "Q90"]},
    "ja": {"lang": "ja", "object": "パリ", "aliases": [], "options": ["パリ", "リヨン"], "option_ids": ["Q90", "Q456"]},
}


def test_correctness_reward_by_hand():
    cfg = RewardConfig(bonus="all", bonus_weight=1.0)
    r = rollout_reward({"en": "Paris", "de": "Lyon", "ja": ""}, ROWS, cfg)  # the project's: mean + bonus
    assert r["per_lang"] == {"en": 1.0, "de": -0.5, "ja": -1.0}
    assert r["total"] == pytest.approx((1 - 0.5 - 1) / 3)
    r = rollout_reward({"en": "Paris", "de": "Paris!", "ja": "パリです"}, ROWS, cfg)
    assert r["total"] == pytest.approx(1.0 + 1.0) and r["k"] == 3


def test_agreement_reward_is_label_free():
    cfg = RewardConfig(kind="agreement", bonus="none")
    # two languages agree on Lyon (wrong): agreement rewards them, not the gold
    r = rollout_reward({"en": "Lyon", "de": "Lyon", "ja": "パリ"}, ROWS, cfg)
    assert r["per_lang"] == {"en": 1.0, "de": 1.0, "ja": -0.5}
    assert r["correct"] == {"en": False, "de": False, "ja": True}
    r = rollout_reward({"en": "Berlin", "de": "", "ja": "パリ"}, ROWS, cfg)  # no majority
    assert r["per_lang"] == {"en": -0.5, "de": -1.0, "ja": -0.5}


def test_bad_settings_are_rejected():
    with pytest.raises(PolyFactError, match="consistency bonus"):
        RewardConfig(bonus="square")
    with pytest.raises(PolyFactError, match="loss_type"):
        GrpoConfig(loss_type="ppo")
    with pytest.raises(PolyFactError, match="num_generations"):
        GrpoConfig(num_generations=1)


# ---------------------------------------------------------------------------------------------- the study's reward
from polyfact.data.answers import resolve_option  # noqa: E402

OPTS = ["Paris", "Lyon", "Marseille", "New Paris"]


@pytest.mark.parametrize("answer, expected", [
    ("Paris", 0),  # exact option text
    ("  paris. ", 0),  # case and trailing punctuation
    ("Answer: Lyon", 1),  # an "Answer:" label is stripped
    ("Marseille\nbecause ...", 2),  # first line only
    ("Lyon or Marseille", None),  # a hedge names two options: nothing
    ("B", None),  # a bare letter names nothing
    ("b)", None),
    ("B) Lyon", 1),  # a letter plus the text resolves by the text
    ("the city of Marseille", 2),  # the one option it contains
    ("Mars", 2),  # contained in one option (at least two characters)
    ("New Paris", 3),  # exact beats containment ("Paris" is inside it too)
    ("Berlin", None),  # no option
    ("", None),
])
def test_study_resolution_by_hand(answer, expected):
    assert resolve_option(answer, OPTS) == expected


STUDY_ROWS = {lang: {"lang": lang, "object": "Paris", "options": opts, "answer_index": opts.index("Paris")}
              for lang, opts in (("en", ["Paris", "Lyon", "Rome", "Bern"]), ("de", ["Lyon", "Paris", "Bern", "Rome"]),
                                 ("fr", ["Rome", "Bern", "Lyon", "Paris"]))}


@pytest.mark.parametrize("answers, per_lang, total", [
    ({"en": "Paris", "de": "Paris", "fr": "Paris"}, [1, 1, 1], 3 + 1),  # all correct: sum + bonus 1
    ({"en": "Paris", "de": "Lyon", "fr": "Paris"}, [1, 0, 1], 2),  # a wrong option is 0
    ({"en": "Paris", "de": "Berlin", "fr": ""}, [1, -0.5, 0], 0.5),  # unresolved −0.5, empty 0
    ({"en": "Paris or Lyon", "de": "B", "fr": "D"}, [-0.5, -0.5, -0.5], -1.5),  # hedges and bare letters
])
def test_study_reward_by_hand(answers, per_lang, total):
    r = rollout_reward(answers, STUDY_ROWS, RewardConfig.study())
    assert [r["per_lang"][x] for x in ("en", "de", "fr")] == per_lang
    assert r["total"] == pytest.approx(total)


def test_study_reward_sums_so_the_bonus_is_one_flip():
    cfg = RewardConfig.study()
    eleven = rollout_reward({"en": "Paris", "de": "Paris", "fr": "Lyon"}, STUDY_ROWS, cfg)["total"]
    twelve = rollout_reward({"en": "Paris", "de": "Paris", "fr": "Paris"}, STUDY_ROWS, cfg)["total"]
    assert twelve - eleven == pytest.approx(1 + 1)  # one more correct language + the bonus of 1
    assert rollout_reward({"en": "", "de": "", "fr": ""}, STUDY_ROWS, RewardConfig.study(empty_penalty=1.0))["total"] == -3
    assert rollout_reward({"en": "Paris", "de": "Paris", "fr": "Paris"}, STUDY_ROWS, RewardConfig.study(bonus=5))["total"] == 8
    assert rollout_reward({"en": "Paris", "de": "Paris", "fr": "Paris"}, STUDY_ROWS, RewardConfig.study(bonus=0))["total"] == 3


def test_hedging_earns_nothing_under_the_project_reward_either():
    cfg = RewardConfig(bonus="none")
    r = rollout_reward({"en": "Lyon or Paris or Rome", "de": "Paris", "fr": "Paris"}, STUDY_ROWS, cfg)
    assert r["correct"] == {"en": False, "de": True, "fr": True}


def test_study_advantages_use_the_population_std():
    r = torch.tensor([[1.0, 0.0, -1.0, 0.0]])
    a = group_advantages(r, "study")
    pop = math.sqrt(0.5)  # population std of (1, 0, −1, 0)
    assert torch.allclose(a, torch.tensor([[1.0, 0.0, -1.0, 0.0]]) / (pop + 1e-6))


def test_study_config_pins_the_study_settings():
    c = GrpoConfig.study()
    assert (c.facts_per_step, c.num_generations, c.max_new_tokens, c.learning_rate) == (1, 8, 32, 1e-5)
    assert (c.loss_type, c.scale_rewards, c.beta, c.steps, c.epochs, c.max_facts) == ("grpo", "study", 0.0, None, 1.0, None)
    assert (c.lora.enabled, c.lora.r, c.lora.alpha, len(c.lora.targets)) == (True, 64, 128, 7)
    assert c.reward.kind == "study" and c.prompt == "study" and c.repetition_penalty == 1.3


def test_the_placebo_keeps_every_reward_value_and_cuts_the_link_to_the_answer():
    """grpo-placebo permutes each fact's rewards across its rollouts: every group keeps its reward
    values (so its mean, spread and advantages' distribution), a rollout's languages move together,
    and over many draws a given rollout's advantage is uncorrelated with its own reward."""
    from polyfact.training.grpo import RolloutRewards, advantages, permuted

    total = torch.tensor([[3.0, 1.0, 0.0, -1.0], [2.0, 2.0, 0.5, 0.0]])
    per_lang = torch.stack([total / 2, total / 2 + 1], dim=1)  # [F, L, G]
    r = RolloutRewards(total, per_lang, ["en", "de"], {})
    gen = torch.Generator().manual_seed(0)
    p = permuted(r, gen)
    assert torch.equal(p.total.sort(1).values, total.sort(1).values)  # the same values per group
    for f in range(2):
        for g in range(4):  # the languages of a rollout moved with its total
            k = (total[f] == p.total[f, g]).nonzero()[0, 0]
            assert torch.equal(p.per_lang[f, :, g], per_lang[f, :, k])
    own, shuffled = [], []
    for _ in range(400):
        own.append(advantages(r, "fact", "study")[0, 0, 0])  # fact 0, English, rollout 0 (the best answer)
        shuffled.append(advantages(permuted(r, gen), "fact", "study")[0, 0, 0])
    own, shuffled = torch.stack(own), torch.stack(shuffled)
    assert float(own.min()) > 1.0  # unpermuted: the best answer always gets a large advantage
    assert abs(float(shuffled.mean())) < 0.15  # placebo: its advantage averages 0
