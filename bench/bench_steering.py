"""Benchmark: a steered forward and steered greedy generation against the bare ones, on the same
model and tokens, for every steering kind (ratios measured in one run; never time this while
another torch job runs).

    python bench/bench_steering.py [--hidden 512] [--layers 8] [--batch 8] [--seq 128] [--new 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polyfact.interp import steering as S  # noqa: E402
from polyfact.interp.sites import adapter_for  # noqa: E402
from polyfact.training.config import TinyModelConfig  # noqa: E402
from polyfact.training.models import make_tiny_model, train_tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--new", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="bench/out/steering_cpu.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok = train_tokenizer([f"word{i} token{i % 97} text" for i in range(3000)], vocab_size=2048)
    model = make_tiny_model(TinyModelConfig(hidden_size=a.hidden, num_layers=a.layers, num_heads=8,
                                            intermediate_size=4 * a.hidden), tok).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(3, len(tok), (a.batch, a.seq), generator=g)
    mid = a.layers // 2
    kinds = {
        "diffmean": dict(kind="diffmean", vectors={mid: torch.randn(a.hidden)}, strength=2.0),
        "project": dict(kind="project", vectors={mid: torch.randn(a.hidden)}, strength=1.0),
        "neurons (mean)": dict(kind="neurons", neurons={mid: list(range(0, 4 * a.hidden, 100))}, mode="mean",
                               values={mid: torch.rand(4 * a.hidden)}),
        "heads": dict(kind="heads", heads=[(mid, 0), (mid, 3)], strength=0.0),
    }

    def forward() -> None:
        with torch.inference_mode():
            model(input_ids=x, use_cache=False)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(input_ids=x[:, :32], max_new_tokens=a.new, do_sample=False, pad_token_id=tok.pad_token_id)

    adapter = adapter_for(model)  # found once, as the steer stage passes it

    def best_of(fn) -> float:
        best = float("inf")
        for _ in range(a.repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best

    def ratio(fn, ctx) -> float:
        """Steered / bare time of ``fn``, measured alternately (bare, then steered with the hooks
        placed once), the best of each: the cost per call once the hooks are in place."""
        bare, steered = float("inf"), float("inf")
        for _ in range(a.repeats + 1):
            start = time.perf_counter()
            fn()
            bare = min(bare, time.perf_counter() - start)
            with S.steer(model, adapter=adapter, **ctx):
                start = time.perf_counter()
                fn()
                steered = min(steered, time.perf_counter() - start)
        return steered / bare

    def enter_exit(ctx) -> float:
        def once() -> None:
            with S.steer(model, adapter=adapter, **ctx):
                pass
        return best_of(once)

    out = {"shape": vars(a), "bare_forward_s": best_of(forward), "bare_generate_s": best_of(generate), "ratios": {}}
    for name, ctx in kinds.items():
        out["ratios"][name] = {"forward": ratio(forward, ctx), "generate": ratio(generate, ctx),
                               "enter_exit_s": enter_exit(ctx)}
        r = out["ratios"][name]
        print(f"{name:16s} forward {r['forward']:.3f}x  generate {r['generate']:.3f}x  "
              f"(placing and removing the hooks: {1e3 * r['enter_exit_s']:.2f} ms)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
