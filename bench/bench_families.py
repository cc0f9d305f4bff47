"""Benchmark: the hooked statistics pass (LAPE counts and sums, head norms) / the bare forward, per
decoder-only family, on the same random-weight model and tokens, one run (CPU here); beside it the
whole ``collect_stats`` call (tokenizing, batching and the one-time hook check: two full forwards of a
probe batch) over the same bare forward. The families are the test suite's (``tests/families.py``),
scaled up so the forward is not all Python overhead.

    python bench/bench_families.py [--hidden 256] [--mlp 1024] [--layers 4] [--heads 8] [--seq 128] [--batch 4] [--batches 4]

The hooks' cost grows with the MLP width and the forward's with hidden × MLP width, so the ratio
falls as the hidden size grows; ``--hidden 896 --mlp 4864 --heads 14 --layers 2`` is a layer of
Qwen2.5-0.5B, a model a researcher runs on a CPU.

Never time this while another torch job runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polyfact.interp import CollectConfig, collect_stats  # noqa: E402
from polyfact.interp.backends import make_backend  # noqa: E402
from polyfact.interp.sites import adapter_for  # noqa: E402
from polyfact.interp.stats import ActivationStats, SiteReducer  # noqa: E402
from polyfact.training.models import train_tokenizer  # noqa: E402
from tests.families import FAMILIES, tiny_model  # noqa: E402


def sizes(family: str, hidden: int, layers: int, heads: int, mlp: int | None = None) -> dict:
    """The test shapes scaled: the common names and the family's own (configs alias one to the other,
    so both must say the same, or the test shape's common value wins). ``mlp``: the MLP width (4 ×
    hidden by default)."""
    mlp = mlp or 4 * hidden
    out = dict(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=layers, num_attention_heads=heads,
               num_key_value_heads=heads // 2)
    out.update({"gpt2": dict(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=mlp),
                "gptj": dict(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=mlp, rotary_dim=hidden // heads),
                "bloom": dict(n_layer=layers, n_head=heads),
                "xglm": dict(d_model=hidden, num_layers=layers, attention_heads=heads, ffn_dim=mlp),
                "opt": dict(ffn_dim=mlp, word_embed_proj_dim=hidden)}.get(family, {}))
    if "head_dim" in FAMILIES[family][2]:
        out["head_dim"] = hidden // heads
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--mlp", type=int, default=None, help="MLP width (default: 4 × hidden)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--compile", action="store_true", help="fuse the reductions with torch.compile (analysis.compile)")
    ap.add_argument("--out", default="bench/out/families_cpu.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok = train_tokenizer([f"word{i} token{i % 97} text" for i in range(3000)], vocab_size=1024)
    g = torch.Generator().manual_seed(0)
    n = a.batches * a.batch * a.seq
    ids = torch.randint(3, len(tok), (n,), generator=g)
    streams = {"xx": [ids.tolist()]}
    x = ids.view(a.batches, a.batch, a.seq)
    cfg = CollectConfig(backend="torch", seq_len=a.seq, batch_size=a.batch, progress=False, compile=a.compile)

    rows = {}
    print(f"hidden {a.hidden}, {a.layers} layers, {a.heads} heads, MLP {a.mlp or 4 * a.hidden}; {n} tokens in {a.batches} "
          f"batches of {a.batch}×{a.seq}; torch threads {torch.get_num_threads()}; best of {a.repeats}")
    print(f"{'family':14s}{'bare s':>9s}{'hooked s':>10s}{'ratio':>8s}{'+ check':>10s}{'params':>10s}")
    for family in a.families.split(","):
        model = tiny_model(family, tok, max_positions=a.seq, **sizes(family, a.hidden, a.layers, a.heads, a.mlp))
        model.set_attn_implementation("eager")  # the same attention kernels in both passes

        def bare() -> None:
            with torch.inference_mode():
                for b in x:
                    model(input_ids=b, attention_mask=torch.ones_like(b), use_cache=False, logits_to_keep=1)

        adapter = adapter_for(model)
        shape = adapter.shape(model)

        def steady() -> None:  # the statistics pass alone: the same batches through the hooks
            stats = ActivationStats.zeros(["xx"], shape.n_layers, shape.d_mlp, shape.n_heads)
            reducer = SiteReducer(stats, shape.n_heads, compile=a.compile)
            backend = make_backend("torch", model, tok, adapter, shape)
            try:
                for b in x:
                    m = torch.ones_like(b)
                    reducer.begin(0, m)
                    backend.collect(b, m, reducer)
            finally:
                backend.close()
            reducer.finish()

        plain, hooked, total = float("inf"), float("inf"), float("inf")
        steady(), bare()  # warm-up
        for _ in range(a.repeats):  # alternately, so drift in the machine's speed falls on all three alike
            for fn, which in ((bare, 0), (steady, 1), (lambda: collect_stats(model, tok, streams, cfg), 2)):
                start = time.perf_counter()
                fn()
                took = time.perf_counter() - start
                plain, hooked, total = (min(plain, took), hooked, total) if which == 0 else \
                    (plain, min(hooked, took), total) if which == 1 else (plain, hooked, min(total, took))
        rows[family] = {"bare": plain, "hooked": hooked, "ratio": hooked / plain, "collect_stats": total,
                        "collect_ratio": total / plain}
        n_params = sum(p.numel() for p in model.parameters())
        rows[family]["params"] = n_params
        print(f"{family:14s}{plain:9.3f}{hooked:10.3f}{hooked / plain:8.2f}{total / plain:10.2f}{n_params / 1e6:9.1f}M",
              flush=True)
    for key, what in (("ratio", "statistics pass"), ("collect_ratio", "collect_stats with its hook check")):
        ratios = [r[key] for r in rows.values()]
        print(f"{what}: median {sorted(ratios)[len(ratios) // 2]:.2f}×, max {max(ratios):.2f}× "
              f"({max(rows, key=lambda k: rows[k][key])})")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"args": vars(a), "families": rows}, indent=2))


if __name__ == "__main__":
    main()
