"""Settings of every training method, with help text and rules next to each field
(``polyfact.core.settings``): the pair to each trainer, as TRL's configs are. This module imports no torch,
so the command line lists and checks settings at once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from polyfact.core.registry import choices
from polyfact.core.settings import check, setting
from polyfact.data.answers import RESOLVERS
from polyfact.data.build import PROMPT_STYLES as PROMPTS
from polyfact.data.languages import language_group

# ------------------------------------------------------------------------------------ vocabularies
FAMILIES = choices("model family", {"qwen2": "Qwen2 architecture (Qwen2.5)", "olmo2": "OLMo-2 architecture"})
NORMALIZATIONS = choices("MCQ normalization", {
    "byte": "summed option log-probability per UTF-8 byte (the study's HEAD evaluator)",
    "token": "mean log-probability per option token (the study's paper-era --score_mode avg)",
    "sum": "summed log-probability (favours short options)",
})
LOSS_TYPES = choices("GRPO loss type", {
    "grpo": "mean over each sequence's tokens, then over sequences (the study's per-sequence mean)",
    "dapo": "token sum over the batch / number of completion tokens",
    "dr_grpo": "token sum / (sequences × max completion length)",
})
SCALES = choices("advantage scaling", {
    "study": "population standard deviation + 1e-6 (the study's)",
    "group": "unbiased standard deviation + 1e-4 (TRL's group scaling)",
    "none": "centred only (Dr.GRPO)",
})
GROUPINGS = choices("GRPO grouping", {
    "fact": "one group per fact: a rollout answers every language and shares one advantage (the study's)",
    "language": "one group per fact × language: the matched control (method grpo-perlang)",
})
REWARD_KINDS = choices("reward", {
    "study": "the study's: answers resolved to options, per-language rewards summed, + the all-correct bonus",
    "correctness": "the project's: lenient match, per-language rewards averaged, + a consistency bonus",
    "agreement": "label-free: each language rewarded for naming the entity most languages name",
})
BONUSES = choices("consistency bonus", {
    "none": "no bonus", "all": "bonus_weight when every language is correct",
    "power": "bonus_weight × (k/n)^4", "ladder": "bonus_weight × floor(ladder_steps·k/n)/ladder_steps",
})
SFT_OBJECTIVES = choices("SFT objective", {
    "answer": "the project's: free-text answer completion under the row's cue prompt",
    "study": "the study's: the four options shown, cross-entropy on the gold letter only",
})
ACCUMULATIONS = choices("loss over gradient accumulation", {
    "mean": "micro-batch losses averaged over the accumulation window (transformers' default)",
    "sum": "micro-batch losses summed (the study's SFT: its loss is not divided by the window)",
})
SCHEDULERS = choices("learning-rate schedule", {s: f"transformers' {s} schedule" for s in (
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")})

STUDY_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _not_fingerprinted(help: str, default: Any) -> Any:
    """A setting that does not change what is trained (how often states are saved or logged):
    left out of checkpoint fingerprints, so changing it never retrains."""
    return setting(default, help=help, ge=1, fingerprint=False)


# ------------------------------------------------------------------------------------ building blocks
@dataclass
class TinyModelConfig:
    """Shape of a tiny model of one of the study's two families (the toy world)."""

    family: str = setting("qwen2", help="architecture of the tiny model", choices=FAMILIES)
    hidden_size: int = setting(128, help="model width", ge=1)
    num_layers: int = setting(4, help="transformer layers", ge=1)
    num_heads: int = setting(4, help="attention heads per layer (must divide hidden_size)", ge=1)
    intermediate_size: int = setting(512, help="MLP width (neurons per layer)", ge=1)
    vocab_size: int = setting(4096, help="byte-level BPE vocabulary size", ge=1)
    max_position_embeddings: int = setting(512, help="longest sequence the model takes", ge=2)

    def __post_init__(self) -> None:
        check(self)
        if self.hidden_size % self.num_heads:
            from polyfact.core.errors import PolyFactError

            raise PolyFactError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")


@dataclass
class CorpusConfig:
    """Exposure per language group in the toy world's corpora: the share of facts stated, of
    entities given a name pair with English, and of train-split facts seen as question–answer lines."""

    stated: dict[str, float] = setting(help="share of facts stated per group (en, high, low, heldout)",
                                       factory=lambda: {"en": 1.0, "high": 0.6, "low": 0.35, "heldout": 0.05},
                                       ge=0, le=1)
    name_pairs: dict[str, float] = setting(help="share of entities given an English name pair per group",
                                           factory=lambda: {"high": 0.5, "low": 0.3, "heldout": 0.15}, ge=0, le=1)
    qa: dict[str, float] = setting(help="share of train facts seen as question–answer lines per group",
                                   factory=lambda: {"en": 1.0, "high": 0.3, "low": 0.2, "heldout": 0.0}, ge=0, le=1)
    qa_unseen: dict[str, float] = setting(help="share of the facts no arm trains on (validation and test) seen as "
                                                "question–answer lines per group: what the base knows in each "
                                                "language beyond statements", factory=lambda: {"en": 1.0}, ge=0, le=1)
    repeats: dict[str, int] = setting(help="times each stated line is repeated per group",
                                      factory=lambda: {"en": 4, "high": 2, "low": 3, "heldout": 1}, ge=0)
    shared_exposure: float = setting(1.0, help="how much a fact's exposure is shared across languages: 1 = one "
                                               "draw per fact (a fact stated in a language is stated in every "
                                               "language with a larger share: well-known facts are known "
                                               "everywhere), 0 = an independent draw per language", ge=0, le=1)
    cpt_pairs_per_fact: int = setting(3, help="CPT: parallel statement pairs per fact", ge=1)
    seed: int = setting(0, help="seed of the corpus draws", ge=0)

    def __post_init__(self) -> None:
        check(self)

    def share(self, table: dict[str, float], lang: str) -> float:
        return table.get("en" if lang == "en" else language_group(lang), table.get("other", 0.0))


@dataclass
class LMTrainConfig:
    """Optimization of one training stage (``transformers.TrainingArguments`` underneath)."""

    seq_len: int = setting(128, help="tokens per training sequence", ge=2)
    batch_size: int = setting(32, help="sequences (or facts) per device and step", ge=1)
    learning_rate: float = setting(3e-3, help="peak learning rate", gt=0, lt=1)
    epochs: float = setting(20.0, help="passes over the training data (when max_steps is -1)", gt=0)
    max_steps: int = setting(-1, help="optimizer steps; -1: as many as the epochs give",
                             check=lambda v: None if v == -1 or v > 0 else "positive (or -1: as many as the epochs give)")
    warmup_ratio: float = setting(0.05, help="share of the steps with a linear warm-up", ge=0, le=1)
    weight_decay: float = setting(0.01, help="AdamW weight decay", ge=0, le=1)
    lr_scheduler: str = setting("cosine", help="learning-rate schedule", choices=SCHEDULERS)
    save_steps: int = _not_fingerprinted("steps between resumable states (not part of the fingerprint)", 50)
    logging_steps: int = _not_fingerprinted("steps between logged metrics (not part of the fingerprint)", 25)
    gradient_accumulation: int = setting(1, help="micro-batches per optimizer step", ge=1)
    bf16: bool = setting(True, help="bf16 autocast on a GPU that has it (never on a CPU, so CPU results do not depend on its "
                                              "kernels)")
    gradient_checkpointing: bool = setting(False, help="recompute activations in the backward pass (7B: fits 80 GB)")

    def __post_init__(self) -> None:
        check(self)


@dataclass
class LoraSettings:
    """LoRA through ``peft`` (the study: r 64, alpha 128, dropout 0.05)."""

    enabled: bool = setting(False, help="train LoRA adapters instead of all weights")
    r: int = setting(64, help="LoRA rank", ge=1)
    alpha: int = setting(128, help="LoRA alpha (scale = alpha / r)", ge=1)
    dropout: float = setting(0.05, help="dropout on the LoRA path", ge=0, le=1)
    targets: list[str] = setting(help="module names that get adapters", factory=lambda: list(STUDY_LORA_TARGETS))

    def __post_init__(self) -> None:
        check(self)

    def peft_config(self):
        """The ``peft.LoraConfig`` of these settings, or None when LoRA is off."""
        if not self.enabled:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.targets), bias="none", task_type="CAUSAL_LM")


STUDY_LANGS = 12  # PolyFact's training languages: the planned budget's and memory plan's languages per fact


def _lm_steps(train: "LMTrainConfig", items: int | None, bound: bool = False) -> str:
    """Optimizer steps of ``items`` training items (``<=``: an upper bound, ``~``: an estimate)."""
    if train.max_steps > 0:
        return str(train.max_steps)
    per_step = train.batch_size * train.gradient_accumulation
    return f"{'<=' if bound else '~'}{math.ceil(train.epochs * items / per_step)}" if items else "?"


# Each method's settings declare, beside its trainer (training/methods.py), its planned budget (the
# dry run's line: facts and optimizer steps) and its memory model (its batch in the units of
# pipeline/memory_plan.json): ``planned_budget(facts, note)`` and ``memory_units()``.


def _lm(**kw: Any) -> Any:
    return lambda: LMTrainConfig(**kw)


# ------------------------------------------------------------------------------------ methods
@dataclass
class PretrainConfig:
    """Pretraining the toy world's tiny model from scratch on its English-heavy corpus."""

    model: TinyModelConfig = setting(help="shape of the tiny model", factory=TinyModelConfig)
    corpus: CorpusConfig = setting(help="what the corpus states, per language group", factory=CorpusConfig)
    train: LMTrainConfig = setting(help="optimization", factory=_lm(epochs=16, batch_size=16, learning_rate=8e-3))
    eval_max_facts: int | None = setting(None, help="test facts of the recall check in the manifest (None: all)",
                                         ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the recall check", choices=NORMALIZATIONS)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class CptConfig:
    """Continual pretraining on parallel statements (toy world), with replayed pretraining text."""

    corpus: CorpusConfig = setting(help="what the toy world's CPT statements state", factory=CorpusConfig)
    text: str = setting("statements", help="CPT text: 'statements' (the toy world's parallel statements of the "
                                           "run's own non-test facts: CPT then injects facts) or parallel text, "
                                           "'multiway:FILE.jsonl' / 'files:DIR' (the study's)",
                        check=lambda v: None if v == "statements" or v.split(":", 1)[0] in ("multiway", "files")
                        and ":" in v else "statements, multiway:FILE.jsonl or files:DIR")
    max_docs: int | None = setting(None, help="parallel text: rows read (None: all)", ge=1)
    train: LMTrainConfig = setting(help="optimization", factory=_lm(epochs=1.0, batch_size=16, learning_rate=1e-3,
                                                                      warmup_ratio=0.1))
    replay: float = setting(0.5, help="share of replayed pretraining text, so CPT does not erase what the base "
                                      "knows", ge=0, le=1)
    eval_max_facts: int | None = setting(60, help="facts of the recall checks in the manifest (None: all)", ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the recall checks", choices=NORMALIZATIONS)

    def __post_init__(self) -> None:
        check(self)

    def planned_budget(self, facts: int | None, note: str = "") -> str:
        return f"facts {facts or 'all non-test'}{note}; steps: the corpus's (cpt.train)"

    def memory_units(self) -> dict[str, float]:
        return {}


@dataclass
class BudgetConfig:
    """What every arm of a run learns from, and how its learning is watched: the same ``facts``
    train facts (subset and order fixed by the seed) for every method, and a learning curve of
    ``curve_points`` evaluations on fixed probe facts of the arm's own budget and fixed test facts."""

    facts: int | None = setting(None, help="train facts every arm learns from, the same subset and order for a "
                                           "seed (None: each method's own max_facts)", ge=1)
    allow_unmatched: bool = setting(False, help="compare arms that saw different facts (the report then says so "
                                                "above every verdict)")
    curve_points: int = setting(5, help="evenly spaced learning-curve points per arm, start and end included", ge=2,
                                le=100)
    probe_facts: int = setting(20, help="train facts of the arm's budget evaluated at each curve point", ge=1)
    test_facts: int = setting(20, help="test facts evaluated at each curve point", ge=1)
    curve_prompt: str = setting("cue", help="MCQ prompt of the curve points", choices=PROMPTS)
    oracle_test_share: float = setting(0.25, help="the positive control sft-oracle only: share of the test facts it "
                                                  "trains on besides the budget's, in every training language (an "
                                                  "oracle, kept out of every claim; other arms never see test facts)",
                                       ge=0, le=1)
    trajectory_points: int = setting(0, help="intermediate states each arm keeps as checkpoints "
                                             "<arm>/step-<n>, evenly spaced (LoRA arms: adapters only); set by "
                                             "trajectory.points", ge=0, le=100)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class SftConfig:
    """Supervised fine-tuning on the train split in the training languages (``langs=None``).
    ``objective``: ``answer`` (the project's free-text answer completion) or ``study`` (the four
    options shown, cross-entropy on the gold letter, all of a fact's languages in one batch)."""

    train: LMTrainConfig = setting(help="optimization", factory=_lm(epochs=2.0, batch_size=32, learning_rate=1e-3,
                                                                      warmup_ratio=0.05, seq_len=96))
    objective: str = setting("answer", help="what SFT learns", choices=SFT_OBJECTIVES)
    consistency_weight: float = setting(0.0, help="study objective: weight of the KL of each language's letter "
                                                  "distribution to the fact's mean (the study's fact-matched runs: 0)",
                                        ge=0)
    accumulation: str = setting("mean", help="study objective: micro-batch losses over a gradient-accumulation "
                                             "window averaged ('mean', transformers' default) or summed ('sum', "
                                             "the study's: its loss reaches the Trainer without being divided)",
                                choices=ACCUMULATIONS)
    langs: list[str] | None = setting(None, help="languages trained on (None: the dataset's training languages)")
    max_facts: int | None = setting(None, help="train facts used (None: all; budget.facts overrides)", ge=1)
    lora: LoraSettings = setting(help="LoRA adapters (off: full fine-tuning)", factory=LoraSettings)
    eval_max_facts: int | None = setting(60, help="facts of the recall checks in the manifest (None: all)", ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the recall checks", choices=NORMALIZATIONS)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        check(self)
        if self.consistency_weight and self.objective != "study":
            from polyfact.core.errors import PolyFactError

            raise PolyFactError("sft.consistency_weight weighs the study objective's letter distributions; with "
                                "sft.objective=answer it would do nothing: set sft.objective=study or drop it")
        if self.accumulation == "sum" and self.objective != "study":
            from polyfact.core.errors import PolyFactError

            raise PolyFactError("sft.accumulation=sum applies to the study objective only (the answer objective "
                                "trains through TRL, which averages); set sft.objective=study or drop it")

    def planned_budget(self, facts: int | None, note: str = "") -> str:
        facts = facts or self.max_facts
        answer = self.objective == "answer"
        items = facts * (len(self.langs or []) or STUDY_LANGS) if facts and answer else facts
        per_step = self.train.batch_size * self.train.gradient_accumulation
        return (f"facts {facts or 'all'}{note}; {_lm_steps(self.train, items)} steps of {per_step} "
                f"{'fact x language rows' if answer else 'facts (all languages)'}")

    def memory_units(self) -> dict[str, float]:
        """256-token sequences per micro-batch (the study's SFT: a fact's 12 languages per batch)."""
        rows = self.train.batch_size * (STUDY_LANGS if self.objective == "study" else 1)
        return {"sft": rows * self.train.seq_len / 256}

    @classmethod
    def study(cls, **overrides: Any) -> "SftConfig":
        """The study's SFT (``train_multilingual_consistency_lora_sft.py``, ``sft_10k.sbatch``): options
        shown, CE on the gold letter, a fact's languages in one batch of 8 facts, LoRA r 64 / alpha 128
        on q, k, v, o, lr 2e-5 cosine, warm-up 0.05, weight decay 0.01, one epoch, no KL term, and the
        eight micro-batch losses of a step summed (the study passes ``labels``, so ``transformers``
        does not divide its loss by gradient accumulation)."""
        base = dict(objective="study", consistency_weight=0.0, accumulation="sum",
                    train=LMTrainConfig(epochs=1.0, batch_size=1, gradient_accumulation=8, learning_rate=2e-5,
                                        lr_scheduler="cosine", warmup_ratio=0.05, weight_decay=0.01, seq_len=512,
                                        gradient_checkpointing=True),
                    lora=LoraSettings(enabled=True, targets=list(ATTENTION_TARGETS)), max_facts=None)
        return cls(**{**base, **overrides})


@dataclass
class DcoConfig:
    """DCO (Liu, Qi et al. 2026; the study's port ``train_polyfact_dco.py``): label-free; one instance
    is one fact in two languages with a chosen and a rejected option picked by a shared random index,
    aligned across the languages by option identity; loss |r1 − offset2/β| + |r2 − β·offset1|."""

    train: LMTrainConfig = setting(help="optimization (the port: lr 1e-5, 4 instances per step, 3 % warm-up, "
                                        "linear decay, one epoch)",
                                   factory=_lm(epochs=1.0, batch_size=4, learning_rate=1e-5, warmup_ratio=0.03,
                                               weight_decay=0.01, lr_scheduler="linear", seq_len=256))
    beta: float = setting(1.0, help="DCO's β (1: both languages pulled to the same margin)", gt=0)
    langs: list[str] | None = setting(None, help="languages pairs are drawn from (None: the training languages)")
    max_facts: int | None = setting(None, help="facts (one instance each; None: all; budget.facts overrides)", ge=1)
    lora: LoraSettings = setting(help="LoRA adapters (the reference is the policy with its adapter off; without "
                                      "LoRA a frozen copy)", factory=LoraSettings)
    eval_max_facts: int | None = setting(60, help="facts of the recall checks in the manifest (None: all)", ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the recall checks", choices=NORMALIZATIONS)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        check(self)

    def planned_budget(self, facts: int | None, note: str = "") -> str:
        facts = facts or self.max_facts
        per_step = self.train.batch_size * self.train.gradient_accumulation
        return f"facts {facts or 'all'}{note}; {_lm_steps(self.train, facts)} steps of {per_step} instances (one per fact)"

    def memory_units(self) -> dict[str, float]:
        """256-token sequences per micro-batch: 4 per instance (two languages, chosen and rejected)."""
        return {"dco": 4 * self.train.batch_size * self.train.seq_len / 256}

    @classmethod
    def study(cls, **overrides: Any) -> "DcoConfig":
        """The study's port: LoRA r 128 / alpha 256, dropout 0, all seven projections, lr 1e-5,
        4 instances per step, 3 % warm-up then linear decay, AdamW weight decay 0.01, one epoch."""
        base = dict(lora=LoraSettings(enabled=True, r=128, alpha=256, dropout=0.0), max_facts=None,
                    train=LMTrainConfig(epochs=1.0, batch_size=4, learning_rate=1e-5, warmup_ratio=0.03,
                                        weight_decay=0.01, lr_scheduler="linear", seq_len=256,
                                        gradient_checkpointing=True))
        return cls(**{**base, **overrides})


@dataclass
class CmAlignConfig:
    """CM-Align (Zhang et al. 2025; the study's port ``train_wikifact_cmalign_dpo.py``): sample K answers
    per language per fact, anchor on the most self-consistent English answer, pair each language's
    closest (chosen) and farthest (rejected) answer to it, then DPO with TRL's ``DPOTrainer``."""

    train: LMTrainConfig = setting(help="DPO optimization (the port: lr 5e-6, 16 pairs per step, cosine, 3 % "
                                        "warm-up, one epoch)",
                                   factory=_lm(epochs=1.0, batch_size=4, gradient_accumulation=4, learning_rate=5e-6,
                                               warmup_ratio=0.03, weight_decay=0.0, lr_scheduler="cosine",
                                               seq_len=512))
    candidates: int = setting(4, help="answers sampled per language per fact (K)", ge=2, le=64)
    temperature: float = setting(0.9, help="sampling temperature of the candidates", gt=0)
    top_p: float = setting(0.95, help="nucleus sampling of the candidates", gt=0, le=1)
    top_k: int = setting(50, help="top-k sampling of the candidates (the port passes none: transformers' 50; 0: off)",
                         ge=0)
    repetition_penalty: float = setting(1.3, help="generation repetition penalty of the candidates", gt=0)
    max_new_tokens: int = setting(32, help="longest candidate in tokens", ge=1, le=4096)
    encoder: str = setting("policy", help="sentence encoder of the cosines: 'policy' (the model's own mean-pooled "
                                          "last hidden state, offline) or a local model directory / cached hub id "
                                          "(the study: sentence-transformers/LaBSE)")
    beta: float = setting(0.1, help="DPO β", gt=0)
    nll_weight: float = setting(0.0, help="weight of the NLL term on the chosen answer (the study: 0)", ge=0)
    shuffle_seed: int = setting(42, help="seed of the pairs' training order (the port's --seed 42; the last "
                                         "partial batch is dropped, as its DataLoader does)", ge=0)
    langs: list[str] | None = setting(None, help="languages (None: the training languages; English anchors)")
    max_facts: int | None = setting(None, help="facts (None: all; budget.facts overrides)", ge=1)
    lora: LoraSettings = setting(help="LoRA adapters (reference: the adapter off; without LoRA a frozen copy)",
                                 factory=LoraSettings)
    eval_max_facts: int | None = setting(60, help="facts of the recall checks in the manifest (None: all)", ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the recall checks", choices=NORMALIZATIONS)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        check(self)

    def planned_budget(self, facts: int | None, note: str = "") -> str:
        facts = facts or self.max_facts
        pairs = facts * (len(self.langs or []) or STUDY_LANGS) - facts if facts else facts
        per_step = self.train.batch_size * self.train.gradient_accumulation
        return (f"facts {facts or 'all'}{note}; {_lm_steps(self.train, pairs, bound=True)} steps of {per_step} "
                f"pairs (up to languages - 1 per fact)")

    def memory_units(self) -> dict[str, float]:
        """256-token sequences per micro-batch: chosen and rejected."""
        return {"dpo": 2 * self.train.batch_size * self.train.seq_len / 256}

    @classmethod
    def study(cls, **overrides: Any) -> "CmAlignConfig":
        """The study's port: K 4, T 0.9, top-p 0.95, repetition 1.3, 32 tokens, LaBSE, DPO β 0.1 without
        NLL, LoRA r 64 / alpha 128 on all seven projections, lr 5e-6, 16 pairs per step, one epoch."""
        base = dict(encoder="sentence-transformers/LaBSE", lora=LoraSettings(enabled=True), max_facts=None,
                    train=LMTrainConfig(epochs=1.0, batch_size=4, gradient_accumulation=4, learning_rate=5e-6,
                                        warmup_ratio=0.03, weight_decay=0.0, lr_scheduler="cosine", seq_len=512,
                                        gradient_checkpointing=True))
        return cls(**{**base, **overrides})


@dataclass
class RewardConfig:
    """Reward values and the consistency bonus of fact-grouped GRPO (``polyfact.training.rewards``). For
    ``study``, ``wrong`` is a resolved wrong option (0), ``unresolved`` an answer that resolves to
    no option (−0.5), ``empty`` an empty answer, and ``bonus_weight`` is added to the **sum**."""

    kind: str = setting("correctness", help="reward definition", choices=REWARD_KINDS)
    correct: float = setting(1.0, help="reward of a correct language")
    wrong: float = setting(-0.5, help="reward of a wrong answer (study: a resolved wrong option)")
    unresolved: float = setting(-0.5, help="study: an answer that resolves to no option")
    empty: float = setting(-1.0, help="reward of an empty answer")
    bonus: str = setting("all", help="consistency bonus shape", choices=BONUSES)
    bonus_weight: float = setting(1.0, help="size of the consistency bonus", ge=0)
    ladder_steps: int = setting(4, help="steps of the ladder bonus", ge=1)
    resolver: str = setting("head", help="study: how an answer is resolved to an option", choices=RESOLVERS)

    def __post_init__(self) -> None:
        check(self)

    @classmethod
    def study(cls, bonus: float = 1.0, empty_penalty: float = 0.0) -> "RewardConfig":
        """The study's reward: +1 / 0 / −0.5 / −empty_penalty per language, summed, + ``bonus``
        when all are correct (its ablations: ``bonus=0`` and ``bonus=5``)."""
        return cls(kind="study", correct=1.0, wrong=0.0, unresolved=-0.5, empty=-float(empty_penalty),
                   bonus="all" if bonus else "none", bonus_weight=float(bonus))


@dataclass
class GrpoConfig:
    """Fact-grouped GRPO: ``facts_per_step`` fact groups per optimizer step, ``num_generations``
    rollouts each, every rollout answering the fact in each training language (``langs=None``)."""

    steps: int | None = setting(50, help="optimizer steps (None: epochs passes over the train facts)", ge=1)
    epochs: float = setting(1.0, help="passes over the train facts when steps is None", gt=0)
    facts_per_step: int = setting(4, help="fact groups per optimizer step", ge=1)
    num_generations: int = setting(8, help="rollouts per fact (the group size)", ge=2, le=512)
    temperature: float = setting(0.7, help="sampling temperature of the rollouts", gt=0)
    top_p: float = setting(1.0, help="nucleus sampling of the rollouts", gt=0, le=1)
    top_k: int = setting(0, help="top-k sampling of the rollouts (0: off; the study keeps transformers' default, 50)",
                         ge=0)
    max_new_tokens: int = setting(8, help="longest rollout answer in tokens", ge=1, le=4096)
    learning_rate: float = setting(2e-4, help="peak learning rate", gt=0, lt=1)
    weight_decay: float = setting(0.0, help="AdamW weight decay (the study: 0.01)", ge=0, le=1)
    clip_eps: float = setting(0.2, help="lower clipping range of the policy ratio", gt=0)
    clip_eps_high: float | None = setting(None, help="upper clipping range (None: clip_eps)", gt=0)
    beta: float = setting(0.0, help="weight of the k3 KL to the reference (0: none, the study's)", ge=0)
    loss_type: str = setting("grpo", help="how token losses are averaged", choices=LOSS_TYPES)
    scale_rewards: str = setting("study", help="how advantages are scaled", choices=SCALES)
    reward: RewardConfig = setting(help="reward definition", factory=RewardConfig.study)
    grouping: str = setting("fact", help="what one advantage group is", choices=GROUPINGS)
    placebo: bool = setting(False, help="negative control (method grpo-placebo): each group's rewards are "
                                        "permuted across its rollouts before the advantages, so an update carries "
                                        "no information about which answer was right")
    prompt: str = setting("cue", help="what a rollout answers", choices=PROMPTS)
    repetition_penalty: float = setting(1.0, help="generation repetition penalty (the study: 1.3)", gt=0)
    lr_scheduler: str = setting("constant", help="learning-rate schedule", choices=SCHEDULERS)
    warmup_ratio: float = setting(0.0, help="share of steps with a linear warm-up", ge=0, le=1)
    langs: list[str] | None = setting(None, help="languages a rollout answers (None: the training languages)")
    max_facts: int | None = setting(40, help="train facts GRPO learns from (None: all; budget.facts overrides); "
                                             "its train recall is measured on them", ge=1)
    save_steps: int = _not_fingerprinted("steps between resumable states (not part of the fingerprint)", 20)
    logging_steps: int = _not_fingerprinted("steps between logged metrics (not part of the fingerprint)", 10)
    eval_max_facts: int | None = setting(40, help="facts of the recall checks in the manifest (None: all)", ge=1)
    normalization: str = setting("byte", help="MCQ normalization of the test recall check", choices=NORMALIZATIONS)
    lora: LoraSettings = setting(help="LoRA adapters (off: full fine-tuning)", factory=LoraSettings)
    gradient_checkpointing: bool = setting(False, help="recompute activations in the backward pass")
    use_vllm: bool = setting(False, help="grpo-trl only: TRL's colocated vLLM generation, when vLLM is installed")

    def __post_init__(self) -> None:
        if isinstance(self.reward, dict):
            self.reward = RewardConfig(**self.reward)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        check(self)

    def planned_budget(self, facts: int | None, note: str = "") -> str:
        facts = facts or self.max_facts
        steps = self.steps if self.steps is not None else (
            math.ceil(self.epochs * facts / self.facts_per_step) if facts else "?")
        return (f"facts {facts or 'all'}{note}; {steps} steps of {self.facts_per_step} facts x {self.num_generations} "
                f"rollouts" + (" (rewards permuted: placebo)" if self.placebo else ""))

    def memory_units(self) -> dict[str, float]:
        """Rollouts per step, each answering in every training language."""
        return {"grpo": float(self.num_generations * self.facts_per_step)}

    @classmethod
    def study(cls, **overrides: Any) -> "GrpoConfig":
        """The study's objective and settings (one fact per step, 8 rollouts, one epoch, LoRA r 64,
        lr 1e-5 with cosine decay, T 0.7, top-p 0.95, repetition penalty 1.3, 32 new tokens)."""
        base = dict(steps=None, epochs=1.0, facts_per_step=1, num_generations=8, temperature=0.7, top_p=0.95,
                    top_k=50, weight_decay=0.01,
                    repetition_penalty=1.3, max_new_tokens=32, learning_rate=1e-5, lr_scheduler="cosine",
                    warmup_ratio=0.03, beta=0.0, loss_type="grpo", scale_rewards="study",
                    reward=RewardConfig.study(), prompt="study", max_facts=None,
                    lora=LoraSettings(enabled=True), gradient_checkpointing=True)
        return cls(**{**base, **overrides})


def fingerprint_view(cfg: Any) -> Any:
    """A config as plain data without the settings that do not change what is trained."""
    from dataclasses import fields, is_dataclass

    if not is_dataclass(cfg):
        return cfg
    return {f.name: fingerprint_view(getattr(cfg, f.name)) for f in fields(cfg)
            if f.metadata.get("fingerprint", True)}
