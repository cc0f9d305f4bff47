"""Multi-way parallel text in the TED2025 format (Zhu et al. 2025), the analyzers' natural text in
the PolyFact study: one JSON record per line, ``{"para_data": {code: text, …}, …}``.

The study's loader (``mechanistic-interpretability/src/ted_loader.py``) maps ``zh-cn`` → ``zh`` and
``pt-br`` → ``pt``, keeps segments of 20–600 characters (newlines → spaces) and, for head
importance, joins five consecutive kept segments of a language into one sample. The file is
streamed, never loaded whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from polyfact.core.errors import PolyFactError

CODE_MAP = {"zh-cn": "zh", "pt-br": "pt"}
MIN_CHARS, MAX_CHARS = 20, 600


def utf8_lines(fh, path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a file opened in binary mode, each decoded as UTF-8 (a decoding error names
    the file and the line)."""
    for i, raw in enumerate(fh, 1):
        try:
            yield i, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PolyFactError(f"{path} line {i} is not UTF-8 text; convert the file to UTF-8") from None


def iter_segments(path: str | Path, langs: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """``(lang, segment)`` in file order; malformed lines are one-line errors naming the line."""
    keep = set(langs) if langs else None
    for para in _para_data(Path(path)):
        for code, text in para.items():
            lang = CODE_MAP.get(code, code)
            if (keep is None or lang in keep) and isinstance(text, str):
                text = text.replace("\n", " ").strip()
                if MIN_CHARS <= len(text) <= MAX_CHARS:
                    yield lang, text


def _para_data(path: Path) -> Iterator[dict]:
    """Each line's ``para_data`` mapping, in file order (blank lines skipped); a line that is not
    UTF-8, not JSON or has no mapping is a one-line error naming it."""
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise PolyFactError(f"cannot read multi-way text {path}: {err.strerror}") from None
    with fh:
        for i, line in utf8_lines(fh, path):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise PolyFactError(f"{path} line {i} is not JSON ({err.msg}); expected one record per line") from None
            para = rec.get("para_data") if isinstance(rec, dict) else None
            if not isinstance(para, dict):
                raise PolyFactError(f"{path} line {i} has no 'para_data' mapping of language code to text")
            yield para


def multiway_texts(path: str | Path, langs: list[str] | None = None, join: int = 1,
                   max_chars: int | None = None) -> dict[str, list[str]]:
    """Texts per language: kept segments, ``join`` consecutive ones per text (the study joins 5
    for heads; an incomplete tail group is dropped). Reading stops once every language (of
    ``langs``, or seen so far) holds ``max_chars`` characters."""
    groups: dict[str, list[str]] = {}
    pending: dict[str, list[str]] = {}
    chars: dict[str, int] = {}
    for lang, seg in iter_segments(path, langs):
        if max_chars is not None and chars.get(lang, 0) >= max_chars:
            if langs and all(chars.get(x, 0) >= max_chars for x in langs):
                break
            continue
        pending.setdefault(lang, []).append(seg)
        if len(pending[lang]) == join:
            text = " ".join(pending.pop(lang))
            groups.setdefault(lang, []).append(text)
            chars[lang] = chars.get(lang, 0) + len(text)
    if not groups:
        raise PolyFactError(f"{path} holds no segments of 20–600 characters"
                            + (f" in {', '.join(langs)}" if langs else ""))
    return groups


def iter_records(path: str | Path, langs: list[str] | None = None) -> Iterator[dict[str, str]]:
    """``{lang: segment}`` per record in file order (codes mapped, newlines → spaces, no length
    filter): the parallel rows the study's TED CPT formats."""
    keep = set(langs) if langs else None
    for para in _para_data(Path(path)):
        row = {CODE_MAP.get(c, c): t.replace("\n", " ").strip() for c, t in para.items()
               if isinstance(t, str) and t.strip()}
        yield {lang: t for lang, t in row.items() if keep is None or lang in keep}
