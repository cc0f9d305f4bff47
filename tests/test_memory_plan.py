"""The 7B memory plan: its formula by hand, the committed fit (validated, every paper stage fits one
80 GB GPU), the paper preset's dry run printing it at the run's own batch settings, and one real
measurement of the plan script."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from polyfact.pipeline.config import resolve
from polyfact.pipeline.memory import BUDGET_GIB, PLAN, predict, predicted_peaks, stage_units
from tests.conftest import ROOT

STAGES = {"stats", "lahis", "gradient", "mcq", "sft", "grpo", "dco", "dpo"}


def test_prediction_formula_by_hand():
    fit = {"a": 1.0, "b_per_layer": 0.5, "s_per_unit": 0.25, "e_per_vocab": 1e-5, "f_per_vocab_unit": 2e-6}
    # 1 + 0.5·28 + 0.25·7 + (2024 − 1024)·(1e-5 + 2e-6·8)
    assert predict(fit, layers=28, units=8, vocab=2024, vocab_base=1024) == pytest.approx(16.776)


def test_committed_plan_is_validated_and_every_paper_stage_fits():
    plan = json.loads(PLAN.read_text())
    assert set(plan["models"]) == {"Qwen/Qwen2.5-7B", "allenai/OLMo-2-1124-7B"}
    for model, entry in plan["models"].items():
        assert set(entry["stages"]) == STAGES
        for stage, res in entry["stages"].items():
            assert res["validation"]["error"] <= 0.10, (model, stage, res["validation"])
            # the vocabulary term is measured at the model's own vocabulary: a training step's full-length
            # logits (float, log-softmax, their gradient) then show in the peak, per batch unit
            assert f"L1_V{entry['vocab']}" in res["points_gib"]
            if stage in ("sft", "grpo", "dco", "dpo"):
                assert res["fit"]["f_per_vocab_unit"] * entry["vocab"] > 0.1, (model, stage, res["fit"])
            # bf16 weights alone: 7.6B (Qwen) / 7.3B (OLMo) parameters, 14.2 / 13.6 GiB
            assert 13.0 < res["predicted_gib"] <= BUDGET_GIB, (model, stage, res["predicted_gib"])
            assert res["fits_80gb"]


def test_paper_dry_run_prints_each_stage_peak_at_the_runs_settings(tmp_path):
    cfg = resolve("paper")
    units = stage_units(cfg)
    # the study's SFT: one fact's 12 languages of up to 512 tokens; DCO: 4 instances x 4 sequences of 256;
    # DPO: 4 pairs x (chosen, rejected) of 512
    assert units == {"stats": 8.0, "lahis": 1.0, "gradient": 1.0, "mcq": 1.0, "sft": 24.0, "grpo": 8.0,
                     "dco": 16.0, "dpo": 16.0}
    peaks = predicted_peaks(cfg)
    plan = json.loads(PLAN.read_text())["models"]["Qwen/Qwen2.5-7B"]["stages"]
    # every stage priced with its own measured fit; the plan's table is at the study's batches, which the
    # paper preset keeps except the study's SFT (a fact's 12 languages of 512 tokens: 24 units, not 8)
    assert set(peaks) == STAGES
    assert {s: peaks[s] for s in STAGES - {"sft"}} == pytest.approx({s: plan[s]["predicted_gib"] for s in STAGES - {"sft"}})
    from polyfact.pipeline.memory import stage_prediction

    assert peaks["sft"] == pytest.approx(stage_prediction("Qwen/Qwen2.5-7B", "sft", 24.0))
    assert peaks["dco"] > peaks["mcq"] and peaks["dpo"] > peaks["mcq"]  # a backward over more than the weights
    from tests.helpers import cli

    run = lambda *a: cli("run", "--preset", "paper", "--run", tmp_path / "p", "--dry-run", *a)  # noqa: E731
    r = run()
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if " GiB  " in line]
    assert {line.split()[0] for line in lines} == STAGES | {"dco", "dpo"}
    assert all(line.rstrip().endswith("fits") for line in lines)
    assert "sft            facts 10000; ~1250 steps of 8 facts" in r.stdout  # the study's 10K-fact SFT: 1250 steps
    r = run("--set", "analysis.batch_size=400")  # 400 × 1024 tokens at once: more than one GPU holds
    assert r.returncode == 0, r.stderr
    assert any(line.split()[0] == "stats" and "does NOT fit" in line for line in r.stdout.splitlines())


@pytest.mark.slow
def test_one_real_measurement_of_a_7b_width_layer():
    """One Qwen2.5-7B-width layer (0.43 GiB of bf16 weights) plus a 1,024-entry embedding and head,
    scoring one fact in 12 languages: the peak holds the weights and stays well below 1 GiB."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "memory_plan.py"), "--point", "qwen2.5-7b", "mcq", "1", "1",
                        "1024"], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert r.returncode == 0, r.stderr[-1000:]
    gib = float(r.stdout.strip().splitlines()[-1])
    assert 0.44 < gib < 1.0


def test_the_plans_layout_reroute_computes_the_same_products():
    """``row_major_mm`` (the plan's fast bf16 ``grad @ W``) gives plain bf16 matmul's values, in the
    forward and in a linear layer's backward, in chunks and at the edges."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("memory_plan", ROOT / "bench" / "memory_plan.py")
    plan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(130, 96, generator=g).to(torch.bfloat16)  # 130 rows: two full chunks and a partial one
    b = torch.randn(96, 300, generator=g).to(torch.bfloat16)
    with plan.row_major_mm():
        fast = a @ b
    assert fast.shape == (130, 300) and fast.is_contiguous()
    torch.testing.assert_close(fast.float(), a.float() @ b.float(), rtol=2e-2, atol=0.15)
    layer = torch.nn.Linear(300, 96, bias=False).to(torch.bfloat16)  # backward: grad [130, 96] @ W [96, 300]
    x = torch.randn(130, 300, generator=g).to(torch.bfloat16).requires_grad_()
    layer(x).float().sum().backward()
    plain = x.grad.clone()
    x.grad = None
    with plan.row_major_mm():
        layer(x).float().sum().backward()
    torch.testing.assert_close(x.grad.float(), plain.float(), rtol=2e-2, atol=0.15)
