"""The stage registry: every step of a study, used both by ``polyfact run`` (which plans them in
order) and by the single commands (``polyfact eval checkpoints``, ``polyfact analyze …``).

A stage is a function of a :class:`Context` (the run's layout, its resolved config, the checkpoints
to work on, ``force``); :func:`execute` runs it and returns a :class:`StageResult`: whether it did
work or found everything current (judged by the outputs it wrote), which files it wrote, notes,
and seconds. Skipping is decided inside the library functions by fingerprints
(``core.provenance.current``, ``core.checkpoints.checkpoint_current``), never here.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from core.errors import PolyFactError
from core.io import atomic_write_json, fingerprint, read_cached
from core.layout import RunLayout
from pipeline.config import RunConfig

ACCELERATE_DIR = Path(__file__).parent / "accelerate"


@dataclass
class Context:
    """What a stage works on. ``checkpoints`` defaults to every checkpoint of the run's plan."""

    run: RunLayout
    cfg: RunConfig
    checkpoints: list[str] | None = None
    force: bool = False
    notes: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return self.checkpoints if self.checkpoints is not None else checkpoint_ids(self.cfg)

    def note(self, message: str) -> None:
        from core.checkpoints import note

        self.notes.append(message)
        note(message)


@dataclass
class StageResult:
    """What one stage did."""

    stage: str
    status: Literal["done", "up to date"]
    seconds: float
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    value: object = None


@dataclass(frozen=True)
class Stage:
    """A named step: the command line that does the same (for ``--dry-run``) and its function."""

    name: str
    command: str
    fn: Callable[[Context], object]


# ------------------------------------------------------------------------------------ checkpoint ids
def method_chain(spec: str) -> tuple[str, str, str]:
    """``"cpt+grpo"`` → (parent ``cpt``, method ``grpo``, id ``cpt+grpo``); ``"sft"`` → (base, sft, sft)."""
    parts = spec.split("+")
    return "+".join(parts[:-1]) or "base", parts[-1], spec


def seed_list(cfg: RunConfig) -> list[int]:
    return list(cfg.seeds) if cfg.seeds else [cfg.seed]


def seeded(ckpt: str, seed: int, cfg: RunConfig) -> str:
    """A method checkpoint's id for one training seed: ``sft@s1`` when the run has several seeds."""
    return ckpt if ckpt == "base" or not cfg.seeds else f"{ckpt}@s{seed}"


def training_plan(cfg: RunConfig) -> list[tuple[str, str, str, int]]:
    """``(parent id, method, checkpoint id, seed)`` of every fine-tuning run, seed by seed."""
    out = []
    for seed in seed_list(cfg):
        for spec in cfg.methods:
            parent, method, ckpt = method_chain(spec)
            out.append((seeded(parent, seed, cfg), method, seeded(ckpt, seed, cfg), seed))
    return out


def checkpoint_ids(cfg: RunConfig) -> list[str]:
    return ["base", *[c for _, _, c, _ in training_plan(cfg)]]


def first_seed_ids(cfg: RunConfig) -> list[str]:
    """Base and the first seed's checkpoints (the expensive causal analyses run on these)."""
    first = seed_list(cfg)[0]
    return ["base", *[c for _, _, c, s in training_plan(cfg) if s == first]]


# ------------------------------------------------------------------------------------ stages
def data(ctx: Context) -> None:
    """Build (or import) the dataset unless one made with the same settings is there."""
    from polyfact.dataset import load_meta
    from polyfact.make import build_dataset, import_dataset
    from dataclasses import asdict

    d, run = ctx.cfg.data, ctx.run
    key = fingerprint(asdict(d)) + f"-{ctx.cfg.seed}"
    marker = read_cached(run.data_marker)
    if not ctx.force and isinstance(marker, dict) and marker.get("key") == key:
        try:
            load_meta(run.data)
            return
        except PolyFactError:
            ctx.note(f"the dataset in {run.relative(run.data)} is damaged; rebuilding it")
    if d.import_kind:
        if not d.import_path:
            raise PolyFactError("data.import_kind needs data.import_path (the release's local directory)")
        import_dataset(d.import_kind, d.import_path, run.data, langs=d.langs, seed=ctx.cfg.seed, force=True)
    else:
        build_dataset(d.source, run.data, langs=d.langs, relations=d.relations, seed=ctx.cfg.seed,
                      split_fracs=d.split_fracs, max_per_relation=d.max_per_relation, dump=d.dump, force=True)
    atomic_write_json(run.data_marker, {"key": key})


def _data_fp(ctx: Context) -> str:
    from polyfact.dataset import load_meta

    return str(load_meta(ctx.run.data)["fingerprint"])


def base(ctx: Context) -> None:
    """The base model: pretrain the toy world's tiny model, or register the configured outside model."""
    from core.checkpoints import checkpoint_current, register_external
    from training.common import expected_fingerprint
    from training.methods import train

    cfg = ctx.cfg
    if cfg.model is not None:
        register_external(ctx.run.root, "base", cfg.model)
        return
    expected = expected_fingerprint(ctx.run.root, parent=None, method="pretrain", cfg=cfg.pretrain, seed=cfg.seed,
                                    data_fingerprint=_data_fp(ctx), family=cfg.pretrain.model.family)
    if ctx.force or not checkpoint_current(ctx.run.root, "base", expected, ctx.note):
        train("pretrain", ctx.run.root, cfg.pretrain, seed=cfg.seed)


def train_one(ctx: Context, method: str, parent: str, ckpt: str, seed: int) -> None:
    """One fine-tuning run, unless a checkpoint made with the same inputs is intact."""
    from core.checkpoints import checkpoint_current
    from training.common import expected_fingerprint
    from training.methods import CONFIG_SECTION, train

    section = getattr(ctx.cfg, CONFIG_SECTION[method])
    expected = expected_fingerprint(ctx.run.root, parent=parent, method=method, cfg=section, seed=seed,
                                    data_fingerprint=_data_fp(ctx))
    if ctx.force or not checkpoint_current(ctx.run.root, ckpt, expected, ctx.note):
        train(method, ctx.run.root, section, parent=parent, ckpt_id=ckpt, seed=seed)


def evaluate(ctx: Context) -> dict:
    from analyses.recall import evaluate_checkpoint, paired_tests

    e, run, ids = ctx.cfg.eval, ctx.run.root, ctx.ids()
    out = {c: evaluate_checkpoint(run, c, split=e.split, mode=e.mode, normalization=e.normalization,
                                  max_facts=e.max_facts, bootstrap=e.bootstrap, seed=ctx.cfg.seed, force=ctx.force,
                                  prompt=e.prompt, match=e.match)
           for c in ids}
    if len(ids) > 1:
        paired_tests(run, ids[0], ids[1:], bootstrap=e.bootstrap, seed=ctx.cfg.seed)
    if e.klar_path:
        from polyfact.make import import_dataset

        if not (ctx.run.klar / "dataset_dict.json").exists():
            import_dataset("klar", e.klar_path, ctx.run.klar, seed=ctx.cfg.seed, force=True)
        for c in ids:
            evaluate_checkpoint(run, c, data_dir=ctx.run.klar, max_facts=e.max_facts, bootstrap=e.bootstrap,
                                seed=ctx.cfg.seed, force=ctx.force, prompt=e.prompt, match=e.match)
    return out


def neurons(ctx: Context) -> dict:
    from analyses.specialization import neuron_analysis

    return {c: neuron_analysis(ctx.run.root, c, ctx.cfg.analysis, seed=ctx.cfg.seed, force=ctx.force)
            for c in ctx.ids()}


def heads(ctx: Context) -> dict:
    from analyses.specialization import head_analysis

    return {c: head_analysis(ctx.run.root, c, ctx.cfg.analysis, seed=ctx.cfg.seed, force=ctx.force)
            for c in ctx.ids()}


def routing(ctx: Context) -> dict:
    from analyses.routing import routing_analysis

    ids = [c for c in ctx.ids() if c != ctx.cfg.analysis.reference]
    return routing_analysis(ctx.run.root, ids, ctx.cfg.analysis, ctx.cfg.routing, seed=ctx.cfg.seed, force=ctx.force)


def seeds(ctx: Context) -> dict:
    """The seed-level table: each method's change against the base across training seeds."""
    from analyses.seeds import seed_analysis

    return seed_analysis(ctx.run.root, ctx.ids())


def ablate(ctx: Context) -> dict:
    from analyses.ablate import ablation_analysis

    ids = ctx.checkpoints if ctx.checkpoints is not None else first_seed_ids(ctx.cfg)
    return {c: ablation_analysis(ctx.run.root, c, ctx.cfg.ablate, force=ctx.force) for c in ids}


def representations(ctx: Context) -> dict:
    from analyses.representations import representation_analysis

    ids = ctx.checkpoints if ctx.checkpoints is not None else first_seed_ids(ctx.cfg)
    return {c: representation_analysis(ctx.run.root, c, ctx.cfg.representations, force=ctx.force) for c in ids}


def report(ctx: Context) -> Path:
    from figures.report import build_report

    return build_report(ctx.run.root, static=False)


def plan(ctx: Context) -> list[Stage]:
    """The stages of a whole run, in order, with the command line each corresponds to."""
    cfg = ctx.cfg
    r = shlex.quote(str(ctx.run.root))
    ids = ",".join(checkpoint_ids(cfg))
    steps = [Stage("data", f"polyfact data build --source {cfg.data.source} --out {r}/data", data),
             Stage("base", f"polyfact train pretrain --run {r}" if cfg.model is None
                   else f"polyfact checkpoints add --run {r} --id base {shlex.quote(cfg.model)}", base)]
    launch = f"accelerate launch --config_file {ACCELERATE_DIR / 'zero3.yaml'} -m pipeline.cli " if cfg.model \
        else "polyfact "
    for parent, method, ckpt, seed in training_plan(cfg):
        steps.append(Stage(f"train {ckpt}",
                           f"{launch}train {method} --run {r} --from {parent} --id {ckpt} --set seed={seed}",
                           lambda c, m=method, p=parent, k=ckpt, s=seed: train_one(c, m, p, k, s)))
    first = ",".join(first_seed_ids(cfg))
    steps += [
        Stage("evaluate", f"polyfact eval checkpoints --run {r} --checkpoints {ids}", evaluate),
        Stage("neurons", f"polyfact analyze neurons --run {r} --checkpoint {ids}", neurons),
        Stage("heads", f"polyfact analyze heads --run {r} --checkpoint {ids}", heads),
        Stage("routing", f"polyfact analyze routing --run {r}", routing),
        Stage("seeds", f"polyfact analyze seeds --run {r}", seeds),
        Stage("ablate", f"polyfact analyze ablate --run {r} --checkpoints {first}", ablate),
        Stage("representations", f"polyfact analyze representations --run {r} --checkpoints {first}",
              representations),
        Stage("report", f"polyfact report --run {r}", report),
    ]
    return steps


def _snapshot(run: RunLayout) -> dict[str, int]:
    out = {}
    for base_dir in (run.results, run.checkpoints, run.data, run.figures):
        if base_dir.exists():
            for dirpath, _, files in os.walk(base_dir):
                for f in files:
                    p = os.path.join(dirpath, f)
                    try:
                        out[p] = os.stat(p).st_mtime_ns
                    except OSError:
                        pass
    if run.report.exists():
        out[str(run.report)] = run.report.stat().st_mtime_ns
    return out


def execute(stage: Stage, ctx: Context) -> StageResult:
    """Run one stage and report what it wrote (nothing written: everything was current)."""
    before = _snapshot(ctx.run)
    n_notes = len(ctx.notes)
    t = time.perf_counter()
    value = stage.fn(ctx)
    seconds = time.perf_counter() - t
    after = _snapshot(ctx.run)
    changed = sorted(ctx.run.relative(p) for p, m in after.items() if before.get(p) != m)
    return StageResult(stage.name, "done" if changed else "up to date", seconds, changed, ctx.notes[n_notes:], value)
