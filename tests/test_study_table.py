"""docs/STUDY.md names the toolkit function behind every rule it takes from the study: each must
exist (a renamed or removed function fails here, so the table stays true)."""

from __future__ import annotations

import importlib
import re

from tests.conftest import ROOT


def test_every_toolkit_function_in_the_study_table_exists():
    text = (ROOT / "docs" / "STUDY.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`((?:core|polyfact|training|interp|analyses|figures|pipeline)\.[A-Za-z_.]+)", text))
    assert len(names) >= 30, sorted(names)
    for name in sorted(names):
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):  # the longest importable module prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for attr in parts[i:]:
                assert hasattr(obj, attr), f"docs/STUDY.md names {name}, which does not exist"
                obj = getattr(obj, attr)
            break
        else:
            raise AssertionError(f"docs/STUDY.md names {name}, whose module does not exist")
