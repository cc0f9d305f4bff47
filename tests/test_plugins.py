"""Extension by declaration: a training method and an analysis declared in a module of the test's
own (nothing in the toolkit names them) run through ``polyfact run`` and ``polyfact analyze``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent('''
    """A toy plugin: a method with its own settings section (SFT at a share of the learning rate)
    and an analysis (the L2 norm of each checkpoint's weights)."""
    import dataclasses

    from polyfact.core.layout import layout
    from polyfact.core.provenance import provenance, write_result
    from polyfact.core.settings import setting
    from polyfact.pipeline.stages import declare_stage
    from polyfact.training.config import SftConfig
    from polyfact.training.methods import METHODS, SECTIONS


    @dataclasses.dataclass
    class ShareConfig(SftConfig):
        lr_share: float = setting(0.5, help="the share of the SFT learning rate", gt=0, le=1)


    def share_lr_sft(run_dir, cfg, **kw):
        from polyfact.training.sft import sft

        train = dataclasses.replace(cfg.train, learning_rate=cfg.train.learning_rate * cfg.lr_share)
        return sft(run_dir, dataclasses.replace(cfg, train=train), **kw)


    SECTIONS.add("sft_share", "toy: SFT at a share of the learning rate", "toyplugin:ShareConfig")
    METHODS.add("sft-half", "toy: SFT at a share of the learning rate", "toyplugin:share_lr_sft", section="sft_share",
                objective="mean_accuracy")


    def weight_norm(ctx):
        import torch
        from polyfact.core.checkpoints import load_checkpoint

        out = {}
        for c in ctx.ids():
            model, _ = load_checkpoint(c, ctx.run.root)
            norm = float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))
            prov = provenance(ctx.run.root, c, analysis="weight-norm", data_fingerprint=None, config={}, seed=0)
            out[c] = write_result(layout(ctx.run.root).result("weight-norm", c), {"checkpoint": c, "norm": norm}, prov)
        return out


    def show(res):
        print("weight norms:", {c: round(r["norm"], 4) for c, r in res.items()})


    declare_stage("weight-norm", weight_norm, "the L2 norm of every checkpoint's weights (a toy analysis)",
                  writes="results/weight-norm/<id>.json", command="polyfact analyze weight-norm --run {r}",
                  printer=(show, False))
''')


def polyfact(tmp_path: Path, *args: str, plugins: str = "toyplugin") -> subprocess.CompletedProcess:
    env = {**os.environ, "POLYFACT_PLUGINS": plugins, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "polyfact.pipeline.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path)


def test_a_declared_method_and_analysis_run_through_polyfact_run(tmp_path):
    (tmp_path / "toyplugin.py").write_text(PLUGIN)
    run = tmp_path / "run"
    sets = ["--set", "methods=[sft,sft-half]", "--set", "trajectory.points=0", "--set", "sft_share.lr_share=0.25",
            "--set", "sft_share.train={epochs: 1.0, max_steps: 4, save_steps: 1000}", "--set", "sft_share.eval_max_facts=8"]
    dry = polyfact(tmp_path, "run", "--preset", "smoke", "--run", str(run), "--dry-run", *sets)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "sft-half" in dry.stdout and "polyfact analyze weight-norm" in dry.stdout
    table = json.loads(polyfact(tmp_path, "run", "--preset", "smoke", "--run", str(run), "--dry-run", "--json",
                                *sets).stdout)["settings"]
    assert table["sft_share.lr_share"]["value"] == 0.25 and "share" in table["sft_share.lr_share"]["help"]
    r = polyfact(tmp_path, "run", "--preset", "smoke", "--run", str(run), *sets)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((run / "checkpoints" / "sft-half" / "manifest.json").read_text())
    assert manifest["method"] == "sft-half" and manifest["config"]["train"]["learning_rate"] == pytest.approx(
        json.loads((run / "checkpoints" / "sft" / "manifest.json").read_text())["config"]["train"]["learning_rate"] * 0.25)
    norms = {c: json.loads((run / "results" / "weight-norm" / f"{c}.json").read_text())["norm"]
             for c in ("base", "sft", "sft-half")}
    from safetensors.torch import load_file

    for c, norm in norms.items():  # the analysis's number, against the weights on disk
        weights = load_file(str(run / "checkpoints" / c / "model.safetensors"))
        assert norm == pytest.approx(float(sum((w.double() ** 2).sum() for w in weights.values())) ** 0.5, rel=1e-6)
    assert len(set(norms.values())) == 3
    assert (run / "results" / "recall" / "sft-half.json").exists()  # the declared method is an arm like any other
    shown = polyfact(tmp_path, "analyze", "weight-norm", "--run", str(run))
    assert shown.returncode == 0 and "weight norms:" in shown.stdout, shown.stderr[-2000:]
    assert "sft-half" in polyfact(tmp_path, "train", "--help").stdout  # the command's choices include it


def test_a_method_on_an_undeclared_section_is_one_line(tmp_path):
    (tmp_path / "nosection.py").write_text(
        "from polyfact.training.methods import METHODS\n"
        "METHODS.add('x', 'toy', 'polyfact.training.sft:sft', section='nope')\n")
    r = polyfact(tmp_path, "run", "--preset", "smoke", "--run", str(tmp_path / "run"), "--dry-run", plugins="nosection")
    assert r.returncode == 2 and not (tmp_path / "run").exists()
    assert r.stderr.strip().splitlines() == [
        "error: method 'x' reads the settings section 'nope', which is not declared; add SECTIONS.add('nope', help, "
        "'module:SettingsClass') beside its METHODS.add (polyfact.training.methods)"]


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('no GPU here')\n")
    r = polyfact(tmp_path, "--help", plugins="broken")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: plugin 'broken' failed to import (RuntimeError: no GPU here); fix it or remove it from "
        "POLYFACT_PLUGINS / the polyfact.plugins entry points"]


def test_a_section_named_like_a_run_setting_is_one_line(tmp_path):
    (tmp_path / "clash.py").write_text(
        "from polyfact.training.methods import SECTIONS\n"
        "SECTIONS.add('eval', 'toy', 'polyfact.training.config:SftConfig')\n")
    r = polyfact(tmp_path, "run", "--preset", "smoke", "--run", str(tmp_path / "run"), "--dry-run", plugins="clash")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: settings section 'eval' is a name the run config already uses; declare it under another name "
        "(SECTIONS.add)"]
