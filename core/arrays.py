"""Arrays with a JSON sidecar, the one format of the toolkit's array results:
``<path>.safetensors`` (tensors) + ``<path>.json`` (names, metadata and the provenance key), both
written atomically; the sidecar is read through the one cached reader (``polyfact.core.io.read_cached``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_bytes, atomic_write_json, read_cached


def with_suffix(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` + ``suffix`` (``base.stats`` → ``base.stats.safetensors``; dots in the name are kept)."""
    path = Path(path)
    return path.with_name(path.name + suffix)


def save_arrays(path: str | os.PathLike, tensors: dict[str, Any], sidecar: dict[str, Any]) -> Path:
    """Write ``tensors`` and the JSON ``sidecar`` beside each other; returns the tensor file."""
    from safetensors.torch import save as save_bytes

    out = with_suffix(path, ".safetensors")
    atomic_write_bytes(out, save_bytes({k: v.contiguous() for k, v in tensors.items()}))
    atomic_write_json(with_suffix(path, ".json"), sidecar)
    return out


def load_arrays(path: str | os.PathLike, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, sidecar)`` saved at ``path``; a one-line error naming ``what`` and the fix when
    either file is missing, truncated or foreign."""
    tensors_path, sidecar_path = with_suffix(path, ".safetensors"), with_suffix(path, ".json")
    if not tensors_path.exists() or not sidecar_path.exists():
        raise PolyFactError(f"no {what} at {path} (.safetensors + .json); compute it first")
    sidecar = read_cached(sidecar_path)
    if not isinstance(sidecar, dict):
        raise PolyFactError(f"cannot read {what} at {path} (damaged .json); recompute it")
    try:
        from safetensors.torch import load_file

        return load_file(str(tensors_path)), sidecar
    except Exception as err:  # noqa: BLE001 - truncated or foreign files: one line naming them
        raise PolyFactError(f"cannot read {what} at {path} ({type(err).__name__}); recompute it") from None
