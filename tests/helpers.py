"""What many tests share: the command line run in-process (no interpreter start per probe), the
one-line-error check, and digests of a run's result files."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from polyfact.core.io import file_digest


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: object) -> Result:
    """``polyfact ARGS`` in this process, as a user runs it: exit status, stdout and stderr."""
    from polyfact.pipeline.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as ex:
            code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


_PROGRESS = re.compile(r"\[\d\d:\d\d|it/s\]|lines/s\]|s/it\]")  # progress bars share stderr


def one_line_error(r: Result, needle: str, code: int = 2) -> None:
    """Non-zero exit, one line on stderr containing ``needle``, no traceback."""
    lines = [x for x in r.stderr.strip().splitlines()
             if x.strip() and "Warning" not in x and "warnings.warn" not in x and not _PROGRESS.search(x)]
    assert r.returncode == code, (r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr[-1500:]
    assert len(lines) == 1 and needle in lines[0], r.stderr[-1500:]


def metric_files(run_dir: Path) -> dict[str, str]:
    """Digest of every result file (metrics, records, statistics) of a run."""
    return {str(p.relative_to(run_dir)): file_digest(p) for p in sorted((run_dir / "results").rglob("*"))
            if p.is_file()}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes below ``root`` (state and logs aside)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".polyfact" not in p.parts and "logs" not in p.parts}


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a run directory (probes may damage or rerun it)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run.lock", "run.pid"))
    return dst


def resolve_name(name: str, doc: str) -> object:
    """The object a doc's dotted name points at: the longest importable module prefix, then
    attributes (an AssertionError naming ``doc`` when any part is missing)."""
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"{doc} names {name}: {attr} does not exist"
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"{doc} names {name}, whose module does not exist")
