"""Memory plan for the paper preset at 7B, measured on this CPU.

Real-width Qwen2.5-7B and OLMo-2-1124-7B layers (hidden size, MLP width, heads, KV heads as
published), truncated to 1, 2 and 4 layers with a small vocabulary (and once with the real one), in bf16. Each measurement runs
one step of a stage and records the peak resident memory above the level before the model was
built, each in a fresh single-threaded process, one per core at a time, with glibc's mmap
threshold fixed so that freed tensors leave the resident set (the high-water mark is reset after
the imports through ``/proc/self/clear_refs``; two runs of a point agree within 1 MiB):

``stats``     activation statistics: one forward of a batch (paper: 8 × 1024 tokens), counting hooks;
``lahis``     head importance by LAHIS: forward + backward to the head mask, one 512-token sample;
``gradient``  head importance by gradient: the same shape, mask fixed at 1;
``mcq``       MCQ scoring of one fact in 12 languages (4 options each, the evaluation's scorer);
``sft``       one LoRA (r 64) SFT step, per 256-token sequence (paper: micro-batch 8);
``grpo``      one fact-grouped GRPO loss step with LoRA and gradient checkpointing, per rollout of 12
              languages (prompt + 32 new tokens; paper: 8 rollouts);
``dco``       one DCO step (LoRA r 128, checkpointing): summed completion log-probabilities of the
              instances' 4 sequences under the policy and, adapter off, the reference,
              ``polyfact.training.dco.dco_loss``, backward, AdamW, per 256 tokens (paper: 4 instances × 4 × 256);
``dpo``       one DPO step of CM-Align (LoRA r 64, checkpointing): chosen and rejected in one forward,
              the reference with the adapter off, −log σ(β·margin), per 256 tokens (paper: 4 pairs × 2 × 512).

A bf16 ``grad @ W`` runs at 0.27 GFLOP/s on this CPU (no AVX512-BF16); :func:`row_major_mm` takes
the same product in the layout that runs at ~10 (the peaks agree: SFT at one layer 0.6338 GiB
with it, 0.6320 without; 39 s against 443 s).

Per stage the fit is ``peak = a + b·layers + s·(n − 1) + (V − V₀)·(e + f·n)`` from five points:
(1 layer, n = 1), (2, 1), (1, 2), (1, 1, the model's real vocabulary V) and (4, 1). The validation predicts the
4-layer point from the 1- and 2-layer ones alone (within 10 %); the prediction then takes its
slope b from the 1- and 4-layer points (three layers apart: a third of the noise). ``n`` is the stage's batch unit (sequences, facts or rollouts), ``e`` the
embedding and LM-head weights per vocabulary entry (known), ``f`` the logits per entry and unit.
Prediction at 28 (Qwen) and 32 (OLMo) layers and the real vocabulary gives the table
``stage | predicted peak GiB | fits on 80 GB? | the largest batch that fits``, written to
``pipeline/memory_plan.json`` (``polyfact run --preset paper --dry-run`` prints it).

CPU kernels are not GPU kernels: CPU attention materializes the score matrix (GPU flash attention
does not), and allocators differ; ``bench/gpu_check.sh`` measures the same stages on a GPU.

    python bench/memory_plan.py [--models qwen2.5-7b,olmo-2-7b] [--stages ...] [--out pipeline/memory_plan.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polyfact.pipeline import memory  # noqa: E402

MODELS = {
    "qwen2.5-7b": {"family": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
                   "num_key_value_heads": 4, "num_hidden_layers": 28, "vocab_size": 152064, "rope_theta": 1e6,
                   "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hub": "Qwen/Qwen2.5-7B"},
    "olmo-2-7b": {"family": "olmo2", "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
                  "num_key_value_heads": 32, "num_hidden_layers": 32, "vocab_size": 100352, "rope_theta": 5e5,
                  "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hub": "allenai/OLMo-2-1124-7B"},
}
V0 = 1024  # the small vocabulary of the layer and batch points
REAL = 0  # in a point: the model's real vocabulary (its logits are what the batch adds most at 7B:
# measured at 9,216 entries they stayed below the layers' peak and the plan missed 0.46 GiB per SFT sequence)
# stage: (unit, paper batch in units, tokens per unit, description)
STAGES = {
    "stats": ("sequence of 1024 tokens", 8, 1024, "activation statistics (8 × 1024 tokens, inference)"),
    "lahis": ("sample of 512 tokens", 1, 512, "head importance, LAHIS (1 × 512, backward to the mask)"),
    "gradient": ("sample of 512 tokens", 1, 512, "head importance, gradient (1 × 512, backward to the mask)"),
    "mcq": ("fact in 12 languages", 1, 12 * 4 * 24, "MCQ scoring, one fact × 12 languages × 4 options"),
    "sft": ("sequence of 256 tokens", 8, 256, "LoRA SFT step (micro-batch 8 × 256 tokens)"),
    "grpo": ("rollout of 12 languages", 8, 12 * (96 + 32), "GRPO step, LoRA + checkpointing (8 rollouts × 12 × 128 tokens)"),
    # a unit of 256 tokens as for SFT, measured as an instance of 4 × 64 (DCO) or a pair of 2 × 128 (DPO)
    # tokens: the step's memory grows with its tokens, and a 7B-width point costs minutes per 256
    "dco": ("256 tokens (an instance of 4 × 64)", 16, 256, "DCO step, LoRA r 128 + checkpointing (4 instances × 4 × 256)"),
    "dpo": ("256 tokens (a pair of 2 × 128)", 16, 256, "DPO step (CM-Align), LoRA + checkpointing (4 pairs × 2 × 512)"),
}


def _status_kib(field: str) -> int:
    import re

    with open("/proc/self/status") as fh:
        return int(re.search(rf"{field}:\s+(\d+)", fh.read()).group(1))


def reset_peak() -> float:
    """Reset the process's peak resident memory to its current level; returns that level in GiB."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kib("VmRSS") / 2**20


def peak_gib() -> float:
    return _status_kib("VmHWM") / 2**20


def build(model: str, layers: int, vocab: int):
    """A real-width model of ``layers`` layers and ``vocab`` entries, bf16, random weights."""
    import torch
    from transformers import Olmo2Config, Olmo2ForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from transformers.initialization import no_init_weights

    spec = dict(MODELS[model])
    family = spec.pop("family")
    spec.pop("hub")
    spec.update(num_hidden_layers=layers, vocab_size=vocab, max_position_embeddings=4096)
    cfg_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if family == "qwen2" else (Olmo2Config, Olmo2ForCausalLM)
    with no_init_weights():
        m = model_cls._from_config(cfg_cls(**spec), dtype=torch.bfloat16)
    # Memory is what is measured: every matrix gets one random block tiled (as fast as a copy; the
    # normal initialization of 7B-width layers took most of the plan's time), norms 1, biases 0.
    block = 0.02 * torch.randn(1 << 20, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0 if "norm" in name else 0.0)
                continue
            flat = p.view(-1)
            for i in range(0, flat.numel(), block.numel()):
                flat[i:i + block.numel()].copy_(block[:flat.numel() - i])
    return m.eval()


def row_major_mm():
    """A dispatch mode that computes a bf16 ``a @ b`` with a row-major ``b`` (the backward's
    ``grad @ W`` of every linear layer) as ``(bᵀ @ a_chunkᵀ)ᵀ`` over 64-row chunks of ``a``, into the
    same output tensor. Same product; this CPU's bf16 kernel (no AVX512-BF16) takes the row-major
    layout at 0.27 GFLOP/s and the transposed one at ~10 (a 7B-width point: 7 min → seconds).
    What it adds to the peak is one 64-row chunk and its product: under 20 MiB at 7B widths."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    mm = torch.ops.aten.mm.default

    class RowMajorMM(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is mm and not kwargs and args[0].dtype == torch.bfloat16 and args[1].is_contiguous() \
                    and args[1].shape[1] >= 256:
                a, b = args
                out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)
                for i in range(0, a.shape[0], 64):
                    out[i:i + 64] = (b.t() @ a[i:i + 64].t().contiguous()).t()
                return out
            return func(*args, **(kwargs or {}))

    return RowMajorMM()


class _Tok:
    """The few tokenizer attributes the scorer and trainers read; a text is its ids written out
    (:func:`_rand_text`)."""

    pad_token_id = eos_token_id = 0
    padding_side = "right"

    def __call__(self, text, add_special_tokens=True):
        ids = lambda t: [int(x) for x in t.split()]  # noqa: E731
        return {"input_ids": ids(text) if isinstance(text, str) else [ids(t) for t in text]}


def _rand_text(n: int, vocab: int, g) -> str:
    """``n`` random token ids as a text :class:`_Tok` reads back."""
    import torch

    return " ".join(str(int(x)) for x in torch.randint(1, vocab, (n,), generator=g))


def measure(model: str, stage: str, layers: int, units: int, vocab: int) -> float:
    """One stage step; returns the peak GiB above the level before the model was built
    (``POLYFACT_PLAN_SLOW_MM=1``: without :func:`row_major_mm`, as the first plan was measured)."""
    from polyfact.interp import backends, batching, heads, sites, stats  # noqa: F401  (imported before the baseline)
    from polyfact.training import dco, grpo, lm  # noqa: F401
    from polyfact.training.evaluation import scoring  # noqa: F401

    mode = row_major_mm() if os.environ.get("POLYFACT_PLAN_SLOW_MM") != "1" else contextlib.nullcontext()
    base = reset_peak()
    with mode:
        _step(model, stage, layers, units, vocab)
    return peak_gib() - base


def _step(model: str, stage: str, layers: int, units: int, vocab: int) -> None:
    import torch

    from polyfact.interp.backends import TorchHooks
    from polyfact.interp.batching import CollectConfig
    from polyfact.interp.heads import head_importance
    from polyfact.interp.sites import adapter_for, model_shape
    from polyfact.interp.stats import ActivationStats, SiteReducer

    m = build(model, layers, vocab)
    g = torch.Generator().manual_seed(1)
    if stage == "stats":
        ids = torch.randint(1, vocab, (units, 1024), generator=g)
        shape = model_shape(m)
        st = ActivationStats.zeros(["x"], shape.n_layers, shape.d_mlp, shape.n_heads)
        red = SiteReducer(st, shape.n_heads, moments=False)
        backend = TorchHooks(m, adapter_for(m), shape)
        red.begin(0, torch.ones_like(ids))
        backend.collect(ids, torch.ones_like(ids), red)
        red.finish()
    elif stage in ("lahis", "gradient"):
        texts = {"x": [torch.randint(1, vocab, (512,), generator=g).tolist() for _ in range(units)]}
        head_importance(m, _Tok(), texts, stage, CollectConfig(backend="torch", seq_len=512, batch_size=1, pack=False,
                                                               progress=False), max_samples=units)
    elif stage == "mcq":
        _mcq(m, units, vocab, g)
    elif stage == "sft":
        _lora_step(m, torch.randint(1, vocab, (units, 256), generator=g), checkpointing=False)
    elif stage == "grpo":
        _grpo_step(m, units, vocab, g)
    elif stage == "dco":
        _dco_step(m, units, vocab, g)
    elif stage == "dpo":
        _dpo_step(m, units, vocab, g)
    else:
        raise SystemExit(f"unknown stage {stage}")


def _mcq(m, facts: int, vocab: int, g) -> None:
    """The evaluation scorer's two forwards: prompts (with cache), then every option's tokens."""
    from polyfact.training.evaluation.scoring import score_options

    prompts = [_rand_text(20, vocab, g) for _ in range(12 * facts)]
    options = [[_rand_text(4, vocab, g) for _ in range(4)] for _ in prompts]
    score_options(m, _Tok(), prompts, options, ["de"] * len(prompts), batch_size=32, style="study")


def _lora(m, checkpointing: bool, r: int = 64):
    """``m`` with LoRA rank ``r`` (alpha 2r) on the seven projections, in train mode, and its AdamW."""
    import torch

    from polyfact.training.config import LoraSettings
    from polyfact.training.lm import with_lora

    pm = with_lora(m, LoraSettings(enabled=True, r=r, alpha=2 * r))
    if checkpointing:
        pm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        pm.enable_input_require_grads()
    pm.train()
    return pm, torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-5)


def _lora_step(m, ids, checkpointing: bool):
    """Forward, backward and AdamW step of LoRA r 64 on the seven projections."""
    pm, opt = _lora(m, checkpointing)
    out = pm(input_ids=ids, labels=ids)
    out.loss.backward()
    opt.step()
    return pm


def _dco_step(m, instances: int, vocab: int, g) -> None:
    """DCO's step as ``polyfact.training.dco.DcoTrainer`` takes it: an instance's 4 sequences (chosen and
    rejected in two languages) of 48 prompt + 16 completion tokens, summed completion
    log-probabilities by ``sequence_logps`` under the policy and (no grad, adapter off) the
    reference, ``dco_loss``, backward, AdamW; LoRA r 128 with checkpointing (the study's port)."""
    import torch

    from polyfact.training.dco import dco_loss, sequence_logps

    n = 4 * instances
    prompts, completions = [_rand_text(48, vocab, g) for _ in range(n)], [_rand_text(16, vocab, g) for _ in range(n)]
    pm, opt = _lora(m, checkpointing=True, r=128)
    logps, _ = sequence_logps(pm, _Tok(), prompts, completions, 64)
    with torch.no_grad(), pm.disable_adapter():
        ref, _ = sequence_logps(pm, _Tok(), prompts, completions, 64)
    dco_loss(*logps.split(instances), *ref.split(instances)).mean().backward()
    opt.step()


def _dpo_step(m, pairs: int, vocab: int, g) -> None:
    """CM-Align's DPO step (TRL's ``DPOTrainer`` with the reference as the adapter off): chosen and
    rejected of 96 prompt + 32 answer tokens concatenated in one forward, summed completion
    log-probabilities, the reference's under no grad, −log σ(β·margin), backward, AdamW; LoRA r 64
    with checkpointing (the study's port)."""
    import torch

    from polyfact.training.grpo import completion_logprobs

    ids = torch.randint(1, vocab, (2 * pairs, 128), generator=g)
    attn, cmask = torch.ones_like(ids), torch.zeros_like(ids)
    cmask[:, 96:] = 1
    pm, opt = _lora(m, checkpointing=True)
    logp = completion_logprobs(pm, ids, attn, cmask).sum(-1)
    with torch.no_grad(), pm.disable_adapter():
        ref = completion_logprobs(pm, ids, attn, cmask).sum(-1)
    margin = (logp[:pairs] - logp[pairs:]) - (ref[:pairs] - ref[pairs:])
    (-torch.nn.functional.logsigmoid(0.1 * margin)).mean().backward()
    opt.step()


def _grpo_step(m, rollouts: int, vocab: int, g) -> None:
    """The fact-grouped loss step: 12 languages × ``rollouts`` sequences of 96 prompt + 32 new
    tokens, per-token log-probabilities of the completions, policy loss, backward, AdamW."""
    import torch

    from polyfact.training.grpo import completion_logprobs, policy_loss

    n = 12 * rollouts
    ids = torch.randint(1, vocab, (n, 128), generator=g)
    cmask = torch.zeros_like(ids)
    cmask[:, 96:] = 1
    pm, opt = _lora(m, checkpointing=True)
    logp = completion_logprobs(pm, ids, torch.ones_like(ids), cmask)
    loss, _ = policy_loss(logp, logp.detach(), torch.randn(n), cmask, loss_type="grpo")
    loss.backward()
    opt.step()


POINTS = ((1, 1, V0), (2, 1, V0), (1, 2, V0), (1, 1, REAL), (4, 1, V0))  # (layers, units, vocabulary)


def point_name(point: tuple[int, int, int], vocab: int) -> str:
    """The plan's key of a point: ``L1``, ``L2``, ``L1_n2``, ``L4`` or ``L1_V<vocab>``."""
    layers, units, v = point
    return f"L{layers}" + (f"_n{units}" if units > 1 else "") + (f"_V{vocab}" if v == REAL else "")


def run_point(model: str, stage: str, layers: int, units: int, vocab: int) -> float:
    """One measurement in a fresh single-threaded process: memory the allocator kept from an
    earlier measurement would otherwise be reused without raising the peak (it hid 2 GiB)."""
    import subprocess

    # a fixed mmap threshold returns every freed tensor to the system: without it glibc's heap
    # kept up to 0.4 GiB of freed memory and a point varied by 0.1-0.4 GiB between runs
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, __file__, "--point", model, stage, str(layers), str(units), str(vocab)],
                          capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{model} {stage} L{layers} n{units} V{vocab} failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def fit_stage(model: str, stage: str, points: dict[tuple[int, int, int], float]) -> dict:
    """Fit one stage from its five measured ``points`` ({(layers, units, vocab): GiB})."""
    spec = MODELS[model]
    unit, paper_n, _, desc = STAGES[stage]
    p11, p21, p12, pv, p41 = (points[p] for p in POINTS)
    v_real = spec["vocab_size"]
    pred4 = p11 + 3 * (p21 - p11)  # the validation: 4 layers from the 1- and 2-layer points alone
    b = (p41 - p11) / 3  # the prediction's slope: over three layers, a third of the measurement noise
    a = p11 - b
    s = p12 - p11
    ev = (pv - p11) / (v_real - V0)  # e + f at n = 1
    heads = 1 if spec["tie_word_embeddings"] else 2
    e = heads * spec["hidden_size"] * 2 / 2**30  # bf16 embedding + LM head weights per vocabulary entry
    f = max(ev - e, 0.0)

    fit = {"a": a, "b_per_layer": b, "s_per_unit": s, "e_per_vocab": e, "f_per_vocab_unit": f}

    def predict(layers: int, n: int, vocab: int) -> float:
        return memory.predict(fit, layers, n, vocab, V0)

    real_l, real_v = spec["num_hidden_layers"], spec["vocab_size"]
    peak = predict(real_l, paper_n, real_v)
    budget = memory.BUDGET_GIB
    per_unit = s + real_v * f
    sequential = stage in ("lahis", "gradient")  # one sample per step by design: no batch to grow
    largest = None if sequential or per_unit <= 0 else math.floor((budget - predict(real_l, 1, real_v)) / per_unit) + 1
    return {"stage": stage, "description": desc, "unit": unit, "paper_units": paper_n,
            "points_gib": {point_name(p, v_real): points[p] for p in POINTS},
            "fit": fit,
            "validation": {"L4_measured": p41, "L4_predicted": pred4, "error": abs(pred4 - p41) / p41},
            "predicted_gib": peak, "fits_80gb": peak <= budget, "largest_units_that_fit": largest}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--point", nargs=5, metavar=("MODEL", "STAGE", "LAYERS", "UNITS", "VOCAB"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--out", default=str(ROOT / "pipeline" / "memory_plan.json"))
    ap.add_argument("--remeasure", action="store_true", help="measure every point again (default: keep the plan's)")
    a = ap.parse_args()
    import peft  # noqa: F401  (every library loaded before the first baseline)

    if a.point:
        import warnings

        warnings.filterwarnings("ignore")
        model, stage, layers, units, vocab = a.point
        print(measure(model, stage, int(layers), int(units), int(vocab)))
        return
    t0 = time.time()
    # the stages measured now replace theirs in the plan already written; the others are kept
    old = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    plan = {"measured_on": f"{os.cpu_count()}-core CPU, bf16, real-width layers, vocabulary {V0} and the model's",
            "vocab_base": V0, "gpu_gib": memory.GPU_GIB, "headroom_gib": memory.HEADROOM_GIB,
            "models": old.get("models", {}), "seconds": old.get("seconds", {})}
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(m, st) for m in a.models.split(",") for st in a.stages.split(",")]
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)  # one single-threaded measurement per core
    def kept(m: str, st: str, p: tuple[int, int, int]) -> float | None:
        """The point as the plan already holds it (--remeasure: none is kept)."""
        stage = plan["models"].get(MODELS[m]["hub"], {}).get("stages", {}).get(st, {})
        return None if a.remeasure else stage.get("points_gib", {}).get(point_name(p, MODELS[m]["vocab_size"]))

    have = {k: v for m, st in jobs for p in POINTS if (v := kept(*(k := (m, st, p)))) is not None}
    # the longest points first (time grows with layers × units; the real LM head weighs ~8 layers)
    cost = lambda k: -k[2][0] * k[2][1] * (8 if k[2][2] == REAL else 1)  # noqa: E731
    order = sorted(((m, st, p) for m, st in jobs for p in POINTS if (m, st, p) not in have), key=cost)
    futures = {(m, st, p): pool.submit(run_point, m, st, p[0], p[1], MODELS[m]["vocab_size"] if p[2] == REAL else p[2])
               for m, st, p in order}
    for model in a.models.split(","):
        stages = plan["models"].get(MODELS[model]["hub"], {}).get("stages", {})
        for stage in a.stages.split(","):
            points = {p: have[k] if (k := (model, stage, p)) in have else futures[k].result() for p in POINTS}
            stages[stage] = fit_stage(model, stage, points)
            r = stages[stage]
            print(f"{model:11s} {stage:9s} {r['predicted_gib']:7.1f} GiB  fits: {'yes' if r['fits_80gb'] else 'NO ':3s}  "
                  f"largest batch: {r['largest_units_that_fit'] or 'n/a (one sample per step)'} × {r['unit']}  (4-layer check "
                  f"{r['validation']['L4_predicted']:.2f} vs {r['validation']['L4_measured']:.2f} GiB, "
                  f"{100 * r['validation']['error']:.1f} %)", flush=True)
        plan["models"][MODELS[model]["hub"]] = {"layers": MODELS[model]["num_hidden_layers"],
                                                "vocab": MODELS[model]["vocab_size"], "stages": stages}
    if order:  # what this pass measured and how long it took (the plan keeps every pass's)
        plan["seconds"][f"{a.stages} ({len(order)} points)"] = round(time.time() - t0)
    from polyfact.core.io import atomic_write_text

    atomic_write_text(Path(a.out), json.dumps(plan, indent=1) + "\n")
    print(f"\n{'stage':46s} | " + " | ".join(f"{m} GiB" for m in plan["models"]) + " | fits on 80 GB? | largest batch")
    for stage in a.stages.split(","):
        cells = [plan["models"][m]["stages"][stage] for m in plan["models"]]
        print(f"{STAGES[stage][3]:46s} | " + " | ".join(f"{c['predicted_gib']:.1f}" for c in cells) + " | "
              + " / ".join("yes" if c["fits_80gb"] else "no" for c in cells) + " | "
              + (" / ".join(f"{c['largest_units_that_fit']}" for c in cells) + f" × {STAGES[stage][0]}"
                 if cells[0]["largest_units_that_fit"] else "n/a (one sample per step)"))
    print(f"wrote {a.out} in {round(time.time() - t0)} s")


if __name__ == "__main__":
    main()
