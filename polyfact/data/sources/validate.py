"""The importers' one validation module: every local release is read faithfully or refused in one
line naming the file, the row and the problem (the caller exits 2 and writes nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyfact.core.errors import PolyFactError


def language_folder(path: Path) -> str:
    """A release's language folder name, which must be a language code CLDR knows (``zz/`` is not)."""
    from babel import Locale, UnknownLocaleError

    code = path.name
    try:
        Locale.parse(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise PolyFactError(f"{path} is not a language folder ({code!r} is no language code CLDR knows); move it "
                            "out of the release or rename it to its code") from None
    return code


def answer_index(value: Any, n: int, where: str) -> int:
    """A gold option index: an integer (not 1.7, not "abc", not true) within the ``n`` options."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise PolyFactError(f"{where}: answer_index must be an integer, got {value!r}")
    idx = int(value)
    if not 0 <= idx < n:
        raise PolyFactError(f"{where}: answer_index {idx} is outside the {n} options")
    return idx


def options(values: list[str], where: str) -> list[str]:
    """A question's options: at least two, none blank, no two the same (else no answer is told apart)."""
    if len(values) < 2 or any(not str(v).strip() for v in values):
        raise PolyFactError(f"{where}: a question needs two or more non-blank options, got {values!r}")
    if len({str(v).strip() for v in values}) < len(values):
        raise PolyFactError(f"{where}: two options are the same ({values!r}); the answer cannot be told apart")
    return values


def unique(key: tuple, seen: dict[tuple, str], where: str) -> None:
    """Refuse a second row of the same fact in the same language (the two would be merged into one
    fact whose languages disagree)."""
    if key in seen:
        raise PolyFactError(f"{where} repeats {key[0]!r} in {key[1]!r} (first at {seen[key]}); each fact appears "
                            "once per language: remove the duplicate")
    seen[key] = where


def template(text: str, placeholders: tuple[str, ...], where: str) -> str:
    """A prompt template that holds every placeholder it will be filled through."""
    missing = [p for p in placeholders if p not in text]
    if missing:
        raise PolyFactError(f"{where}: template {text[:60]!r} lacks {', '.join(missing)}; the prompt would be empty")
    return text


def utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 text (a latin-1 export, say), naming the first bad byte."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PolyFactError(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None
