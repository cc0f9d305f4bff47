"""Atomic file and directory writes, the reader of cached files, and content fingerprints, shared
by every layer.

Outputs are never left half-written: files go to a temporary sibling and are renamed into
place; directories are built beside the target and swapped in only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from polyfact.core.errors import PolyFactError


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace variation: the input of every fingerprint."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def fingerprint(obj: Any, length: int = 16) -> str:
    """Short sha256 hex digest of ``obj``'s canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def dir_digest(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 over the relative paths and bytes of every file below ``path``."""
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        h.update(file_digest(p, 64).encode())
    return h.hexdigest()[:length]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _writable_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PolyFactError(f"cannot create {folder}: {err.strerror}; choose a writable location") from None
    if not os.access(folder, os.W_OK):
        raise PolyFactError(f"cannot write to {folder} (read-only); choose a writable location")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename
    (permissions follow the process umask, like a plain ``open``). A file that already holds
    exactly these bytes is left untouched, so rerunning a step changes nothing on disk."""
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:
        pass
    _writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".pf-", suffix=".tmp", dir=path.parent)  # short: any valid name fits
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Pretty, key-sorted UTF-8 JSON, written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def read_cached(path: str | os.PathLike) -> Any | None:
    """The one reader of files this toolkit wrote and may rewrite (results, markers, manifests,
    sidecars; JSON, or YAML by suffix): their content, or None when missing, unreadable or
    corrupt, which callers treat as stale (the step reruns) rather than as an error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception:  # noqa: BLE001 - any parse failure means "not a usable cache"
        return None


MAX_INPUT_BYTES = 4 << 30  # a user's input file larger than this is refused (4 GiB)


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` when it is a regular file of a sane size: a missing file, a folder, a FIFO or device
    (reading one would hang or never end) and a file over :data:`MAX_INPUT_BYTES` are one-line errors."""
    p = Path(path)
    if not p.exists():
        raise PolyFactError(f"{what} not found: {p}")
    if p.is_dir():
        raise PolyFactError(f"{what} {p} is a folder; pass a file")
    if not p.is_file():
        raise PolyFactError(f"{what} {p} is not a regular file (a pipe, socket or device); pass a file")
    if p.stat().st_size > MAX_INPUT_BYTES:
        raise PolyFactError(f"{what} {p} is {p.stat().st_size:,} bytes, over the {MAX_INPUT_BYTES:,}-byte limit")
    return p


def read_json(path: str | os.PathLike, what: str = "file", fix: str = "regenerate it") -> Any:
    """Read a user's JSON input with a one-line error naming the file (and ``fix``) when it is
    missing, not a regular file, too large, corrupt or nested beyond Python's recursion limit."""
    regular_file(path, what)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PolyFactError(f"{what} {path} is not valid JSON ({err}); {fix}") from None
    except RecursionError:
        raise PolyFactError(f"{what} {path} is nested too deeply to read; {fix}") from None


def check_apart(inputs: list[str | os.PathLike | None], out: str | os.PathLike, what: str = "output") -> None:
    """Refuse an output directory that is, contains or lies inside one of the ``inputs`` (writing it
    would replace or mix with what it reads)."""
    target = Path(out).expanduser().resolve()
    for inp in inputs:
        if inp is None:
            continue
        source = Path(inp).expanduser().resolve()
        if target == source or target in source.parents or source in target.parents:
            raise PolyFactError(f"{what} {out} is, contains or lies inside the input {inp}; write it somewhere else")


OUTPUT_MARKER = ".polyfact-output.json"  # what a command wrote into an output folder (its --force replaces only that)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, force: bool = False, made_by: str | None = None,
               written_before: Any = None) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``target`` in one rename.

    An existing ``target`` is refused unless ``force``; with ``made_by`` (the command's name), force
    replaces only a folder this command wrote (its :data:`OUTPUT_MARKER` lists the files) and refuses
    one that holds anything else (``written_before(target)``: True for a folder the command wrote
    before markers existed); on failure nothing at ``target`` changes."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise PolyFactError(f"{target} is a file, not a directory; choose another output path")
    if target.exists() and not force:
        raise PolyFactError(f"{target} already exists; pass --force to replace it")
    if target.exists() and made_by is not None and any(target.iterdir()):
        marker = read_cached(target / OUTPUT_MARKER)
        ours = set(marker.get("files", [])) if isinstance(marker, dict) and marker.get("made_by") == made_by else set()
        if not ours and written_before is not None and written_before(target):
            ours = {str(p.relative_to(target)) for p in target.rglob("*") if not p.is_dir()}
        others = sorted(str(p.relative_to(target)) for p in target.rglob("*")
                        if not p.is_dir() and str(p.relative_to(target)) not in ours | {OUTPUT_MARKER})
        if not ours or others:
            shown = ", ".join(others[:3]) + (" …" if len(others) > 3 else "")
            raise PolyFactError(f"--force replaces only what 'polyfact {made_by}' wrote, and {target} holds "
                                f"{'other files: ' + shown if ours else 'files it did not write'}; choose an empty "
                                "or new folder")
    _writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=".pf-", suffix=".tmp", dir=target.parent))  # short: any valid name fits
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if made_by is not None:
            files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
            (tmp / OUTPUT_MARKER).write_text(json.dumps({"made_by": made_by, "files": files}, indent=1) + "\n",
                                            encoding="utf-8")
        if target.exists():
            old = target.with_name(f".pf-old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
