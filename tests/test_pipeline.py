"""``polyfact run``: the smoke study end to end, resume after SIGKILL, determinism, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.io import file_digest

PF = [sys.executable, "-m", "pipeline.cli"]
ENV = {**os.environ, "POLYFACT_QUIET": "1"}


def run(*args, **kw):
    return subprocess.run([*PF, *args], capture_output=True, text=True, env=ENV, **kw)


def metric_files(run_dir: Path) -> dict[str, str]:
    """Digest of every result file (metrics, records, statistics) of a run."""
    return {str(p.relative_to(run_dir)): file_digest(p) for p in sorted((run_dir / "results").rglob("*"))
            if p.is_file()}


def test_smoke_study_end_to_end(smoke_study):
    run_dir, stdout = smoke_study
    assert "PolyFact run summary" in stdout and "stage times" in stdout
    for stage in ("data", "base", "train grpo", "evaluate", "neurons", "heads", "routing", "ablate",
                  "representations", "report"):
        assert f"[{stage}]" in stdout
    ckpts = {p.name for p in (run_dir / "checkpoints").iterdir() if (p / "manifest.json").exists()}
    assert ckpts == {"base", "cpt", "sft", "grpo", "cpt+grpo"}
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    assert [r["checkpoint"] for r in summary["rows"]] == ["base", "cpt", "sft", "grpo", "cpt+grpo"]
    assert (run_dir / "report.html").exists() and (run_dir / "config.yaml").exists()
    assert json.loads((run_dir / "checkpoints" / "cpt+grpo" / "manifest.json").read_text())["parent"] == "cpt"


def test_smoke_grpo_updates_the_weights(smoke_study):
    """CI sees a real GRPO update: the smoke preset's rollouts have mixed rewards."""
    from safetensors.torch import load_file

    run_dir, _ = smoke_study
    base = load_file(str(run_dir / "checkpoints" / "base" / "model.safetensors"))
    grpo = load_file(str(run_dir / "checkpoints" / "grpo" / "model.safetensors"))
    assert any(not torch.equal(base[k], grpo[k]) for k in base)
    history = json.loads((run_dir / "checkpoints" / "grpo" / "manifest.json").read_text())["metrics"]["history"]
    assert any(h.get("frac_reward_zero_std", 1.0) < 1.0 for h in history)


def test_paper_preset_pins_the_study_settings(tmp_path):
    r = run("run", "--preset", "paper", "--run", str(tmp_path / "paper"), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    cfg = out["config"]
    for section in ("sft", "grpo"):
        lora = cfg[section]["lora"]
        assert (lora["enabled"], lora["r"], lora["alpha"], len(lora["targets"])) == (True, 64, 128, 7)
        assert cfg[section]["max_facts"] is None
    assert cfg["sft"]["train"]["learning_rate"] == 1e-5 and cfg["sft"]["train"]["lr_scheduler"] == "cosine"
    assert cfg["sft"]["train"]["epochs"] == 1.0
    g = cfg["grpo"]
    assert (g["steps"], g["epochs"], g["facts_per_step"], g["num_generations"], g["learning_rate"]) == (None, 1.0, 1, 8, 1e-5)
    assert (g["lr_scheduler"], g["loss_type"], g["scale_rewards"], g["beta"], g["prompt"]) == ("cosine", "grpo", "study", 0.0, "study")
    assert g["reward"]["kind"] == "study" and g["reward"]["bonus_weight"] == 1.0 and g["reward"]["unresolved"] == -0.5
    assert cfg["eval"]["prompt"] == "study"
    a = cfg["analysis"]
    assert (a["max_tokens"], a["seq_len"], a["head_method"], a["head_max_samples"], a["head_seq_len"]) == (
        2_000_000, 1024, "lahis", 500, 512)
    assert a["texts"].startswith("multiway:")
    assert not (tmp_path / "paper").exists()


def test_rerun_skips_every_step(smoke_study):
    run_dir, _ = smoke_study
    before = metric_files(run_dir)
    t = time.time()
    r = run("run", "--run", str(run_dir))
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in ("data", "base", "train cpt", "train sft", "train grpo", "train cpt+grpo", "evaluate", "neurons",
                  "heads", "routing", "ablate", "representations"):  # the report is always redrawn (stage times)
        assert f"[{stage}] up to date" in r.stdout, r.stdout
    assert metric_files(run_dir) == before
    assert time.time() - t < 60


def test_same_seed_same_metrics(smoke_study, tmp_path):
    run_dir, _ = smoke_study
    other = tmp_path / "again"
    r = run("run", "--preset", "smoke", "--run", str(other))
    assert r.returncode == 0, r.stderr[-2000:]
    assert metric_files(other) == metric_files(run_dir)


def _kill_when(run_dir: Path, ready) -> None:
    p = subprocess.Popen([*PF, "run", "--preset", "smoke", "--run", str(run_dir), "--set",
                          "pretrain.train.save_steps=2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None and not ready():
        time.sleep(0.01)
    assert p.poll() is None, "the run finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


@pytest.mark.parametrize("moment", ["training", "analysis"])
def test_killed_run_resumes_to_identical_results(tmp_path, moment):
    ref = tmp_path / "ref"
    r = run("run", "--preset", "smoke", "--run", str(ref), "--set", "pretrain.train.save_steps=2")
    assert r.returncode == 0, r.stderr[-2000:]
    killed = tmp_path / "killed"
    if moment == "training":
        _kill_when(killed, lambda: any((killed / "checkpoints").glob(".work-*/checkpoint-*/scheduler.pt")))
        assert not (killed / "checkpoints" / "sft" / "manifest.json").exists()
    else:
        _kill_when(killed, lambda: (killed / "results" / "neurons" / "base.json").exists())
        assert not (killed / "report.html").exists()
    r = run("run", "--run", str(killed))
    assert r.returncode == 0, r.stderr[-2000:]
    assert metric_files(killed) == metric_files(ref)


def test_bad_input_is_refused_with_one_line_and_nothing_overwritten(tmp_path, smoke_study):
    run_dir, _ = smoke_study
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("grpo: [steps: 3\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("grpo:\n  stepz: 3\n")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text("version: 99\npreset: smoke\n")
    cases = [
        (["run", "--preset", "huge", "--run", str(tmp_path / "a")], "unknown preset 'huge'"),
        (["run", "--preset", "smoke", "--config", str(bad_yaml), "--run", str(tmp_path / "b")], "bad YAML"),
        (["run", "--preset", "smoke", "--config", str(unknown), "--run", str(tmp_path / "c")], "grpo.stepz"),
        (["run", "--preset", "smoke", "--set", "grpo.steps=ten", "--run", str(tmp_path / "d")], "grpo.steps"),
        (["run", "--preset", "smoke", "--run", str(a_file / "sub")], "cannot create run directory"),
        (["run", "--preset", "smoke", "--run", str(old)], "incompatible polyfact"),
    ]
    for args, msg in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr[-500:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], (args, r.stderr[-500:])
    assert (old / "config.yaml").read_text() == "version: 99\npreset: smoke\n"
    assert not any((tmp_path / x).exists() for x in "abcd")


def test_paper_preset_dry_run_prints_the_plan(tmp_path):
    r = run("run", "--preset", "paper", "--run", str(tmp_path / "paper"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Qwen/Qwen2.5-7B" in r.stdout and "accelerate launch --config_file" in r.stdout
    assert "zero3.yaml" in r.stdout and "train grpo" in r.stdout and "polyfact eval checkpoints" in r.stdout
    assert not (tmp_path / "paper").exists()  # a dry run writes nothing


def test_analyze_commands_on_the_study(smoke_study):
    run_dir, _ = smoke_study
    for cmd, expect in (("routing", "change against base"), ("ablate", "diagonal dominance"),
                        ("representations", "language-ID probe")):
        r = run("analyze", cmd, "--run", str(run_dir), "--checkpoints", "cpt")
        assert r.returncode == 0, r.stderr[-2000:]
        assert expect in r.stdout
    r = run("analyze", "routing", "--run", str(run_dir), "--checkpoints", "nope")
    assert r.returncode == 2 and "no checkpoint 'nope'" in r.stderr
