"""Wikidata over HTTP: SPARQL to find (subject, object) pairs, ``wbgetentities`` for labels.

Batching (50 ids per ``wbgetentities`` call, Wikidata's limit), retries with exponential
backoff on 429/5xx and connection errors (honouring ``Retry-After``), a descriptive
User-Agent (Wikimedia's policy asks for one), an on-disk JSON cache and a minimum interval
between requests. Never called by the default run or the tests, which use a local server.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

from polyfact.core.errors import PolyFactError
from polyfact.data.facts import Fact
from polyfact.data.sources.wikidata_dump import entity_aliases, entity_labels, well_formed
from polyfact.core.io import atomic_write_json

API_URL = "https://www.wikidata.org/w/api.php"
SPARQL_URL = "https://query.wikidata.org/sparql"
USER_AGENT = "PolyFact/0.1 (https://github.com/polyfact/polyfact; research toolkit for cross-lingual factual recall)"
LICENSE = "Wikidata (CC0 1.0)"


class WikidataClient:
    """A polite Wikidata client; every response passes through the on-disk cache when given."""

    def __init__(
        self,
        api_url: str = API_URL,
        sparql_url: str = SPARQL_URL,
        user_agent: str = USER_AGENT,
        cache_dir: str | Path | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        min_interval: float = 0.2,
        batch_size: int = 50,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not user_agent or "python-requests" in user_agent:
            raise PolyFactError("Wikidata requires a descriptive User-Agent; pass user_agent='Tool/1.0 (contact)'")
        self.api_url, self.sparql_url = api_url, sparql_url
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_retries, self.backoff, self.min_interval = max_retries, backoff, min_interval
        self.batch_size = min(batch_size, 50)
        self.timeout, self._sleep = timeout, sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._last = 0.0
        self.requests_sent = 0

    def _cache_path(self, url: str, params: dict) -> Path | None:
        if not self.cache_dir:
            return None
        key = hashlib.sha256(json.dumps([url, sorted(params.items())]).encode()).hexdigest()
        return self.cache_dir / f"{key}.json"

    def _get(self, url: str, params: dict) -> Any:
        cached = self._cache_path(url, params)
        if cached and cached.exists():
            return json.loads(cached.read_text(encoding="utf-8"))
        last_err: str = ""
        for attempt in range(self.max_retries + 1):
            wait = self.min_interval - (time.monotonic() - self._last)
            if wait > 0:
                self._sleep(wait)
            self._last = time.monotonic()
            try:
                self.requests_sent += 1
                resp = self.session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as err:
                last_err = f"{err.__class__.__name__}: {err}"
                self._sleep(self.backoff * 2**attempt)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last_err = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("Retry-After", "")
                delay = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else self.backoff * 2**attempt
                self._sleep(delay)
                continue
            if resp.status_code != 200:
                raise PolyFactError(f"Wikidata answered HTTP {resp.status_code} for {url}; check the query")
            data = resp.json()
            if isinstance(data, dict) and "error" in data:
                raise PolyFactError(f"Wikidata API error: {data['error'].get('info', data['error'])}")
            if cached:
                atomic_write_json(cached, data)
            return data
        raise PolyFactError(f"Wikidata unreachable after {self.max_retries + 1} tries ({last_err}); try again later")

    def sparql(self, query: str) -> list[dict[str, str]]:
        """Run a SPARQL query; each binding as ``{variable: value}``."""
        data = self._get(self.sparql_url, {"query": query, "format": "json"})
        try:
            return [{k: str(v["value"]) for k, v in b.items()} for b in data["results"]["bindings"]]
        except (KeyError, TypeError, AttributeError):
            raise PolyFactError(f"unexpected SPARQL answer from {self.sparql_url} (no results.bindings with values); "
                                "check --sparql-url") from None

    def get_entities(self, ids: Iterable[str], langs: list[str]) -> dict[str, dict]:
        """``wbgetentities`` for labels, aliases and claims, in batches of at most 50 ids."""
        ids = sorted(set(ids))
        out: dict[str, dict] = {}
        for i in range(0, len(ids), self.batch_size):
            batch = ids[i : i + self.batch_size]
            data = self._get(self.api_url, {
                "action": "wbgetentities", "ids": "|".join(batch), "props": "labels|aliases|claims",
                "languages": "|".join(langs), "format": "json",
            })
            entities = data.get("entities", {}) if isinstance(data, dict) else {}
            out.update({k: v for k, v in (entities.items() if isinstance(entities, dict) else [])
                        if isinstance(v, dict) and "missing" not in v and well_formed({"id": k, **v})})
        return out

    def relation_pairs(self, pid: str, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` (subject, object) Q-id pairs of property ``pid`` (truthy statements)."""
        rows = self.sparql(f"SELECT ?s ?o WHERE {{ ?s wdt:{pid} ?o . FILTER(isIRI(?o)) }} LIMIT {int(limit)}")
        pairs = []
        for r in rows:
            s, o = r["s"].rsplit("/", 1)[-1], r["o"].rsplit("/", 1)[-1]
            if s.startswith("Q") and o.startswith("Q"):
                pairs.append((s, o))
        return pairs

    def facts(self, langs: list[str], relations: list[str], per_relation: int = 1000) -> list[Fact]:
        """Facts for ``relations``: pairs from SPARQL, labels and aliases from ``wbgetentities``."""
        triples = [(s, pid, o) for pid in relations for s, o in self.relation_pairs(pid, per_relation)]
        entities = self.get_entities({x for s, _, o in triples for x in (s, o)}, langs)

        lang_set = set(langs)
        facts = []
        for s, pid, o in triples:
            if s in entities and o in entities:
                facts.append(Fact(f"{s}|{pid}|{o}", pid, s, o, entity_labels(entities[s], lang_set),
                                  entity_labels(entities[o], lang_set), object_aliases=entity_aliases(entities[o], lang_set)))
        return facts
