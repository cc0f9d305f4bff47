"""Result files with provenance: what produced them, so a step whose inputs match is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polyfact.io import atomic_write_json, fingerprint
from training.checkpoints import checkpoint_dir, read_manifest


def checkpoint_fingerprint(run_dir: str | Path, ckpt_id: str) -> str:
    """The manifest fingerprint of a run checkpoint (the id itself for outside models)."""
    if (checkpoint_dir(run_dir, ckpt_id) / "manifest.json").exists():
        return str(read_manifest(run_dir, ckpt_id)["fingerprint"])
    return fingerprint({"external": ckpt_id})


def provenance(run_dir: str | Path, ckpt_id: str, *, analysis: str, data_fingerprint: str | None,
               config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Checkpoint and data fingerprints, analysis config and seed, plus a ``key`` over all of them."""
    prov = {"analysis": analysis, "checkpoint": ckpt_id,
            "checkpoint_fingerprint": checkpoint_fingerprint(run_dir, ckpt_id),
            "data_fingerprint": data_fingerprint, "config": config, "seed": seed}
    prov["key"] = fingerprint(prov)
    return prov


def fresh(path: str | Path, prov: dict[str, Any]) -> dict | None:
    """The stored result at ``path`` when its provenance key matches ``prov``, else None."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return stored if stored.get("provenance", {}).get("key") == prov["key"] else None


def write_result(path: str | Path, payload: dict[str, Any], prov: dict[str, Any]) -> dict:
    """Write ``payload`` + provenance atomically as JSON; returns what was written."""
    out = {**payload, "provenance": prov}
    atomic_write_json(path, out)
    return out


def result_path(run_dir: str | Path, analysis: str, ckpt_id: str, suffix: str = ".json") -> Path:
    return Path(run_dir) / "results" / analysis / f"{ckpt_id}{suffix}"
