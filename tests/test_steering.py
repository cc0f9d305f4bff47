"""Steering (polyfact.interp.steering, polyfact.analyses.steering): every kind changes what it should
and nothing else, its hooks leave the logits exactly as the bare forward's on exit, random controls
are size-matched, bad input is one line, and the run's steer stage judges the chosen steering on
test facts against its control under the one verdict rule."""

from __future__ import annotations

import json
import math

import pytest
import torch

from polyfact.core.errors import PolyFactError
from polyfact.interp import steering as S
from polyfact.interp.interventions import deactivate
from polyfact.interp.sites import adapter_for
from polyfact.training.models import train_tokenizer
from tests.families import tiny_model
from tests.helpers import cli, one_line_error


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["the capital of france is paris", "die hauptstadt ist berlin"] * 20, vocab_size=300)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("family", ["qwen3", "gpt2"])
def test_each_kind_acts_and_leaves_no_trace(tok, family):
    model = tiny_model(family, tok)
    ids = tok("the capital of france is paris", return_tensors="pt")["input_ids"]
    bare = _logits(model, ids)
    a = adapter_for(model)
    v = {1: torch.randn(32)}
    seen: list[torch.Tensor] = []
    with S.steer(model, "project", vectors=v, strength=1.0):
        h = a.module(model, "resid_post", 1).register_forward_hook(
            lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
        _logits(model, ids)
        h.remove()
    u = v[1] / v[1].norm()
    assert float((seen[-1] @ u).abs().max()) < 1e-4  # the direction is gone from the residual stream
    acts: list[torch.Tensor] = []
    with S.steer(model, "neurons", neurons={0: [1, 5]}, mode="zero"):
        h = a.hook_mlp_act(model, 0, lambda x: acts.append(x.clone()))
        _logits(model, ids)
        h.remove()
    assert float(acts[-1][..., [1, 5]].abs().max()) == 0.0 and float(acts[-1].abs().sum()) > 0
    with S.steer(model, "heads", heads=[(0, 1), (1, 2)], strength=0.0):
        zeroed = _logits(model, ids)
    with deactivate(model, heads=[(0, 1), (1, 2)]):
        assert torch.equal(zeroed, _logits(model, ids))  # scaling a head by 0 is deactivating it
    with S.steer(model, "diffmean", vectors=v, strength=3.0):
        moved = _logits(model, ids)
    assert not torch.equal(moved, bare)
    assert torch.equal(_logits(model, ids), bare)  # every hook removed: exactly the bare forward


def test_random_controls_are_size_matched():
    rates = torch.rand(3, 50)
    chosen = {0: [1, 2, 3], 2: [7]}
    ctl = S.random_neurons(chosen, rates, seed=0)
    assert {k: len(v) for k, v in ctl.items()} == {0: 3, 2: 1}
    assert not set(ctl[0]) & set(chosen[0]) and ctl == S.random_neurons(chosen, rates, seed=0)
    edges = torch.quantile(rates[0], torch.linspace(0, 1, 11))
    bins = lambda idx: sorted(int(torch.bucketize(rates[0][i], edges[1:-1])) for i in idx)  # noqa: E731
    assert bins(ctl[0]) == bins(chosen[0])  # matched activation rates
    v = {1: torch.randn(16) * 3}
    r = S.random_like(v, seed=1)
    assert float(r[1].norm()) == pytest.approx(float(v[1].norm()), rel=1e-5) and not torch.equal(r[1], v[1])
    heads = S.random_heads([(0, 0), (1, 1)], 2, 4, seed=0)
    assert len(heads) == 2 and not {(0, 0), (1, 1)} & set(heads)


def test_bad_steering_input_is_one_line(tok):
    model = tiny_model("llama", tok)
    for kwargs, needle in (({"kind": "nope"}, "unknown steering kind 'nope'"),
                           ({"kind": "diffmean", "vectors": {9: torch.zeros(32)}}, "layer(s) 9 out of range"),
                           ({"kind": "diffmean", "vectors": {0: torch.zeros(32)}, "strength": math.inf},
                            "strength must be a finite number"),
                           ({"kind": "heads", "heads": [(0, 9)]}, "head(s) [9] out of range"),
                           ({"kind": "neurons", "neurons": {0: [1]}, "mode": "mean"}, "needs values per layer")):
        with pytest.raises(PolyFactError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                           .replace("]", r"\]")):
            with S.steer(model, **kwargs):
                pass


def test_the_steer_command_on_the_study(study):
    steer_dir = study / "results" / "steer"
    before = sorted(p.name for p in steer_dir.iterdir()) if steer_dir.exists() else []
    one_line_error(cli("steer", "--run", study, "--units", "nope"), "unknown steering units 'nope'")
    one_line_error(cli("steer", "--run", study, "--target", "xx"), "the run's dataset has no xx")
    one_line_error(cli("steer", "--run", study, "--layers", "99"), "layer(s) 99 out of range")
    one_line_error(cli("steer", "--run", study, "--strength", "nan"), "finite number")
    assert (sorted(p.name for p in steer_dir.iterdir()) if steer_dir.exists() else []) == before  # nothing written
    r = cli("steer", "--run", study, "--checkpoint", "base", "--seeds", "2", "--target", "de",
            "--set", "steer.strengths=[-1.0,1.0]")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((study / "results" / "steer" / "base-diffmean-en-de.json").read_text())
    assert res["chosen"]["strength"] in (-1.0, 1.0) and len(res["sweep"]) == 2 * 2  # 2 layers × 2 strengths
    assert [t["measure"] for t in res["tests"]][:2] == ["target_accuracy", "total_consistency"]
    assert res["verdict"].startswith("not resolved")  # two seeds can resolve nothing (exact floor 0.5)
    assert "steered − size-matched random control" in r.stdout


def test_the_steered_base_is_an_arm_of_the_seed_table(smoke_study):
    """The steer stage's steered base (setting chosen on train facts) enters the seed table as the
    training-free arm ``steer-diffmean``: its per-seed change in Total Consistency equals the change
    computed here from the steer result's outcomes and the base's evaluation records."""
    from polyfact.analyses.recall import load_records
    from polyfact.data.dataset import load_meta

    run = smoke_study[0]
    (path,) = (run / "results" / "steer").glob("base-diffmean-en-*.json")
    arm = json.loads(path.read_text())["arm"]
    summary = json.loads((run / "results" / "seeds" / "summary.json").read_text())
    assert summary["seeds_per_method"]["steer-diffmean"] == list(range(len(arm))) == [0, 1]
    training = load_meta(run / "data")["training_langs"]
    right = {}
    for r in load_records(run, "base"):
        right.setdefault(r["fact_id"], {})[r["lang"]] = bool(r["correct"])
    base_tc = {f: float(all(by[x] for x in training)) for f, by in right.items() if all(x in by for x in training)}
    expected = [sum(tc.values()) / len(tc) - sum(base_tc[f] for f in tc) / len(tc)
                for tc in (seed["total_consistency"] for seed in arm)]
    row = summary["measures"]["total_consistency"]["steer-diffmean"]
    assert row["seeds"] == pytest.approx(expected)
    assert row["versus"] == {}  # a steer draw is no training seed: tested against the base only
    assert summary["n_seeds"] == len(summary["seeds_per_method"]["sft"])  # training seeds, not steer draws
    assert row["verdict"].startswith("not resolved")  # two seeds resolve nothing
    claims = json.loads((run / "results" / "seeds" / "claims.json").read_text())
    assert claims["context"]["steer-diffmean"]["total_consistency"]["verdict"] == row["verdict"]
    assert "training-free arm steer-diffmean" in smoke_study[1]
