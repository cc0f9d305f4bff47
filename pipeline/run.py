"""``polyfact run``: dataset → base model → CPT, SFT, GRPO, CPT+GRPO (per training seed) →
evaluation → neurons and heads → routing, deactivation, representations → report.

The stages come from :mod:`polyfact.pipeline.stages`; each reads and writes artifacts in the run directory
and skips work whose inputs and settings fingerprints match its outputs, so a killed run resumes
where it stopped and reaches the same results as an uninterrupted one. A run directory is locked
while a run works in it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json, read_cached
from polyfact.core.layout import RunLayout, layout
from polyfact.pipeline.config import CONFIG_VERSION, resolve, save, settings_table, to_dict, validate
from polyfact.pipeline.stages import ACCELERATE_DIR, Context, StageResult, execute, plan

if TYPE_CHECKING:
    from polyfact.pipeline.config import RunConfig


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
    (the budget a dry run prints; the data can only lower the counts), each from its method's
    settings (``planned_budget``) with what its registration fixes (``sft-oracle``: the answer
    objective). A method whose settings declare no budget rule is an error, never a silent skip."""
    from polyfact.training.methods import METHODS, method_config

    lines = []
    for spec in cfg.methods:
        method = spec.split("+")[-1]
        entry = METHODS.get(method, "method")
        section = method_config(method, getattr(cfg, entry.section))
        if not hasattr(section, "planned_budget"):
            raise PolyFactError(f"method {method!r}: its settings ({type(section).__name__}) declare no planned_budget"
                                f"(facts, note); add one beside its trainer (docs/ARCHITECTURE.md, Extending)")
        note = f" + {cfg.budget.oracle_test_share:.0%} of the test facts (oracle)" \
            if entry.get("control") == "positive" else ""
        lines.append(f"{spec:<14s} {section.planned_budget(cfg.budget.facts, note)}")
    return lines


def unmatched_arms(cfg: RunConfig) -> str | None:
    """Why the planned arms would be offered different train facts (None: every arm of a seed draws
    the same ``budget.facts`` facts from the one pool, in the same order). Checked by the dry run and
    before the first arm trains, unless ``budget.allow_unmatched``."""
    from polyfact.training.methods import section_of

    methods = [spec.split("+")[-1] for spec in cfg.methods]
    if cfg.budget.allow_unmatched or len(methods) < 2:
        return None
    if cfg.budget.facts is None:
        return ("budget.facts is not set, so each method would draw its own number of facts "
                f"({', '.join(methods)}); set --set budget.facts=N (or budget.allow_unmatched=true)")
    langs = {m: tuple(getattr(section_of(m, cfg), "langs", None) or ()) for m in methods}
    if len(set(langs.values())) > 1:
        own = ", ".join(f"{m}: {','.join(v) or 'the training languages'}" for m, v in langs.items())
        return (f"the arms train on different languages ({own}), so they draw from different fact pools; give them "
                "the same langs (or set budget.allow_unmatched=true)")
    return None


def planned_power_lines(cfg: RunConfig, run: RunLayout) -> list[str]:
    """The dry run's power statement: each claim's minimum detectable effect at the run's seeds and
    test facts, from the noise a toy-world replicate measured."""
    from polyfact.analyses.seeds import STUDY_TC_DIFFERENCE, planned_power
    from polyfact.core.errors import PolyFactError as _E
    from polyfact.data.dataset import load_meta

    if cfg.model is not None:
        return ["power: no expected noise for an outside model; train its seeds and read results/seeds/claims.json"]
    n_seeds = len(cfg.seeds or [cfg.seed])
    try:
        n_facts, where = int(load_meta(run.data)["n_facts"]["test"]), "the run's"
    except (_E, KeyError, TypeError, ValueError):
        n_facts, where = None, None
    plan = planned_power(n_seeds, n_facts)
    if not plan:
        return ["power: no measured noise (analyses/expected_noise.json; bench/expected_noise.py writes it)"]
    if n_facts is None:
        n_facts, where = plan["measured"].get("test_facts"), "the measured world's"
        plan = planned_power(n_seeds, n_facts)
    lines = [f"power (α 0.05 family-wise, power 0.8; noise of {plan['measured'].get('run', 'a replicate')}) at "
             f"{n_seeds} seed(s) and {where} {n_facts} test facts — smallest effect each claim can detect:"]
    for key, value in plan["claims"].items():
        lines.append(f"    {key:<15s} {'nothing: too few seeds for the exact test' if value == float('inf') else f'|δ| ≥ {value:.4g}'}")
    sd = plan.get("study_difference")
    if sd:
        lines.append(f"    the study's Total Consistency difference {STUDY_TC_DIFFERENCE:+.4f} is "
                     f"{'detectable' if sd['detectable'] else 'NOT detectable'} here"
                     + (f" (seeds needed: {sd['seeds_needed']})" if sd.get("seeds_needed") else ""))
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
        from polyfact.pipeline.memory import BUDGET_GIB, predicted_peaks

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
        problem = unmatched_arms(cfg)
        if problem:
            raise PolyFactError(f"the planned arms are not matched: {problem}")
        for line in planned_power_lines(cfg, run_l):
            echo(line)
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
    problem = unmatched_arms(cfg)
    if problem:
        raise PolyFactError(f"the planned arms are not matched: {problem}")
    with run_lock(run_l):
        prepare_run_dir(run_l, cfg)
        results: list[StageResult] = []
        for s in steps:
            res = execute(s, ctx)
            results.append(res)
            echo(f"[{s.name}] {res.status} in {res.seconds:.1f} s")
        timings = {r.stage: r.seconds for r in results}
        atomic_write_json(run_l.timings, timings)
        summary = next(r.value for r in results if r.stage == "summary")
    return {**summary, "timings": timings, "total_seconds": sum(timings.values())}
