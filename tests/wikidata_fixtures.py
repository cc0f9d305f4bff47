"""Entities in Wikidata's JSON shape, for the dump reader and the API client tests."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path


def entity(qid: str, labels: dict[str, str], claims: dict[str, list[str]] | None = None,
           aliases: dict[str, list[str]] | None = None, deprecated: dict[str, list[str]] | None = None) -> dict:
    """An item as ``wbgetentities`` and the dump write it."""

    def claim(pid: str, oid: str, rank: str = "normal") -> dict:
        return {"mainsnak": {"snaktype": "value", "property": pid, "datatype": "wikibase-item",
                             "datavalue": {"value": {"entity-type": "item", "numeric-id": int(oid[1:]), "id": oid},
                                           "type": "wikibase-entityid"}},
                "type": "statement", "id": f"{qid}$x", "rank": rank}

    all_claims: dict[str, list[dict]] = {}
    for pid, oids in (claims or {}).items():
        all_claims.setdefault(pid, []).extend(claim(pid, o) for o in oids)
    for pid, oids in (deprecated or {}).items():
        all_claims.setdefault(pid, []).extend(claim(pid, o, "deprecated") for o in oids)
    return {
        "type": "item", "id": qid,
        "labels": {k: {"language": k, "value": v} for k, v in labels.items()},
        "aliases": {k: [{"language": k, "value": a} for a in v] for k, v in (aliases or {}).items()},
        "descriptions": {}, "sitelinks": {},
        "claims": all_claims,
    }


ENTITIES = [
    entity("Q142", {"en": "France", "de": "Frankreich", "ja": "フランス"},
           {"P36": ["Q90"], "P30": ["Q46"], "P47": ["Q183"]}),
    entity("Q183", {"en": "Germany", "de": "Deutschland", "ja": "ドイツ"},
           {"P36": ["Q64"], "P30": ["Q46"], "P47": ["Q142"]}, deprecated={"P36": ["Q1055"]}),
    entity("Q90", {"en": "Paris", "de": "Paris", "ja": "パリ"}, {"P17": ["Q142"]},
           aliases={"en": ["City of Light"], "ja": ["巴里"]}),
    entity("Q64", {"en": "Berlin", "de": "Berlin", "ja": "ベルリン"}, {"P17": ["Q183"]}),
    entity("Q46", {"en": "Europe", "de": "Europa", "ja": "ヨーロッパ"}),
    entity("Q1055", {"en": "Bonn", "de": "Bonn", "ja": "ボン"}, {"P17": ["Q183"]}),
]


def write_dump(path: Path, entities: list[dict] = ENTITIES, corrupt: bool = True) -> Path:
    """A dump in the real layout: ``[``, one entity per line with a trailing comma, ``]``."""
    lines = ["["]
    for i, e in enumerate(entities):
        lines.append(json.dumps(e, ensure_ascii=False) + ("," if i < len(entities) - 1 else ""))
        if corrupt and i == 1:
            lines.append('{"type": "item", "id": "Q999", "labels": {"en": ')  # truncated line
            lines.append("not json at all,")
    lines.append("]")
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(data))
    else:
        path.write_bytes(data)
    return path
