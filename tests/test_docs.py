"""Docs the tests execute: every Python block of README.md and docs/*.md runs against a copy of the
reference smoke study (``runs/default`` in the text is that run), so a doc example that breaks
fails here; and the README stays a front page (at most 150 lines, the two commands first)."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(doc, i, textwrap.dedent(code)) for doc in DOCS
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S))]


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    bash = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert "polyfact run" in bash[0] and "pytest" in bash[1]  # install-and-run, install-and-test
    assert ".venv/bin/python -m pytest -n 2" in (ROOT / ".ci" / "run").read_text() and "pytest -n 2" in bash[1]
    for name in ("docs/RESULTS.md", "docs/PERFORMANCE.md", "docs/GUIDE.md", "docs/STUDY.md", "docs/ARCHITECTURE.md"):
        assert name in text and (ROOT / name).exists()


@pytest.mark.parametrize("doc, index, code", BLOCKS, ids=[f"{d.name}-{i}" for d, i, _ in BLOCKS])
def test_every_python_block_runs(study, doc, index, code, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = code.replace('"runs/default"', repr(str(study)))
    exec(compile(code, f"{doc.name}[{index}]", "exec"), {"__name__": "__doc_block__"})
