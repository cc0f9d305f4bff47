"""Trajectories: the half-change step and the order-of-events test by hand, step parsing, an arm of
the reference study that keeps an intermediate state (analyzed, resumable, loadable in the
notebook), a series of tiny Llama checkpoints without manifests ordered by step, and the bad
input the issue names (each a one-line error, exit 2, earlier results intact)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from polyfact.core.errors import PolyFactError
from tests.families import tiny_model
from tests.helpers import cli, metric_files, one_line_error
from polyfact.training.models import train_tokenizer

FAST = ["--set", "analysis.shards=2", "--set", "analysis.max_tokens=400", "--set", "analysis.head_max_tokens=200",
        "--set", "analysis.backend=torch", "--set", "analysis.seq_len=32", "--set", "routing.bootstrap=20",
        "--set", "routing.permutations=20"]
TEXTS = {"en": ["the capital of france is paris", "the capital of italy is rome"] * 6,
         "de": ["die hauptstadt von frankreich ist paris", "die hauptstadt von italien ist rom"] * 6}


def test_half_step_by_hand():
    from polyfact.analyses.trajectory import half_step

    assert half_step([0, 0.5, 1], [0, 2, 2]) == pytest.approx(0.25)  # half of +2 reached halfway to 0.5
    assert half_step([0, 0.5, 1], [4, 3, 0]) == pytest.approx(0.5 + 0.5 / 3)  # falling: 2 is 1/3 past 3 → 0
    assert half_step([0, 0.25, 1], [1, 1, 1]) is None  # no change, no half step
    assert half_step([0, 1], [0, float("nan")]) is None
    assert half_step([0, 0.5, 1], [0, -1, 1]) == pytest.approx(0.875)  # away first; 0.5 is 3/4 from -1 to 1


def test_order_of_events_by_hand():
    from polyfact.analyses.trajectory import order_of_events

    spec, cons = [0.2, 0.3, 0.25], [0.6, 0.7, 0.5]  # d = -0.4, -0.4, -0.25: specialization moves first
    out = order_of_events(spec, cons)
    d = [-0.4, -0.4, -0.25]
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert out["mean"] == pytest.approx(mean) and out["ci"] == pytest.approx([mean - half, mean + half])
    t = mean / (sd / math.sqrt(3))
    from scipy.stats import t as tdist

    assert out["p_value"] == pytest.approx(2 * tdist.sf(abs(t), 2))
    assert out["earlier_first"] == 3 and out["reading"].startswith("specialization moves before consistency")
    mixed = order_of_events([0.2, 0.8, 0.5], [0.5, 0.5, 0.5])  # signs disagree: no verdict
    assert mixed["reading"].startswith("no evidence which moves first")
    assert "not testable" in order_of_events([0.2, None], [0.5, 0.4])["reading"]


def test_steps_are_parsed_from_names_and_kept_evenly():
    from polyfact.analyses.trajectory import order_by_step, step_of
    from polyfact.training.arms import trajectory_steps

    assert step_of("runs/x/checkpoint-500") == 500 and step_of("grpo-s5000") == 5000
    assert step_of("org/model@step1000") == 1000 and step_of("/ckpts/step-20/") == 20 and step_of("final") is None
    assert order_by_step(["a/step-20", "b/checkpoint-5", "c-s10"]) == [(5, "b/checkpoint-5"), (10, "c-s10"),
                                                                     (20, "a/step-20")]
    with pytest.raises(PolyFactError, match="'final' states no step"):
        order_by_step(["a/step-2", "final"])
    with pytest.raises(PolyFactError, match="state the same step 2"):
        order_by_step(["a/step-2", "b/checkpoint-2"])
    assert trajectory_steps(12, 2) == [4, 8] and trajectory_steps(4, 1) == [2] and trajectory_steps(9, 0) == []


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Three states of a tiny Llama (perturbed further each time) saved without manifests, named by
    step out of order, one tiny Mistral, and a text folder."""
    root = tmp_path_factory.mktemp("series")
    tok = train_tokenizer([t for v in TEXTS.values() for t in v] * 4, vocab_size=300)
    model = tiny_model("llama", tok)
    dirs = {}
    for name in ("run-a/checkpoint-0", "run-b/checkpoint-10", "run-c/checkpoint-5"):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        dirs[name] = root / name
    other = tiny_model("mistral", tok, num_hidden_layers=3)
    other.save_pretrained(root / "other/checkpoint-7")
    tok.save_pretrained(root / "other/checkpoint-7")
    dirs["other"] = root / "other/checkpoint-7"
    texts = root / "texts"
    texts.mkdir()
    for lang, items in TEXTS.items():
        (texts / f"{lang}.txt").write_text("\n".join(items) + "\n")
    return dirs, texts


def test_a_series_of_checkpoints_without_manifests_by_step(series, tmp_path):
    dirs, texts = series
    run = tmp_path / "run"
    items = ",".join(str(dirs[n]) for n in ("run-a/checkpoint-0", "run-b/checkpoint-10", "run-c/checkpoint-5"))
    r = cli("analyze", "trajectory", "--run", run, "--checkpoints", items, "--order", "step", "--name", "llama",
            "--texts", f"files:{texts}", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((run / "results" / "trajectory" / "llama.json").read_text())
    assert [p["step"] for p in res["points"]] == [0, 5, 10]
    assert [p["checkpoint"] for p in res["points"]] == ["checkpoint-0", "checkpoint-5", "checkpoint-10"]
    assert res["reference"] == res["points"][0]["checkpoint"]  # no base in the run: the series' start
    first, *rest = res["points"]
    assert first["neuron_kappa"] == 0.0 and first["head_kappa"] == 0.0
    assert all(set(p) >= {"lape_total", "head_overlap", "calibrated_neurons", "neuron_kappa", "head_kappa"}
               for p in res["points"])
    assert any(p["neuron_kappa"] != 0.0 for p in rest)  # perturbed weights: a measured change
    assert "trajectory of the series llama" in r.stdout
    before = metric_files(run)
    again = cli("analyze", "trajectory", "--run", run, "--checkpoints", items, "--order", "step", "--name", "llama",
                "--texts", f"files:{texts}", *FAST)
    assert again.returncode == 0 and metric_files(run) == before  # every point skipped when fresh

    # bad input: one line, exit 2, earlier results intact
    one_line_error(cli("analyze", "trajectory", "--run", run, "--checkpoints", str(dirs["run-a/checkpoint-0"]),
                       "--texts", f"files:{texts}", *FAST), "two or more checkpoints")
    dup = f"{dirs['run-a/checkpoint-0']},{dirs['run-b/checkpoint-10']},{dirs['run-b/checkpoint-10']}"
    one_line_error(cli("analyze", "trajectory", "--run", run, "--checkpoints", dup, "--order", "step",
                       "--texts", f"files:{texts}", *FAST), "more than once")
    renamed = tmp_path / "final"
    shutil.copytree(dirs["run-a/checkpoint-0"], renamed)
    one_line_error(cli("analyze", "trajectory", "--run", run, "--checkpoints", f"{dirs['run-b/checkpoint-10']},{renamed}",
                       "--order", "step", "--texts", f"files:{texts}", *FAST), "states no step")
    mixed = f"{dirs['run-a/checkpoint-0']},{dirs['other']}"
    one_line_error(cli("analyze", "trajectory", "--run", run, "--checkpoints", mixed, "--texts", f"files:{texts}",
                       *FAST), "a trajectory follows one architecture")
    assert metric_files(run) == before


def test_every_arm_of_the_study_keeps_its_middle_state_and_it_is_analyzed(smoke_study):
    from polyfact.core.checkpoints import read_manifest
    from polyfact.core.run import Run

    study, out = smoke_study  # the smoke preset keeps one state per arm (trajectory.points=1)
    manifest = read_manifest(study, "sft")
    total = manifest["metrics"]["budget"]["steps"]
    point = f"sft/step-{total // 2}"
    kept = read_manifest(study, point)
    assert kept["parent"] == "base" and kept["point"] == {"of": "sft", "step": total // 2,
                                                         "of_fingerprint": manifest["fingerprint"]}
    assert (study / "checkpoints" / f"sft~step-{total // 2}" / "model.safetensors").exists()
    assert total // 2 in [p["step"] for p in manifest["metrics"]["curve"]]  # the curve is measured there too
    assert read_manifest(study, "cpt+grpo/step-6")["parent"] == "cpt"
    res = json.loads((study / "results" / "trajectory" / "sft.json").read_text())
    assert [(p["step"], p["checkpoint"]) for p in res["points"]] == [(0, "base"), (total // 2, point), (total, "sft")]
    assert res["reference"] == "base" and res["points"][0]["neuron_kappa"] == 0.0
    assert all("test_accuracy" in p and "total_consistency" in p for p in res["points"])  # behavior beside it
    base = json.loads((study / "results" / "neurons" / "base.json").read_text())
    assert res["points"][0]["lape_total"] == sum(base["variants"]["polyfact"]["counts"].values())
    summary = Run(study).trajectory("sft")
    assert summary["n_seeds"] == 1 and len(summary["points"]["neuron_kappa"]) == 3
    assert "not testable" in summary["order"]["reading"]
    assert set(Run(study).trajectory()["methods"]) == {"sft", "cpt", "grpo", "cpt+grpo", "grpo-placebo", "sft-oracle"}
    assert "greedy_reward" in Run(study).trajectory("grpo")["points"]
    report = (study / "report.html").read_text()
    assert "Which moves first" in report and "How specialization moves during training" in report


def test_trajectory_bad_input_leaves_results_intact(study):
    from polyfact.core.checkpoints import read_manifest

    total = read_manifest(study, "sft")["metrics"]["budget"]["steps"]
    before = metric_files(study)
    r = cli("analyze", "trajectory", "--run", study, "--methods", "sft")
    assert r.returncode == 0 and metric_files(study) == before  # every point skipped when fresh
    # a missing intermediate state: named, with the fix
    shutil.move(str(study / "checkpoints" / f"sft~step-{total // 2}"), str(study / "moved"))
    one_line_error(cli("analyze", "trajectory", "--run", study, "--methods", "sft"), f"missing step {total // 2}")
    shutil.move(str(study / "moved"), str(study / "checkpoints" / f"sft~step-{total // 2}"))
    # more states than steps: refused before the earlier states are touched
    one_line_error(cli("train", "sft", "--run", study, "--set", "trajectory.points=50"), "trajectory.points=50")
    assert read_manifest(study, f"sft/step-{total // 2}")["point"]["step"] == total // 2
    assert metric_files(study) == before
