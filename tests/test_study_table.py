"""docs/STUDY.md names the toolkit function behind every rule it takes from the study: each must
exist (a renamed or removed function fails here, so the table stays true)."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.helpers import resolve_name


def test_every_toolkit_function_in_the_study_table_exists():
    text = (ROOT / "docs" / "STUDY.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`((?:core|polyfact|training|interp|analyses|figures|pipeline)\.[A-Za-z_.]+)", text))
    assert len(names) >= 30, sorted(names)
    for name in sorted(names):
        resolve_name(name, "docs/STUDY.md")
