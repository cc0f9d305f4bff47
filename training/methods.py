"""The training methods by name: what ``polyfact train METHOD`` and the run's training stages
dispatch to. Each entry names its function (``(run_dir, cfg, *, parent, ckpt_id, seed, data_dir,
method) -> manifest``, built on ``polyfact.training.common.begin``/``finish``), its settings section
and any settings its registration fixes. ``SECTIONS`` declares each settings section once (its
name, help and dataclass): the run config's method sections are generated from it
(``polyfact.pipeline.config.run_config_class``), so a plugin's method brings its own section. Adding
a method: its module, one ``add`` here (and a ``SECTIONS.add`` for new settings), and its tests
(docs/ARCHITECTURE.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from polyfact.core.errors import PolyFactError
from polyfact.core.registry import Registry

SECTIONS: Registry = Registry("method settings section")
SECTIONS.add("pretrain", "pretraining the toy base", "polyfact.training.config:PretrainConfig")
SECTIONS.add("cpt", "continual pretraining", "polyfact.training.config:CptConfig")
SECTIONS.add("sft", "supervised fine-tuning", "polyfact.training.config:SftConfig")
SECTIONS.add("grpo", "fact-grouped GRPO (and its control grpo-perlang)", "polyfact.training.config:GrpoConfig")
SECTIONS.add("dco", "the DCO baseline", "polyfact.training.config:DcoConfig")
SECTIONS.add("cm_align", "the CM-Align baseline", "polyfact.training.config:CmAlignConfig")

METHODS: Registry = Registry("training method", hint="(chain them with +, e.g. cpt+grpo)")
METHODS.add("pretrain", "pretrain the toy world's tiny model from scratch (the base)", "polyfact.training.pretrain:pretrain",
            section="pretrain")
METHODS.add("cpt", "continual pretraining on parallel text", "polyfact.training.pretrain:cpt", section="cpt",
            objective="mean_accuracy")
METHODS.add("sft", "supervised fine-tuning on the train facts (sft.objective: answer, or the study's letters)",
            "polyfact.training.sft:sft", section="sft", objective="mean_accuracy")
METHODS.add("sft-answer", "the project's answer SFT under its own name (free-text answers after the cue prompt), "
            "beside the study's SFT", "polyfact.training.sft:sft", section="sft",
            overrides={"objective": "answer", "accumulation": "mean", "consistency_weight": 0.0},
            objective="mean_accuracy")
METHODS.add("sft-oracle", "positive control: the answer SFT on the budget's facts plus budget.oracle_test_share "
            "of the test facts (an oracle: it sees test answers; kept out of every claim)", "polyfact.training.sft:sft",
            section="sft", overrides={"objective": "answer", "accumulation": "mean", "consistency_weight": 0.0},
            objective="mean_accuracy", control="positive")
METHODS.add("grpo", "the study's fact-grouped GRPO (one advantage per rollout over all languages)",
            "polyfact.training.grpo:grpo", section="grpo", objective="greedy_reward")
METHODS.add("grpo-perlang", "the matched control: GRPO with one group per fact × language",
            "polyfact.training.grpo:grpo", section="grpo", overrides={"grouping": "language"}, objective="greedy_reward")
METHODS.add("grpo-placebo", "negative control: GRPO with each group's rewards permuted across its rollouts "
            "(same trainer, budget and reward values; no information in the update)", "polyfact.training.grpo:grpo",
            section="grpo", overrides={"placebo": True}, objective="greedy_reward", control="negative")
METHODS.add("grpo-trl", "TRL's per-prompt GRPOTrainer (each fact × language its own prompt), for comparison",
            "polyfact.training.grpo:grpo_trl", section="grpo", objective="mean_accuracy")
METHODS.add("dco", "DCO: label-free agreement of two languages' option preferences (the study's baseline)",
            "polyfact.training.dco:dco", section="dco", objective="agreement")
METHODS.add("cm-align", "CM-Align: DPO toward each language's answer closest to the consistent English one",
            "polyfact.training.cmalign:cm_align", section="cm_align", objective="agreement")


def method_sections() -> list[tuple[str, str, type]]:
    """``(name, help, settings class)`` of every declared section, in declaration order; a method
    whose section no ``SECTIONS.add`` declares is a one-line error."""
    for entry in METHODS.entries():
        if entry.section not in SECTIONS:
            raise PolyFactError(f"method {entry.name!r} reads the settings section {entry.section!r}, which is not "
                                f"declared; add SECTIONS.add({entry.section!r}, help, 'module:SettingsClass') beside "
                                "its METHODS.add (polyfact.training.methods)")
    return [(e.name, e.help, e.load()) for e in SECTIONS.entries()]


def fine_tuning_methods() -> list[str]:
    """Methods a run's ``methods`` may list (all but pretraining)."""
    return [m for m in METHODS if m != "pretrain"]


def default_id(method: str, parent: str | None) -> str:
    """``base`` for pretraining; the method's name from the base; ``parent+method`` otherwise."""
    if method == "pretrain":
        return "base"
    return method if parent in (None, "base") else f"{parent}+{method}"


def method_config(method: str, section: Any) -> Any:
    """The settings ``method`` trains with: its config section with what its registration fixes
    (``grpo-perlang``: ``grouping="language"``)."""
    overrides = METHODS.get(method, "method").get("overrides")
    return dataclasses.replace(section, **overrides) if overrides else section


def section_of(method: str, run_cfg: Any) -> Any:
    """``method``'s section of a run config (e.g. ``run_cfg.grpo`` for ``grpo-perlang``)."""
    return getattr(run_cfg, METHODS.get(method, "method").section)


def train(method: str, run_dir: str | Path, section: Any, *, parent: str | None = None, ckpt_id: str | None = None,
          seed: int = 0, data_dir: str | Path | None = None, budget: Any = None) -> dict:
    """Run ``method`` with its config ``section`` (plus what its registration fixes); returns the
    checkpoint's manifest."""
    entry = METHODS.get(method, "method")
    extra = {} if method == "pretrain" else {"budget": budget}
    if method != "pretrain":
        parent = parent or "base"
    return entry.load()(run_dir, method_config(method, section), parent=parent,
                        ckpt_id=ckpt_id or default_id(method, parent), seed=seed, data_dir=data_dir, method=method,
                        **extra)
