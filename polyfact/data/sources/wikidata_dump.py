"""Streaming reader of the Wikidata JSON dump (``latest-all.json.gz`` / ``.bz2`` / plain).

The dump is one JSON array with one entity per line (``[``, ``{...},``, …, ``]``). Two passes
keep memory bounded by the facts kept, not by the dump: pass 1 collects claims of the chosen
properties with their subjects' labels; pass 2 collects the labels of the objects they need.
Corrupt lines are counted, skipped and reported.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from tqdm.auto import tqdm

from polyfact.core.errors import PolyFactError
from polyfact.data.facts import Fact

LICENSE = "Wikidata (CC0 1.0)"


@dataclass
class DumpStats:
    """Counts of one read: lines, entities parsed, corrupt lines skipped (with a few examples)."""

    lines: int = 0
    entities: int = 0
    corrupt: int = 0
    corrupt_examples: list[str] = field(default_factory=list)
    claims: int = 0

    def note_corrupt(self, line_no: int, err: Exception) -> None:
        self.corrupt += 1
        if len(self.corrupt_examples) < 5:
            self.corrupt_examples.append(f"line {line_no}: {err}")


def open_dump(path: str | Path) -> IO[str]:
    """Open a dump by its suffix: ``.gz``, ``.bz2`` or plain text."""
    path = Path(path)
    if not path.exists():
        raise PolyFactError(f"dump not found: {path}; pass --dump latest-all.json.gz")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if path.suffix == ".bz2":
        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_entities(path: str | Path, stats: DumpStats | None = None, progress: bool = False) -> Iterator[dict]:
    """Yield each entity dict of the dump; skip (and count) lines that are not valid JSON objects."""
    stats = stats if stats is not None else DumpStats()
    opened = closed = False
    try:
        with open_dump(path) as fh:
            for line_no, line in enumerate(tqdm(fh, desc=f"reading {Path(path).name}", unit=" lines",
                                                disable=not progress), start=1):
                stats.lines += 1
                s = line.strip()
                if s in ("[", "]", ""):
                    opened, closed = opened or s == "[", closed or s == "]"
                    continue
                if s.endswith(","):
                    s = s[:-1]
                try:
                    entity = json.loads(s)
                except json.JSONDecodeError as err:
                    stats.note_corrupt(line_no, err)
                    continue
                if not isinstance(entity, dict) or not well_formed(entity):
                    stats.note_corrupt(line_no, ValueError("not a well-formed entity object"))
                    continue
                stats.entities += 1
                yield entity
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise PolyFactError(f"cannot read dump {path}: {err}; check that the file is complete") from None
    if opened and not closed:
        raise PolyFactError(f"dump {path} is truncated (its closing ']' is missing after line {stats.lines}); "
                            "download it again")


def _mapping(value: object) -> dict:
    """A field that should be a JSON object (anything else reads as empty: a mistyped field)."""
    return value if isinstance(value, dict) else {}


def entity_labels(entity: dict, langs: set[str]) -> dict[str, str]:
    return {lang: v["value"] for lang, v in _mapping(entity.get("labels")).items()
            if lang in langs and isinstance(v, dict) and isinstance(v.get("value"), str) and v["value"]}


def entity_aliases(entity: dict, langs: set[str]) -> dict[str, list[str]]:
    return {lang: [a["value"] for a in vals if isinstance(a, dict) and isinstance(a.get("value"), str) and a["value"]]
            for lang, vals in _mapping(entity.get("aliases")).items() if lang in langs and isinstance(vals, list)}


def well_formed(entity: dict) -> bool:
    """Whether an entity's labels, aliases and claims have the dump's types."""
    return (isinstance(entity.get("id"), str) and isinstance(entity.get("labels", {}), dict)
            and isinstance(entity.get("aliases", {}), dict) and isinstance(entity.get("claims", {}), dict)
            and all(isinstance(v, list) for v in entity.get("claims", {}).values()))


def _object_ids(claims: list[dict]) -> list[str]:
    out = []
    for claim in claims if isinstance(claims, list) else []:
        if not isinstance(claim, dict) or claim.get("rank") == "deprecated":
            continue
        snak = _mapping(claim.get("mainsnak"))
        value = _mapping(snak.get("datavalue")).get("value") if snak.get("snaktype") == "value" else None
        if isinstance(value, dict) and value.get("entity-type") == "item" and value.get("id"):
            out.append(value["id"])
    return out


def dump_facts(
    path: str | Path,
    langs: list[str],
    relations: list[str],
    max_facts: int | None = None,
    stats: DumpStats | None = None,
    progress: bool = True,
) -> list[Fact]:
    """Facts ``Q…|P…|Q…`` for ``relations`` with labels and aliases in ``langs``, in two passes."""
    stats = stats if stats is not None else DumpStats()
    lang_set, rel_set = set(langs), set(relations)
    triples: list[tuple[str, str, str]] = []
    subjects: dict[str, tuple[dict, dict]] = {}
    for entity in iter_entities(path, stats, progress):
        if max_facts is not None and len(triples) >= max_facts:
            break
        claims = entity.get("claims") or {}
        found = [(pid, oid) for pid in sorted(rel_set & set(claims)) for oid in _object_ids(claims[pid])]
        if not found:
            continue
        labels = entity_labels(entity, lang_set)
        if not labels:
            continue
        subjects[entity["id"]] = (labels, entity_aliases(entity, lang_set))
        for pid, oid in found:
            triples.append((entity["id"], pid, oid))
            stats.claims += 1
    triples = triples[:max_facts] if max_facts is not None else triples
    needed = {o for _, _, o in triples}
    objects: dict[str, tuple[dict, dict]] = {o: subjects[o] for o in needed if o in subjects}
    if needed - set(objects):
        for entity in iter_entities(path, DumpStats(), progress):
            if entity["id"] in needed and entity["id"] not in objects:
                objects[entity["id"]] = (entity_labels(entity, lang_set), entity_aliases(entity, lang_set))
    facts = []
    for sid, pid, oid in triples:
        if oid not in objects:
            continue
        s_labels, _ = subjects[sid]
        o_labels, o_aliases = objects[oid]
        # label dicts are shared between the facts of one entity (read-only downstream)
        facts.append(Fact(f"{sid}|{pid}|{oid}", pid, sid, oid, s_labels, o_labels, object_aliases=o_aliases))
    return facts
