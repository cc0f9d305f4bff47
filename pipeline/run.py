"""``polyfact run``: dataset → base model → CPT, SFT, GRPO, CPT+GRPO (per training seed) →
evaluation → neurons and heads → routing, deactivation, representations → report.

The stages come from :mod:`pipeline.stages`; each reads and writes artifacts in the run directory
and skips work whose inputs and settings fingerprints match its outputs, so a killed run resumes
where it stopped and reaches the same results as an uninterrupted one. A run directory is locked
while a run works in it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from core.errors import PolyFactError
from core.io import atomic_write_json, read_cached
from core.layout import RunLayout, layout
from pipeline.config import CONFIG_VERSION, RunConfig, resolve, save, settings_table, to_dict, validate
from pipeline.stages import ACCELERATE_DIR, Context, StageResult, checkpoint_ids, execute, plan


def load_run_config(run: RunLayout, preset: str | None = None, config_file: str | Path | None = None,
                    sets: list[str] | None = None, overrides: dict | None = None) -> RunConfig:
    """The run's saved config (or a preset) with file, ``--set`` and flag ``overrides``, checked."""
    saved = read_cached(run.config) if run.config.exists() else None
    if run.config.exists() and not isinstance(saved, dict):
        raise PolyFactError(f"{run.config} is damaged (not a YAML mapping); delete it or pass --preset to start over")
    if isinstance(saved, dict) and saved.get("version") != CONFIG_VERSION:
        raise PolyFactError(f"{run.root} was made by an incompatible polyfact (config version {saved.get('version')}, "
                            f"this one writes {CONFIG_VERSION}); use a new --run directory")
    base = saved if isinstance(saved, dict) and not preset and not config_file else None
    cfg = resolve(preset=preset or (None if base else "default"), config_file=config_file, sets=sets, base=base,
                  overrides=overrides)
    validate(cfg)
    return cfg


@contextlib.contextmanager
def run_lock(run: RunLayout) -> Iterator[None]:
    """Hold the run directory's lock; a second process gets a one-line error at once."""
    from filelock import FileLock, Timeout

    for folder in (run.root, run.state):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PolyFactError(f"cannot create run directory {run.root}: {err.strerror}; choose a writable --run") from None
    if not os.access(run.state, os.W_OK):
        raise PolyFactError(f"run directory {run.root} is not writable; choose another --run")
    lock = FileLock(str(run.lock), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        pid = (run.state / "run.pid").read_text().strip() if (run.state / "run.pid").exists() else "?"
        raise PolyFactError(f"run directory {run.root} is in use by PID {pid}; wait for it or use another --run") from None
    try:
        (run.state / "run.pid").write_text(str(os.getpid()))
        yield
    finally:
        lock.release()


def arm_budgets(cfg: RunConfig) -> list[str]:
    """One line per planned arm: the facts it learns from and its optimizer steps at these settings
    (the budget a dry run prints; the data can only lower the counts)."""
    import math

    n = cfg.budget.facts
    lines = []
    for spec in cfg.methods:
        method = spec.split("+")[-1]
        if method == "cpt":
            lines.append(f"{spec:<14s} facts {n or 'all non-test'}; steps: the corpus's (cpt.train)")
            continue
        if method in ("grpo", "grpo-perlang", "grpo-trl"):
            g = cfg.grpo
            facts = n or g.max_facts
            steps = g.steps if g.steps is not None else (math.ceil(g.epochs * facts / g.facts_per_step) if facts else "?")
            lines.append(f"{spec:<14s} facts {facts or 'all'}; {steps} steps of {g.facts_per_step} facts x "
                         f"{g.num_generations} rollouts")
            continue
        section = {"sft": cfg.sft, "dco": cfg.dco, "cm-align": cfg.cm_align}.get(method)
        if section is None:
            continue
        facts = n or section.max_facts
        per_step = section.train.batch_size * section.train.gradient_accumulation
        unit = {"sft": "fact x language rows" if cfg.sft.objective == "answer" else "facts (all languages)",
                "dco": "instances (one per fact)", "cm-align": "pairs (up to languages - 1 per fact)"}[method]
        n_langs = len(section.langs or []) or 12  # the dataset's training languages (12 in PolyFact's split)
        items = (facts * n_langs - facts if method == "cm-align" else
                 facts * n_langs if method == "sft" and cfg.sft.objective == "answer" else facts) if facts else facts
        steps = (section.train.max_steps if section.train.max_steps > 0 else
                 f"{'<=' if method == 'cm-align' else '~'}{math.ceil(section.train.epochs * items / per_step)}"
                 if items else "?")
        lines.append(f"{spec:<14s} facts {facts or 'all'}; {steps} steps of {per_step} {unit}")
    return lines


def prepare_run_dir(run: RunLayout, cfg: RunConfig) -> None:
    """Save the (already validated) config, unless the run already holds the same one."""
    saved = read_cached(run.config)
    if saved != to_dict(cfg):
        save(cfg, run.config)


def run(preset: str | None = None, run_dir: str | Path | None = None, config_file: str | Path | None = None,
        sets: list[str] | None = None, dry_run: bool = False, force: bool = False,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or, with ``dry_run``, print) the whole study; returns the summary."""
    run_l = layout(run_dir or f"runs/{preset or 'default'}")
    cfg = load_run_config(run_l, preset, config_file, sets)
    ctx = Context(run_l, cfg, force=force)
    steps = plan(ctx)
    if dry_run:
        from pipeline.memory import BUDGET_GIB, predicted_peaks

        echo(f"plan for {run_l.root} (preset {cfg.preset}, seeds {cfg.seeds or [cfg.seed]}, "
             f"model {cfg.model or 'toy ' + cfg.pretrain.model.family}):")
        for i, s in enumerate(steps, 1):
            echo(f"{i:2d}. {s.name:<18s} {s.command}")
        arms = arm_budgets(cfg)
        if arms:
            echo(f"every arm's budget (budget.facts = {cfg.budget.facts or 'each method its own'}; optimizer steps "
                 "per seed, before the data's own limits):")
            for line in arms:
                echo("    " + line)
        peaks = predicted_peaks(cfg)
        if peaks:
            echo(f"predicted peak GPU memory per stage at these settings (bench/memory_plan.py; one 80 GB GPU "
                 f"leaves {BUDGET_GIB:.1f} GiB):")
            for stage, gib in peaks.items():
                echo(f"    {stage:<10s} {gib:6.1f} GiB  {'fits' if gib <= BUDGET_GIB else 'does NOT fit: lower its batch'}")
        if cfg.model:
            echo(f"accelerate configs: {ACCELERATE_DIR / 'zero3.yaml'} (DeepSpeed ZeRO-3), "
                 f"{ACCELERATE_DIR / 'fsdp.yaml'} (FSDP); LoRA: sft {cfg.sft.lora.enabled}, grpo {cfg.grpo.lora.enabled}")
        return {"plan": [(s.name, s.command) for s in steps], "predicted_peak_gib": peaks, "arms": arms,
                "config": to_dict(cfg), "settings": settings_table(cfg)}
    with run_lock(run_l):
        prepare_run_dir(run_l, cfg)
        results: list[StageResult] = []
        for s in steps:
            res = execute(s, ctx)
            results.append(res)
            echo(f"[{s.name}] {res.status} in {res.seconds:.1f} s")
        timings = {r.stage: r.seconds for r in results}
        from analyses.summary import summary_table

        summary = summary_table(run_l.root, checkpoint_ids(cfg))
        atomic_write_json(run_l.summary, summary)  # no times: identical runs give identical files
        atomic_write_json(run_l.timings, timings)
        from analyses.curves import budget_table

        wall = {r["checkpoint"]: r.get("seconds") for r in budget_table(run_l.root, checkpoint_ids(cfg), wall=True)}
        for row in summary["rows"]:  # the terminal's budget table shows each arm's wall seconds
            if row.get("budget"):
                row["budget"] = {**row["budget"], "seconds": wall.get(row["checkpoint"])}
    return {**summary, "timings": timings, "total_seconds": sum(timings.values())}
