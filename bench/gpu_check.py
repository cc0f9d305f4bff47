"""GPU check of the toolkit at 7B shape: a Qwen2.5-7B-shaped model with random bf16 weights and a
toy byte-level BPE tokenizer (nothing from a hub). Sections (each times itself, records peak GPU
memory, and is written to the JSON as soon as it ends, so a later failure loses nothing):

``stats``  each collection backend's statistics against a plain-hooks reference written here
           (counts equal; sums within bf16/float tolerance) and time ÷ bare forward on
           8,192-token batches;
``heads``  head importance by LAHIS (batch 1, 512 tokens, AdamW on the mask) and by gradient:
           seconds per 1,000 samples and peak memory;
``mcq``    MCQ scoring of facts in 12 languages (the evaluation's batched scorer): rows per second;
``grpo``   one fact-grouped GRPO step (8 rollouts × 12 languages, 32 new tokens, LoRA r 64,
           gradient checkpointing) through the project's trainer: seconds and peak memory;
``sft``    one LoRA SFT step (TRL's SFTTrainer as the project builds it): seconds and peak memory;
``dco``    DCO steps (4 instances × 4 sequences, LoRA r 128, checkpointing, reference = adapter off)
           through the project's ``DcoTrainer``: seconds and peak memory;
``dpo``    CM-Align's DPO steps (4 pairs of up to 512 tokens, LoRA r 64, checkpointing, TRL's
           ``DPOTrainer`` as the project builds it): seconds and peak memory.

    python3 bench/gpu_check.py [--tiny] [--sections stats,heads,mcq,grpo,sft,dco,dpo] [--out $OUT/gpu_check.json]

``--tiny`` runs every section on a small model (CPU or GPU) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QWEN25_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
TINY = dict(vocab_size=4096, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False)
LANGS12 = ["en", "de", "id", "pt", "ar", "bn", "sw", "es", "ru", "fr", "ja", "zh"]
SECTIONS = ("stats", "heads", "mcq", "grpo", "sft", "dco", "dpo")
MCQ_BATCH = 32  # rows per scorer batch


class Check:
    """Shared state: the model, tokenizer, device, timers and the JSON being written."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.t0 = time.time()
        self.out = Path(a.out)
        self.report: dict[str, Any] = {"device": torch.cuda.get_device_name() if self.dev == "cuda" else "cpu",
                                       "args": vars(a), "versions": versions(), "sections": {}}

    def left(self) -> float:
        return self.a.budget_s - (time.time() - self.t0)

    def sync(self) -> None:
        if self.dev == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.dev == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if self.dev == "cuda" else None

    def timed(self, fn: Callable[[], Any], repeats: int | None = None) -> float:
        """Best of ``repeats`` after one warm-up call, CUDA-synchronized."""
        fn()
        self.sync()
        best = float("inf")
        for _ in range(repeats or self.a.repeats):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            best = min(best, time.perf_counter() - t)
        return best

    def save(self) -> None:
        self.report["elapsed_s"] = round(time.time() - self.t0, 1)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.report, indent=2, default=str))


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "nnsight", "transformer-lens", "trl", "peft", "accelerate", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def synthetic_rows(n_facts: int, langs: list[str]) -> list[dict]:
    """PolyFact rows (real question templates and MCQ options) of made-up capital-city facts."""
    from polyfact.data.build import BuildConfig, build_rows
    from polyfact.data.facts import Fact

    facts = []
    for i in range(max(n_facts, 8)):
        facts.append(Fact(fact_id=f"S{i}|P36|C{i}", relation="P36", subject_id=f"S{i}", object_id=f"C{i}",
                          subject={lang: f"Land {i} {lang}" for lang in langs},
                          object={lang: f"Capital {i} {lang}" for lang in langs}))
    rows, _ = build_rows(facts, BuildConfig(langs=langs, split_fracs=(1.0, 0.0, 0.0)))
    out = rows["train"]
    return [r for r in out if int(r["fact_id"].split("|")[0][1:]) < n_facts]


def build(check: Check):
    from tokenizers import Tokenizer  # noqa: F401  (fails early if the image lacks tokenizers)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from polyfact.training.models import train_tokenizer

    a = check.a
    rows = synthetic_rows(16, LANGS12)
    tok = train_tokenizer([r["prompt"] + " " + o for r in rows for o in r["options"]] * 4, vocab_size=2048,
                          min_frequency=1)
    shape = TINY if a.tiny else QWEN25_7B
    cfg = Qwen2Config(**shape, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    dtype = torch.bfloat16 if check.dev == "cuda" else torch.float32
    t = time.time()
    with torch.device(check.dev):
        model = Qwen2ForCausalLM._from_config(cfg, dtype=dtype).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    n = sum(p.numel() for p in model.parameters())
    check.report["model"] = {"shape": "tiny" if a.tiny else "Qwen2.5-7B", "params_b": round(n / 1e9, 3),
                             "dtype": str(dtype), "build_s": round(time.time() - t, 1), "tokenizer_vocab": len(tok)}
    print(f"built {check.report['model']} on {check.report['device']}", flush=True)
    return model, tok


# ---------------------------------------------------------------------------------------------- stats
def reference_stats(model, batches, n_heads):
    """Plain forward hooks, the most direct implementation: what every backend must match."""
    layers = model.model.layers
    n_layers, d_mlp = len(layers), model.config.intermediate_size
    dev = next(model.parameters()).device
    pos = torch.zeros(n_layers, d_mlp, dtype=torch.int64, device=dev)
    s = torch.zeros(n_layers, d_mlp, dtype=torch.float64, device=dev)
    hn = torch.zeros(n_layers, n_heads, dtype=torch.float64, device=dev)
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


def section_stats(check: Check, model, tok) -> dict:
    from polyfact.interp.sites import adapter_for, model_shape

    a = check.a
    seq, batch = (128, 2) if a.tiny and check.dev == "cpu" else (a.seq, a.batch)
    g = torch.Generator(device="cpu").manual_seed(0)
    batches = [torch.randint(0, len(tok), (batch, seq), generator=g).to(check.dev) for _ in range(a.batches)]
    adapter, shape = adapter_for(model), model_shape(model)

    def bare() -> None:  # what the statistics run: the model with logits for the last position only
        with torch.inference_mode():
            for b in batches:
                model(input_ids=b, use_cache=False, logits_to_keep=1)

    ref = reference_stats(model, batches, shape.n_heads)
    model.set_attn_implementation("eager")  # the bridge runs eager attention: its reference must too
    ref_eager = reference_stats(model, batches, shape.n_heads)
    model.set_attn_implementation("sdpa")
    results: dict[str, dict] = {"bare (HF sdpa)": {"seconds": check.timed(bare)}}
    for name in a.backends.split(","):
        if check.left() < 60:
            results[name] = {"skipped": "time budget"}
            continue
        try:
            results.update(_backend_timing(check, name, model, tok, batches,
                                           ref_eager if name.startswith("lens") else ref, adapter, shape))
        except Exception as err:  # noqa: BLE001 - one backend's failure must not hide the others
            results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            print(results[name]["traceback"], flush=True)
    base = results["bare (HF sdpa)"]["seconds"]
    for v in results.values():
        if "seconds" in v:
            v["ratio"] = v["seconds"] / base
    return {"tokens": a.batches * batch * seq, "batches": a.batches, "batch": batch, "seq": seq, "results": results,
            "lens_reference": "HF eager attention (the bridge's own attention)"}


def _backend_timing(check: Check, name: str, model, tok, batches, ref, adapter, shape) -> dict[str, dict]:
    """Time and check one collection backend (and, for ``lens``, the bridge's own bare forward)."""
    from polyfact.interp.backends import LensHooks, make_backend
    from polyfact.interp.stats import ActivationStats, SiteReducer

    results: dict[str, dict] = {}
    base_name = name.split("+")[0]
    t_setup = time.time()
    tmp = tempfile.mkdtemp()
    if base_name == "lens":
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        backend = LensHooks(tmp, adapter, shape, device=check.dev, dtype=next(model.parameters()).dtype)
    else:
        backend = make_backend(base_name, model, tok, adapter, shape)
    setup_s = time.time() - t_setup
    compile_, moments = "+compile" in name, "+counts" not in name
    box: list = []

    def run_all() -> None:
        st = ActivationStats.zeros(["xx"], shape.n_layers, shape.d_mlp, shape.n_heads)
        red = SiteReducer(st, shape.n_heads, compile=compile_, moments=moments)
        for b in batches:
            m = torch.ones_like(b)
            red.begin(0, m)
            backend.collect(b, m, red)
        red.finish()
        box[:] = [st]

    try:
        secs = check.timed(run_all)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    st = box[0]
    entry = {"seconds": secs, "setup_s": round(setup_s, 1), "counts_equal": bool(torch.equal(st.act_pos[0], ref[0])),
             "counts_differing_frac": float((st.act_pos[0] != ref[0]).double().mean()),
             "max_rel_err_sum": float((st.act_sum[0] - ref[1]).abs().max() / ref[1].abs().max().clamp(min=1e-9))
             if moments else None,
             "max_rel_err_head_norm": float((st.head_norm[0] - ref[2]).abs().max()
                                            / ref[2].abs().max().clamp(min=1e-9))}
    if base_name == "lens":
        def lens_bare() -> None:
            with torch.inference_mode():
                for b in batches:
                    backend.bridge.run_with_hooks(b, fwd_hooks=[], return_type=None)

        results["lens bare (bridge)"] = {"seconds": check.timed(lens_bare)}
        del backend.bridge
        if check.dev == "cuda":
            torch.cuda.empty_cache()
    shutil.rmtree(tmp, ignore_errors=True)
    results[name] = entry
    print(f"  {name}: {secs:.3f} s, counts equal {entry['counts_equal']}, rel err sum "
          f"{entry['max_rel_err_sum']}, heads {entry['max_rel_err_head_norm']:.1e}", flush=True)
    return results


# ---------------------------------------------------------------------------------------------- heads
def section_heads(check: Check, model, tok) -> dict:
    from polyfact.interp.batching import CollectConfig
    from polyfact.interp.heads import head_importance

    a = check.a
    seq = 64 if a.tiny and check.dev == "cpu" else 512
    g = torch.Generator(device="cpu").manual_seed(1)
    n = a.head_samples
    texts = {"en": [torch.randint(0, len(tok), (seq,), generator=g).tolist() for _ in range(n)]}
    out = {"diagnosis": _grad_diagnosis(model, tok, texts["en"][0]),
           "per_sample": _per_sample(model, texts["en"])}
    for method in ("lahis", "gradient"):
        cfg = CollectConfig(backend="torch", seq_len=seq, batch_size=1, pack=False, progress=False)
        head_importance(model, tok, {"en": texts["en"][:1]}, method, cfg, max_samples=1)  # warm-up
        check.reset_peak()
        check.sync()
        t = time.perf_counter()
        imp = head_importance(model, tok, texts, method, cfg, max_samples=n)
        check.sync()
        secs = time.perf_counter() - t
        out[method] = {"samples": n, "seq_len": seq, "seconds": secs, "seconds_per_1000_samples": secs / n * 1000,
                       "peak_gib": check.peak_gib(), "finite": bool(torch.isfinite(imp.scores).all()),
                       "nonfinite_heads": int((~torch.isfinite(imp.scores)).sum()),
                       "skipped_nonfinite": imp.meta.get("skipped_nonfinite", {})}
        print(f"  heads {method}: {out[method]}", flush=True)
    return out


def _mask_grad(runner, edit, ids: list[int], dev):
    """(loss, logits, ∂loss/∂mask) of one sample with the head mask at 1."""
    from polyfact.interp.heads import _loss

    x = torch.tensor([ids], device=dev)
    edit.mask = torch.ones_like(edit.mask).requires_grad_(True)
    with torch.enable_grad():
        logits = runner.logits(x, torch.ones_like(x), edit)
        loss, _ = _loss(logits, x, torch.ones_like(x))
        (g,) = torch.autograd.grad(loss, edit.mask)
    return loss.detach(), logits.detach(), g


def _per_sample(model, samples: list[list[int]]) -> list[dict]:
    """Loss and mask-gradient finiteness of every sample separately (sdpa)."""
    from polyfact.interp.backends import TorchHooks
    from polyfact.interp.heads import _HeadEdit
    from polyfact.interp.sites import adapter_for, model_shape

    shape, dev = model_shape(model), next(model.parameters()).device
    edit = _HeadEdit(shape.n_layers, shape.n_heads, shape.d_head, dev)
    runner = TorchHooks(model, adapter_for(model), shape)
    out = []
    try:
        for ids in samples:
            loss, logits, g = _mask_grad(runner, edit, ids, dev)
            out.append({"loss": round(float(loss), 3), "grad_nonfinite": int((~torch.isfinite(g)).sum()),
                        "logits_nonfinite": int((~torch.isfinite(logits)).sum()),
                        "n_special": sum(1 for t in ids if t < 2)})
    finally:
        runner.close()
    print(f"  per-sample: {out}", flush=True)
    return out


def _grad_diagnosis(model, tok, ids: list[int]) -> dict:
    """Loss and head-mask gradient of one sample under sdpa and eager attention (finite or not)."""
    from polyfact.interp.backends import TorchHooks
    from polyfact.interp.heads import _HeadEdit
    from polyfact.interp.sites import adapter_for, model_shape

    shape, dev = model_shape(model), next(model.parameters()).device
    out = {}
    for impl in ("sdpa", "eager"):
        model.set_attn_implementation(impl)
        edit = _HeadEdit(shape.n_layers, shape.n_heads, shape.d_head, dev)
        runner = TorchHooks(model, adapter_for(model), shape)
        try:
            for p in model.parameters():
                p.requires_grad_(False)
            loss, logits, g = _mask_grad(runner, edit, ids, dev)
            out[impl] = {"loss": float(loss), "logits_finite": bool(torch.isfinite(logits).all()),
                         "grad_nonfinite": int((~torch.isfinite(g)).sum()),
                         "grad_abs_max": float(g[torch.isfinite(g)].abs().max()) if torch.isfinite(g).any() else None,
                         "nonfinite_layers": sorted({int(i) for i in (~torch.isfinite(g)).nonzero()[:, 0].tolist()})}
        except Exception as err:  # noqa: BLE001
            out[impl] = {"error": f"{type(err).__name__}: {err}"}
        finally:
            runner.close()
    model.set_attn_implementation("sdpa")
    print(f"  heads diagnosis: {out}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- mcq
def section_mcq(check: Check, model, tok) -> dict:
    from polyfact.training.evaluation.scoring import mcq_records

    facts = 8 if check.a.tiny else check.a.mcq_facts
    rows = synthetic_rows(facts, LANGS12)
    mcq_records(model, tok, rows[:24], batch_size=MCQ_BATCH)  # warm-up
    check.reset_peak()
    check.sync()
    t = time.perf_counter()
    recs = mcq_records(model, tok, rows, batch_size=MCQ_BATCH)
    check.sync()
    secs = time.perf_counter() - t
    out = {"facts": facts, "languages": 12, "rows": len(recs), "seconds": secs, "rows_per_s": len(recs) / secs,
           "facts_x_languages_per_s": len(recs) / secs, "peak_gib": check.peak_gib(),
           "prompt_tokens_mean": statistics.mean(len(tok(r["prompt"])["input_ids"]) for r in rows)}
    print(f"  mcq: {out}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- training
class _StepTimer:
    """A TrainerCallback recording wall time per optimizer step."""

    def __new__(cls, check: Check):
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def __init__(self) -> None:
                self.times: list[float] = []
                self._t = 0.0

            def on_step_begin(self, args, state, control, **kw):
                check.sync()
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                check.sync()
                self.times.append(time.perf_counter() - self._t)

        return Timer()


def _unwrap(model):
    """Remove injected LoRA layers (no merge) so the next section sees the plain random model."""
    return model.unload() if hasattr(model, "unload") else model


def _train_once(check: Check, make_trainer):
    """Train a trainer built by ``make_trainer(out_dir)``: (trainer, step seconds, peak GiB); its
    LoRA layers are removed afterwards."""
    timer = _StepTimer(check)
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(Path(out))
        trainer.add_callback(timer)
        check.reset_peak()
        trainer.train()
        peak = check.peak_gib()
        _unwrap(trainer.model)
    return trainer, timer.times, peak


def section_grpo(check: Check, model, tok) -> dict:
    from polyfact.training.config import GrpoConfig, LoraSettings
    from polyfact.training.arms import fact_groups
    from polyfact.training.grpo import grpo_trainer

    steps = 2
    rows = synthetic_rows(steps, LANGS12)
    groups = fact_groups(rows, list(dict.fromkeys(r["fact_id"] for r in rows)))
    cfg = GrpoConfig(steps=steps, facts_per_step=1, num_generations=8 if not check.a.tiny else 4,
                     max_new_tokens=32 if not check.a.tiny else 8, learning_rate=1e-5,
                     lora=LoraSettings(enabled=True), gradient_checkpointing=True, logging_steps=1, save_steps=10**6)
    trainer, times, peak = _train_once(check, lambda out: grpo_trainer(model, tok, groups, cfg, out, seed=0,
                                                                      save_strategy="no", disable_tqdm=True))
    res = {"rollouts": cfg.num_generations, "languages": 12, "new_tokens": cfg.max_new_tokens, "lora_r": 64,
           "gradient_checkpointing": True, "step_seconds": times, "peak_gib": peak,
           "reward": [h.get("reward") for h in getattr(trainer, "history", [])]}
    print(f"  grpo: {res}", flush=True)
    return res


def section_sft(check: Check, model, tok) -> dict:
    from polyfact.training.config import LMTrainConfig, LoraSettings, SftConfig
    from polyfact.training.sft import sft_trainer

    rows = synthetic_rows(40, LANGS12)
    batch = 8
    cfg = SftConfig(train=LMTrainConfig(epochs=1.0, max_steps=3, batch_size=batch, learning_rate=1e-5, seq_len=256,
                                        logging_steps=1, save_steps=10**6), lora=LoraSettings(enabled=True))
    _, times, peak = _train_once(check, lambda out: sft_trainer(model, tok, rows, cfg, out, seed=0, save_strategy="no",
                                                                disable_tqdm=True))
    res = {"micro_batch": batch, "seq_len_max": 256, "lora_r": 64, "step_seconds": times, "peak_gib": peak}
    print(f"  sft: {res}", flush=True)
    return res


def section_dco(check: Check, model, tok) -> dict:
    from polyfact.training.arms import Spend, fact_groups
    from polyfact.training.config import DcoConfig
    from polyfact.training.dco import dco_instances, dco_trainer

    rows = synthetic_rows(12, LANGS12)
    facts = list(dict.fromkeys(r["fact_id"] for r in rows))
    instances = dco_instances(fact_groups(rows, facts), seed=0)
    cfg = DcoConfig.study()
    cfg.train.max_steps, cfg.train.logging_steps, cfg.train.save_steps = 3, 1, 10**6
    _, times, peak = _train_once(check, lambda out: dco_trainer(model, tok, instances, cfg, out, 0, Spend(facts),
                                                                save_strategy="no", disable_tqdm=True))
    # what a step pads to: its 16 sequences at the longest prompt + completion (the plan's unit: 256 tokens)
    width = max(len(tok(x[f"prompt_{k}"])["input_ids"]) + len(tok(x[f"{c}_{k}"], add_special_tokens=False)["input_ids"])
                for x in instances for k in "12" for c in ("chosen", "rejected"))
    res = {"instances_per_step": cfg.train.batch_size, "sequences_per_step": 4 * cfg.train.batch_size,
           "padded_tokens_per_step": 4 * cfg.train.batch_size * min(width, cfg.train.seq_len),
           "lora_r": cfg.lora.r, "gradient_checkpointing": True, "step_seconds": times, "peak_gib": peak}
    print(f"  dco: {res}", flush=True)
    return res


def section_dpo(check: Check, model, tok) -> dict:
    from polyfact.data.build import rollout_prompt
    from polyfact.training.cmalign import dpo_trainer
    from polyfact.training.config import CmAlignConfig

    rows = synthetic_rows(16, LANGS12)
    pairs = [{"prompt": rollout_prompt(r, "study"), "chosen": " " + r["object"],  # CM-Align's prompt
              "rejected": " " + next(o for o in r["options"] if o != r["object"])} for r in rows]
    cfg = CmAlignConfig.study(encoder="policy")
    cfg.train.max_steps, cfg.train.gradient_accumulation = 3, 1
    cfg.train.logging_steps, cfg.train.save_steps = 1, 10**6
    _, times, peak = _train_once(check, lambda out: dpo_trainer(model, tok, pairs, cfg, out, 0, save_strategy="no",
                                                                disable_tqdm=True))
    width = max(len(tok(p["prompt"] + p[c])["input_ids"]) for p in pairs for c in ("chosen", "rejected"))
    res = {"pairs_per_step": cfg.train.batch_size, "max_length": cfg.train.seq_len, "lora_r": cfg.lora.r,
           "padded_tokens_per_step": 2 * cfg.train.batch_size * min(width, cfg.train.seq_len),
           "gradient_checkpointing": True, "step_seconds": times, "peak_gib": peak}
    print(f"  dpo: {res}", flush=True)
    return res


def plan_units(name: str, a: argparse.Namespace, res: dict) -> dict[str, float]:
    """The CPU memory plan's stage and batch units matching what section ``name`` measured
    (``res``: its result)."""
    if name == "stats":
        return {"stats": a.batch * a.seq / 1024}  # the plan's unit: a sequence of 1024 tokens
    if name == "heads":
        return {"lahis": 1, "gradient": 1}
    if name == "mcq":
        return {"mcq": MCQ_BATCH / 12}  # the scorer's batch of rows, in facts of 12 languages
    if name in ("dco", "dpo"):  # the plan's unit: 256 tokens, at the widest step's padding
        return {name: res["padded_tokens_per_step"] / 256}
    return {name: 8}  # SFT micro-batch 8; GRPO 8 rollouts (the plan's loss step, no generation)


def attach_plan(name: str, res: dict, a: argparse.Namespace, tiny: bool) -> None:
    """Put the CPU plan's predicted peak (pipeline/memory_plan.json, full Qwen2.5-7B) beside the
    measured one, for the same stage and batch."""
    from polyfact.pipeline.memory import stage_prediction

    if tiny or "error" in res or "skipped" in res:
        return
    for stage, units in plan_units(name, a, res).items():
        pred = stage_prediction("Qwen/Qwen2.5-7B", stage, units)
        if pred is not None:
            res.setdefault("plan_gib", {})[stage] = {"units": units, "predicted": round(pred, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--head-samples", type=int, default=24)
    ap.add_argument("--mcq-facts", type=int, default=64)
    ap.add_argument("--backends", default="torch,torch+compile,torch+counts,torch+counts+compile,nnsight,"
                                          "nnsight+counts,lens",
                    help="+compile: torch.compile the reductions; +counts: count only (no act sums)")
    ap.add_argument("--budget-s", type=float, default=330.0, help="Skip what would start after this many seconds.")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "bench/out"), "gpu_check.json"))
    ap.add_argument("--attach-plan", metavar="JSON", help="Only add the CPU plan's predictions (pipeline/memory_plan.json) "
                                                          "to an existing gpu_check.json, in place.")
    a = ap.parse_args()
    if a.attach_plan:
        report = json.loads(Path(a.attach_plan).read_text())
        for name, res in report["sections"].items():
            attach_plan(name, res, argparse.Namespace(**report["args"]), tiny=report["model"]["shape"] == "tiny")
        Path(a.attach_plan).write_text(json.dumps(report, indent=2, default=str))
        return
    if a.tiny:
        a.head_samples, a.repeats = min(a.head_samples, 4), min(a.repeats, 2)
    check = Check(a)
    model, tok = build(check)
    check.save()
    funcs = {"stats": section_stats, "heads": section_heads, "mcq": section_mcq, "grpo": section_grpo,
             "sft": section_sft, "dco": section_dco, "dpo": section_dpo}
    failed = False
    for name in a.sections.split(","):
        if check.left() < 20:
            check.report["sections"][name] = {"skipped": "time budget"}
            continue
        print(f"[{name}] ({check.left():.0f} s of budget left)", flush=True)
        t = time.time()
        try:
            res = funcs[name](check, model, tok)
        except Exception as err:  # noqa: BLE001 - record and go on with the next section
            failed = True
            res = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
            print(res["traceback"], flush=True)
        res["section_s"] = round(time.time() - t, 1)
        attach_plan(name, res, a, a.tiny)
        check.report["sections"][name] = res
        check.save()
    print(json.dumps({k: v for k, v in check.report.items() if k != "sections"}, default=str))
    print(f"wrote {check.out} in {time.time() - check.t0:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
