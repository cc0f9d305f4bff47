"""Benchmark: activation-statistics collection time / bare forward time, per backend, on the
same model and tokens (CPU here; bench/gpu_check.sh runs the 7B-shaped version on a GPU).

    python bench/bench_analyzers.py [--hidden 512] [--layers 8] [--batches 6] [--batch 4] [--seq 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polyfact.interp import BACKENDS, CollectConfig, collect_stats  # noqa: E402
from polyfact.training.config import TinyModelConfig  # noqa: E402
from polyfact.training.models import make_tiny_model, train_tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/out/analyzers_cpu.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok = train_tokenizer([f"word{i} token{i % 97} text" for i in range(3000)], vocab_size=2048)
    model = make_tiny_model(TinyModelConfig(hidden_size=a.hidden, num_layers=a.layers, num_heads=a.heads,
                                            intermediate_size=4 * a.hidden), tok).eval()
    model.set_attn_implementation("eager")  # the TransformerLens bridge forces eager: same kernels everywhere
    g = torch.Generator().manual_seed(0)
    n_tokens = a.batches * a.batch * a.seq
    streams = {"xx": [torch.randint(3, len(tok), (n_tokens,), generator=g).tolist()]}
    batches = [torch.tensor(streams["xx"][0][i * a.seq:(i + 1) * a.seq]) for i in range(a.batches * a.batch)]
    x = torch.stack(batches).view(a.batches, a.batch, a.seq)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

        def bare() -> None:
            with torch.inference_mode():
                for b in x:
                    model(input_ids=b, attention_mask=torch.ones_like(b), use_cache=False, logits_to_keep=1)

        def backend(name: str):
            cfg = CollectConfig(backend=name, seq_len=a.seq, batch_size=a.batch, progress=False)
            return lambda: collect_stats(model, tok, streams, cfg, model_dir=tmp)

        def timed(fn) -> float:
            fn()  # warm-up (and, for lens, the bridge's boot is excluded below)
            best = float("inf")
            for _ in range(a.repeats):
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
            return best

        results = {"bare": timed(bare)}
        for name in BACKENDS:
            if name == "lens":  # time the bridge's forward passes, not its boot from disk
                from polyfact.interp.backends import LensHooks
                from polyfact.interp.sites import adapter_for, model_shape
                from polyfact.interp.stats import ActivationStats, SiteReducer

                shape = model_shape(model)
                lb = LensHooks(tmp, adapter_for(model), shape)

                def lens_run() -> None:
                    st = ActivationStats.zeros(["xx"], shape.n_layers, shape.d_mlp, shape.n_heads)
                    red = SiteReducer(st, shape.n_heads)
                    for b in x:
                        m = torch.ones_like(b)
                        red.begin(0, m)
                        lb.collect(b, m, red)
                    red.finish()

                def lens_bare() -> None:
                    with torch.inference_mode():
                        for b in x:
                            lb.bridge.run_with_hooks(b, fwd_hooks=[], return_type=None)

                results["lens"] = timed(lens_run)
                results["lens_bare"] = timed(lens_bare)
            else:
                results[name] = timed(backend(name))
    base = results["bare"]
    print(f"model: hidden {a.hidden}, {a.layers} layers, d_mlp {4 * a.hidden}; {n_tokens} tokens in "
          f"{a.batches} batches of {a.batch}×{a.seq}; torch threads {torch.get_num_threads()}; best of {a.repeats}")
    print(f"{'':28s}{'seconds':>10s}{'× bare HF forward':>20s}")
    for k, v in results.items():
        print(f"{k:28s}{v:10.3f}{v / base:20.2f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"args": vars(a), "seconds": results,
                                       "ratio": {k: v / base for k, v in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
