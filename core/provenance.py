"""Provenance of result files, and the one answer to "is this output current?".

Every output stores the key of what produced it: a result JSON in ``provenance.key``; arrays
saved as ``<name>.safetensors`` + ``<name>.json`` in the sidecar's ``meta.provenance_key``; the
dataset marker and resume states in ``key``. :func:`current` compares that stored key with the
key the step would produce now; a missing, truncated or corrupt output is simply not current, so
its step reruns (docs/ARCHITECTURE.md, "How a stage decides to skip").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from polyfact.core.checkpoints import checkpoint_fingerprint
from polyfact.core.io import fingerprint, read_cached
from polyfact.core.results import Result, read_result, result_class


def provenance(run_dir: str | os.PathLike, ckpt_id: str, *, analysis: str, data_fingerprint: str | None,
               config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Checkpoint and data fingerprints, analysis config and seed, plus a ``key`` over all of them."""
    prov = {"analysis": analysis, "checkpoint": ckpt_id,
            "checkpoint_fingerprint": checkpoint_fingerprint(run_dir, ckpt_id),
            "data_fingerprint": data_fingerprint, "config": config, "seed": seed}
    prov["key"] = fingerprint(prov)
    return prov


def stored_key(path: str | os.PathLike) -> str | None:
    """The key stored with the output at ``path`` (a JSON file, or the ``.json`` sidecar of arrays
    saved at ``path``), or None when there is no readable one."""
    path = Path(path)
    doc = read_cached(path if path.suffix == ".json" else path.with_name(path.name + ".json"))
    if not isinstance(doc, dict):
        return None
    for found in (doc.get("provenance", {}).get("key") if isinstance(doc.get("provenance"), dict) else None,
                  doc.get("meta", {}).get("provenance_key") if isinstance(doc.get("meta"), dict) else None,
                  doc.get("key")):
        if isinstance(found, str):
            return found
    return None


def current(path: str | os.PathLike, key: str, *also: str | os.PathLike) -> bool:
    """True when the output at ``path`` stores ``key`` (and the companion files ``also`` exist)."""
    return stored_key(path) == key and all(Path(p).exists() for p in also)


def fresh(path: str | os.PathLike, prov: dict[str, Any]) -> Result | None:
    """The stored result at ``path`` (typed by its folder: :mod:`polyfact.core.results`) when it is
    current for ``prov``, else None."""
    return read_result(path) if current(path, prov["key"]) else None


def write_result(path: str | os.PathLike, payload: dict[str, Any], prov: dict[str, Any]) -> Result:
    """Write ``payload`` + provenance atomically through its result class (the folder's analysis);
    returns the typed result."""
    out = result_class(Path(path).parent.name)({**payload, "provenance": prov})
    out.to_json(path)
    return out
