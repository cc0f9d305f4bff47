"""One call from a source to a dataset directory: what ``polyfact data build|import`` runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from polyfact.build import BuildConfig, BuildReport, build_rows
from polyfact.dataset import save_dataset
from core.errors import PolyFactError
from polyfact.languages import ALL_LANGS, order_langs, parse_langs
from polyfact.relations import parse_relations

SOURCES = ("cldr", "wikidata-dump", "wikidata-api")
IMPORTS = ("klar", "polyfact")
DEFAULT_SPLITS = {"cldr": (0.7, 0.1, 0.2), "wikidata-dump": (0.95, 0.025, 0.025),
                  "wikidata-api": (0.95, 0.025, 0.025), "klar": (0.0, 0.0, 1.0), "polyfact": (0.95, 0.025, 0.025)}
PAPER_RELATIONS = ["P17", "P19", "P20", "P27", "P30", "P36", "P37", "P38", "P47", "P50", "P57", "P61", "P69",
                   "P84", "P108", "P136", "P170", "P176", "P178", "P407", "P495"]


def build_dataset(
    source: str,
    out: str | Path,
    *,
    langs: str | Sequence[str] | None = None,
    relations: str | Sequence[str] | None = None,
    seed: int = 0,
    n_options: int = 4,
    split_fracs: Sequence[float] | None = None,
    min_coverage: float = 1.0,
    max_per_relation: int | None = None,
    single_object: bool = False,
    dump: str | Path | None = None,
    max_facts: int | None = None,
    cache_dir: str | Path | None = None,
    api_url: str | None = None,
    sparql_url: str | None = None,
    per_relation: int = 1000,
    force: bool = False,
) -> dict[str, Any]:
    """Build PolyFact from ``source`` (``cldr``, ``wikidata-dump`` or ``wikidata-api``) into ``out``."""
    if source not in SOURCES:
        raise PolyFactError(f"unknown source {source!r}; use one of: {', '.join(SOURCES)}")
    lang_list = parse_langs(langs)
    rel_list = parse_relations(relations)
    cfg = BuildConfig(langs=lang_list, seed=seed, n_options=n_options,
                      split_fracs=tuple(split_fracs or DEFAULT_SPLITS[source]),
                      min_coverage=min_coverage, max_per_relation=max_per_relation, single_object=single_object)
    if source == "cldr":
        from polyfact.sources.cldr import LICENSE, RELATIONS, cldr_facts

        unknown = set(rel_list or []) - set(RELATIONS)
        if unknown:
            raise PolyFactError(f"the cldr source has no relation {' '.join(sorted(unknown))}; it has: {' '.join(RELATIONS)}")
        facts, licenses = list(cldr_facts(lang_list, rel_list)), LICENSE
    elif source == "wikidata-dump":
        from polyfact.sources.wikidata_dump import LICENSE, DumpStats, dump_facts

        if dump is None:
            raise PolyFactError("--source wikidata-dump needs --dump FILE (latest-all.json.gz or .bz2)")
        stats = DumpStats()
        facts = dump_facts(dump, lang_list, rel_list or PAPER_RELATIONS, max_facts=max_facts, stats=stats)
        licenses = LICENSE
        if stats.corrupt:
            print(f"skipped {stats.corrupt} corrupt line(s) of {stats.lines}: {'; '.join(stats.corrupt_examples)}")
        if stats.entities == 0:
            raise PolyFactError(f"no entities in {dump}; is it a Wikidata JSON dump?")
    else:
        from polyfact.sources.wikidata_api import API_URL, LICENSE, SPARQL_URL, WikidataClient

        client = WikidataClient(api_url=api_url or API_URL, sparql_url=sparql_url or SPARQL_URL, cache_dir=cache_dir)
        facts, licenses = client.facts(lang_list, rel_list or PAPER_RELATIONS, per_relation=per_relation), LICENSE
    rows, report = build_rows(facts, cfg)
    return save_dataset(rows, out, source=source, cfg=cfg, report=report, licenses=licenses, force=force)


def import_dataset(
    kind: str,
    src: str | Path,
    out: str | Path,
    *,
    langs: str | Sequence[str] | None = None,
    seed: int = 0,
    split_fracs: Sequence[float] | None = None,
    min_coverage: float = 1.0,
    force: bool = False,
) -> dict[str, Any]:
    """Import KLAR or the released PolyFact format from the local directory ``src`` into ``out``."""
    if kind not in IMPORTS:
        raise PolyFactError(f"unknown import format {kind!r}; use one of: {', '.join(IMPORTS)}")
    if not Path(src).is_dir():
        raise PolyFactError(f"{src} is not a directory; pass the folder that holds the {kind} files")
    dropped: dict[str, int] = {}
    if kind == "klar":
        from polyfact.sources.klar import LICENSE, klar_facts

        facts = klar_facts(src, seed=seed, dropped=dropped)
    else:
        from polyfact.sources.released import LICENSE, released_facts

        facts = released_facts(src)
    present = order_langs({lang for f in facts for lang in f.langs()})
    lang_list = parse_langs(langs, default=present) if langs else present
    cfg = BuildConfig(langs=lang_list, seed=seed, split_fracs=tuple(split_fracs or DEFAULT_SPLITS[kind]),
                      min_coverage=min_coverage, training_langs=None)
    rows, report = build_rows(facts, cfg)
    report.dropped.update(Counter(dropped))
    report.facts_in += sum(dropped.values())
    return save_dataset(rows, out, source=kind, cfg=cfg, report=report, licenses=LICENSE, force=force)


__all__ = ["build_dataset", "import_dataset", "BuildReport", "ALL_LANGS"]
