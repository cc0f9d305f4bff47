"""Presets: ``smoke`` (CI, under a minute on 2 cores), ``default`` (the README's main job on the
embedded toy world, one training seed), ``replicate`` (the toy world at 8 training seeds with the
placebo and oracle control arms: the study's claims under the verdict rule) and ``paper``
(Qwen2.5-7B / OLMo-2-1124-7B on PolyFact, GPUs: what the study trained and measured)."""

from __future__ import annotations

from polyfact.core.registry import choices
from polyfact.pipeline.config import merge, run_config_class, to_dict
from polyfact.training.config import CmAlignConfig, DcoConfig, GrpoConfig, SftConfig

PRESETS = choices("preset", {
    "smoke": "CI: the whole study on a 2-layer toy model, in under a minute",
    "default": "the README's main job: the toy world, one training seed",
    "replicate": "the toy world's claims at 8 training seeds, with the placebo and oracle controls",
    "paper": "Qwen2.5-7B on PolyFact, GPUs: what the study trained and measured",
})

# The toy world's facts: five relations of CLDR and GeoNames, 140 facts each (the cap), 22 languages.
# Continent (P30: six answers, one dominant) and shared border (P47: each country has several true
# neighbours) are left out: there the base's MCQ recall followed answer priors more than knowledge
# (English 0.67 and 0.81 where the other relations gave 0.86–1.00), so the English advantage the
# runs exist to show depended on the seed (docs/RESULTS.md, bench/toy_world.py).
TOY_WORLD = {"relations": "P17,P282,P36,P37,P38", "max_per_relation": 140}
# The toy world's base: 14 pretraining epochs. At 10, pretraining seed 3 stalled (final loss 1.77,
# English 0.60 against a training-language mean of 0.52: no English advantage); bench/toy_world.py
# measures the base at 5 pretraining seeds and 1 and 2 torch threads (docs/RESULTS.md).
TOY_PRETRAIN = {"train": {"epochs": 14.0}}

_OVERRIDES: dict[str, dict] = {
    # every arm learns the same 40 train facts (GRPO's since the first version); curves at 5 points.
    # Sized for 15 minutes on 2 cores (README): 14 pretraining epochs, GRPO 30 steps of 2 facts,
    # half the analyzer text, deactivation on 6 facts per language, fewer resamples
    "default": {"data": TOY_WORLD, "budget": {"facts": 40}, "pretrain": TOY_PRETRAIN,
                "grpo": {"steps": 30, "facts_per_step": 2}, "eval": {"bootstrap": 500},
                "analysis": {"max_tokens": 10000, "head_max_tokens": 2000},
                "routing": {"bootstrap": 100, "permutations": 100}, "ablate": {"max_facts": 6}},
    "smoke": {
        # the default arms plus both controls, so CI runs the placebo and the oracle end to end
        "methods": ["cpt", "sft", "grpo", "cpt+grpo", "grpo-placebo", "sft-oracle"],
        "budget": {"facts": 8, "probe_facts": 8, "test_facts": 8},
        "data": {"langs": "en,de,ja,sw,ko", "max_per_relation": 10},
        "pretrain": {"model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
                               "vocab_size": 512},
                     "train": {"epochs": 2.0, "batch_size": 16, "save_steps": 1000}},
        "cpt": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000}, "eval_max_facts": 8},
        "sft": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000}, "eval_max_facts": 8},
        # the smoke model cannot write a whole answer: one-token answers (a word start resolves to the
        # option containing it) and 8 rollouts of 4 facts give mixed rewards, so CI sees a real update,
        # and 12 steps at lr 1e-2 raise the greedy reward on the probe facts (the learning curve's test)
        "grpo": {"steps": 12, "facts_per_step": 4, "num_generations": 8, "temperature": 1.0, "max_new_tokens": 1,
                 "learning_rate": 1e-2, "eval_max_facts": 8, "save_steps": 1000, "logging_steps": 1},
        "dco": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000, "learning_rate": 1e-3},
                "eval_max_facts": 8},
        "cm_align": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000, "learning_rate": 1e-3},
                     "candidates": 3, "max_new_tokens": 4, "eval_max_facts": 8},
        "eval": {"bootstrap": 100},
        "routing": {"bootstrap": 50, "permutations": 50},
        "trajectory": {"points": 1},  # every arm keeps its middle state: the trajectory stage end to end
        "steer": {"seeds": 2, "strengths": [-1.0, 1.0]},  # the steer stage end to end (2 seeds resolve nothing)
    },
    # The study's comparison under the one verdict rule (analyses/verdicts.py): the study's SFT (options shown,
    # CE on the gold letter, accumulated losses summed), GRPO, DCO and CM-Align, with the negative control
    # grpo-placebo (rewards permuted across rollouts) and the positive control sft-oracle (sees a quarter of
    # the test facts), every arm on the same 40 train facts per seed; 8 seeds, the fewest at which the exact
    # test over seeds can reach α after Holm over claim 3's four tests (2/2^8 < 0.05/4), sized so that the
    # study's Total Consistency difference is detectable (README, docs/RESULTS.md); half the analyzer text,
    # fewer resamples; the causal analyses run on the first seed only.
    "replicate": {
        "seeds": [0, 1, 2, 3, 4, 5, 6, 7],
        "data": TOY_WORLD,
        "methods": ["sft", "grpo", "grpo-placebo", "sft-oracle", "dco", "cm-align"],
        "budget": {"facts": 40},
        "pretrain": TOY_PRETRAIN,
        "sft": {"objective": "study", "accumulation": "sum",  # the study's shape: 1 fact x 8 accumulated
                "train": {"epochs": 2.0, "batch_size": 1, "gradient_accumulation": 8}},
        "grpo": {"steps": 30, "facts_per_step": 2},
        "dco": {"train": {"learning_rate": 1e-3}},
        "cm_align": {"train": {"learning_rate": 1e-3}, "max_new_tokens": 8},
        "eval": {"bootstrap": 500},
        "analysis": {"max_tokens": 10000, "head_max_tokens": 2000},
        "routing": {"bootstrap": 100, "permutations": 100},
        "ablate": {"max_facts": 6},
    },
    # What the study trained and measured (github jvonrad/Lost-in-Mistranslation): its final runs'
    # arms matched at 10,000 train facts (SFT on the option letters, DCO, CM-Align, GRPO with the study
    # reward, each built by its config's study() constructor), its MCQ scaffold, LAPE on 2M tokens per
    # language at length 1024 and LAHIS on 500 samples of 512 tokens of multi-way TED text. Memory
    # settings from bench/memory_plan.py.
    "paper": {
        "model": "Qwen/Qwen2.5-7B",
        "methods": ["sft", "dco", "cm-align", "grpo", "cpt", "cpt+grpo"],
        "budget": {"facts": 10_000, "curve_prompt": "study", "probe_facts": 200, "test_facts": 200},
        # the study's 12 languages; a local copy of the released PolyFact-Clean (--set data.import_path=DIR,
        # its 'parallel' config) is imported when given, else PolyFact is built from a Wikidata dump
        "data": {"source": "wikidata-dump", "langs": "polyfact", "max_per_relation": None, "import_kind": "polyfact",
                 "split_fracs": [0.95, 0.025, 0.025]},
        "cpt": {"text": "multiway:TED2025/multi_way.jsonl",  # the study's CPT: parallel text, not the facts
                "train": {"epochs": 1.0, "batch_size": 4, "gradient_accumulation": 16, "learning_rate": 1e-5,
                          "seq_len": 1024, "save_steps": 200, "gradient_checkpointing": True}, "replay": 0.0,
                "eval_max_facts": 500},
        "sft": to_dict(SftConfig.study(eval_max_facts=500)),
        "dco": to_dict(DcoConfig.study(eval_max_facts=500)),
        "cm_align": to_dict(CmAlignConfig.study(eval_max_facts=500)),
        "grpo": to_dict(GrpoConfig.study(save_steps=500, eval_max_facts=500)),
        # the study's final (HEAD) rules: byte-normalized MCQ, the HEAD answer resolver in the reward
        # (grpo.reward.resolver=head; "paper" is the paper-era rule), KLAR by its 3-shot protocol
        "eval": {"prompt": "study", "match": "study", "normalization": "byte", "protocol": "study"},
        "analysis": {"texts": "multiway:TED2025/multi_way.jsonl", "backend": "torch", "compile": True,
                     "max_tokens": 2_000_000, "seq_len": 1024, "batch_size": 8, "head_method": "lahis",
                     "head_backend": "torch", "head_seq_len": 512, "head_max_samples": 500, "head_max_tokens": None,
                     "head_lr": 1e-2, "head_top_frac": 0.02, "shards": 2},  # two halves: κ cross-fits
    },
}


def preset_dict(name: str) -> dict:
    """The full settings of preset ``name`` as plain data."""
    PRESETS.check(name)
    return merge(to_dict(run_config_class()()), {**_OVERRIDES[name], "preset": name})
