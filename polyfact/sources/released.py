"""Importer of the released PolyFact format from a local directory.

Layout: one folder per language (a config), with one file per split (``train``,
``validation``/``dev``, ``test``) as JSONL, JSON, Parquet or CSV. Rows carry ``question``,
``options`` (a list, a ``{"A": …}`` mapping, or columns ``A``–``D``), ``answer_index`` (or a
letter ``answer``) and ``fact_id`` ``Q…|P…|Q…``. Optional: ``subject``, ``object``, ``relation``.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from core.errors import PolyFactError
from polyfact.facts import Fact

LICENSE = "PolyFact release (facts from Wikidata, CC0 1.0), as released by its authors"
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
                "test": "test"}
LETTERS = "ABCDEFGHIJ"


def _options(row: dict) -> list[str]:
    opts = row.get("options")
    if isinstance(opts, dict):
        return [opts[k] for k in sorted(opts) if opts[k] is not None]
    if isinstance(opts, list):
        return [str(o) for o in opts]
    letters = [k for k in LETTERS if row.get(k) is not None]
    if letters:
        return [str(row[k]) for k in letters]
    raise PolyFactError("row has no options (expected 'options' or columns A-D)")


def _answer_index(row: dict, n: int) -> int:
    if row.get("answer_index") is not None:
        idx = int(row["answer_index"])
    elif isinstance(row.get("answer"), str) and row["answer"].strip().upper() in LETTERS[:n]:
        idx = LETTERS.index(row["answer"].strip().upper())
    else:
        raise PolyFactError("row has no answer_index or answer letter")
    if not 0 <= idx < n:
        raise PolyFactError(f"answer_index {idx} outside the {n} options")
    return idx


def released_facts(src: str | Path) -> list[Fact]:
    """Facts of a released-format directory; each keeps its options and its released split."""
    src = Path(src)
    lang_dirs = sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
    if not lang_dirs:
        raise PolyFactError(f"no language folders under {src}; expected <dir>/<lang>/<split>.jsonl")
    facts: dict[str, Fact] = {}
    for lang_dir in lang_dirs:
        lang = lang_dir.name
        for path in sorted(lang_dir.iterdir()):
            split = _SPLIT_NAMES.get(path.stem.split("-")[0])
            if path.suffix not in _BUILDERS or split is None:
                continue
            try:
                ds = datasets.load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train")
            except Exception as err:
                raise PolyFactError(f"cannot read {path}: {err.__class__.__name__}: {err}") from None
            for i, row in enumerate(ds):
                try:
                    fid = str(row["fact_id"])
                    options = _options(row)
                    idx = _answer_index(row, len(options))
                except (KeyError, PolyFactError) as err:
                    raise PolyFactError(f"{path} row {i}: {err}; fix the file or re-export it") from None
                parts = fid.split("|")
                pid = str(row.get("relation") or (parts[1] if len(parts) == 3 else "unknown"))
                sid, oid = (parts[0], parts[2]) if len(parts) == 3 else (f"{fid}:s", f"{fid}:o")
                f = facts.setdefault(fid, Fact(fid, pid, sid, oid, {}, {}, split=split))
                f.subject[lang] = str(row.get("subject") or "")
                f.object[lang] = str(row.get("object") or options[idx])
                f.options[lang], f.answer_index[lang] = options, idx
                f.questions[lang] = str(row["question"])
    if not facts:
        raise PolyFactError(f"no rows found under {src}; expected <lang>/<split>.jsonl files")
    return list(facts.values())
