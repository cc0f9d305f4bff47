"""``polyfact run``: the smoke study end to end, resume after SIGINT, SIGKILL and SIGTERM to the
reference's results (which also shows that the same seed gives the same results in fresh
processes), reruns that skip, bad input."""

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

from tests.helpers import cli, metric_files, one_line_error

PF = [sys.executable, "-m", "polyfact.pipeline.cli"]


def test_smoke_study_end_to_end(smoke_study):
    run_dir, stdout = smoke_study
    assert "PolyFact run summary" in stdout and "stage times" in stdout
    for stage in ("data", "base", "train grpo", "evaluate", "neurons", "heads", "routing", "ablate",
                  "representations", "trajectory", "summary", "report"):
        assert f"[{stage}]" in stdout
    assert stdout.index("[summary]") < stdout.index("[report]")
    ckpts = {p.name for p in (run_dir / "checkpoints").iterdir() if (p / "manifest.json").exists()}
    arms = ["cpt", "sft", "grpo", "cpt+grpo", "grpo-placebo", "sft-oracle"]
    assert ckpts >= {"base", *arms, "sft~step-2", "cpt~step-2", "grpo~step-6", "cpt+grpo~step-6",
                     "grpo-placebo~step-6"}  # each arm's middle state (trajectory.points=1)
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    assert [r["checkpoint"] for r in summary["rows"]] == ["base", *arms]
    html = (run_dir / "report.html").read_text()
    assert html.index("What this run found") < html.index("<table")  # three sentences and a figure first
    assert "<h2>Checkpoints</h2>" in html  # the summary is written before the report reads it
    assert set(json.loads((run_dir / ".polyfact" / "timings.json").read_text())) >= {"data", "base", "summary", "report"}
    assert (run_dir / "report.html").exists() and (run_dir / "config.yaml").exists()
    assert json.loads((run_dir / "checkpoints" / "cpt+grpo" / "manifest.json").read_text())["parent"] == "cpt"
    figures = run_dir / "figures"
    assert sum(p.stat().st_size for p in figures.iterdir()) < 30e6  # one shared plotly.js, not one per figure
    assert "<script src='plotly.min.js'>" in next(figures.glob("lape_*.html")).read_text()


def test_smoke_controls_run_end_to_end(smoke_study):
    """The placebo and the oracle train in the smoke study and are judged by the rule: the placebo
    trained on the same facts with permuted rewards, the oracle also on a quarter of the test facts;
    at one seed nothing is resolved, so the claims carry the caveat that the run cannot answer them."""
    run_dir, stdout = smoke_study
    manifests = {m: json.loads((run_dir / "checkpoints" / m / "manifest.json").read_text())
                 for m in ("grpo", "grpo-placebo", "sft-oracle")}
    assert manifests["grpo-placebo"]["config"]["placebo"] is True
    budget = {m: x["metrics"]["budget"] for m, x in manifests.items()}
    assert budget["grpo-placebo"]["facts_hash"] == budget["grpo"]["facts_hash"]
    oracle = budget["sft-oracle"]
    assert oracle["offered_hash"] == budget["grpo"]["offered_hash"] and oracle["facts"] > oracle["offered"]
    claims = json.loads((run_dir / "results" / "seeds" / "claims.json").read_text())
    ctl = claims["controls"]
    assert ctl["placebo"]["passes"] and not ctl["oracle"]["passes"] and not ctl["answers_claims"]
    assert all(c["verdict"] == "not resolved" and "cannot answer" in c["caveat"] for c in claims["claims"])
    assert "this run cannot answer the claims" in stdout


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
    r = cli("run", "--preset", "paper", "--run", tmp_path / "paper", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    cfg = out["config"]
    assert cfg["budget"]["facts"] == 10_000  # every arm on the same 10K facts, as the study's final runs
    assert cfg["methods"][:4] == ["sft", "dco", "cm-align", "grpo"]
    for section, targets, r in (("sft", 4, 64), ("grpo", 7, 64), ("dco", 7, 128), ("cm_align", 7, 64)):
        lora = cfg[section]["lora"]
        assert (lora["enabled"], lora["r"], lora["alpha"], len(lora["targets"])) == (True, r, 2 * r, targets)
    s = cfg["sft"]  # the study's SFT: letters, lr 2e-5, warm-up 0.05, weight decay 0.01, one epoch, no KL
    assert (s["objective"], s["consistency_weight"], s["train"]["learning_rate"], s["train"]["warmup_ratio"],
            s["train"]["weight_decay"], s["train"]["epochs"]) == ("study", 0.0, 2e-5, 0.05, 0.01, 1.0)
    assert cfg["dco"]["beta"] == 1.0 and cfg["dco"]["train"]["learning_rate"] == 1e-5
    c = cfg["cm_align"]
    assert (c["candidates"], c["beta"], c["nll_weight"], c["encoder"]) == (4, 0.1, 0.0, "sentence-transformers/LaBSE")
    g = cfg["grpo"]
    assert (g["steps"], g["epochs"], g["facts_per_step"], g["num_generations"], g["learning_rate"]) == (None, 1.0, 1, 8, 1e-5)
    assert (g["lr_scheduler"], g["loss_type"], g["scale_rewards"], g["beta"], g["prompt"]) == ("cosine", "grpo", "study", 0.0, "study")
    assert (g["top_k"], g["weight_decay"]) == (50, 0.01)  # the study's sampling
    assert g["reward"]["kind"] == "study" and g["reward"]["bonus_weight"] == 1.0 and g["reward"]["unresolved"] == -0.5
    assert cfg["eval"]["prompt"] == "study"
    a = cfg["analysis"]
    assert (a["max_tokens"], a["seq_len"], a["head_method"], a["head_max_samples"], a["head_seq_len"]) == (
        2_000_000, 1024, "lahis", 500, 512)
    assert a["texts"].startswith("multiway:")
    # every setting is printed beside its value with its help text
    settings = out["settings"]
    assert settings["grpo.learning_rate"]["value"] == 1e-5 and "learning rate" in settings["grpo.learning_rate"]["help"]
    assert all(v["help"] for v in settings.values()), [k for k, v in settings.items() if not v["help"]]
    assert not (tmp_path / "paper").exists()


def test_rerun_skips_every_step(study):
    before = metric_files(study)
    t = time.time()
    r = cli("run", "--run", study)
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in ("data", "base", "train cpt", "train sft", "train grpo", "train cpt+grpo", "evaluate", "neurons",
                  "heads", "routing", "ablate", "representations"):  # the report is always redrawn (stage times)
        assert f"[{stage}] up to date" in r.stdout, r.stdout
    assert metric_files(study) == before
    assert time.time() - t < 60
    r = cli("train", "sft", "--run", study)  # a single command skips current work too ...
    assert r.returncode == 0 and "checkpoint sft is up to date" in r.stdout, r.stdout + r.stderr[-800:]
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "base,sft")
    after = metric_files(study)
    assert r.returncode == 0, r.stderr[-800:]
    assert all(after[f"results/recall/{c}.{x}"] == before[f"results/recall/{c}.{x}"] for c in ("base", "sft")
               for x in ("json", "records.jsonl"))


def _interrupt(cmd: list[str], run_dir: Path, ready, sig: int) -> subprocess.CompletedProcess:
    """Start ``cmd``, send ``sig`` once ``ready()`` holds, and return how it ended."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and not ready():
        time.sleep(0.01)
    assert p.poll() is None, "the run finished before it could be interrupted"
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, p.returncode, "", err)


@pytest.mark.slow  # over 20 s: CI runs it (CI=true or -m slow)
def test_interrupted_run_resumes_to_the_reference(smoke_study, tmp_path):
    """Ctrl-C in training, SIGKILL and SIGTERM in the analyses: each stops the run (130 and 143 with
    one line), and rerunning the same command ends with exactly the reference's result files —
    although every stage ran in fresh processes, with other save steps (not part of fingerprints)."""
    ref, _ = smoke_study
    run = tmp_path / "interrupted"
    cmd = [*PF, "run", "--preset", "smoke", "--run", str(run), "--set", "pretrain.train.save_steps=2"]
    r = _interrupt(cmd, run, lambda: any((run / "checkpoints").glob(".work-*/checkpoint-*/scheduler.pt")),
                   signal.SIGINT)
    assert r.returncode == 130 and r.stderr.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert not (run / "checkpoints" / "sft" / "manifest.json").exists()
    _interrupt(cmd, run, lambda: (run / "results" / "neurons" / "base.json").exists(), signal.SIGKILL)
    r = _interrupt(cmd, run, lambda: (run / "results" / "heads" / "base.json").exists(), signal.SIGTERM)
    assert r.returncode == 143 and r.stderr.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert not (run / "report.html").exists()
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert metric_files(run) == metric_files(ref)


def test_bad_input_is_refused_with_one_line_and_nothing_overwritten(tmp_path):
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
        (["run", "--preset", "huge", "--run", tmp_path / "a"], "unknown preset 'huge'"),
        (["run", "--preset", "smoke", "--config", bad_yaml, "--run", tmp_path / "b"], "bad YAML"),
        (["run", "--preset", "smoke", "--config", unknown, "--run", tmp_path / "c"], "grpo.stepz"),
        (["run", "--preset", "smoke", "--set", "grpo.steps=ten", "--run", tmp_path / "d"], "grpo.steps"),
        (["run", "--preset", "smoke", "--run", a_file / "sub"], "cannot create run directory"),
        (["run", "--preset", "smoke", "--run", old], "incompatible polyfact"),
    ]
    for args, msg in cases:
        one_line_error(cli(*args), msg)
    assert (old / "config.yaml").read_text() == "version: 99\npreset: smoke\n"
    assert not any((tmp_path / x).exists() for x in "abcd")


def test_paper_preset_dry_run_prints_the_plan(tmp_path):
    r = cli("run", "--preset", "paper", "--run", tmp_path / "paper", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Qwen/Qwen2.5-7B" in r.stdout and "accelerate launch --config_file" in r.stdout
    assert "zero3.yaml" in r.stdout and "train grpo" in r.stdout and "polyfact eval checkpoints" in r.stdout
    assert not (tmp_path / "paper").exists()  # a dry run writes nothing


def test_replicate_dry_run_prints_every_arms_budget(tmp_path):
    r = cli("run", "--preset", "replicate", "--run", tmp_path / "rep", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if " facts 40" in line and " steps" in line}
    assert set(lines) == {"sft", "grpo", "grpo-placebo", "sft-oracle", "dco", "cm-align"}
    # the study's SFT: 40 facts, two epochs, 1 fact x 8 accumulated per step; 40 DCO instances, 4 per step
    assert "~10 steps of 8 facts (all languages)" in lines["sft"] and "~10 steps of 4 instances" in lines["dco"]
    assert "30 steps of 2 facts x 8 rollouts" in lines["grpo"] and "30 steps of 2 facts" in lines["grpo-placebo"]
    assert "smallest effect each claim can detect" in r.stdout or "no measured noise" in r.stdout


def test_analyze_commands_on_the_study(study):
    for cmd, expect in (("routing", "change against base"), ("ablate", "diagonal dominance"),
                        ("representations", "language-ID probe")):
        r = cli("analyze", cmd, "--run", study, "--checkpoints", "cpt")
        assert r.returncode == 0, r.stderr[-2000:]
        assert expect in r.stdout
    one_line_error(cli("analyze", "routing", "--run", study, "--checkpoints", "nope"), "no checkpoint 'nope'")


def test_analyze_summary_writes_the_closing_table(study):
    """``polyfact analyze summary``: the run's closing table as a stage of its own (also the last
    stage before the report), written without times so identical runs give identical files."""
    path = study / "results" / "summary.json"
    before = path.read_bytes()
    path.unlink()
    r = cli("analyze", "summary", "--run", study)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "PolyFact run summary" in r.stdout and path.read_bytes() == before


def test_the_interrupt_line_comes_after_every_progress_bar(tmp_path):
    """A signal that stops a command while a progress bar is open (as during weight loading): the
    bar closes first, and ``interrupted; …`` stays the last line of stderr (exit 143)."""
    (tmp_path / "barplugin.py").write_text(
        "import os, signal, time\n"
        "from tqdm.auto import tqdm\n"
        "from polyfact.pipeline.stages import declare_stage\n"
        "def stop(ctx):\n"
        "    bar = tqdm(total=10, desc='Loading weights')\n"
        "    bar.update(1)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "declare_stage('stop-here', stop, 'toy', writes='nothing', printer=(lambda r: None, False))\n")
    env = {**os.environ, "POLYFACT_PLUGINS": "barplugin", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    r = subprocess.run([*PF, "analyze", "stop-here", "--run", str(tmp_path / "run"), "--preset", "smoke"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 143 and "Loading weights" in r.stderr
    assert r.stderr.rstrip("\n").splitlines()[-1] == "interrupted; rerun the same command to resume"
