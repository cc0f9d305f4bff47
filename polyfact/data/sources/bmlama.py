"""BMLAMA-53 importer (Qi, Fernández & Bisazza, EMNLP 2023): one TSV per language, ``<dir>/<lang>.tsv``.

Each file has a header ``Prompt\\tAns\\tCandidate Ans\\tSubject``; ``Prompt`` is a cloze template
with ``<mask>`` (not always at the end), ``Ans`` the gold object, ``Candidate Ans`` the candidate
pool joined with ``", "`` (the gold inside it). Rows are index-parallel across languages: row *i*
is the same fact, with its pool in the same order, in every file.

As the PolyFact study loads it (``evaluate_crosslingual_consistency.py``): rows up to the shortest
file; a fact is dropped when, in any language, the prompt has no ``<mask>``, the pool has fewer
than two candidates, the gold is not in the pool, or the pool size differs from the first
language's. The prompt is the text before ``<mask>`` (right-stripped); option *k* is candidate *k*
followed by the text after ``<mask>``, so the scored continuation is the whole sentence; options
keep the pool's order and are identified by position (``bmlama53_<i>#<k>``), which aligns them
across languages. Facts whose ``<mask>`` opens the prompt (nothing to condition on) are dropped too.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from polyfact.core.errors import PolyFactError
from polyfact.data.facts import Fact
from polyfact.data.languages import ALL_LANGS

LICENSE = ("BMLAMA-53 (Qi, Fernández & Bisazza, EMNLP 2023; a language-balanced resplit of mLAMA, Kassner et al. "
           "2021), as released by its authors (github Betswish/Cross-Lingual-Consistency); see that release for its terms")
COLUMNS = ("Prompt", "Ans", "Candidate Ans", "Subject")
MASK = "<mask>"
RELATION = "bmlama53"


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of one BMLAMA TSV as ``{column: text}`` (one-line errors naming the file and line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PolyFactError(f"{path} is not UTF-8 text; expected a BMLAMA TSV ({chr(92)}t-separated)") from None
    except OSError as err:
        raise PolyFactError(f"cannot read {path}: {err.strerror}") from None
    lines = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not lines:
        raise PolyFactError(f"{path} is empty; expected the header 'Prompt<TAB>Ans<TAB>Candidate Ans<TAB>Subject'")
    header = [h.strip() for h in lines[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PolyFactError(f"{path} lacks column(s) {', '.join(missing)} in its header {header}; expected "
                            "'Prompt<TAB>Ans<TAB>Candidate Ans<TAB>Subject'")
    at = {c: header.index(c) for c in COLUMNS}
    rows = []
    for i, fields in enumerate(lines[1:], 2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) < len(header):
            raise PolyFactError(f"{path} line {i} has {len(fields)} tab-separated fields, the header {len(header)}; "
                                "fix the file or re-download it")
        rows.append({c: fields[at[c]] for c in COLUMNS})
    return rows


def language_files(src: Path, langs: Iterable[str] | None) -> dict[str, Path]:
    """``{lang: <lang>.tsv}``: the named languages (each must exist), or every file whose code is a
    toolkit language (BMLAMA's other languages are outside the toolkit's registry)."""
    files = {p.stem: p for p in sorted(src.glob("*.tsv")) if p.is_file()}
    if not files:
        raise PolyFactError(f"no <lang>.tsv files in {src}; pass the BMLAMA53 folder of the release")
    if langs is None:
        chosen = [x for x in ALL_LANGS if x in files]
        if not chosen:
            raise PolyFactError(f"none of the TSVs in {src} is in a toolkit language ({' '.join(ALL_LANGS)}); "
                                "pass --langs to choose")
        return {x: files[x] for x in chosen}
    langs = list(dict.fromkeys(langs))
    absent = [x for x in langs if x not in files]
    if absent:
        raise PolyFactError(f"{src} has no {', '.join(f'{x}.tsv' for x in absent)}; it has: {' '.join(sorted(files))}")
    return {x: files[x] for x in langs}


def bmlama_facts(src: str | Path, langs: Iterable[str] | None = None, dropped: dict[str, int] | None = None
                 ) -> list[Fact]:
    """BMLAMA-53 facts of the TSVs under ``src`` (all in the ``test`` split), in ``langs`` (default:
    the toolkit's languages present); each drop reason is counted in ``dropped``."""
    src = Path(src)
    if not src.is_dir():
        raise PolyFactError(f"{src} is not a directory; pass the folder that holds BMLAMA's <lang>.tsv files")
    files = language_files(src, langs)
    tables = {lang: read_tsv(p) for lang, p in files.items()}
    dropped = dropped if dropped is not None else defaultdict(int)
    n_rows = min(len(t) for t in tables.values())
    longer = max(len(t) for t in tables.values()) - n_rows
    if longer:
        dropped["rows beyond the shortest language file"] = dropped.get("rows beyond the shortest language file", 0) + longer
    facts = []
    for i in range(n_rows):
        per_lang, reason, size = {}, None, None
        for lang, rows in tables.items():
            r = rows[i]
            prompt, gold = r["Prompt"].strip(), r["Ans"].strip()
            pool = [c.strip() for c in r["Candidate Ans"].split(", ") if c.strip()]
            if MASK not in prompt:
                reason = "prompt without <mask>"
            elif len(pool) < 2:
                reason = "fewer than 2 candidates"
            elif gold not in pool:
                reason = "gold not among candidates"
            elif size is not None and len(pool) != size:
                reason = "candidate pools differ across languages"
            elif not prompt.split(MASK, 1)[0].strip():
                reason = "<mask> opens the prompt"
            if reason:
                break
            size = len(pool)
            prefix, suffix = prompt.split(MASK, 1)
            per_lang[lang] = (prefix.rstrip(), [c + suffix for c in pool], pool.index(gold), prompt, r["Subject"].strip(), gold)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        fid = f"bmlama53_{i}"
        f = Fact(fid, RELATION, f"{fid}:s", f"{fid}:o", {}, {}, split="test")
        for lang, (prefix, options, gold_idx, prompt, subject, gold) in per_lang.items():
            f.subject[lang], f.object[lang] = subject, gold
            f.prompts[lang], f.questions[lang] = prefix, prompt
            f.options[lang], f.answer_index[lang] = options, gold_idx
            f.option_ids[lang] = [f"{fid}#{k}" for k in range(len(options))]
        facts.append(f)
    if not facts:
        raise PolyFactError(f"no BMLAMA fact of {src} passed the checks (dropped: {dict(dropped)})")
    return facts
