"""Shared fixtures: paths to ../shared/data (tests skip when absent), a session-wide CLDR build,
and one reference smoke study built once for all xdist workers (under a file lock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("POLYFACT_QUIET", "1")  # no progress bars in test logs
if os.environ.get("PYTEST_XDIST_WORKER"):  # two torch processes with 2 threads each on 2 cores thrash
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that read the reference study run last (it is being built meanwhile). Tests marked
    slow run in CI (``CI=true``) or when asked for (``-m slow``); a local ``pytest -n 2`` skips
    them to stay under five minutes."""
    items.sort(key=lambda item: bool({"smoke_study", "study"} & set(getattr(item, "fixturenames", ()))))
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow (> 20 s on 2 cores): runs in CI (CI=true) or with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not on this machine (shared test data); the test needs it")
    return path


@pytest.fixture(scope="session")
def cldr_data(tmp_path_factory) -> Path:
    """The embedded CLDR dataset, all 22 languages, seed 0, built once per session."""
    from polyfact.data.make import build_dataset

    out = tmp_path_factory.mktemp("cldr") / "data"
    build_dataset("cldr", out, seed=0)
    return out


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A run directory with the smoke preset's dataset and base model, and its config."""
    from polyfact.pipeline.config import resolve
    from polyfact.data.make import build_dataset
    from polyfact.training.methods import train

    run = tmp_path_factory.mktemp("run")
    cfg = resolve("smoke")
    build_dataset("cldr", run / "data", langs=cfg.data.langs, max_per_relation=cfg.data.max_per_relation)
    train("pretrain", run, cfg.pretrain, seed=0)
    return run, cfg


def _session_dir(tmp_path_factory) -> Path:
    """A directory every xdist worker of this session shares (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _study_command(shared_dir: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "polyfact.pipeline.cli", "run", "--preset", "smoke", "--run", str(shared_dir / "smoke-study")]


def _start_study(shared_dir: Path) -> None:
    """Build the reference study in a background process (one torch thread), writing its stdout,
    stderr and exit status beside it; workers wait for the status file only when a test needs it."""
    import subprocess

    with open(shared_dir / "smoke-study.stdout", "w") as out, open(shared_dir / "smoke-study.stderr", "w") as err:
        p = subprocess.Popen(_study_command(shared_dir), stdout=out, stderr=err,
                             env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    (shared_dir / "smoke-study.pid").write_text(str(p.pid))
    import threading

    threading.Thread(target=lambda: (shared_dir / "smoke-study.rc").write_text(str(p.wait())), daemon=True).start()


def pytest_sessionstart(session) -> None:
    """A whole-suite run (the README's command, CI) starts the reference study at once, beside the
    first tests, so no worker sits idle waiting for it."""
    if os.environ.get("PYTEST_XDIST_WORKER") or session.config.args not in ([], ["tests"], [str(ROOT / "tests")]):
        return
    if session.config.getoption("collectonly", False):
        return
    shared_dir = session.config._tmp_path_factory.getbasetemp()
    session.config._polyfact_study = shared_dir
    _start_study(shared_dir)


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The reference study: the smoke preset end to end through the command line, built once per
    session for all workers (in the background when the whole suite runs). Read it only; a test
    that runs commands on it copies it first (``tests.helpers.copy_run``, or the ``study`` fixture)."""
    import subprocess
    import time

    from filelock import FileLock

    shared_dir = _session_dir(tmp_path_factory)
    rc, out, err = (shared_dir / f"smoke-study.{x}" for x in ("rc", "stdout", "stderr"))
    with FileLock(str(shared_dir / "smoke-study.lock")):
        if not (shared_dir / "smoke-study.pid").exists() and not rc.exists():
            r = subprocess.run(_study_command(shared_dir), capture_output=True, text=True, env=os.environ)
            out.write_text(r.stdout)
            err.write_text(r.stderr)
            rc.write_text(str(r.returncode))
    deadline = time.time() + 1800
    while not rc.exists() or not rc.read_text().strip():
        assert time.time() < deadline, "the reference study did not finish in 30 minutes"
        time.sleep(0.5)
    assert rc.read_text().strip() == "0", err.read_text()[-3000:]
    return shared_dir / "smoke-study", out.read_text()


@pytest.fixture()
def study(smoke_study, tmp_path):
    """A private copy of the reference study (probes may damage or rerun it)."""
    from tests.helpers import copy_run

    return copy_run(smoke_study[0], tmp_path / "study")
