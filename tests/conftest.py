"""Shared fixtures: paths to ../shared/data (tests skip when absent) and a session-wide CLDR build."""

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
if os.environ.get("PYTEST_XDIST_WORKER"):  # two torch processes with 2 threads each on 2 cores thrash
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not on this machine (shared test data); the test needs it")
    return path


@pytest.fixture(scope="session")
def cldr_data(tmp_path_factory) -> Path:
    """The embedded CLDR dataset, all 22 languages, seed 0, built once per session."""
    from polyfact.make import build_dataset

    out = tmp_path_factory.mktemp("cldr") / "data"
    build_dataset("cldr", out, seed=0)
    return out


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A run directory with the smoke preset's dataset and base model, and its config."""
    from pipeline.config import resolve
    from polyfact.make import build_dataset
    from training.methods import train

    run = tmp_path_factory.mktemp("run")
    cfg = resolve("smoke")
    build_dataset("cldr", run / "data", langs=cfg.data.langs, max_per_relation=cfg.data.max_per_relation)
    train("pretrain", run, cfg.pretrain, seed=0)
    return run, cfg


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The whole study with the smoke preset, end to end, through the command line."""
    import subprocess
    import sys

    run = tmp_path_factory.mktemp("study") / "smoke"
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--preset", "smoke", "--run", str(run)],
                       capture_output=True, text=True, env={**os.environ, "POLYFACT_QUIET": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return run, r.stdout
