"""Named choices: one registry per kind of thing a user picks by name (training methods, hook
backends, dataset sources, text sources, analyses, and small fixed vocabularies such as loss
types). Each entry declares its name, a one-line help and, lazily, the function behind it, so the
command line's choices and help, ``--set`` validation and every "unknown X; use one of …" error
come from one place (TransformerLens' declarative adapters are the model: data, not if-chains).

An entry's ``target`` is a ``"module:attribute"`` path imported on first use, so listing names
(``polyfact --help``, config validation) never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

from polyfact.core.errors import PolyFactError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered name: its help line, what it runs (``module:attribute``, or None for a plain
    choice), the config section it reads, and any other declared properties."""

    name: str
    help: str
    target: str | None = None
    section: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The registered object (imported on first use)."""
        if self.target is None:
            raise PolyFactError(f"{self.name!r} is a plain choice with nothing to run")
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def __getitem__(self, key: str) -> Any:
        return self.extra[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)


class Registry(Generic[T]):
    """Ordered names of one kind (``kind`` appears in errors: "unknown hook backend 'x'")."""

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint  # appended to the unknown-name error, e.g. "(chain them with +)"
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, help: str, target: str | None = None, *, section: str | None = None,
            **extra: Any) -> Entry:
        """Register ``name`` (a second registration of the same name is a programming error)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        entry = Entry(name, help, target, section, dict(extra))
        self._entries[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def get(self, name: str, setting: str | None = None) -> Entry:
        """The entry named ``name``; a one-line error listing the valid names otherwise
        (``setting``: the dotted config key or flag the name came from)."""
        self.check(name, setting)
        return self._entries[name]

    def check(self, name: Any, setting: str | None = None) -> str:
        """``name`` when it is registered, else the one-line "unknown …; use one of …" error."""
        if not isinstance(name, str) or name not in self._entries:
            where = f"{setting}: " if setting else ""
            hint = f" {self.hint}" if self.hint else ""
            raise PolyFactError(f"{where}unknown {self.kind} {name!r}; use one of: {self.choices(', ')}{hint}")
        return name

    def choices(self, sep: str = " | ") -> str:
        """The names joined for help text and errors."""
        return sep.join(self._entries)

    def help_text(self) -> str:
        """``name: help`` lines, for ``--help``."""
        return "; ".join(f"{e.name}: {e.help}" for e in self._entries.values())

    def load(self, name: str, setting: str | None = None) -> Any:
        return self.get(name, setting).load()


def choices(kind: str, names: dict[str, str], hint: str = "") -> Registry:
    """A registry of plain choices (no function): ``{name: help}``."""
    reg: Registry = Registry(kind, hint)
    for name, help in names.items():
        reg.add(name, help)
    return reg
