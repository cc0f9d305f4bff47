"""Checkpoint directories: ``<run>/checkpoints/<id>/`` (``save_pretrained``) + ``manifest.json``."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import shutil
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from polyfact.errors import PolyFactError
from polyfact.io import atomic_dir, atomic_write_json, fingerprint, read_json

MANIFEST = "manifest.json"
_PACKAGES = ("polyfact", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a checkpoint depends on."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


FINGERPRINT_FIELDS = ("parent", "parent_fingerprint", "method", "family", "data_fingerprint", "config", "seed")


def manifest_fingerprint(manifest: dict[str, Any]) -> str:
    """Hash of everything that determines a checkpoint's weights (parent, method, data, config, seed):
    equal fingerprints mean the same training, so a pipeline can skip it."""
    return fingerprint(json.loads(json.dumps({k: manifest.get(k) for k in FINGERPRINT_FIELDS}, default=str)))


def checkpoint_dir(run_dir: str | os.PathLike, ckpt_id: str) -> Path:
    return Path(run_dir) / "checkpoints" / ckpt_id


def work_dir(run_dir: str | os.PathLike, ckpt_id: str) -> Path:
    """Where a training run keeps its periodic (resumable) states until the checkpoint is final."""
    return Path(run_dir) / "checkpoints" / f".work-{ckpt_id}"


def save_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    run_dir: str | os.PathLike,
    ckpt_id: str,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Write model, tokenizer and manifest atomically; returns the completed manifest.

    The manifest gets ``id``, ``created_at``, ``versions`` and ``fingerprint`` (a hash of
    everything that determines the weights: parent, method, data, config, seed)."""
    manifest = dict(manifest)
    manifest.setdefault("id", ckpt_id)
    manifest["fingerprint"] = manifest_fingerprint(manifest)
    manifest["versions"] = package_versions()
    manifest["created_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with atomic_dir(checkpoint_dir(run_dir, ckpt_id), force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / MANIFEST, manifest)
    shutil.rmtree(work_dir(run_dir, ckpt_id), ignore_errors=True)
    return manifest


def read_manifest(run_dir: str | os.PathLike, ckpt_id: str) -> dict[str, Any]:
    """The manifest of checkpoint ``ckpt_id`` of a run (one-line error when missing)."""
    path = checkpoint_dir(run_dir, ckpt_id) / MANIFEST
    if not path.exists():
        known = list_checkpoints(run_dir)
        raise PolyFactError(
            f"no checkpoint {ckpt_id!r} in {Path(run_dir) / 'checkpoints'} "
            f"(have: {', '.join(known) or 'none'}); train it first"
        )
    return read_json(path, "checkpoint manifest")


def list_checkpoints(run_dir: str | os.PathLike) -> list[str]:
    """Ids of the finished checkpoints of a run."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).exists())
