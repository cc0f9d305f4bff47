"""The run's typed configuration: dataclasses, YAML files, ``--set key=value`` overrides and
presets. Unknown keys and values of the wrong type are rejected with the key's dotted name; every
setting's rule and help text sit next to its field (``polyfact.core.settings``), so ``polyfact run
--dry-run --json`` prints each value with what it means."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from polyfact.analyses.config import (AblationConfig, EvalConfig, RepresentationConfig, RoutingConfig,
                                      SpecializationConfig, SteerConfig)
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text
from polyfact.core.settings import SettingError, check, check_tree, describe, setting, short
from polyfact.data.make import IMPORTS, SOURCES
from polyfact.training.config import BudgetConfig

CONFIG_VERSION = 1


@dataclass
class DataConfig:
    """How the run's dataset is made: a source (or an import of a local release) and filters."""

    source: str = setting("cldr", help="where facts come from", choices=SOURCES)
    langs: str | None = setting(None, help="language codes or groups (all, polyfact, heldout); None: all 22")
    relations: str | None = setting(None, help="Wikidata property ids, e.g. P36,P38; None: all of the source's")
    max_per_relation: int | None = setting(100, help="cap on facts per relation (None: no cap)", ge=1)
    split_fracs: list[float] | None = setting(None, help="train, validation, test shares of facts (None: the "
                                                         "source's default)", ge=0, le=1)
    dump: str | None = setting(None, help="wikidata-dump: the local dump file")
    import_kind: str | None = setting(None, help="the format of import_path (None: polyfact, the released "
                                                 "PolyFact format)", choices=IMPORTS)
    import_path: str | None = setting(None, help="a local release directory: imported instead of building from "
                                                 "the source when given")

    def __post_init__(self) -> None:
        check(self)


@dataclass
class TrajectoryConfig:
    """How specialization moves during training: intermediate states kept per arm."""

    points: int = setting(0, help="evenly spaced intermediate states every trained arm keeps (checkpoints "
                                  "<arm>/step-<n>), analyzed by polyfact analyze trajectory", ge=0, le=100)

    def __post_init__(self) -> None:
        check(self)


@dataclass
class RunSettings:
    """Everything a run does but train: the run config's own sections. ``model`` names a Hugging
    Face model (hub id or directory) to start from instead of pretraining the toy world's tiny model.
    The run config (``RunConfig``) is these settings with each training method's section, declared
    once on the method registry (``polyfact.training.methods.SECTIONS``), after ``trajectory``."""

    version: int = setting(CONFIG_VERSION, help="config format version")
    preset: str = setting("default", help="the preset these settings started from")
    seed: int = setting(0, help="seed of the data, the base and the analyses (and training, with one seed)", ge=0)
    seeds: list[int] | None = setting(None, help="several training seeds: every method once per seed (ids "
                                                 "<method>@s<seed>)", ge=0)
    model: str | None = setting(None, help="a Hugging Face model (hub id or directory) as the base; None: the toy "
                                           "world's tiny model")
    methods: list[str] = setting(help="fine-tuning arms, in order (chain with +, e.g. cpt+grpo)",
                                 factory=lambda: ["cpt", "sft", "grpo", "cpt+grpo"])
    data: DataConfig = setting(help="the dataset", factory=DataConfig)
    budget: BudgetConfig = setting(help="the train facts every arm learns from, and its learning curve",
                                   factory=BudgetConfig)
    trajectory: TrajectoryConfig = setting(help="intermediate states of each arm's training", factory=TrajectoryConfig)
    eval: EvalConfig = setting(help="behavioral evaluation", factory=EvalConfig)
    analysis: SpecializationConfig = setting(help="neuron and head specialization", factory=SpecializationConfig)
    routing: RoutingConfig = setting(help="before/after comparisons", factory=RoutingConfig)
    ablate: AblationConfig = setting(help="causal deactivation", factory=AblationConfig)
    representations: RepresentationConfig = setting(help="shared representations", factory=RepresentationConfig)
    steer: SteerConfig = setting(help="steering recall across languages at inference", factory=SteerConfig)


_SECTIONS_AFTER = "trajectory"  # where the methods' sections sit in the config (and its YAML)
_classes: dict[tuple, type] = {}


def run_config_class() -> type:
    """The run config's class: :class:`RunSettings` with one section per declared training-method
    settings section (``polyfact.training.methods.SECTIONS``: built-ins and plugins), built once per
    set of sections. ``RunConfig`` (this module's attribute) is the same class."""
    from polyfact.training.methods import method_sections

    sections = method_sections()
    key = tuple((name, cls) for name, _, cls in sections)
    if key not in _classes:
        own = {f.name for f in fields(RunSettings)}
        for name, _, _ in sections:
            if name in own:
                raise PolyFactError(f"settings section {name!r} is a name the run config already uses; declare it "
                                    "under another name (SECTIONS.add)")
        specs: list[tuple[str, Any, Any]] = []
        for f in fields(RunSettings):
            specs.append((f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                                            metadata=f.metadata)))
            if f.name == _SECTIONS_AFTER:
                specs += [(name, cls, setting(help=help, factory=cls)) for name, help, cls in sections]
        cls = dataclasses.make_dataclass("RunConfig", specs, namespace={"__module__": __name__})
        cls.__doc__ = ("Everything a run does: the run's own settings (:class:`RunSettings`) and each training "
                       "method's section (" + ", ".join(name for name, _, _ in sections) + ").")
        _classes[key] = cls
    return _classes[key]


def __getattr__(name: str) -> Any:
    if name == "RunConfig":  # generated: the methods' sections come from their registry (plugins included)
        return run_config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if typing.TYPE_CHECKING:  # for type checkers only; at run time the class is generated
    RunConfig = Any


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
            raise PolyFactError(f"{key}: expected a mapping of settings, got {short(value)}")
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PolyFactError(f"{key}: expected a list, got {short(value)}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise PolyFactError(f"{key}: expected a mapping, got {short(value)}")
        _, vt = typing.get_args(tp) or (Any, Any)
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise PolyFactError(f"{key}: expected true or false, got {short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise PolyFactError(f"{key}: expected an integer, got {short(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise PolyFactError(f"{key}: expected a number, got {short(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise PolyFactError(f"{key}: expected text, got {short(value)}")
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
    except SettingError as err:
        raise err.under(prefix) from None
    except PolyFactError as err:
        raise PolyFactError(f"{prefix}.{err}" if prefix and str(err)[:1].islower() and ":" in str(err)[:60]
                            else f"{prefix or 'config'}: {err}") from None


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
        if raw.strip() == "":
            raise PolyFactError(f"--set {key}= has no value (an unset shell variable?); give one, or null to mean "
                                f"none explicitly (--set {key}=null)")
        try:
            value = yaml.safe_load(raw)
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


class _RepeatedKey(ValueError):
    pass


class _UniqueKeys(yaml.SafeLoader):
    """YAML whose mappings may not repeat a key (the last would silently win)."""

    def construct_mapping(self, node, deep=False):  # noqa: D102
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _RepeatedKey(f"line {key_node.start_mark.line + 1} repeats the key {str(key)[:60]!r}; keep one")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping from a file (one-line errors for missing, unreadable or malformed files and
    repeated keys)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolyFactError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise PolyFactError(f"--config {path} is a directory; pass a YAML file of settings") from None
    except UnicodeDecodeError:
        raise PolyFactError(f"--config {path} is not UTF-8 text; pass a YAML file of settings") from None
    except OSError as err:
        raise PolyFactError(f"cannot read --config {path}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeys) or {}
    except _RepeatedKey as err:
        raise PolyFactError(f"{path} {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise PolyFactError(f"bad YAML in {path}{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise PolyFactError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def resolve(preset: str | None = None, config_file: str | Path | None = None, sets: list[str] | None = None,
            base: dict | None = None, overrides: dict | None = None) -> RunConfig:
    """Preset (or ``base``, e.g. a run's saved config) < config file < ``--set`` < a command's flag
    ``overrides`` (nested, typed)."""
    from polyfact.pipeline.presets import preset_dict

    data = base if base is not None else preset_dict(preset or "default")
    if base is not None and preset:
        data = merge(data, preset_dict(preset))
    if config_file:
        data = merge(data, load_yaml(config_file))
    if sets:
        data = merge(data, parse_set(sets))
    if overrides:
        data = merge(data, overrides)
    version = data.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise PolyFactError(f"config version {version} is not supported by this polyfact (expects {CONFIG_VERSION}); "
                            "start a new run directory")
    return from_dict(run_config_class(), data)


def save(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


# ------------------------------------------------------------------------------------ validation
def validate(cfg: RunConfig) -> RunConfig:
    """Every setting's rule (ranges, choices, finite numbers; next to its field), and the run's
    method list: checked before anything runs (``--dry-run`` included), errors naming the dotted key."""
    from polyfact.training.methods import METHODS, fine_tuning_methods

    check_tree(cfg)
    known = fine_tuning_methods()
    seen: list[str] = []
    for spec in cfg.methods:
        parts = spec.split("+")
        for m in parts:
            if m not in known:
                raise PolyFactError(f"methods: unknown {METHODS.kind} {m!r} in {spec!r}; use one of: "
                                    f"{', '.join(known)} {METHODS.hint}")
        parent = "+".join(parts[:-1])
        if parent and parent not in seen:
            raise PolyFactError(f"methods: {spec!r} starts from {parent!r}, which must be listed before it")
        seen.append(spec)
    if len(set(cfg.methods)) != len(cfg.methods):
        raise PolyFactError(f"methods: {cfg.methods} lists a method twice")
    if cfg.seeds is not None and (not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds)):
        raise PolyFactError(f"seeds must be distinct non-negative integers, e.g. --seeds 0,1,2; got {cfg.seeds}")
    for key, seed in [("seed", cfg.seed), *(("seeds", s) for s in cfg.seeds or [])]:
        if seed >= 2 ** 32:
            raise PolyFactError(f"{key}: {seed} is outside the random generators' range (0 to 2**32 - 1)")
    if cfg.budget.trajectory_points:
        raise PolyFactError("budget.trajectory_points is set from trajectory.points; use --set trajectory.points=N")
    _check_sampling_ceiling(cfg)
    return cfg


GENERATED_TOKENS_CEILING = 1 << 22  # tokens one training step may sample (4.2M: ~40 GB of a 7B model's KV cache)


def _check_sampling_ceiling(cfg: RunConfig) -> None:
    """Settings whose product bounds memory: the tokens one GRPO step or CM-Align's sampling asks
    for at once (facts x rollouts x languages x new tokens), against a stated ceiling."""
    langs = 12
    for key, product, parts in (
        ("grpo.num_generations", cfg.grpo.facts_per_step * cfg.grpo.num_generations * langs * cfg.grpo.max_new_tokens,
         "grpo.facts_per_step x num_generations x 12 languages x max_new_tokens"),
        ("cm_align.candidates", 32 * cfg.cm_align.candidates * cfg.cm_align.max_new_tokens,
         "32 prompts per batch x cm_align.candidates x max_new_tokens"),
    ):
        if product > GENERATED_TOKENS_CEILING:
            raise PolyFactError(f"{key}: {parts} = {product:,} tokens sampled at once, above the ceiling "
                                f"{GENERATED_TOKENS_CEILING:,}; lower {key} (or the other factors)")


def settings_table(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Every setting's dotted key with its value and help (``polyfact run --dry-run --json``)."""
    return describe(cfg)
