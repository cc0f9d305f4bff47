"""Checkpoints no run of ours trained: tiny random directories of 18 decoder-only families written
with ``save_pretrained`` (no manifest) go through ``analyze neurons``, ``analyze heads`` (LAHIS) and
``compare`` on the command line in a run that has no base and no dataset, each result recording its
hook check; registration records source and hashes."""

from __future__ import annotations

import json

import pytest
import torch

from polyfact.core.checkpoints import checkpoint_problem, read_manifest, register_external
from polyfact.core.errors import PolyFactError
from tests.families import FAMILIES, tiny_model
from tests.helpers import cli
from polyfact.training.models import train_tokenizer

TEXTS = {"en": ["the capital of france is paris", "the capital of italy is rome"] * 6,
         "de": ["die hauptstadt von frankreich ist paris", "die hauptstadt von italien ist rom"] * 6}
FAST = ["--set", "analysis.shards=2", "--set", "analysis.max_tokens=400", "--set", "analysis.head_max_tokens=200",
        "--set", "analysis.backend=torch", "--set", "analysis.seq_len=32", "--set", "routing.bootstrap=20",
        "--set", "routing.permutations=20"]


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Two checkpoints ("before" and a perturbed "after") of each family, and a text folder."""
    root = tmp_path_factory.mktemp("outside")
    tok = train_tokenizer([t for v in TEXTS.values() for t in v] * 4, vocab_size=300)
    dirs = {}
    for family in FAMILIES:
        model = tiny_model(family, tok)
        for name in ("before", "after"):
            if name == "after":
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(0.05 * torch.randn_like(p))
            path = root / f"{family}-{name}"
            model.save_pretrained(path)
            tok.save_pretrained(path)
            dirs[(family, name)] = path
    texts = root / "texts"
    texts.mkdir()
    for lang, items in TEXTS.items():
        (texts / f"{lang}.txt").write_text("\n".join(items) + "\n")
    return dirs, texts


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_outside_checkpoints_through_neurons_heads_and_compare(outside, family, tmp_path):
    dirs, texts = outside
    run = tmp_path / "run"
    before, after = dirs[(family, "before")], dirs[(family, "after")]
    r = cli("analyze", "neurons", "--run", str(run), "--checkpoint", str(before), "--texts", f"files:{texts}", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = f"{family}-before"
    manifest = read_manifest(run, ckpt)
    assert manifest["method"] == "external" and manifest["external"] is True and manifest["family"] == family
    assert manifest["source"] == str(before.resolve()) and "model.safetensors" in manifest["weights"]
    neurons = json.loads((run / "results" / "neurons" / f"{ckpt}.json").read_text())
    assert neurons["reference"] is None and neurons["languages"] == ["de", "en"]  # no base: no reference
    assert "text files" in neurons["text_source"]
    check = neurons["provenance"]["hook_check"]  # measuring did not change the model
    assert check["backend"] == "torch" and check["max_abs_diff"] == 0.0 and check["rule"] == "exact"
    r = cli("analyze", "heads", "--run", str(run), "--checkpoint", ckpt, "--method", "lahis",
            "--texts", f"files:{texts}", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    heads = json.loads((run / "results" / "heads" / f"{ckpt}.json").read_text())
    assert heads["method"] == "lahis" and heads["study"]["n_top"] == 1
    assert heads["provenance"]["hook_check"]["max_abs_diff"] == 0.0
    assert (run / "results" / "heads" / ckpt / "lahis" / "lahis_en.pth").exists()
    r = cli("compare", "--run", str(run), "--before", str(before), "--after", str(after), "--texts", f"files:{texts}",
            *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "against" in r.stdout
    res = json.loads((run / "results" / "compare" / f"{family}-after-vs-{ckpt}.json").read_text())
    assert res["before"] == ckpt and res["change"]["reference"] == ckpt
    assert set(res["change"]["neurons"]) >= {"count_total", "entropy_mean"}


def test_register_records_hashes_and_refuses_a_clash(outside, tmp_path):
    dirs, _ = outside
    run = tmp_path / "run"
    src = dirs[("llama", "before")]
    m = register_external(run, "mine", str(src))
    assert register_external(run, "mine", str(src)) == m  # idempotent
    assert checkpoint_problem(run, "mine") is None
    with pytest.raises(PolyFactError, match="already exists"):
        register_external(run, "mine", str(dirs[("mistral", "before")]))
    with pytest.raises(PolyFactError, match="invalid checkpoint id"):
        register_external(run, "../escape", str(src))
    r = cli("checkpoints", "add", "--run", str(run), "--id", "other", str(dirs[("gemma2", "after")]))
    assert r.returncode == 0 and "registered other" in r.stdout
    r = cli("checkpoints", "list", "--run", str(run))
    assert "mine" in r.stdout and "other" in r.stdout and "external" in r.stdout
