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

from polyfact.errors import PolyFactError
from polyfact.io import atomic_write_text
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
