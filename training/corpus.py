"""Toy-world text: the pretraining corpus (English-heavy, resource-skewed) and the CPT corpus
(parallel statements and name pairs, never the test split's facts). Seeded and reproducible."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterable

from polyfact.data.build import continuation
from polyfact.data.relations import RELATIONS
from polyfact.training.config import CorpusConfig


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(map(str, parts)))


def statement(row: dict) -> str:
    """The fact of a dataset row as a sentence in its language (its Q/A line when the relation
    has no statement template)."""
    rel = RELATIONS.get(row["relation"])
    if rel is not None and row["lang"] in rel.statements and row["subject"]:
        return rel.statement(row["lang"], row["subject"], row["object"])
    return qa_line(row)


def qa_line(row: dict) -> str:
    """The row's prompt followed by its gold answer: the evaluation's format."""
    return row["prompt"] + continuation(row["prompt"], row["object"], row["lang"])


def _by_fact(rows: Iterable[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        out[r["fact_id"]][r["lang"]] = r
    return dict(sorted(out.items()))


def _entity_labels(rows: Iterable[dict]) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for r in rows:
        if r["subject"]:
            labels[r["subject_id"]][r["lang"]] = r["subject"]
        labels[r["object_id"]][r["lang"]] = r["object"]
    return dict(sorted(labels.items()))


def name_pair(en: str, other: str) -> str:
    return f"{en} = {other}"


def pretraining_corpus(rows: Iterable[dict], cfg: CorpusConfig) -> list[str]:
    """Documents of the toy world's pretraining: statements (English for every fact, other
    languages for a skewed share), English name pairs, and question–answer lines for train facts."""
    rows = list(rows)
    docs: list[str] = []
    w = cfg.shared_exposure
    for fid, per_lang in _by_fact(rows).items():
        known = _rng(cfg.seed, "known", fid).random()  # how well known the fact is, in every language
        for lang, row in per_lang.items():
            if w * known + (1 - w) * _rng(cfg.seed, "stated", fid, lang).random() < cfg.share(cfg.stated, lang):
                docs.extend([statement(row)] * int(cfg.share(cfg.repeats, lang) or 1))
            qa = cfg.qa if row["split"] == "train" else cfg.qa_unseen
            if w * known + (1 - w) * _rng(cfg.seed, "qa", fid, lang).random() < cfg.share(qa, lang):
                docs.append(qa_line(row))
    for eid, labels in _entity_labels(rows).items():
        if "en" not in labels:
            continue
        for lang, label in labels.items():
            if lang != "en" and _rng(cfg.seed, "pair", eid, lang).random() < cfg.share(cfg.name_pairs, lang):
                docs.append(name_pair(labels["en"], label))
    _rng(cfg.seed, "shuffle").shuffle(docs)
    return docs


def parallel_corpus(spec: str, langs: list[str], seed: int = 42, max_docs: int | None = None) -> list[str]:
    """CPT text from parallel sentences, formatted as the study's TED CPT
    (``build-parallel-dataset/pretokenize_ted_structured.py``): per parallel row, one line
    ``"<code>: <sentence>"`` per available language in a language order shuffled per row (seed 42),
    rows with fewer than two languages dropped. ``spec``: ``multiway:FILE.jsonl`` (TED2025 records)
    or ``files:DIR`` (``DIR/<lang>.txt``, line-aligned)."""
    from polyfact.core.errors import PolyFactError

    kind, _, where = spec.partition(":")
    if kind == "multiway":
        from polyfact.data.sources.multiway import iter_records

        rows: Iterable[dict[str, str]] = iter_records(where, langs)
    elif kind == "files":
        from pathlib import Path

        files = {lang: Path(where) / f"{lang}.txt" for lang in langs if (Path(where) / f"{lang}.txt").is_file()}
        if len(files) < 2:
            raise PolyFactError(f"cpt.text {spec}: parallel text needs two or more languages' <lang>.txt files "
                                f"among {', '.join(langs)}; found {', '.join(files) or 'none'}")
        texts = {lang: p.read_text(encoding="utf-8").splitlines() for lang, p in files.items()}
        rows = ({lang: t[i].strip() for lang, t in texts.items() if i < len(t) and t[i].strip()}
                for i in range(max(len(t) for t in texts.values())))
    else:
        raise PolyFactError(f"cpt.text must be statements, multiway:FILE.jsonl or files:DIR; got {spec!r}")
    rng = random.Random(seed)
    docs, seen_langs = [], set()
    for row in rows:
        order = [lang for lang in langs if lang in row]
        if len(order) < 2:
            continue
        rng.shuffle(order)
        seen_langs.update(order)
        docs.append("\n".join(f"{lang}: {row[lang]}" for lang in order))
        if max_docs is not None and len(docs) >= max_docs:
            break
    if len(seen_langs) < 2:
        raise PolyFactError(f"cpt.text {spec} holds parallel text in fewer than two of the languages "
                            f"{', '.join(langs)}; it needs at least two")
    return docs


def cpt_corpus(rows: Iterable[dict], cfg: CorpusConfig, langs: list[str] | None = None) -> list[str]:
    """Parallel text for continual pretraining: the same statement in English and another language
    (and in two non-English languages), plus name pairs, built from non-test facts only."""
    rows = [r for r in rows if r["split"] != "test" and (langs is None or r["lang"] in langs)]
    docs: list[str] = []
    for fid, per_lang in _by_fact(rows).items():
        others = [lang for lang in per_lang if lang != "en"]
        rng = _rng(cfg.seed, "cpt", fid)
        for lang in rng.sample(others, min(cfg.cpt_pairs_per_fact, len(others))):
            if "en" in per_lang:
                docs.append(statement(per_lang["en"]) + "\n" + statement(per_lang[lang]))
            third = rng.choice(others)
            if third != lang:
                docs.append(statement(per_lang[lang]) + "\n" + statement(per_lang[third]))
    for eid, labels in _entity_labels(rows).items():
        if "en" in labels:
            docs.extend(name_pair(labels["en"], label) for lang, label in labels.items() if lang != "en")
    _rng(cfg.seed, "cpt-shuffle").shuffle(docs)
    return docs
