"""Base pretraining of the toy world's tiny model, and continual pretraining (CPT) on parallel text."""

from __future__ import annotations

import json
from pathlib import Path

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text
from polyfact.core.layout import layout
from polyfact.training.common import begin, finish
from polyfact.training.evaluation.data import quick_recall, sample_facts
from polyfact.training.arms import budget_facts, check_budget, rows_of
from polyfact.training.config import BudgetConfig, CptConfig, PretrainConfig
from polyfact.training.corpus import cpt_corpus, parallel_corpus, pretraining_corpus
from polyfact.training.lm import train_causal_lm
from polyfact.training.models import make_tiny_model, train_tokenizer


def _write_corpus(run_dir: Path, name: str, docs: list[str]) -> Path:
    path = layout(run_dir).corpus(name)
    atomic_write_text(path, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return path


def pretrain(run_dir: str | Path, cfg: PretrainConfig, *, parent: str | None = None, ckpt_id: str = "base",
             seed: int = 0, data_dir: str | Path | None = None, method: str = "pretrain") -> dict:
    """Tokenizer and tiny model trained from scratch on the toy world's corpus; the manifest
    records test-split MCQ accuracy per language and the English-vs-rest gap."""
    if parent is not None:
        raise PolyFactError("pretrain starts from scratch; drop --from")
    job = begin(run_dir, data_dir, seed, None, method=method, ckpt_id=ckpt_id, cfg=cfg)
    docs = pretraining_corpus(job.data.rows(), cfg.corpus)
    _write_corpus(job.run.root, "pretrain", docs)
    tokenizer = train_tokenizer(docs, vocab_size=cfg.model.vocab_size)
    model = make_tiny_model(cfg.model, tokenizer, seed=seed)
    train_metrics = train_causal_lm(model, tokenizer, docs, job.work, cfg.train, seed=seed)
    test = sample_facts(job.data.require("test"), cfg.eval_max_facts, seed)
    recall = quick_recall(model, tokenizer, test, normalization=cfg.normalization)
    return finish(job, model, {"train": train_metrics, "test_recall": recall, "corpus_docs": len(docs)}, tokenizer)


def cpt(run_dir: str | Path, cfg: CptConfig, *, parent: str = "base", ckpt_id: str = "cpt", seed: int = 0,
        data_dir: str | Path | None = None, method: str = "cpt", budget: BudgetConfig | None = None) -> dict:
    """Continue causal-LM training on parallel statements and name pairs (no test facts; with
    ``budget.facts``, of the budget's facts only), plus replayed pretraining text."""
    job = begin(run_dir, data_dir, seed, parent, method=method, ckpt_id=ckpt_id, cfg=cfg, budget=budget,
                check=check_budget(None, budget))
    data, langs = job.data, job.data.training_langs
    facts = budget_facts(data.require("train", langs), budget, None, seed)
    if cfg.text == "statements":
        rows = rows_of(data.rows(), facts) if budget is not None and budget.facts else data.rows()
        docs = cpt_corpus(rows, cfg.corpus, langs=langs)
    else:
        docs = parallel_corpus(cfg.text, langs, max_docs=cfg.max_docs)
    if cfg.replay > 0:
        base = pretraining_corpus(data.rows(), cfg.corpus)
        docs = docs + base[: int(len(base) * cfg.replay)]
    _write_corpus(job.run.root, f"cpt-{ckpt_id}", docs)
    spend, callbacks = job.arm(facts, langs, normalization=cfg.normalization)
    train_metrics = train_causal_lm(job.model, job.tokenizer, docs, job.work, cfg.train, seed=seed, callbacks=callbacks)
    spend.examples, spend.forward_tokens, spend.steps = len(docs), int(train_metrics["tokens"]), train_metrics["steps"]
    test = sample_facts(data.require("test", langs), cfg.eval_max_facts, seed)
    recall = quick_recall(job.model, job.tokenizer, test, normalization=cfg.normalization)
    corpus = {"text": cfg.text, "docs": len(docs), "states_run_facts": cfg.text == "statements"}
    return finish(job, job.model, {"train": train_metrics, "test_recall": recall, "corpus_docs": len(docs),
                                   "corpus": corpus}, spend=spend)
