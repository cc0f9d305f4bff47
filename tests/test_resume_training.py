"""Training resumes after SIGKILL and ends with the same weights as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from polyfact.pipeline.config import resolve
from polyfact.data.make import build_dataset

CMD = [sys.executable, "-m", "polyfact.pipeline.cli", "train", "pretrain", "--preset", "smoke",
       "--set", "pretrain.train.save_steps=3", "--set", "pretrain.train.epochs=8"]


def _run(run: Path) -> subprocess.Popen:
    env = {**os.environ, "POLYFACT_QUIET": "1"}
    return subprocess.Popen([*CMD, "--run", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    cfg = resolve("smoke")
    out = tmp_path_factory.mktemp("d") / "data"
    build_dataset("cldr", out, langs=cfg.data.langs, max_per_relation=cfg.data.max_per_relation)
    return out


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_weights(tmp_path, data_dir):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    for run in (ref, killed):
        run.mkdir()
        (run / "data").symlink_to(data_dir)
    p = _run(ref)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]

    p = _run(killed)
    work = killed / "checkpoints" / ".work-base"
    deadline = time.time() + 120
    while time.time() < deadline and not list(work.glob("checkpoint-*/scheduler.pt")):
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (killed / "checkpoints" / "base").exists()  # nothing final was written
    states = sorted(work.glob("checkpoint-*"))
    assert states, "no intermediate state was saved before the kill"

    p = _run(killed)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    a = load_file(ref / "checkpoints" / "base" / "model.safetensors")
    b = load_file(killed / "checkpoints" / "base" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert not work.exists()  # the work directory is removed once the checkpoint is final
