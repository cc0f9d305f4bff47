"""Causal-LM training on packed text with ``transformers.Trainer`` (pretraining and CPT):
periodic saves, resume after a kill, progress bars, CPU or GPU (``accelerate``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import datasets
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)

from polyfact.training.config import LMTrainConfig, LoraSettings


def with_lora(model: PreTrainedModel, lora: LoraSettings) -> PreTrainedModel:
    """``model`` wrapped with fresh LoRA adapters (seeded by the caller's RNG), or itself."""
    cfg = lora.peft_config()
    if cfg is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, cfg)


def merged(model: PreTrainedModel) -> PreTrainedModel:
    """The plain transformers model: LoRA adapters merged into the weights (no-op without LoRA)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def pack(tokenizer: PreTrainedTokenizerBase, docs: Sequence[str], seq_len: int) -> datasets.Dataset:
    """Concatenate documents (each ended by EOS) and cut the stream into ``seq_len`` blocks."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(list(docs), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    n = max(1, len(stream) // seq_len)
    stream = stream + [eos] * max(0, seq_len - len(stream))
    return datasets.Dataset.from_dict({"input_ids": [stream[i * seq_len : (i + 1) * seq_len] for i in range(n)]})


def bf16_available() -> bool:
    """bf16 autocast on a CUDA GPU with bf16. Never on a CPU: there it would depend on the CPU's
    kernels (AVX512-BF16 or not), and the toy world's results must not (measured: the same seed's
    base knew English 0.66 with CPU bf16 and 0.72 without)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def training_args(out: Path, cfg: LMTrainConfig, seed: int, **extra) -> dict:
    """``TrainingArguments`` keywords shared by every stage (also passed to TRL configs)."""
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        logging_steps=cfg.logging_steps,
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=cfg.bf16 and bf16_available(),
        dataloader_num_workers=0,
        disable_tqdm=os.environ.get("POLYFACT_QUIET") == "1",
        # transformers 5 names it activation_checkpointing (gradient_checkpointing is a deprecated
        # alias TRL's configs still define): passed only when on
        **({"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
           if cfg.gradient_checkpointing else {}),
        **extra,
    )


def last_state(out: Path) -> str | None:
    """The newest complete ``checkpoint-N`` a killed run left in ``out`` (to resume from): one whose
    trainer state parses and whose optimizer, scheduler and weights were written (a kill mid-save
    leaves some out, or a file empty)."""
    from polyfact.core.io import read_cached

    if not out.exists():
        return None

    def complete(p: Path) -> bool:
        if not all((p / f).exists() and (p / f).stat().st_size > 0 for f in ("optimizer.pt", "scheduler.pt")):
            return False
        if not any(p.glob("*.safetensors")):
            return False
        return isinstance(read_cached(p / "trainer_state.json"), dict)

    states = sorted((p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                    key=lambda p: int(p.name.split("-")[-1]))
    good = [p for p in states if complete(p)]
    return str(good[-1]) if good else None


def train_causal_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    docs: Sequence[str],
    out: Path,
    cfg: LMTrainConfig,
    seed: int = 0,
    callbacks: list | None = None,
) -> dict:
    """Train on packed ``docs``; resumes from the newest state in ``out``. Returns the train metrics
    (loss, steps, tokens)."""
    data = pack(tokenizer, docs, cfg.seq_len)
    args = TrainingArguments(**training_args(out, cfg, seed))
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    result = trainer.train(resume_from_checkpoint=last_state(out))
    steps = trainer.state.global_step
    return {
        "train_loss": float(result.training_loss),
        "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), float("nan")),
        "steps": steps,
        "tokens": int(len(data) * cfg.seq_len * (cfg.epochs if cfg.max_steps < 0 else 1)),
        "blocks": len(data),
        "epochs": math.ceil(cfg.epochs) if cfg.max_steps < 0 else None,
    }
