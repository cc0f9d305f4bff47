"""Benchmark: batched MCQ scoring (prompt once in the KV cache, all options in one forward)
against scoring one option per forward, on the same model and items.

    python bench/bench_mcq_scoring.py [--items 300] [--checkpoint DIR] [--hidden 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polyfact.data.dataset import load_dataset_dir  # noqa: E402
from polyfact.data.make import build_dataset  # noqa: E402
from polyfact.core.checkpoints import load_checkpoint  # noqa: E402
from polyfact.training.config import TinyModelConfig  # noqa: E402
from polyfact.training.models import make_tiny_model, train_tokenizer  # noqa: E402
from polyfact.training.evaluation.scoring import score_options, score_options_naive  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--checkpoint", help="a saved model directory (default: a random tiny Qwen2)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        build_dataset("cldr", Path(tmp) / "data", max_per_relation=40)
        rows = list(load_dataset_dir(Path(tmp) / "data")["test"])
    rows = rows[: a.items]
    if a.checkpoint:
        model, tok = load_checkpoint(a.checkpoint)
    else:
        tok = train_tokenizer([r["prompt"] + " " + " ".join(r["options"]) for r in rows] * 3, vocab_size=2048)
        model = make_tiny_model(TinyModelConfig(hidden_size=a.hidden, intermediate_size=4 * a.hidden), tok).eval()
    args = ([r["prompt"] for r in rows], [r["options"] for r in rows], [r["lang"] for r in rows])
    score_options(model, tok, *[x[:8] for x in args])  # warm-up
    t = time.perf_counter()
    fast = score_options(model, tok, *args, batch_size=a.batch_size)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = score_options_naive(model, tok, *args)
    t_slow = time.perf_counter() - t
    err = max(abs(x - y) for f, s in zip(fast, slow) for x, y in zip(f.logprob, s.logprob))
    n_opts = sum(len(o) for o in args[1])
    print(f"{len(rows)} questions, {n_opts} options, model hidden={model.config.hidden_size} "
          f"layers={model.config.num_hidden_layers}, torch threads={torch.get_num_threads()}")
    print(f"one option per forward: {t_slow:.2f} s ({n_opts / t_slow:.0f} options/s)")
    print(f"batched, shared prompt: {t_fast:.2f} s ({n_opts / t_fast:.0f} options/s)")
    print(f"speed ratio: {t_slow / t_fast:.1f}x   max |Δ log-likelihood| = {err:.2e}")


if __name__ == "__main__":
    main()
