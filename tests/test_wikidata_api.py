"""The Wikidata client against a local HTTP server replaying responses of the real shape."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from polyfact.core.errors import PolyFactError
from polyfact.data.sources.wikidata_api import WikidataClient
from tests.wikidata_fixtures import ENTITIES

BY_ID = {e["id"]: e for e in ENTITIES}


class Replay(BaseHTTPRequestHandler):
    log: list[dict] = []
    fail_first: int = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        Replay.log.append({"path": url.path, "q": q, "ua": self.headers.get("User-Agent")})
        if Replay.fail_first > 0:
            Replay.fail_first -= 1
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if url.path == "/sparql":
            pid = q["query"].split("wdt:")[1].split()[0]
            pairs = [(e["id"], c["mainsnak"]["datavalue"]["value"]["id"]) for e in ENTITIES
                     for c in e["claims"].get(pid, []) if c["rank"] != "deprecated"]
            body = {"head": {"vars": ["s", "o"]}, "results": {"bindings": [
                {"s": {"type": "uri", "value": f"http://www.wikidata.org/entity/{s}"},
                 "o": {"type": "uri", "value": f"http://www.wikidata.org/entity/{o}"}} for s, o in pairs]}}
        elif q.get("action") == "wbgetentities":
            ids = q["ids"].split("|")
            body = {"entities": {i: BY_ID.get(i, {"id": i, "missing": ""}) for i in ids}, "success": 1}
        else:
            body = {"error": {"code": "badvalue", "info": "unknown action"}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    Replay.log, Replay.fail_first = [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def client(base, **kw):
    sleeps: list[float] = []
    c = WikidataClient(api_url=f"{base}/w/api.php", sparql_url=f"{base}/sparql", sleep=sleeps.append,
                       min_interval=0.0, **kw)
    return c, sleeps


def test_facts_from_sparql_and_wbgetentities(server):
    c, _ = client(server)
    facts = {f.fact_id: f for f in c.facts(["en", "ja"], ["P36", "P30"])}
    assert set(facts) == {"Q142|P36|Q90", "Q183|P36|Q64", "Q142|P30|Q46", "Q183|P30|Q46"}
    assert facts["Q142|P36|Q90"].object_aliases["en"] == ["City of Light"]
    assert all(r["ua"].startswith("PolyFact/") for r in Replay.log)


def test_batches_of_at_most_50_ids(server):
    c, _ = client(server, batch_size=2)
    out = c.get_entities(["Q142", "Q183", "Q90", "Q64", "Q404"], ["en"])
    assert set(out) == {"Q142", "Q183", "Q90", "Q64"}  # missing entity dropped
    calls = [r for r in Replay.log if r["q"].get("action") == "wbgetentities"]
    assert [len(r["q"]["ids"].split("|")) for r in calls] == [2, 2, 1]
    assert WikidataClient(batch_size=500).batch_size == 50


def test_retries_with_backoff_then_succeeds(server):
    Replay.fail_first = 2
    c, sleeps = client(server, backoff=0.5)
    assert c.get_entities(["Q90"], ["en"])["Q90"]["labels"]["en"]["value"] == "Paris"
    assert c.requests_sent == 3 and sleeps.count(0.0) == 2  # Retry-After: 0 honoured


def test_gives_up_with_a_one_line_error(server):
    Replay.fail_first = 10
    c, sleeps = client(server, max_retries=2, backoff=1.0)
    with pytest.raises(PolyFactError, match="unreachable after 3 tries"):
        c.get_entities(["Q90"], ["en"])


def test_cache_avoids_repeated_requests(server, tmp_path):
    c, _ = client(server, cache_dir=tmp_path)
    first = c.get_entities(["Q90", "Q64"], ["en"])
    sent = len(Replay.log)
    c2, _ = client(server, cache_dir=tmp_path)
    assert c2.get_entities(["Q90", "Q64"], ["en"]) == first
    assert len(Replay.log) == sent and c2.requests_sent == 0


def test_rate_limit_spaces_requests(server):
    sleeps: list[float] = []
    c = WikidataClient(api_url=f"{server}/w/api.php", sparql_url=f"{server}/sparql", min_interval=5.0,
                       sleep=sleeps.append, batch_size=1)
    c.get_entities(["Q90", "Q64", "Q46"], ["en"])
    assert len([s for s in sleeps if s > 4.0]) == 2  # the 2nd and 3rd request waited


def test_refuses_an_anonymous_user_agent():
    with pytest.raises(PolyFactError, match="User-Agent"):
        WikidataClient(user_agent="python-requests/2.32")


def test_api_errors_are_reported(server):
    c, _ = client(server)
    with pytest.raises(PolyFactError, match="unknown action"):
        c._get(f"{server}/w/api.php", {"action": "nope"})
