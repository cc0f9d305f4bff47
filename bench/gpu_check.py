"""GPU check of the analyzers on a Qwen2.5-7B-shaped model with random bf16 weights.

1. correctness: each backend's statistics against a plain-hooks reference written here
   (counts equal; sums within bf16/float tolerance);
2. speed: bare forward vs each backend on 8,192-token batches (best of N, CUDA-synchronized).

    python3 bench/gpu_check.py [--tiny] [--batches 4] [--out $OUT/gpu_check.json]

``--tiny`` runs the same script on a small model (CPU or GPU) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QWEN25_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
TINY = dict(vocab_size=1024, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False)


def reference_stats(model, batches, n_heads):
    """Plain forward hooks, the most direct implementation: what every backend must match."""
    layers = model.model.layers
    n_layers, d_mlp = len(layers), model.config.intermediate_size
    pos = torch.zeros(n_layers, d_mlp, dtype=torch.int64, device="cuda" if torch.cuda.is_available() else "cpu")
    s = torch.zeros(n_layers, d_mlp, dtype=torch.float64, device=pos.device)
    hn = torch.zeros(n_layers, n_heads, dtype=torch.float64, device=pos.device)
    hooks = []
    for i, layer in enumerate(layers):
        def act_hook(mod, inp, out, i=i):
            x = out.reshape(-1, out.shape[-1])
            pos[i] += (x > 0).sum(0)
            s[i] += x.double().sum(0)

        def head_hook(mod, args, i=i):
            z = args[0].reshape(-1, n_heads, args[0].shape[-1] // n_heads)
            hn[i] += z.double().norm(dim=-1).sum(0)

        hooks.append(layer.mlp.act_fn.register_forward_hook(act_hook))
        hooks.append(layer.self_attn.o_proj.register_forward_pre_hook(head_hook))
    with torch.inference_mode():
        for b in batches:
            model(input_ids=b, use_cache=False)
    for h in hooks:
        h.remove()
    return pos.cpu(), s.cpu(), hn.cpu()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="torch,torch+compile,nnsight,lens")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "bench/out"), "gpu_check.json"))
    a = ap.parse_args()
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from tokenizers import Tokenizer, models

    from interp.collect import CollectConfig, LensBackend, make_backend
    from interp.sites import adapter_for, model_shape
    from interp.stats import ActivationStats, SiteReducer

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    shape_cfg = TINY if a.tiny else QWEN25_7B
    if a.tiny and dev == "cpu":
        a.seq, a.batch = min(a.seq, 128), min(a.batch, 2)
    t0 = time.time()
    cfg = Qwen2Config(**shape_cfg)
    with torch.device(dev):
        model = Qwen2ForCausalLM._from_config(cfg, dtype=dtype).eval()
    print(f"built {'tiny' if a.tiny else 'Qwen2.5-7B'}-shaped model ({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B "
          f"params, {dtype}) on {dev} in {time.time() - t0:.0f} s; "
          f"{torch.cuda.get_device_name() if dev == 'cuda' else 'CPU'}", flush=True)
    g = torch.Generator(device="cpu").manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (a.batch, a.seq), generator=g).to(dev) for _ in range(a.batches)]
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>")),
                                  pad_token="<pad>", unk_token="<unk>")
    adapter, shape = adapter_for(model), model_shape(model)

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def timed(fn) -> float:
        fn()
        sync()
        best = float("inf")
        for _ in range(a.repeats):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - t)
        return best

    def bare() -> None:
        with torch.inference_mode():
            for b in batches:
                model(input_ids=b, use_cache=False)

    ref = reference_stats(model, batches, shape.n_heads)
    results: dict[str, dict] = {"bare (HF sdpa)": {"seconds": timed(bare)}}
    tmp = tempfile.mkdtemp()
    for name in a.backends.split(","):
        compile_ = name.endswith("+compile")
        base_name = name.split("+")[0]
        if base_name == "lens":
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            backend = LensBackend(tmp, adapter, shape, device=dev, dtype=dtype)
        else:
            backend = make_backend(base_name, model, tok, adapter, shape)
        ccfg = CollectConfig(backend=base_name, compile=compile_, progress=False)

        def run_all(stats_box: list) -> None:
            st = ActivationStats.zeros(["xx"], shape.n_layers, shape.d_mlp, shape.n_heads)
            red = SiteReducer(st, shape.n_heads, compile=ccfg.compile)
            for b in batches:
                m = torch.ones_like(b)
                red.begin(0, m)
                backend.run(b, m, red)
            red.finish()
            stats_box[:] = [st]

        box: list = []
        secs = timed(lambda: run_all(box))
        st = box[0]
        n_runs = 1  # stats of the last timed run
        pos_ok = torch.equal(st.act_pos[0], ref[0] * n_runs)
        sum_err = float((st.act_sum[0] - ref[1]).abs().max() / ref[1].abs().max().clamp(min=1e-9))
        head_err = float((st.head_norm[0] - ref[2]).abs().max() / ref[2].abs().max().clamp(min=1e-9))
        results[name] = {"seconds": secs, "counts_equal": pos_ok, "max_rel_err_sum": sum_err,
                         "max_rel_err_head_norm": head_err}
        if base_name == "lens":
            def lens_bare() -> None:
                with torch.inference_mode():
                    for b in batches:
                        backend.bridge.run_with_hooks(b, fwd_hooks=[], return_type=None)

            results["lens bare (bridge)"] = {"seconds": timed(lens_bare)}
            del backend
        if hasattr(backend if base_name != "lens" else None, "close"):
            backend.close()
        print(f"{name}: {secs:.3f} s, counts equal: {pos_ok}, rel err sum {sum_err:.1e}, head {head_err:.1e}", flush=True)
    base = results["bare (HF sdpa)"]["seconds"]
    n_tokens = a.batches * a.batch * a.seq
    print(f"\n{n_tokens} tokens in {a.batches} batches of {a.batch}×{a.seq}; best of {a.repeats}")
    print(f"{'':24s}{'seconds':>9s}{'× bare':>9s}  correctness")
    for k, v in results.items():
        ok = "" if "counts_equal" not in v else ("counts ✓" if v["counts_equal"] else "counts ✗") + \
            f", sums rel.err {v['max_rel_err_sum']:.1e}"
        v["ratio"] = v["seconds"] / base
        print(f"{k:24s}{v['seconds']:9.3f}{v['ratio']:9.3f}  {ok}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                                       "tokens": n_tokens, "args": vars(a), "results": results}, indent=2))


if __name__ == "__main__":
    main()
