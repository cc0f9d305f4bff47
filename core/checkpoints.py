"""Checkpoints of a run: ``checkpoints/<id>/`` (``save_pretrained``) + ``manifest.json``, outside
checkpoints registered by reference, content verification, and loading any Hugging Face causal LM.

A manifest holds ``id, parent, parent_fingerprint, method, family, data_fingerprint, config,
seed`` (what determines the weights; their hash is ``fingerprint``), ``files`` (size and sha256 of
every file written, so damage is detected), ``metrics``, ``versions`` and ``created_at``. An
outside checkpoint (``method: external``) records its ``source`` (a directory or hub id) and a
fingerprint of its safetensors files (or hub revision) instead of copying weights.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_dir, atomic_write_json, fingerprint, read_cached
from polyfact.core.layout import RunLayout, check_id, layout

MANIFEST = "manifest.json"
_PACKAGES = ("polyfact", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers")
FINGERPRINT_FIELDS = ("parent", "parent_fingerprint", "method", "family", "data_fingerprint", "config", "seed",
                      "budget")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a checkpoint depends on."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def manifest_fingerprint(manifest: dict[str, Any]) -> str:
    """Hash of everything that determines a checkpoint's weights (parent, method, data, config, seed):
    equal fingerprints mean the same training, so a pipeline can skip it."""
    return fingerprint(json.loads(json.dumps({k: manifest.get(k) for k in FINGERPRINT_FIELDS}, default=str)))


# ------------------------------------------------------------------------------------ file hashes
def file_hash(path: Path, cache: dict[str, Any] | None = None) -> str:
    """sha256 of a file, reused from ``cache`` while its size and mtime are unchanged."""
    st = path.stat()
    key = str(path.resolve())
    hit = (cache or {}).get(key)
    if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return str(hit["sha256"])
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if cache is not None:
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    return digest


def content_record(folder: Path, pattern: str = "*", cache: dict[str, Any] | None = None) -> dict[str, dict]:
    """``{file: {size, sha256}}`` of a checkpoint directory's files (the manifest aside)."""
    return {p.name: {"size": p.stat().st_size, "sha256": file_hash(p, cache)}
            for p in sorted(folder.glob(pattern)) if p.is_file() and p.name != MANIFEST}


class _HashCache:
    """``.polyfact/hashes.json``: hashes of large files keyed by path, size and mtime."""

    def __init__(self, run: RunLayout) -> None:
        self.path = run.hash_cache
        data = read_cached(self.path)
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self._before = json.dumps(self.data, sort_keys=True)

    def save(self) -> None:
        if json.dumps(self.data, sort_keys=True) != self._before:
            try:
                atomic_write_json(self.path, self.data)
            except PolyFactError:
                pass  # a read-only run still verifies, it just cannot remember hashes


# ------------------------------------------------------------------------------------ run checkpoints
def save_checkpoint(model, tokenizer, run_dir: str | os.PathLike, ckpt_id: str, manifest: dict[str, Any]
                    ) -> dict[str, Any]:
    """Write model, tokenizer and manifest atomically; returns the completed manifest (with
    ``id``, ``fingerprint``, ``files``, ``versions``, ``created_at``). Removes the work directory."""
    run = layout(run_dir)
    manifest = dict(manifest)
    manifest.setdefault("id", check_id(ckpt_id))
    manifest["fingerprint"] = manifest_fingerprint(manifest)
    manifest["versions"] = package_versions()
    manifest["created_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    cache = _HashCache(run)
    with atomic_dir(run.checkpoint(ckpt_id), force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        manifest["files"] = content_record(tmp)
        atomic_write_json(tmp / MANIFEST, manifest)
    cache.save()
    shutil.rmtree(run.work(ckpt_id), ignore_errors=True)
    return manifest


def read_manifest(run_dir: str | os.PathLike, ckpt_id: str) -> dict[str, Any]:
    """The manifest of checkpoint ``ckpt_id`` of a run (one-line error when missing or damaged)."""
    run = layout(run_dir)
    data = read_cached(run.manifest(ckpt_id))
    if not isinstance(data, dict):
        known = list_checkpoints(run)
        state = "is damaged (unreadable manifest)" if run.manifest(ckpt_id).exists() else "does not exist"
        raise PolyFactError(f"checkpoint {ckpt_id!r} in {run.checkpoints} {state} (have: {', '.join(known) or 'none'}); "
                            f"train it (polyfact train ... --id {ckpt_id}) or register one (polyfact checkpoints add)")
    return data


def list_checkpoints(run_dir: str | os.PathLike) -> list[str]:
    """Ids of the checkpoints of a run (trained or registered)."""
    root = layout(run_dir).checkpoints
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir()
                  if not p.name.startswith(".") and "~" not in p.name and (p / MANIFEST).exists())


def list_points(run_dir: str | os.PathLike, ckpt_id: str) -> list[tuple[int, str]]:
    """``(step, id)`` of the intermediate states a training run of ``ckpt_id`` kept, by step."""
    from polyfact.core.layout import point_id

    root = layout(run_dir).checkpoints
    prefix = f"{ckpt_id}~step-"
    steps = [int(p.name[len(prefix):]) for p in root.glob(f"{ckpt_id}~step-*")
             if p.name[len(prefix):].isdigit() and (p / MANIFEST).exists()] if root.exists() else []
    return [(s, point_id(ckpt_id, s)) for s in sorted(steps)]


def checkpoint_problem(run_dir: str | os.PathLike, ckpt_id: str) -> str | None:
    """Why checkpoint ``ckpt_id`` cannot be used as it is (missing or changed files, unreadable
    manifest), or None when it is intact. Hashes are cached by size and mtime."""
    run = layout(run_dir)
    manifest = read_cached(run.manifest(ckpt_id))
    if not isinstance(manifest, dict):
        return f"{run.relative(run.manifest(ckpt_id))} is missing or unreadable"
    if manifest.get("method") == "external":
        return None if manifest.get("source") else "its manifest names no source"
    folder = run.checkpoint(ckpt_id)
    if not any((folder / f).exists() for f in ("config.json", "adapter_config.json")):
        return f"{run.relative(folder / 'config.json')} is missing"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return None  # written before content records existed: trust the manifest
    cache = _HashCache(run)
    try:
        for name, rec in files.items():
            p = folder / name
            if not p.is_file():
                return f"{run.relative(p)} is missing"
            if p.stat().st_size != rec.get("size"):
                return f"{run.relative(p)} has {p.stat().st_size} bytes, {rec.get('size')} were written"
            if file_hash(p, cache.data) != rec.get("sha256"):
                return f"{run.relative(p)} changed since it was written"
    finally:
        cache.save()
    return None


def checkpoint_current(run_dir: str | os.PathLike, ckpt_id: str, expected: str, note=None) -> bool:
    """True when checkpoint ``ckpt_id`` exists, was made with fingerprint ``expected`` and its
    files are intact; a damaged checkpoint is reported through ``note`` and counts as stale."""
    run = layout(run_dir)
    manifest = read_cached(run.manifest(ckpt_id))
    if not isinstance(manifest, dict):
        if run.checkpoint(ckpt_id).exists() and note:
            note(f"checkpoint {ckpt_id}: manifest is missing or unreadable; retraining it")
        return False
    if manifest.get("fingerprint") != expected:
        return False
    problem = checkpoint_problem(run, ckpt_id)
    if problem:
        if note:
            note(f"checkpoint {ckpt_id}: {problem}; retraining it")
        return False
    return True


def checkpoint_fingerprint(run_dir: str | os.PathLike, ckpt_id: str) -> str:
    """The fingerprint of a run checkpoint (an outside model not registered: a hash of its name)."""
    manifest = read_cached(layout(run_dir).manifest(ckpt_id)) if _is_id(ckpt_id) else None
    if isinstance(manifest, dict) and manifest.get("fingerprint"):
        return str(manifest["fingerprint"])
    return fingerprint({"external": str(ckpt_id)})


def _is_id(name: str) -> bool:
    try:
        check_id(name)
        return True
    except PolyFactError:
        return False


def start_work(run_dir: str | os.PathLike, ckpt_id: str, key: str) -> Path:
    """The work directory of a training run (resumable states), kept only when it was made with
    settings fingerprint ``key``; a state of other settings is discarded with a note."""
    run = layout(run_dir)
    work = run.work(ckpt_id)
    stamp = work / "settings.json"
    if work.exists():
        stored = read_cached(stamp)
        if not (isinstance(stored, dict) and stored.get("key") == key):
            note(f"discarding the resume state of {ckpt_id} in {run.relative(work)}: it was made with other settings")
            shutil.rmtree(work, ignore_errors=True)
    if not work.exists():
        atomic_write_json(stamp, {"key": key, "checkpoint": ckpt_id})
    return work


# ------------------------------------------------------------------------------------ outside checkpoints
_HUB_ID = __import__("re").compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")


def check_source(source: str) -> Path | None:
    """A model directory (checked: it exists, is a directory, no symlink loop, has ``config.json``
    and a usable tokenizer), or None for a well-formed hub id; anything else is a one-line error."""
    path = Path(source).expanduser()
    looks_local = path.exists() or source.startswith((".", "/", "~")) or os.sep + os.sep in source \
        or (len(path.parts) > 1 and Path(path.parts[0]).exists()) or not _HUB_ID.fullmatch(source)
    if not looks_local:
        return None
    try:
        path = path.resolve(strict=True)
    except FileNotFoundError:
        raise PolyFactError(f"no model directory {source}; pass an existing save_pretrained directory or a hub id "
                            "(owner/name)") from None
    except (RuntimeError, OSError) as err:
        raise PolyFactError(f"{source} cannot be resolved ({type(err).__name__}: a symlink loop?); pass the model "
                            "directory itself") from None
    if not path.is_dir():
        raise PolyFactError(f"{source} is a file, not a model directory; pass the save_pretrained directory")
    if not (path / "config.json").exists():
        raise PolyFactError(f"{source} has no config.json; it is not a saved model (save_pretrained) directory")
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")):
        raise PolyFactError(f"{source} has no tokenizer files (tokenizer.json, vocab.json, …); save the tokenizer "
                            "with the model (tokenizer.save_pretrained)")
    return path


def source_fingerprint(source: str, revision: str | None = None, cache: dict | None = None) -> dict[str, Any]:
    """What identifies an outside model: the safetensors files' sizes and hashes of a local
    directory (``cache``: hashes reused by size and mtime), or a hub id with its revision (the
    commit, when the hub or its cache tells it)."""
    if revision is not None and Path(source).expanduser().exists():
        raise PolyFactError(f"{source} is a local directory, which has no revisions; drop --revision {revision}")
    path = check_source(source)
    if path is not None:
        weights = content_record(path, "*.safetensors", cache)
        if not weights:
            raise PolyFactError(f"{path} has no *.safetensors weights; save the model with safe_serialization=True")
        record = {"source": str(path.resolve()), "weights": weights,
                  "config_sha256": file_hash(path / "config.json")}
        return {**record, "fingerprint": fingerprint({"weights": weights, "config": record["config_sha256"]})}
    revision = _hub_revision(source, revision)
    if revision.startswith("unresolved"):
        raise PolyFactError(f"{source!r} is neither a local model directory nor a hub model this machine can resolve "
                            f"({revision}); pass an existing directory, or download the model first")
    return {"source": source, "revision": revision, "fingerprint": fingerprint({"hub": source, "revision": revision})}


def _hub_revision(repo_id: str, revision: str | None = None) -> str:
    """The commit of a hub model (at ``revision``, a commit or a ref, when given): from the local
    cache when offline, else from the hub; ``unresolved (…)`` when neither knows it, so a revision
    that does not exist is never registered."""
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if repo.repo_id == repo_id and repo.revisions:
                for r in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
                    if revision is None or revision == r.commit_hash or revision in r.refs:
                        return r.commit_hash
    except Exception:  # noqa: BLE001 - no cache is fine
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "unresolved (offline" + (f"; revision {revision} is not in the cache)" if revision else ")")
    try:
        from huggingface_hub import model_info

        return str(model_info(repo_id, revision=revision).sha)
    except Exception as err:  # noqa: BLE001
        return f"unresolved ({type(err).__name__})"


def register_external(run_dir: str | os.PathLike, ckpt_id: str, source: str, *, parent: str | None = None,
                      revision: str | None = None) -> dict[str, Any]:
    """Register an outside checkpoint (directory or hub id) in a run without copying its weights.
    Re-registering the same source is a no-op; another source under the same id is an error."""
    run = layout(run_dir)
    check_id(ckpt_id)
    cache = _HashCache(run)
    try:
        rec = source_fingerprint(source, revision, cache.data)
    finally:
        cache.save()
    old = read_cached(run.manifest(ckpt_id))
    if isinstance(old, dict):
        if old.get("method") == "external" and old.get("fingerprint") == rec["fingerprint"]:
            return old
        raise PolyFactError(f"checkpoint {ckpt_id!r} already exists in {run.checkpoints} "
                            f"({old.get('method')}, {old.get('source', 'trained here')}); choose another --id")
    manifest = {"id": ckpt_id, "parent": parent, "method": "external", "external": True, "family": _family_of(source),
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **rec}
    atomic_write_json(run.manifest(ckpt_id), manifest)
    return manifest


def refresh_external(run_dir: str | os.PathLike, ckpt_id: str) -> bool:
    """Re-check a registered outside directory's weights (hashes cached by size and mtime): when they
    changed since registration, record the new fingerprint (so results computed from the old weights
    are stale and recompute) and say so; True when it changed."""
    run = layout(run_dir)
    manifest = read_cached(run.manifest(ckpt_id))
    if not isinstance(manifest, dict) or manifest.get("method") != "external" or "weights" not in manifest:
        return False
    cache = _HashCache(run)
    try:
        rec = source_fingerprint(str(manifest["source"]), cache=cache.data)
    finally:
        cache.save()
    if rec["fingerprint"] == manifest.get("fingerprint"):
        return False
    note(f"the weights of {ckpt_id} ({manifest['source']}) changed since it was registered; its results recompute")
    atomic_write_json(run.manifest(ckpt_id), {**manifest, **rec})
    return True


def external_id(source: str) -> str:
    """A checkpoint id for an outside model: its directory or hub name, made a valid id."""
    import re

    name = Path(source.rstrip("/")).name or "model"
    name = re.sub(r"[^A-Za-z0-9_+.@-]+", "-", name).strip("-.") or "model"
    return name


def _family_of(source: str) -> str:
    cfg = read_cached(Path(source) / "config.json") if Path(source).is_dir() else None
    return str(cfg.get("model_type", "unknown")) if isinstance(cfg, dict) else "unknown"


# ------------------------------------------------------------------------------------ loading
def resolve_checkpoint(path_or_id: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> str:
    """A run's checkpoint id (``base``) → its directory (or, for a registered outside model, its
    source); a directory → itself; anything else with a ``/`` is passed on as a hub id."""
    s = str(path_or_id)
    if run_dir is not None and _is_id(s):
        run = layout(run_dir)
        if any((run.checkpoint(s) / f).exists() for f in ("config.json", "adapter_config.json")):
            return str(run.checkpoint(s))
        manifest = read_cached(run.manifest(s))
        if isinstance(manifest, dict) and manifest.get("source"):
            return str(manifest["source"])
    if Path(s).is_dir():
        if not (Path(s) / "config.json").exists():
            raise PolyFactError(f"{s} has no config.json; it is not a saved model (save_pretrained) directory")
        return s
    if run_dir is not None and "/" not in s:
        raise PolyFactError(
            f"no checkpoint {s!r} in {layout(run_dir).checkpoints}; train it first "
            f"(polyfact train ... --id {s}), register one (polyfact checkpoints add) or pass a model directory"
        )
    return s


def load_checkpoint(
    path_or_id: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    *,
    dtype: str | torch.dtype = "auto",
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
):
    """Load a causal LM and its tokenizer: a run checkpoint id, a local directory, or a hub id
    such as ``Qwen/Qwen2.5-7B`` (bf16 on a GPU machine, fp32 on CPU).

    Weights load through safetensors; remote code runs only when ``trust_remote_code`` is set.
    A run checkpoint whose files were damaged is a one-line error naming the file."""
    from transformers import AutoModelForCausalLM

    if run_dir is not None and _is_id(str(path_or_id)) and layout(run_dir).manifest(str(path_or_id)).exists():
        problem = checkpoint_problem(run_dir, str(path_or_id))
        if problem:
            raise PolyFactError(f"checkpoint {path_or_id} is damaged: {problem}; retrain it "
                                f"(polyfact run resumes it) or delete {layout(run_dir).checkpoint(str(path_or_id))}")
    where = resolve_checkpoint(path_or_id, run_dir)
    if dtype == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    adapter = Path(where) / "adapter_config.json"
    if adapter.exists():  # an intermediate state of a LoRA arm: its parent with the adapter merged in
        point = read_cached(Path(where) / MANIFEST)
        parent = point.get("parent") if isinstance(point, dict) else None
        if not parent:
            raise PolyFactError(f"{where} holds a LoRA adapter without a manifest naming its base; it cannot be loaded")
        from peft import PeftModel

        base, tokenizer = load_checkpoint(parent, run_dir, dtype=dtype, device_map=device_map)
        return PeftModel.from_pretrained(base, where).merge_and_unload().eval(), tokenizer
    try:
        tokenizer = _load_tokenizer(where, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except Exception as err:  # noqa: BLE001 - truncated weights, mismatched shapes, broken configs: one line
        first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise PolyFactError(f"cannot load model {where!r} ({type(err).__name__}: {first}); check the directory's "
                            "weights, config.json and tokenizer files") from None
    if len(tokenizer("The capital of France is Paris.", add_special_tokens=False)["input_ids"]) == 0:
        raise PolyFactError(f"the tokenizer of {where!r} encodes text to no tokens; save a usable tokenizer with the "
                            "model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise PolyFactError(
            f"tokenizer of {where} has {len(tokenizer)} tokens but the model embeds "
            f"{model.get_input_embeddings().num_embeddings}: tokenizer/model mismatch; save them together"
        )
    model.eval()
    return model, tokenizer


def _load_tokenizer(where: str, trust_remote_code: bool):
    """A tokenizer saved from a plain ``PreTrainedTokenizerFast`` (our toy tokenizers) is reloaded
    as one, so ``tokenizer.json`` is used exactly; ``AutoTokenizer`` would pick the model family's
    tokenizer class (e.g. ``Qwen2Tokenizer``), which rebuilds its own pre-tokenization."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = read_cached(Path(where) / "tokenizer_config.json")
    if isinstance(cfg, dict) and cfg.get("tokenizer_class") in ("TokenizersBackend", "PreTrainedTokenizerFast"):
        return PreTrainedTokenizerFast.from_pretrained(where)
    return AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)


def model_family(model) -> str:
    """The ``model_type`` of a transformers model (``qwen2``, ``olmo2``, ``llama``…)."""
    return str(getattr(model.config, "model_type", "unknown"))


def note(message: str) -> None:
    """A one-line note on stderr (stale artifacts rebuilt, resume states discarded)."""
    print(f"note: {message}", file=sys.stderr, flush=True)
