"""docs/ARCHITECTURE.md stays true: every ``polyfact.…`` name it gives resolves to a module or an
attribute, every file or folder it names exists, and every setting it names is a setting."""

from __future__ import annotations

import dataclasses
import re

from tests.conftest import ROOT
from tests.helpers import resolve_name

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
TICKED = re.findall(r"`([^`\n]+)`", DOC)


def _resolve(name: str) -> object:
    return resolve_name(name, "docs/ARCHITECTURE.md")


def test_every_named_module_and_function_exists():
    names = {t for t in TICKED if re.fullmatch(r"polyfact(\.[A-Za-z_]\w*)+", t)}
    assert len(names) >= 20, sorted(names)
    for name in sorted(names):
        _resolve(name)


def test_every_named_file_exists():
    paths = {t for t in TICKED if re.fullmatch(r"[\w./-]+/([\w.-]+\.(py|toml|md))?", t) and not t.startswith("<")}
    assert len(paths) >= 20, sorted(paths)
    for p in sorted(paths):
        assert (ROOT / p).exists(), f"docs/ARCHITECTURE.md names {p}, which does not exist"


def test_every_named_setting_and_registry_exists():
    from polyfact.pipeline.config import RunConfig

    sections = {f.name: f for f in dataclasses.fields(RunConfig)}
    settings = {t for t in TICKED if re.fullmatch(r"[a-z_]+\.[a-z_]+", t) and t.split(".")[0] in sections}
    settings |= set(re.findall(r"\b((?:trajectory|budget|analysis|grpo|sft)\.[a-z_]+)\b", DOC))
    for s in sorted(settings):
        section, key = s.split(".")
        assert key in {f.name for f in dataclasses.fields(sections[section].default_factory())}, s
    for registry in ("METHODS", "BACKENDS", "SOURCES", "IMPORTS", "TEXT_SOURCES", "STAGES", "ADAPTERS"):
        assert registry in DOC
    assert "grpo-placebo" in _resolve("polyfact.training.methods.METHODS")
