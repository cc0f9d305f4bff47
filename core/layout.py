"""The run directory's layout: every path into a run comes from here (docs/ARCHITECTURE.md).

::

    <run>/config.yaml                      resolved configuration
    <run>/data/                            the dataset (DatasetDict + README.md card)
    <run>/corpora/<name>.jsonl             pretraining / CPT text (toy world)
    <run>/checkpoints/<id>/                save_pretrained directory + manifest.json
    <run>/checkpoints/.work-<id>/          resumable training states until <id> is final
    <run>/results/<analysis>/<id>.<ext>    result files with provenance
    <run>/figures/<name>.<ext>             figures; <run>/report.html the report
    <run>/logs/                            tracebacks of unexpected errors
    <run>/.polyfact/                       markers, timings, the file-hash cache and the run lock
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from polyfact.core.errors import PolyFactError

_ID = re.compile(r"[A-Za-z0-9_+.@~-]+")
_POINT = re.compile(r"([A-Za-z0-9_+.@-]+)/step-(\d+)")  # an intermediate state of a training run
MAX_NAME = 100  # every name that becomes a path (ids, languages, tags) stays well below file-name limits


def check_id(name: str, what: str = "checkpoint id") -> str:
    """A checkpoint, run or analysis name: letters, digits and ``-_+.@``, no path separators,
    not ``.`` or ``..`` (so every write stays inside the run directory)."""
    point = _POINT.fullmatch(name) if isinstance(name, str) else None
    if point:
        check_id(point.group(1), what)
        return name
    if not isinstance(name, str) or not _ID.fullmatch(name) or name in (".", "..") or name.startswith("."):
        raise PolyFactError(f"invalid {what} {str(name)[:80]!r}: use letters, digits and -_+.@ (no '/', not starting "
                            "with '.'), e.g. sft or grpo@s1")
    if len(name) > MAX_NAME:
        raise PolyFactError(f"invalid {what} {name[:40]!r}…: {len(name)} characters, at most {MAX_NAME}; "
                            "choose a shorter name")
    return name


def point_id(ckpt: str, step: int) -> str:
    """The id of an intermediate state of ``ckpt``'s training: ``grpo@s0/step-10``."""
    return f"{ckpt}/step-{int(step)}"


def split_point(name: str) -> tuple[str, int | None]:
    """``"grpo@s0/step-10"`` → (``"grpo@s0"``, 10); any other id → (id, None)."""
    m = _POINT.fullmatch(name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def fs_name(name: str) -> str:
    """The file-system name of an id (an intermediate state's ``/`` becomes ``~``)."""
    return check_id(name).replace("/", "~")


def seeded_id(name: str, seed: int | None) -> str:
    """The id of a method's checkpoint for one training seed: ``sft`` + 1 → ``sft@s1``; without a
    seed (a one-seed run) and for the shared ``base``, the name itself."""
    return name if seed is None or name == "base" else f"{name}@s{seed}"


def split_seed(ckpt: str) -> tuple[str, int | None]:
    """``"grpo@s2"`` → (``"grpo"``, 2); an id without a seed → (id, None)."""
    name, sep, seed = ckpt.rpartition("@s")
    return (name, int(seed)) if sep and seed.isdigit() else (ckpt, None)


def planned_ids(methods: list[str], seeds: list[int] | None) -> list[str]:
    """Checkpoint ids a run plans, in order: ``base``, then every method, seed by seed."""
    return ["base", *[seeded_id(m, s) for s in (seeds or [None]) for m in methods]]


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def klar(self) -> Path:
        return self.root / "klar"

    def corpus(self, name: str) -> Path:
        return self.root / "corpora" / f"{check_id(name, 'corpus name')}.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, ckpt_id: str) -> Path:
        return self.checkpoints / fs_name(ckpt_id)

    def manifest(self, ckpt_id: str) -> Path:
        return self.checkpoint(ckpt_id) / "manifest.json"

    def work(self, ckpt_id: str) -> Path:
        """Where a training run keeps its periodic (resumable) states until the checkpoint is final."""
        return self.checkpoints / f".work-{fs_name(ckpt_id)}"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def result_dir(self, analysis: str) -> Path:
        return self.results / check_id(analysis, "analysis name")

    def result(self, analysis: str, ckpt_id: str, suffix: str = ".json") -> Path:
        """``results/<analysis>/<id><suffix>``."""
        return self.result_dir(analysis) / f"{fs_name(ckpt_id)}{suffix}"

    def lape_dir(self, ckpt_id: str, variant: str) -> Path:
        """A checkpoint's LAPE neurons in the study's released format (``lape_results.json``)."""
        return self.result_dir("neurons") / fs_name(ckpt_id) / check_id(variant, "LAPE variant")

    def lahis_dir(self, ckpt_id: str) -> Path:
        """A checkpoint's LAHIS head importance in the study's released format (``lahis_<lang>.pth``)."""
        return self.result_dir("heads") / fs_name(ckpt_id) / "lahis"

    @property
    def summary(self) -> Path:
        return self.results / "summary.json"

    @property
    def routing_summary(self) -> Path:
        return self.result_dir("routing") / "summary.json"

    @property
    def seeds_summary(self) -> Path:
        return self.result_dir("seeds") / "summary.json"

    @property
    def claims(self) -> Path:
        """The study's claims and the controls under the verdict rule."""
        return self.result_dir("seeds") / "claims.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str, suffix: str = ".html") -> Path:
        return self.figures / f"{check_id(name, 'figure name')}{suffix}"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / ".polyfact"

    @property
    def data_marker(self) -> Path:
        return self.state / "data.json"

    @property
    def timings(self) -> Path:
        return self.state / "timings.json"

    @property
    def hash_cache(self) -> Path:
        return self.state / "hashes.json"

    @property
    def lock(self) -> Path:
        return self.state / "run.lock"

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the run (for messages and provenance tables)."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def layout(run_dir: str | os.PathLike | RunLayout) -> RunLayout:
    """The layout of ``run_dir`` (a layout passes through)."""
    return run_dir if isinstance(run_dir, RunLayout) else RunLayout(Path(run_dir))
