"""Presets: ``smoke`` (CI, under a minute on 2 cores), ``default`` (the README's main job on the
embedded toy world) and ``paper`` (Qwen2.5-7B / OLMo-2-1124-7B on PolyFact from Wikidata, GPUs)."""

from __future__ import annotations

from core.errors import PolyFactError
from pipeline.config import RunConfig, merge, to_dict

PRESETS = ("smoke", "default", "paper")

_OVERRIDES: dict[str, dict] = {
    "default": {},
    "smoke": {
        "data": {"langs": "en,de,ja,sw,ko", "max_per_relation": 10},
        "pretrain": {"model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
                               "vocab_size": 512},
                     "train": {"epochs": 2.0, "batch_size": 16, "save_steps": 1000}},
        "cpt": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000}, "eval_max_facts": 8},
        "sft": {"train": {"epochs": 1.0, "max_steps": 4, "save_steps": 1000}, "eval_max_facts": 8},
        "grpo": {"steps": 2, "facts_per_step": 2, "num_generations": 2, "max_new_tokens": 4, "eval_max_facts": 8,
                 "save_steps": 1000, "logging_steps": 1},
        "eval": {"bootstrap": 100},
    },
    "paper": {
        "model": "Qwen/Qwen2.5-7B",
        "methods": ["sft", "grpo", "cpt", "cpt+grpo"],
        "data": {"source": "wikidata-dump", "langs": "all", "max_per_relation": None,
                 "split_fracs": [0.95, 0.025, 0.025]},
        "cpt": {"train": {"epochs": 1.0, "batch_size": 4, "gradient_accumulation": 16, "learning_rate": 1e-5,
                          "seq_len": 1024, "save_steps": 200}, "replay": 0.0, "eval_max_facts": 500},
        "sft": {"train": {"epochs": 1.0, "batch_size": 8, "gradient_accumulation": 8, "learning_rate": 1e-5,
                          "seq_len": 256, "save_steps": 200}, "lora": {"enabled": True}, "max_facts": 10000,
                "eval_max_facts": 500},
        "grpo": {"steps": 300, "facts_per_step": 8, "num_generations": 8, "max_new_tokens": 32,
                 "learning_rate": 1e-6, "save_steps": 25, "eval_max_facts": 500},
    },
}


def preset_dict(name: str) -> dict:
    """The full settings of preset ``name`` as plain data."""
    if name not in PRESETS:
        raise PolyFactError(f"unknown preset {name!r}; use one of: {', '.join(PRESETS)}")
    return merge(to_dict(RunConfig()), {**_OVERRIDES[name], "preset": name})
