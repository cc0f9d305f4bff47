"""Importer of the released PolyFact format from a local directory.

Layout: one folder per language (a config), with one file per split (``train``,
``validation``/``dev``, ``test``) as JSONL, JSON, Parquet or CSV. Rows carry ``question``,
``options`` (a list, a ``{"A": …}`` mapping, or columns ``A``–``D`` / ``option_a``–``option_d``),
``answer_index`` (or a letter ``answer``) and ``fact_id`` ``Q…|P…|Q…``. Optional: ``subject``,
``object``, ``relation``, ``option_ids`` (the options' Wikidata ids).

Options are shuffled per language, so consistency measures compare *entities*: the release's
``option_ids`` are kept; without them each language's options are aligned to the English row's
as the study does without ids (gold to gold, then equal normalized text, then a single leftover);
what stays unaligned is marked unknown and left out of answer agreement and RankC (the study
falls back to LaBSE embeddings, which cannot be downloaded here).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from polyfact.core.errors import PolyFactError
from polyfact.data.facts import Fact
from polyfact.data.sources import validate as V

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
    for pattern in ("{}", "option_{}"):
        letters = [k for k in LETTERS if row.get(pattern.format(k)) is not None
                   or row.get(pattern.format(k.lower())) is not None]
        if letters:
            return [str(row.get(pattern.format(k)) or row.get(pattern.format(k.lower()))) for k in letters]
    raise PolyFactError("row has no options (expected 'options', columns A-D or option_a-option_d)")


def _option_ids(row: dict, n: int) -> list[str] | None:
    ids = row.get("option_ids")
    if isinstance(ids, dict):
        ids = [ids[k] for k in sorted(ids)]
    if isinstance(ids, list) and len(ids) == n and all(isinstance(x, str) and x for x in ids) and len(set(ids)) == n:
        return list(ids)
    return None


def align_options(fact_id: str, options: dict[str, list[str]], gold: dict[str, int], ref: str = "en"
                  ) -> dict[str, list[str | None]]:
    """Entity ids for options that carry none: the reference language's positions are the ids;
    every other language maps gold to gold, then options with equal normalized text (one-to-one),
    then a single leftover to the single free id; anything else stays None (unknown)."""
    from polyfact.data.answers import normalize

    ref = ref if ref in options else sorted(options)[0]
    ref_ids = [f"{fact_id}#{i}" for i in range(len(options[ref]))]
    out: dict[str, list[str | None]] = {ref: list(ref_ids)}
    for lang, opts in options.items():
        if lang == ref:
            continue
        ids: list[str | None] = [None] * len(opts)
        free = set(range(len(ref_ids)))
        if gold[lang] < len(ids) and gold[ref] < len(ref_ids):
            ids[gold[lang]] = ref_ids[gold[ref]]
            free.discard(gold[ref])
        ref_norm = {i: normalize(options[ref][i], ref) for i in free}
        for i, o in enumerate(opts):
            if ids[i] is not None:
                continue
            same = [j for j in free if ref_norm[j] == normalize(o, lang)]
            if len(same) == 1:
                ids[i] = ref_ids[same[0]]
                free.discard(same[0])
        left = [i for i, x in enumerate(ids) if x is None]
        if len(left) == 1 and len(free) == 1:
            ids[left[0]] = ref_ids[free.pop()]
        out[lang] = ids
    return out


def _answer_index(row: dict, n: int, where: str) -> int:
    if row.get("answer_index") is not None:
        return V.answer_index(row["answer_index"], n, where)
    if isinstance(row.get("answer"), str) and row["answer"].strip().upper() in LETTERS[:n]:
        return LETTERS.index(row["answer"].strip().upper())
    raise PolyFactError(f"{where}: the row has no answer_index or answer letter")


def released_facts(src: str | Path) -> list[Fact]:
    """Facts of a released-format directory; each keeps its options and its released split."""
    src = Path(src)
    lang_dirs = sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
    if not lang_dirs:
        raise PolyFactError(f"no language folders under {src}; expected <dir>/<lang>/<split>.jsonl")
    facts: dict[str, Fact] = {}
    seen: dict[tuple, str] = {}
    for lang_dir in lang_dirs:
        lang = V.language_folder(lang_dir)
        for path in sorted(lang_dir.iterdir()):
            split = _SPLIT_NAMES.get(path.stem.split("-")[0])
            if path.suffix not in _BUILDERS or split is None:
                continue
            if path.suffix in (".jsonl", ".json", ".csv"):
                V.utf8(path)
            try:
                ds = datasets.load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train")
            except Exception as err:
                raise PolyFactError(f"cannot read {path}: {err.__class__.__name__}: {err}") from None
            for i, row in enumerate(ds):
                where = f"{path} row {i}"
                try:
                    fid = str(row["fact_id"])
                    options = V.options(_options(row), where)
                    idx = _answer_index(row, len(options), where)
                except KeyError as err:
                    raise PolyFactError(f"{where}: no {err} column; fix the file or re-export it") from None
                V.unique((fid, lang), seen, where)
                parts = fid.split("|")
                pid = str(row.get("relation") or (parts[1] if len(parts) == 3 else "unknown"))
                sid, oid = (parts[0], parts[2]) if len(parts) == 3 else (f"{fid}:s", f"{fid}:o")
                f = facts.setdefault(fid, Fact(fid, pid, sid, oid, {}, {}, split=split))
                f.subject[lang] = str(row.get("subject") or "")
                f.object[lang] = str(row.get("object") or options[idx])
                f.options[lang], f.answer_index[lang] = options, idx
                f.questions[lang] = str(row["question"])
                ids = _option_ids(row, len(options))
                if ids is not None:
                    f.option_ids[lang] = ids
    if not facts:
        raise PolyFactError(f"no rows found under {src}; expected <lang>/<split>.jsonl files")
    for f in facts.values():  # without released ids in every language: align to the English options
        if set(f.option_ids) != set(f.options):
            f.option_ids = align_options(f.fact_id, f.options, f.answer_index)
    return list(facts.values())
