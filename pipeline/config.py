"""The run's typed configuration: dataclasses, YAML files, ``--set key=value`` overrides and
presets. Unknown keys and values of the wrong type are rejected with the key's dotted name."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import PolyFactError
from core.io import atomic_write_text
from analyses.ablate import AblationConfig
from analyses.representations import RepresentationConfig
from analyses.routing import RoutingConfig
from analyses.specialization import SpecializationConfig
from training.grpo import GrpoConfig
from training.pretrain import CptConfig, PretrainConfig
from training.sft import SftConfig

CONFIG_VERSION = 1


@dataclass
class DataConfig:
    """How the run's dataset is made: a source (or an import of a local release) and filters."""

    source: str = "cldr"
    langs: str | None = None
    relations: str | None = None
    max_per_relation: int | None = 100
    split_fracs: list[float] | None = None
    dump: str | None = None
    import_kind: str | None = None
    import_path: str | None = None


@dataclass
class EvalConfig:
    """Behavioral evaluation of every checkpoint."""

    split: str = "test"
    mode: str = "mcq"
    normalization: str = "byte"
    prompt: str = "cue"  # MCQ prompt: the row's question and answer cue, or the study's "Question: …\nAnswer:"
    match: str = "study"  # free-form answers: the study's matcher (or lenient, exact)
    max_facts: int | None = None
    bootstrap: int = 1000
    klar_path: str | None = None


@dataclass
class RunConfig:
    """Everything a run does. ``model`` names a Hugging Face model (hub id or directory) to start
    from instead of pretraining the toy world's tiny model."""

    version: int = CONFIG_VERSION
    preset: str = "default"
    seed: int = 0
    seeds: list[int] | None = None  # several training seeds: every method once per seed (ids <method>@s<seed>)
    model: str | None = None
    methods: list[str] = field(default_factory=lambda: ["cpt", "sft", "grpo", "cpt+grpo"])
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    cpt: CptConfig = field(default_factory=CptConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    analysis: SpecializationConfig = field(default_factory=SpecializationConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    ablate: AblationConfig = field(default_factory=AblationConfig)
    representations: RepresentationConfig = field(default_factory=RepresentationConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp`` (dataclasses, Optional, lists, dicts, tuples, scalars)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except PolyFactError as err:
                errors.append(str(err))
        raise PolyFactError(errors[0] if errors else f"{key}: bad value {value!r}")
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise PolyFactError(f"{key}: expected a mapping of settings, got {value!r}")
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PolyFactError(f"{key}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise PolyFactError(f"{key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp) or (Any, Any)
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise PolyFactError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise PolyFactError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise PolyFactError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise PolyFactError(f"{key}: expected text, got {value!r}")
    return value


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys are errors naming the key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise PolyFactError(f"unknown config key {key!r}; known keys here: {', '.join(sorted(names))}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except PolyFactError as err:
        raise PolyFactError(f"{prefix or 'config'}: {err}") from None


def to_dict(cfg: Any) -> Any:
    """Plain data (for YAML) of a config."""
    return dataclasses.asdict(cfg) if is_dataclass(cfg) else cfg


def merge(base: dict, override: dict) -> dict:
    """Deep merge of two nested mappings (override wins)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_set(items: list[str]) -> dict:
    """``["grpo.steps=10", "data.langs=en,de"]`` → nested mapping (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise PolyFactError(f"--set expects key=value, got {item!r} (e.g. --set grpo.steps=10)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" as text
            try:
                value = float(value)
            except ValueError:
                pass
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping from a file (one-line errors for missing or malformed files)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolyFactError(f"config file not found: {path}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise PolyFactError(f"bad YAML in {path}{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise PolyFactError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def resolve(preset: str | None = None, config_file: str | Path | None = None, sets: list[str] | None = None,
            base: dict | None = None) -> RunConfig:
    """Preset (or ``base``, e.g. a run's saved config) < config file < ``--set`` overrides."""
    from pipeline.presets import preset_dict

    data = base if base is not None else preset_dict(preset or "default")
    if base is not None and preset:
        data = merge(data, preset_dict(preset))
    if config_file:
        data = merge(data, load_yaml(config_file))
    if sets:
        data = merge(data, parse_set(sets))
    version = data.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise PolyFactError(f"config version {version} is not supported by this polyfact (expects {CONFIG_VERSION}); "
                            "start a new run directory")
    return from_dict(RunConfig, data)


def save(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


# ------------------------------------------------------------------------------------ validation
_POSITIVE_INT = {"facts_per_step", "batch_size", "max_new_tokens", "save_steps", "logging_steps", "shards",
                 "top_k_heads", "k_heads", "num_layers", "num_heads", "hidden_size", "intermediate_size",
                 "vocab_size", "max_position_embeddings", "gradient_accumulation", "r", "alpha", "probe_folds",
                 "ladder_steps", "cpt_pairs_per_fact", "head_samples"}
_OPTIONAL_POSITIVE_INT = {"steps", "max_tokens", "head_max_samples", "head_seq_len", "head_max_tokens", "max_facts", "eval_max_facts", "max_per_relation"}
_NON_NEGATIVE_INT = {"bootstrap", "permutations", "seed"}
_UNIT_OPEN = {"top_frac", "head_top_frac", "learning_rate", "lr"}  # (0, 1)
_UNIT_HALF_OPEN = {"top_p"}  # (0, 1]
_UNIT_CLOSED = {"warmup_ratio", "replay", "dropout", "weight_decay"}  # [0, 1]
_POSITIVE_FLOAT = {"temperature", "epochs", "clip_eps", "bonus_weight"}
_NON_NEGATIVE_FLOAT = {"beta", "empty_penalty", "bonus"}


def _check_value(key: str, name: str, value: Any) -> None:
    def bad(rule: str) -> PolyFactError:
        return PolyFactError(f"{key} must be {rule}, got {value!r}; fix it with --set {key}=...")

    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None and (name in _POSITIVE_INT or name in _NON_NEGATIVE_INT):
            raise bad("a number")
        return
    if name in _POSITIVE_INT and value <= 0:
        raise bad("a positive integer")
    if name in _OPTIONAL_POSITIVE_INT and value <= 0:
        raise bad("a positive integer (or null for no limit)")
    if name in _NON_NEGATIVE_INT and value < 0:
        raise bad("zero or more")
    if name in _UNIT_OPEN and not 0 < value < 1:
        raise bad("between 0 and 1 (exclusive)")
    if name in _UNIT_HALF_OPEN and not 0 < value <= 1:
        raise bad("in (0, 1]")
    if name in _UNIT_CLOSED and not 0 <= value <= 1:
        raise bad("in [0, 1]")
    if name in _POSITIVE_FLOAT and value <= 0:
        raise bad("positive")
    if name in _NON_NEGATIVE_FLOAT and value < 0:
        raise bad("zero or more")
    if name == "max_steps" and value != -1 and value <= 0:
        raise bad("positive (or -1: as many as the epochs give)")
    if name == "num_generations" and value < 2:
        raise bad("at least 2 (advantages compare rollouts)")
    if name == "seq_len" and value < 2:
        raise bad("at least 2")


def _walk(obj: Any, prefix: str = "") -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            _walk(value, key + ".")
        elif isinstance(value, dict):
            for k, v in value.items():
                _check_value(f"{key}.{k}", f.name, v) if not isinstance(v, dict) else None
        else:
            _check_value(key, f.name, value)


def validate(cfg: RunConfig) -> RunConfig:
    """Every count positive, every rate in range, every method and option name known: checked
    before anything runs (``--dry-run`` included), with the key's dotted name in the error."""
    from training.methods import METHODS

    from polyfact.make import SOURCES

    _walk(cfg)
    if cfg.data.source not in SOURCES:
        raise PolyFactError(f"unknown data source {cfg.data.source!r}; use one of: {', '.join(SOURCES)}")
    if cfg.data.import_kind is not None and cfg.data.import_kind not in ("klar", "polyfact"):
        raise PolyFactError(f"data.import_kind must be klar or polyfact, got {cfg.data.import_kind!r}")
    known = [m for m in METHODS if m != "pretrain"]
    seen: list[str] = []
    for spec in cfg.methods:
        parts = spec.split("+")
        for m in parts:
            if m not in known:
                raise PolyFactError(f"methods: unknown method {m!r} in {spec!r}; use one of: {', '.join(known)} "
                                    "(chain them with +, e.g. cpt+grpo)")
        parent = "+".join(parts[:-1])
        if parent and parent not in seen:
            raise PolyFactError(f"methods: {spec!r} starts from {parent!r}, which must be listed before it")
        seen.append(spec)
    if len(set(cfg.methods)) != len(cfg.methods):
        raise PolyFactError(f"methods: {cfg.methods} lists a method twice")
    if cfg.seeds is not None:
        if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds) or any(s < 0 for s in cfg.seeds):
            raise PolyFactError(f"seeds must be distinct non-negative integers, e.g. --seeds 0,1,2; got {cfg.seeds}")
    return cfg
