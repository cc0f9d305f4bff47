"""Global-MMLU-Lite importer (Singh et al. 2024, ``CohereLabs/Global-MMLU-Lite``) from local files.

Layout as the Hugging Face repository stores it, one folder per language (a config) with one file
per split: ``<dir>/<lang>/test-00000-of-00001.parquet``, ``<dir>/<lang>/dev-….parquet`` (or
``test.jsonl`` / ``.json`` / ``.csv`` as ``datasets`` saves them); a flat ``<dir>/<lang>.parquet``
(``.jsonl``, ``.csv``) is read as the test split. Columns used: ``sample_id`` (joins an item
across languages), ``question``, ``option_a`` … ``option_d``, ``answer`` (a letter A–D) and,
when present, ``subject`` (kept as the row's relation).

As the PolyFact study evaluates it (letter scoring, as in lm-eval-harness): a row with a missing
or blank option or an answer that is not a letter A–D is skipped; the question shows the four
options (``Question: …\\nA. …\\nB. …\\nC. …\\nD. …\\nAnswer:``) and the options scored are the
letters ``A``–``D``, identified by position (``gmmlu:<sample_id>#A`` …), which aligns them
across languages.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable

import datasets

from polyfact.core.errors import PolyFactError
from polyfact.data.sources import validate as V
from polyfact.data.facts import Fact

LICENSE = "Global-MMLU-Lite (Singh et al. 2024, Cohere Labs), Apache License 2.0"
LETTERS = ("A", "B", "C", "D")
REQUIRED = ("sample_id", "question", "option_a", "option_b", "option_c", "option_d", "answer")
_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_SPLITS = {"test": "test", "dev": "validation", "validation": "validation", "val": "validation", "train": "train"}


def letter_question(question: str, options: list[str]) -> str:
    """The question with its options listed by letter: what the study's letter prompt wraps."""
    return "\n".join([question, *(f"{letter}. {o}" for letter, o in zip(LETTERS, options))])


def study_prompt(question: str, options: list[str]) -> str:
    """The study's Global-MMLU prompt: ``Question: {q}`` then ``A. …`` … ``D. …`` then ``Answer:``."""
    return f"Question: {letter_question(question, options)}\nAnswer:"


def split_files(src: Path, langs: Iterable[str] | None) -> list[tuple[str, str, Path]]:
    """``(lang, split, file)`` of every readable split file under ``src``."""
    out = []
    for p in sorted(src.iterdir()):
        if p.is_dir():
            for f in sorted(p.iterdir()):
                split = _SPLITS.get(f.name.split("-")[0].split(".")[0])
                if f.is_file() and f.suffix in _BUILDERS and split:
                    out.append((V.language_folder(p), split, f))
        elif p.is_file() and p.suffix in _BUILDERS:
            out.append((V.language_folder(p.with_suffix("")), "test", p))
    if langs is not None:
        wanted = list(dict.fromkeys(langs))
        absent = [x for x in wanted if x not in {lang for lang, _, _ in out}]
        if absent:
            raise PolyFactError(f"{src} has no Global-MMLU-Lite files for {', '.join(absent)}; it has: "
                                f"{' '.join(sorted({lang for lang, _, _ in out})) or 'none'}")
        out = [x for x in out if x[0] in wanted]
    if not out:
        raise PolyFactError(f"no Global-MMLU-Lite files under {src}; expected <lang>/test-*.parquet "
                            "(or <lang>/test.jsonl, <lang>.parquet)")
    return out


def _rows(path: Path) -> datasets.Dataset:
    try:
        ds = datasets.load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # datasets raises many types for unreadable files
        raise PolyFactError(f"cannot read {path}: {err.__class__.__name__}: {str(err).splitlines()[0][:200]}") from None
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if missing:
        raise PolyFactError(f"{path} lacks column(s) {', '.join(missing)}; Global-MMLU-Lite rows need "
                            f"{', '.join(REQUIRED)}")
    return ds


def gmmlu_facts(src: str | Path, langs: Iterable[str] | None = None, dropped: dict[str, int] | None = None
                ) -> list[Fact]:
    """Global-MMLU-Lite items under ``src`` as facts (one per ``sample_id``, rows per language,
    the file's split kept); skipped rows are counted in ``dropped`` by reason."""
    src = Path(src)
    if not src.is_dir():
        raise PolyFactError(f"{src} is not a directory; pass the folder that holds Global-MMLU-Lite's language folders")
    dropped = dropped if dropped is not None else defaultdict(int)
    facts: dict[str, Fact] = {}
    for lang, split, path in split_files(src, langs):
        datasets.disable_progress_bars()
        for i, row in enumerate(_rows(path)):
            sid = row["sample_id"]
            if sid is None or not str(sid).strip():
                raise PolyFactError(f"{path} row {i}: empty sample_id; fix the file or re-download it")
            options = [row[f"option_{k.lower()}"] for k in LETTERS]
            letter = str(row["answer"] or "").strip().upper()
            if any(o is None or not str(o).strip() for o in options):
                dropped["missing option"] = dropped.get("missing option", 0) + 1
                continue
            if letter not in LETTERS:
                dropped["answer not a letter A-D"] = dropped.get("answer not a letter A-D", 0) + 1
                continue
            options = [str(o).strip() for o in options]
            question = str(row["question"] or "").strip()
            fid = f"gmmlu:{str(sid).strip()}"
            f = facts.setdefault(fid, Fact(fid, str(row.get("subject") or "global_mmlu_lite"), f"{fid}:q",
                                           f"{fid}:a", {}, {}, split=split))
            if f.split != split:
                dropped["sample_id in two splits"] = dropped.get("sample_id in two splits", 0) + 1
                continue
            if lang in f.options:
                raise PolyFactError(f"{path} row {i}: sample_id {sid!r} appears twice for {lang}; fix the file")
            f.subject[lang], f.object[lang] = "", options[LETTERS.index(letter)]
            f.questions[lang] = letter_question(question, options)
            f.prompts[lang] = study_prompt(question, options)
            f.options[lang] = list(LETTERS)
            f.answer_index[lang] = LETTERS.index(letter)
            f.option_ids[lang] = [f"{fid}#{k}" for k in LETTERS]
    if not facts:
        raise PolyFactError(f"no usable Global-MMLU-Lite rows under {src} (dropped: {dict(dropped)})")
    return list(facts.values())
