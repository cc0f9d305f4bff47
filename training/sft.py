"""Supervised fine-tuning with TRL's ``SFTTrainer``: question → answer pairs of the train split in
the training languages, loss on the answer only; LoRA through ``peft`` for large models."""

from __future__ import annotations

from pathlib import Path

import datasets

from polyfact.build import continuation
from training.common import begin, finish, quick_recall, sample_facts
from training.config import SftConfig
from training.lm import last_state, merged, training_args


def sft_dataset(rows: list[dict]) -> datasets.Dataset:
    """Prompt–completion pairs in the evaluation's format (TRL masks the prompt from the loss)."""
    return datasets.Dataset.from_dict({
        "prompt": [r["prompt"] for r in rows],
        "completion": [continuation(r["prompt"], r["object"], r["lang"]) for r in rows],
    })


def sft_trainer(model, tokenizer, rows: list[dict], cfg: SftConfig, out: Path, seed: int, **overrides):
    """TRL's ``SFTTrainer`` for ``rows`` (LoRA per ``cfg.lora``); ``overrides`` go to ``SFTConfig``."""
    from trl import SFTConfig, SFTTrainer

    kwargs = {"gradient_checkpointing": cfg.train.gradient_checkpointing,  # TRL's default is on: say it
              **training_args(out, cfg.train, seed), **overrides}
    args = SFTConfig(**kwargs, max_length=cfg.train.seq_len, packing=False, completion_only_loss=True,
                     dataset_num_proc=None)
    return SFTTrainer(model=model, args=args, train_dataset=sft_dataset(rows), processing_class=tokenizer,
                      peft_config=cfg.lora.peft_config())


def sft(run_dir: str | Path, cfg: SftConfig, *, parent: str = "base", ckpt_id: str = "sft", seed: int = 0,
        data_dir: str | Path | None = None, method: str = "sft") -> dict:
    """Fine-tune ``parent`` on the train split's question–answer pairs."""
    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg)
    data, tokenizer = job.data, job.tokenizer
    langs = cfg.langs or data.training_langs
    rows = sample_facts(data.require("train", langs), cfg.max_facts, seed)
    trainer = sft_trainer(job.model, tokenizer, rows, cfg, job.work, seed)
    result = trainer.train(resume_from_checkpoint=last_state(job.work))
    model = merged(trainer.model)
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    train_eval = sample_facts(rows, cfg.eval_max_facts, seed)
    metrics = {
        "train": {"train_loss": float(result.training_loss), "steps": trainer.state.global_step, "examples": len(rows)},
        "test_recall": quick_recall(model, tokenizer, test, normalization=cfg.normalization),
        "train_recall": quick_recall(model, tokenizer, train_eval, normalization=cfg.normalization),
    }
    return finish(job, model, metrics)
