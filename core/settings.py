"""Configs that document and check themselves, as TRL's do: every field of a config dataclass is
declared with :func:`setting` — its default, one line of help, and its rule (a range, a set of
choices, finiteness for floats) — next to the field. :func:`check` applies the rules of one
config, :func:`check_tree` of a nested one (errors name the dotted key), and :func:`describe`
lists every key with its value and help (``polyfact run --dry-run --json``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Callable, Iterable

from polyfact.core.errors import PolyFactError
from polyfact.core.registry import Registry


def short(value: Any) -> str:
    """A value as an error may show it: bounded, however large (or YAML-alias-expanded) it is."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = 60
    r.maxlist = r.maxdict = r.maxtuple = r.maxset = 4
    r.maxlevel = 2
    return r.repr(value)


class SettingError(PolyFactError):
    """A setting outside its rule; ``key`` is the field name (dotted once a parent adds its prefix)."""

    def __init__(self, key: str, value: Any, rule: str) -> None:
        self.key, self.value, self.rule = key, value, rule
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.key} {self.rule}, got {short(self.value)}; fix it with --set {self.key}=..."

    def under(self, prefix: str) -> "SettingError":
        """The same error with ``prefix.`` before the key."""
        return SettingError(f"{prefix}.{self.key}" if prefix else self.key, self.value, self.rule)


def setting(default: Any = MISSING, *, help: str, factory: Callable[[], Any] | None = None,
            choices: Registry | Iterable[str] | Callable[[], Iterable[str]] | None = None,
            ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
            check: Callable[[Any], str | None] | None = None, fingerprint: bool = True) -> Any:
    """A dataclass field with help text and its rule. ``choices``: a registry, names, or a function
    returning names (for registries of higher layers); ``ge``/``gt``/``le``/``lt``: bounds of a
    number; ``check``: any other rule, returning what the value must be, or None when it is fine.
    Floats must be finite. ``None`` passes where the field's type allows it. ``fingerprint=False``:
    the setting does not change what a step computes (how often states are saved or logged), so
    fingerprints leave it out."""
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "check": check,
            "fingerprint": fingerprint}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _bounds(meta: dict) -> str:
    lo = (f"at least {meta['ge']:g}" if meta["ge"] is not None else
          f"more than {meta['gt']:g}" if meta["gt"] is not None else "")
    hi = (f"at most {meta['le']:g}" if meta["le"] is not None else
          f"less than {meta['lt']:g}" if meta["lt"] is not None else "")
    return " and ".join(x for x in (lo, hi) if x)


def _number_rule(value: Any, meta: dict) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    bad = ((meta["ge"] is not None and value < meta["ge"]) or (meta["gt"] is not None and value <= meta["gt"])
           or (meta["le"] is not None and value > meta["le"]) or (meta["lt"] is not None and value >= meta["lt"]))
    return f"must be {_bounds(meta)}" if bad else None


def _values(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def check(obj: Any) -> Any:
    """Apply the rules of ``obj``'s own fields (not nested configs'); returns ``obj``."""
    for f in fields(obj):
        meta = f.metadata
        value = getattr(obj, f.name)
        if value is None or is_dataclass(value) or "help" not in meta:
            continue
        for item in _values(value):
            if item is None or is_dataclass(item):
                continue
            rule = _number_rule(item, meta)
            if rule is None and meta["choices"] is not None and isinstance(item, str):
                names = meta["choices"]
                if isinstance(names, Registry):
                    names.check(item, f.name)
                    continue
                allowed = list(names() if callable(names) else names)
                if item not in allowed:
                    rule = f"must be one of: {', '.join(allowed)}"
            if rule is None and meta["check"] is not None:
                need = meta["check"](item)
                rule = f"must be {need}" if need else None
            if rule:
                raise SettingError(f.name, item, rule)
    return obj


def check_tree(obj: Any, prefix: str = "") -> Any:
    """:func:`check` on ``obj`` and every nested config, errors naming the dotted key."""
    try:
        check(obj)
    except SettingError as err:
        raise err.under(prefix) from None
    except PolyFactError as err:
        raise PolyFactError(f"{prefix}.{err}" if prefix and str(err)[:1].islower() else str(err)) from None
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            check_tree(value, f"{prefix}.{f.name}" if prefix else f.name)
    return obj


def describe(obj: Any, prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{dotted key: {"value": ..., "help": ...}}`` of every setting of a (nested) config."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out.update(describe(value, key))
        else:
            rule = _bounds(f.metadata) if "help" in f.metadata else ""
            choices = f.metadata.get("choices") if "help" in f.metadata else None
            if isinstance(choices, Registry):
                rule = "one of " + choices.choices(", ")
            elif choices is not None:
                rule = "one of " + ", ".join(choices() if callable(choices) else choices)
            out[key] = {"value": value, "help": f.metadata.get("help", ""), **({"rule": rule} if rule else {})}
    return out


def undocumented(cls: type) -> list[str]:
    """Fields of config class ``cls`` (and its nested config classes) that carry no help text."""
    import typing

    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if not f.metadata.get("help"):
            out.append(f"{cls.__name__}.{f.name}")
        tp = hints[f.name]
        for arg in (tp, *typing.get_args(tp)):
            if is_dataclass(arg):
                out.extend(undocumented(arg))
    return out
