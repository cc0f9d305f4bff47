"""Settings of every analysis, with help text and rules next to each field (``polyfact.core.settings``).
Imports no torch, so the command line lists and checks them at once."""

from __future__ import annotations

from dataclasses import dataclass

from polyfact.core.registry import choices
from polyfact.core.settings import check, setting
from polyfact.interp.registry import BACKENDS, HEAD_METHODS, LAHIS_ACCUMULATIONS, LAPE_COUNTS, LAPE_VARIANTS
from polyfact.data.answers import MODES as MATCH_MODES
from polyfact.data.build import PROMPT_STYLES
from polyfact.training.config import NORMALIZATIONS

EVAL_MODES = choices("evaluation mode", {
    "mcq": "option log-likelihoods (the study's closed-book MCQ scoring)",
    "generate": "greedy free-form answers scored with the matcher",
})
PROTOCOLS = choices("evaluation protocol", {
    "mcq": "option log-likelihoods on the dataset's rows (the toolkit's KLAR evaluation)",
    "study": "KLAR as the study evaluates it: 3-shot generation with template 1, 10 greedy tokens, the first "
             "line, the study's matcher against the single target, every sample kept",
})
SPLITS = choices("split", {"train": "train facts", "validation": "validation facts", "test": "test facts"})
HEAD_LANGUAGES = choices("head-language set", {"training": "the dataset's training languages",
                                               "all": "every language of the dataset"})


def _texts_rule(spec: str) -> str | None:
    from polyfact.analyses.texts import TEXT_SOURCES, spec_kind

    try:
        spec_kind(spec)
    except Exception:  # noqa: BLE001 - the rule's text names the valid kinds
        return "one of: " + ", ".join(e["usage"] for e in TEXT_SOURCES.entries())
    return None


@dataclass
class EvalConfig:
    """Behavioral evaluation of every checkpoint."""

    split: str = setting("test", help="split evaluated", choices=SPLITS)
    mode: str = setting("mcq", help="how answers are scored", choices=EVAL_MODES)
    normalization: str = setting("byte", help="MCQ scores compared per byte, per token or summed",
                                 choices=NORMALIZATIONS)
    prompt: str = setting("cue", help="MCQ prompt: the row's cue, or the study's 'Question: …\\nAnswer:'",
                          choices=PROMPT_STYLES)
    match: str = setting("study", help="free-form answers: the study's matcher (or the project's lenient, exact)",
                         choices=MATCH_MODES)
    max_facts: int | None = setting(None, help="facts evaluated (None: all of the split)", ge=1)
    bootstrap: int = setting(1000, help="bootstrap resamples of the intervals (0: none)", ge=0)
    klar_path: str | None = setting(None, help="a local KLAR release to import and evaluate as well")
    protocol: str = setting("mcq", help="how KLAR (--data or klar_path) is evaluated", choices=PROTOCOLS)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class SpecializationConfig:
    """Analyzer settings shared by neurons and heads. ``reference`` calibrates thresholds and is
    the "before" of before/after comparisons: a checkpoint id, used when the run has it."""

    backend: str = setting("nnsight", help="hook backend of the neuron statistics", choices=BACKENDS)
    texts: str | None = setting("statements", help="text the analyzers read (KIND[:ARGS]; see polyfact analyze "
                                                    "--help)", check=_texts_rule)
    max_tokens: int | None = setting(20000, help="neuron statistics: token budget per language (None: all)", ge=1)
    seq_len: int = setting(128, help="tokens per analyzed sequence", ge=2)
    batch_size: int = setting(16, help="sequences per forward", ge=1)
    top_frac: float = setting(0.01, help="LAPE: share of all neurons called language-specific", gt=0, lt=1)
    lape_count: str = setting("floor", help="LAPE: how top_frac becomes a neuron count", choices=LAPE_COUNTS)
    lape_separator: bool = setting(False, help="LAPE text: an EOS between packed texts (the study: none, texts "
                                               "concatenated)")
    head_method: str = setting("lahis", help="head importance: the study's LAHIS, or the project's gradient or "
                                             "ablation", choices=HEAD_METHODS)
    head_backend: str = setting("torch", help="hook backend of head importance", choices=BACKENDS)
    head_max_tokens: int | None = setting(4000, help="head importance: token budget per language (None: all)",
                                          ge=1)
    top_k_heads: int = setting(4, help="the project's top-k heads per language", ge=1)
    reference: str | None = setting("base", help="reference checkpoint for calibration and before/after (None: "
                                                 "none)")
    shards: int = setting(8, help="interleaved text groups per language: the units of the measurement-error "
                                  "bootstrap", ge=1)
    head_seq_len: int | None = setting(None, help="LAHIS sample length (the study: 512; None: seq_len)", ge=2)
    head_max_samples: int | None = setting(None, help="LAHIS samples per language (the study: 500; None: all)", ge=1)
    head_lr: float = setting(1e-2, help="LAHIS mask learning rate (the study's)", gt=0, lt=1)
    head_top_frac: float = setting(0.02, help="the study's top share of heads per language", gt=0, lt=1)
    head_join: int = setting(5, help="multi-way text: segments joined per head sample (the study's)", ge=1)
    lahis_accumulation: str = setting("signed", help="LAHIS: how a sample's mask gradient is accumulated",
                                      choices=LAHIS_ACCUMULATIONS)
    head_shuffle_seed: int | None = setting(86, help="LAHIS: samples shuffled with this seed before the first "
                                                     "head_max_samples are taken (the study: 86; None: text order)",
                                            ge=0)
    head_special_tokens: bool = setting(True, help="LAHIS: samples tokenized with the tokenizer's special tokens "
                                                   "(the study's)")
    compile: bool = setting(False, help="torch.compile the statistics' reductions (GPU: ~1.03x bare forward)")

    def __post_init__(self) -> None:
        check(self)

    def validate(self) -> "SpecializationConfig":
        """Check again after a command changed a setting."""
        return check(self)


@dataclass
class RoutingConfig:
    """Before/after comparisons: resampling counts of the intervals and tests."""

    bootstrap: int = setting(200, help="text-shard bootstrap resamples (measurement error)", ge=0)
    permutations: int = setting(200, help="language-label permutations of the differential test", ge=0)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class AblationConfig:
    """Causal deactivation of each language's neurons or top heads."""

    variant: str = setting("tang", help="LAPE variant whose neurons are deactivated", choices=LAPE_VARIANTS)
    k_heads: int = setting(4, help="top heads per language deactivated", ge=1)
    max_facts: int | None = setting(12, help="facts per language of the Δaccuracy matrix (None: all)", ge=1)
    max_tokens: int | None = setting(3000, help="tokens per language of the Δloss matrix (None: all)", ge=1)
    seq_len: int = setting(128, help="tokens per sequence", ge=2)
    accuracy: bool = setting(True, help="also the Δaccuracy matrix for neurons")
    head_accuracy: bool = setting(False, help="also the Δaccuracy matrix for heads")
    head_languages: str = setting("training", help="whose top heads are deactivated", choices=HEAD_LANGUAGES)
    seed: int = setting(0, help="seed of the random-unit controls and fact samples", ge=0)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class RepresentationConfig:
    """Shared representations of parallel inputs per layer."""

    max_facts: int = setting(40, help="facts asked in every language", ge=4)
    split: str = setting("test", help="split the facts come from", choices=SPLITS)
    probe_folds: int = setting(5, help="cross-validation folds of the language-ID probe", ge=2)
    seed: int = setting(0, help="seed of the fact sample", ge=0)

    def __post_init__(self) -> None:
        check(self)


STEER_UNITS = choices("steering units", {
    "lape": "the target language's LAPE neurons (set to its mean activation, zeroed or scaled)",
    "lahis": "the target language's most important heads (scaled)",
    "diffmean": "the residual mean of the target minus the source, added with strength α",
    "shared": "that difference direction projected out of the residual stream",
})
STEER_NEURON_MODES = choices("neuron steering mode", {"mean": "set to strength × the target's mean activation",
                                                      "zero": "deactivate", "scale": "multiply by the strength"})


@dataclass
class SteerConfig:
    """Steering recall across languages at inference: units, languages, the sweep chosen on train
    facts, and the seeds (control draws and text samples) the test-fact verdict rests on."""

    units: str = setting("diffmean", help="what is steered", choices=STEER_UNITS)
    source: str = setting("en", help="the language the model knows facts in")
    target: str | None = setting(None, help="the language steered (None: the training language the base "
                                            "answers worst)")
    layers: list[list[int]] | None = setting(None, help="layer sets swept (None: each layer alone)")
    strengths: list[float] = setting(help="strengths swept (α for diffmean, the share removed for shared, the "
                                          "factor for heads and scaled neurons)",
                                     factory=lambda: [-2.0, -1.0, 0.5, 1.0, 2.0])
    neuron_mode: str = setting("mean", help="lape units: how the neurons are steered", choices=STEER_NEURON_MODES)
    seeds: int = setting(8, help="control draws and text samples of the verdict (8: the fewest at which the exact "
                                 "test passes Holm over 4 tests)", ge=2, le=20)
    max_facts: int | None = setting(None, help="facts per split (None: all; the sweep reads train facts)", ge=1)
    max_texts: int = setting(60, help="texts per language the units are built from", ge=2)
    generate: bool = setting(False, help="also the right-fact-wrong-language rate of greedy answers (slower)")
    arm_facts: int | None = setting(60, help="test facts (every language) the steered base answers at each seed "
                                              "as a training-free arm of the seed table (0: no arm; None: all)", ge=0)
    checkpoints: str = setting("base", help="what the run's steer stage steers: 'base', or 'arms' (the base and "
                                            "the first seed's arms: does training change the response?)",
                               choices=choices("steer checkpoints", {"base": "the base", "arms": "base and arms"}))

    def __post_init__(self) -> None:
        check(self)
