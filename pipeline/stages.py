"""The stages: the only place that runs work on a run directory. ``polyfact run`` plans them in
order; every single command (``polyfact train``, ``eval checkpoints``, ``analyze …``, ``compare``,
``report``, ``checkpoints add``) is flags → settings → one stage, run by :func:`execute` under the
run's lock.

A :class:`Stage` declares its name, what it does, the stages it needs first (run for a single
command, where they skip when current), what it writes and its per-item skip rule. The skip itself
is decided by fingerprints inside the library (``polyfact.core.provenance.current``,
``polyfact.core.checkpoints.checkpoint_current``), never here; :func:`execute` reports a
:class:`StageResult`: ``done`` with the files written, or ``up to date`` when it wrote nothing.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json, fingerprint, read_cached
from polyfact.core.layout import RunLayout, planned_ids, seeded_id
from polyfact.core.registry import Registry

if TYPE_CHECKING:
    from polyfact.pipeline.config import RunConfig

ACCELERATE_DIR = Path(__file__).parent / "accelerate"


@dataclass
class Context:
    """What a stage works on: the run, its resolved config, the checkpoints (``None``: the run's
    plan; items may be directories or hub ids, registered under the lock), ``force``, and
    ``data_dir`` (another dataset to evaluate, e.g. a KLAR import)."""

    run: RunLayout
    cfg: RunConfig
    checkpoints: list[str] | None = None
    force: bool = False
    notes: list[str] = field(default_factory=list)
    data_dir: Path | None = None
    options: dict = field(default_factory=dict)  # a command's own choices (e.g. the trajectory's series order)

    def ids(self) -> list[str]:
        return self.checkpoints if self.checkpoints is not None else checkpoint_ids(self.cfg)

    def note(self, message: str) -> None:
        from polyfact.core.checkpoints import note

        self.notes.append(message)
        note(message)

    def with_ids(self, ids: list[str], force: bool | None = None) -> "Context":
        return Context(self.run, self.cfg, ids, self.force if force is None else force, self.notes, self.data_dir,
                       self.options)


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
    """A named step: its function, the command line that does the same (for ``--dry-run``), the
    stages it needs first, what it writes and when it skips."""

    name: str
    command: str
    fn: Callable[[Context], object]
    needs: tuple[str, ...] = ()
    writes: str = ""
    skip: str = ""


# ------------------------------------------------------------------------------------ checkpoint ids
def method_chain(spec: str) -> tuple[str, str, str]:
    """``"cpt+grpo"`` → (parent ``cpt``, method ``grpo``, id ``cpt+grpo``); ``"sft"`` → (base, sft, sft)."""
    parts = spec.split("+")
    return "+".join(parts[:-1]) or "base", parts[-1], spec


def seed_list(cfg: RunConfig) -> list[int]:
    return list(cfg.seeds) if cfg.seeds else [cfg.seed]


def training_plan(cfg: RunConfig) -> list[tuple[str, str, str, int]]:
    """``(parent id, method, checkpoint id, seed)`` of every fine-tuning run, seed by seed."""
    out = []
    for seed in seed_list(cfg):
        tag = seed if cfg.seeds else None
        for spec in cfg.methods:
            parent, method, ckpt = method_chain(spec)
            out.append((seeded_id(parent, tag), method, seeded_id(ckpt, tag), seed))
    return out


def checkpoint_ids(cfg: RunConfig) -> list[str]:
    return planned_ids(cfg.methods, cfg.seeds)


def first_seed_ids(cfg: RunConfig) -> list[str]:
    """Base and the first seed's checkpoints, control arms left out (the expensive causal analyses
    run on these)."""
    from polyfact.training.arms import control_of

    first = seed_list(cfg)[0]
    return ["base", *[c for _, m, c, s in training_plan(cfg) if s == first and not control_of(m)]]


def hub_revision(item: str) -> tuple[str, str | None]:
    """``"org/model@step1000"`` → (``"org/model"``, ``"step1000"``): a hub id at a revision (an
    intermediate pretraining checkpoint); anything else → (item, None)."""
    source, at, revision = item.rpartition("@")
    if at and "/" in source and revision and "/" not in revision and not Path(item).exists():
        if Path(source).exists():
            raise PolyFactError(f"{item}: {source} is a local directory, which has no revisions; drop @{revision} "
                                "(or give the hub id)")
        return source, revision
    return item, None


def resolve_checkpoints(ctx: Context) -> None:
    """Turn the command's checkpoint items into run ids: a directory (or an item with ``/``) is
    registered as an outside checkpoint (``polyfact checkpoints add``), under the run's lock; every
    registered outside directory is re-checked, so changed weights recompute their results."""
    from polyfact.core.checkpoints import external_id, list_checkpoints, refresh_external, register_external

    def in_run(item: str) -> bool:
        try:
            return ctx.run.manifest(item).exists()
        except PolyFactError:
            return False

    if ctx.checkpoints is not None:
        out = []
        for item in ctx.checkpoints:
            if not in_run(item) and ("/" in item or Path(item).is_dir()):
                source, revision = hub_revision(item)
                out.append(register_external(ctx.run.root, external_id(item.replace("@", "-")), source,
                                             revision=revision)["id"])
            elif in_run(item):
                out.append(item)
            else:  # refused before any work
                have = ", ".join(list_checkpoints(ctx.run.root)) or "none"
                raise PolyFactError(f"no checkpoint {item!r} in {ctx.run.checkpoints} (have: {have}); name one of "
                                    "them, a model directory or a hub id")
        ctx.checkpoints = out
    for c in list_checkpoints(ctx.run.root):
        refresh_external(ctx.run.root, c)


# ------------------------------------------------------------------------------------ stage functions
def data(ctx: Context) -> None:
    """Build (or import) the dataset unless one made with the same settings is there."""
    from dataclasses import asdict

    from polyfact.data.dataset import load_meta
    from polyfact.data.make import build_dataset, import_dataset

    d, run = ctx.cfg.data, ctx.run
    key = fingerprint(asdict(d)) + f"-{ctx.cfg.seed}"
    marker = read_cached(run.data_marker)
    if not ctx.force and isinstance(marker, dict) and marker.get("key") == key:
        try:
            load_meta(run.data)
            return
        except PolyFactError:
            ctx.note(f"the dataset in {run.relative(run.data)} is damaged; rebuilding it")
    if d.import_path:  # a local release is the first choice (the paper preset: the released PolyFact-Clean)
        import_dataset(d.import_kind or "polyfact", d.import_path, run.data, langs=d.langs, seed=ctx.cfg.seed,
                       force=True)
    else:
        build_dataset(d.source, run.data, langs=d.langs, relations=d.relations, seed=ctx.cfg.seed,
                      split_fracs=d.split_fracs, max_per_relation=d.max_per_relation, dump=d.dump, force=True)
    atomic_write_json(run.data_marker, {"key": key})


def _data_fp(ctx: Context) -> str:
    from polyfact.data.dataset import data_fingerprint

    return data_fingerprint(ctx.data_dir or ctx.run.data)


def base(ctx: Context) -> None:
    """The base model: pretrain the toy world's tiny model, or register the configured outside model."""
    from polyfact.core.checkpoints import register_external

    if ctx.cfg.model is not None:
        register_external(ctx.run.root, "base", ctx.cfg.model)
        return
    train_one(ctx, "pretrain", None, "base", ctx.cfg.seed)


def train_one(ctx: Context, method: str, parent: str | None, ckpt: str, seed: int) -> dict | None:
    """One training run, unless a checkpoint made with the same inputs is intact (``force``:
    retrain anyway). Returns the new manifest, or None when the checkpoint was current."""
    from polyfact.core.checkpoints import checkpoint_current
    from polyfact.training.common import expected_fingerprint
    from polyfact.training.arms import arm_budget
    from polyfact.training.methods import method_config, section_of, train

    section = section_of(method, ctx.cfg)
    family = section.model.family if method == "pretrain" else None
    budget = None if method == "pretrain" else arm_budget(method, ctx.cfg.budget, ctx.cfg.trajectory.points)
    expected = expected_fingerprint(ctx.run.root, parent=parent, method=method, cfg=method_config(method, section),
                                    seed=seed, data_fingerprint=_data_fp(ctx), family=family, budget=budget)
    if not ctx.force and checkpoint_current(ctx.run.root, ckpt, expected, ctx.note):
        return None
    return train(method, ctx.run.root, section, parent=parent, ckpt_id=ckpt, seed=seed, data_dir=ctx.data_dir,
                 budget=budget)


def evaluate(ctx: Context) -> tuple[dict, dict]:
    """Recall and consistency of every checkpoint on the run's dataset (or ``ctx.data_dir``), paired
    tests of each against the first, and the configured KLAR import."""
    from polyfact.analyses.recall import analysis_name, evaluate_checkpoint, paired_tests

    e, run, ids = ctx.cfg.eval, ctx.run.root, ctx.ids()
    if e.protocol == "study" and (ctx.data_dir is not None or e.klar_path):
        from polyfact.analyses.paper.klar_study import klar_study_evaluation

        source = ctx.data_dir or Path(e.klar_path)
        return {c: klar_study_evaluation(run, c, source, force=ctx.force) for c in ids}, {}

    def each(data_dir: Path | None) -> dict:
        return {c: evaluate_checkpoint(run, c, data_dir=data_dir, split=e.split, mode=e.mode,
                                       normalization=e.normalization, max_facts=e.max_facts, bootstrap=e.bootstrap,
                                       seed=ctx.cfg.seed, force=ctx.force, prompt=e.prompt, match=e.match)
                for c in ids}

    out = each(ctx.data_dir)
    paired = paired_tests(run, ids[0], ids[1:], analysis_name(run, ctx.data_dir, split=e.split, mode=e.mode,
                                                              prompt=e.prompt, normalization=e.normalization),
                          bootstrap=e.bootstrap,
                          seed=ctx.cfg.seed) if len(ids) > 1 else {}
    if e.klar_path and ctx.data_dir is None:
        from polyfact.data.make import import_dataset

        if not (ctx.run.klar / "dataset_dict.json").exists():
            import_dataset("klar", e.klar_path, ctx.run.klar, seed=ctx.cfg.seed, force=True)
        each(ctx.run.klar)
    return out, paired


def neurons(ctx: Context) -> dict:
    from polyfact.analyses.specialization import neuron_analysis

    return {c: neuron_analysis(ctx.run.root, c, ctx.cfg.analysis, seed=ctx.cfg.seed, force=ctx.force)
            for c in ctx.ids()}


def heads(ctx: Context) -> dict:
    from polyfact.analyses.specialization import head_analysis

    return {c: head_analysis(ctx.run.root, c, ctx.cfg.analysis, seed=ctx.cfg.seed, force=ctx.force)
            for c in ctx.ids()}


def routing(ctx: Context) -> dict:
    from polyfact.analyses.routing import routing_analysis

    ids = [c for c in ctx.ids() if c != ctx.cfg.analysis.reference]
    return routing_analysis(ctx.run.root, ids, ctx.cfg.analysis, ctx.cfg.routing, seed=ctx.cfg.seed, force=ctx.force)


def seeds(ctx: Context) -> dict:
    """The seed-level table: each method's change against the base across training seeds."""
    from polyfact.analyses.seeds import seed_analysis

    return seed_analysis(ctx.run.root, ctx.ids(), allow_unmatched=ctx.cfg.budget.allow_unmatched)


def curves(ctx: Context) -> dict:
    """Each trained arm's learning curve and whether its own objective improved."""
    from polyfact.analyses.curves import curve_analysis

    return {c: r for c in ctx.ids() if c != "base" and (r := curve_analysis(ctx.run.root, c, force=ctx.force))}


def _first_seed(ctx: Context) -> list[str]:
    return ctx.checkpoints if ctx.checkpoints is not None else first_seed_ids(ctx.cfg)


def ablate(ctx: Context) -> dict:
    from polyfact.analyses.ablate import ablation_analysis

    return {c: ablation_analysis(ctx.run.root, c, ctx.cfg.ablate, force=ctx.force) for c in _first_seed(ctx)}


def representations(ctx: Context) -> dict:
    from polyfact.analyses.representations import representation_analysis

    return {c: representation_analysis(ctx.run.root, c, ctx.cfg.representations, force=ctx.force)
            for c in _first_seed(ctx)}


def compare(ctx: Context) -> dict:
    """Before/after of two checkpoints (``ctx.checkpoints`` = [before, after])."""
    from polyfact.analyses.routing import compare_pair

    before, after = ctx.ids()
    return compare_pair(ctx.run.root, after, before, ctx.cfg.analysis, ctx.cfg.routing, seed=ctx.cfg.seed,
                        force=ctx.force)


def trajectory(ctx: Context) -> dict:
    """How specialization moves during training: every trained arm's kept states (``--methods``
    filters), or the series of ``ctx.checkpoints`` (ordered as given, or by the step in their names)."""
    from polyfact.analyses.trajectory import order_by_step, series_analysis, trajectory_analysis
    from polyfact.core.checkpoints import read_manifest

    spec, rcfg, seed = ctx.cfg.analysis, ctx.cfg.routing, ctx.cfg.seed
    if ctx.options.get("series"):
        ids = ctx.ids()
        names = ctx.options.get("names") or ids
        if ctx.options.get("order") == "step":
            by_step = dict(zip(names, ids))
            series = [(s, by_step[n]) for s, n in order_by_step(names)]
        else:
            series = list(enumerate(ids))
        return {"series": series_analysis(ctx.run.root, series, ctx.options.get("name", "series"), spec, rcfg, seed,
                                          ctx.force)}
    methods = ctx.options.get("methods")
    arms = [c for c in ctx.ids() if c != "base" and (read_manifest(ctx.run.root, c).get("budget") or {})
            .get("trajectory_points") and (not methods or c.split("@")[0] in methods)]
    if not arms:
        raise PolyFactError("no trained arm kept intermediate states; train with --set trajectory.points=N (N ≥ 1), "
                            "or pass a series with --checkpoints A,B,C")
    return trajectory_analysis(ctx.run.root, arms, spec, rcfg, seed, ctx.force)


def summary(ctx: Context) -> dict:
    """The run's closing table: ``results/summary.json`` (one row per planned checkpoint and the
    seed-level verdicts; no times, so identical runs give identical files). The value returned (the
    command's checkpoints) adds each arm's wall seconds to its budget row, for the terminal."""
    from polyfact.analyses.curves import budget_table
    from polyfact.analyses.summary import summary_table

    planned, ids = checkpoint_ids(ctx.cfg), ctx.ids()
    table = summary_table(ctx.run.root, planned)
    atomic_write_json(ctx.run.summary, table)  # the file holds the run's plan; ``--checkpoints`` picks rows to show
    if ids != planned:
        table = summary_table(ctx.run.root, ids)
    wall = {r["checkpoint"]: r.get("seconds") for r in budget_table(ctx.run.root, ids, wall=True)}
    rows = [{**r, "budget": {**r["budget"], "seconds": wall.get(r["checkpoint"])}} if r.get("budget") else r
            for r in table["rows"]]
    return {**table, "rows": rows}


def report(ctx: Context) -> Path:
    from polyfact.figures.report import build_report

    return build_report(ctx.run.root, static=False)


def steer(ctx: Context) -> dict:
    """Steering of each checkpoint (the command's, else the config's: the base, or the base and the
    first seed's arms) from the source to the target language, judged against its random control."""
    from polyfact.analyses.steering import steering_analysis
    from polyfact.core.checkpoints import note

    cfg = ctx.cfg.steer
    ids = ctx.checkpoints if ctx.checkpoints is not None else (
        ["base"] if cfg.checkpoints == "base" else first_seed_ids(ctx.cfg))
    ev = ctx.cfg.eval  # the steered base is a seed-table arm when the run's recall is MCQ on test facts
    return {c: steering_analysis(ctx.run.root, c, cfg, seed=ctx.cfg.seed, force=ctx.force, progress=note,
                                 normalization=ev.normalization, prompt=ev.prompt,
                                 arm=ev.mode == "mcq" and ev.split == "test") for c in ids}


# ------------------------------------------------------------------------------------ the registry
STAGES: Registry = Registry("stage")
_PER_CKPT = "each checkpoint's result is kept while its provenance key (checkpoint, data, settings, seed) matches"
_ALL, _FIRST = "{r} --checkpoints {ids}", "{r} --checkpoints {first}"
# Each stage is declared once: its function, what it needs and writes, its skip rule, its help, the command a
# whole run plans for it (in this order; None: not planned; ``when``: planned only if the config asks), and
# for a generic ``polyfact analyze NAME`` command the table printer (``each``: one table per checkpoint).
def declare_stage(name: str, fn: Callable[[Context], Any], help: str, *, writes: str, needs: tuple[str, ...] = (),
                  skip: str = _PER_CKPT, command: str | None = None, printer: tuple[Any, bool] | None = None,
                  when: Callable[[Any], bool] | None = None) -> Stage:
    """Declare an analysis once: its stage function (``fn(ctx)``), what it needs and writes, its skip
    rule and help, the command a whole run plans for it (``{r}``, ``{ids}``, ``{first}`` filled in; None:
    not planned; it runs before the report) and, for ``polyfact analyze NAME``, its table printer
    (a ``pipeline.tables`` function name or a callable, and whether it prints one table per checkpoint).
    Built-in analyses and plugins (``polyfact.core.plugins``) declare themselves the same way."""
    st = Stage(name, f"polyfact {name}", fn, tuple(needs), writes, skip)
    STAGES.add(name, help, stage=st, command=command, printer=printer, when=when)
    return st


for _name, _fn, _needs, _writes, _skip, _help, _command, _printer in (
    ("data", data, (), "data/", "kept while the data settings and seed match its marker", "build or import the dataset",
     None, None),
    ("base", base, (), "checkpoints/base/", "kept while its fingerprint matches and its files are intact",
     "pretrain the toy base, or register the configured model", None, None),
    ("evaluate", evaluate, (), "results/recall/<id>.json + <id>.records.jsonl, paired-<ref>.json", _PER_CKPT,
     "recall and cross-lingual consistency", "polyfact eval checkpoints --run " + _ALL, None),
    ("neurons", neurons, (), "results/neurons/<id>.json + .stats arrays + the released LAPE format", _PER_CKPT,
     "LAPE language-specific neurons", "polyfact analyze neurons --run {r} --checkpoint {ids}", None),
    ("heads", heads, (), "results/heads/<id>.json + .importance/.shards arrays + lahis_<lang>.pth", _PER_CKPT,
     "per-language head importance (LAHIS by default)", "polyfact analyze heads --run {r} --checkpoint {ids}", None),
    ("routing", routing, ("neurons", "heads"), "results/routing/<id>.json, summary.json", _PER_CKPT,
     "before/after specialization changes against the reference, with measurement-error intervals",
     "polyfact analyze routing --run {r}", ("print_routing", False)),
    ("curves", curves, (), "results/curves/<id>.json", _PER_CKPT,
     "each arm's learning curve on its own probe facts and on test facts, and whether its objective improved",
     "polyfact analyze curves --run {r}", ("print_curves", False)),
    ("steer", steer, ("evaluate",), "results/steer/<id>-<units>-<source>-<target>.json", _PER_CKPT,
     "steer recall from the source to the target language, chosen on train facts and judged on test facts "
     "against a size-matched random control", "polyfact steer --run {r}", None),
    ("seeds", seeds, (), "results/seeds/summary.json, claims.json", "recomputed from the result files (cheap)",
     "each method's change against the base across training seeds, the study's claims and the controls, under "
     "the one verdict rule", "polyfact analyze seeds --run {r}", ("print_seeds", False)),
    ("ablate", ablate, ("neurons", "heads"), "results/ablate/<id>.json", _PER_CKPT,
     "deactivate each language's neurons / top heads: Δloss and Δaccuracy matrices with random controls",
     "polyfact analyze ablate --run " + _FIRST, ("print_ablation", True)),
    ("representations", representations, (), "results/representations/<id>.json", _PER_CKPT,
     "cross-lingual similarity, CKA, retrieval, language-ID probes and logit lens per layer",
     "polyfact analyze representations --run " + _FIRST, ("print_representations", True)),
    ("compare", compare, ("neurons", "heads"), "results/compare/<after>-vs-<before>.json", _PER_CKPT,
     "before/after analyses of any two checkpoints", None, None),
    ("trajectory", trajectory, (), "results/trajectory/<arm>.json, summary.json", _PER_CKPT + " (per point)",
     "the study's and the project's measures at every kept state of each arm's training, or along a series",
     "polyfact analyze trajectory --run {r}", None),
    ("summary", summary, (), "results/summary.json", "always rewritten (cheap)",
     "the run's closing table: recall, consistency and specialization change per checkpoint, and the verdicts",
     "polyfact analyze summary --run {r}", ("print_summary", False)),
    ("report", report, (), "report.html, figures/", "always redrawn (cheap)", "the report and figures",
     "polyfact report --run {r}", None),
):
    declare_stage(_name, _fn, _help, writes=_writes, needs=_needs, skip=_skip, command=_command, printer=_printer,
                  when=(lambda cfg: bool(cfg.trajectory.points)) if _name == "trajectory" else None)


def stage(name: str) -> Stage:
    return STAGES.get(name)["stage"]


def plan(ctx: Context) -> list[Stage]:
    """The stages of a whole run, in order, with the command line each corresponds to: data, base,
    every arm's training, then every registered stage that declares a command, in declaration order
    (the summary and the report last)."""
    cfg = ctx.cfg
    r = shlex.quote(str(ctx.run.root))
    ids = ",".join(checkpoint_ids(cfg))
    first = ",".join(first_seed_ids(cfg))

    def at(name: str, command: str) -> Stage:
        s = stage(name)
        return Stage(s.name, command, s.fn, s.needs, s.writes, s.skip)

    steps = [at("data", f"polyfact data build --source {cfg.data.source} --out {r}/data"),
             at("base", f"polyfact train pretrain --run {r}" if cfg.model is None
                else f"polyfact checkpoints add --run {r} --id base {shlex.quote(cfg.model)}")]
    launch = f"accelerate launch --config_file {ACCELERATE_DIR / 'zero3.yaml'} -m polyfact.pipeline.cli " if cfg.model \
        else "polyfact "
    for parent, method, ckpt, seed in training_plan(cfg):
        steps.append(Stage(f"train {ckpt}", f"{launch}train {method} --run {r} --from {parent} --id {ckpt} "
                           f"--set seed={seed}", lambda c, m=method, p=parent, k=ckpt, s=seed: train_one(c, m, p, k, s),
                           writes=f"checkpoints/{ckpt}/", skip="kept while its fingerprint matches and its files "
                                                              "are intact"))
    last = {"summary": 1, "report": 2}  # the summary and the report close the run, after any plugin's analysis
    for entry in sorted(STAGES.entries(), key=lambda e: last.get(e.name, 0)):
        if entry["command"] and (entry["when"] is None or entry["when"](cfg)):
            steps.append(at(entry.name, entry["command"].format(r=r, ids=ids, first=first)))
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


def _needs(s: Stage, ctx: Context) -> None:
    """Run what ``s`` needs for a single command: the same checkpoints and the reference, never
    forced (they skip when current)."""
    if not s.needs:
        return
    from polyfact.analyses.specialization import effective_reference

    ref = effective_reference(ctx.run.root, ctx.cfg.analysis)
    sub = ctx.with_ids(list(dict.fromkeys([*([ref] if ref else []), *ctx.ids()])), force=False)
    for name in s.needs:
        stage(name).fn(sub)


def execute(s: Stage, ctx: Context, with_needs: bool = False) -> StageResult:
    """Run one stage (first what it needs, when ``with_needs``) and report what it wrote
    (nothing written: everything was current). The caller holds the run's lock."""
    resolve_checkpoints(ctx)
    before = _snapshot(ctx.run)
    n_notes = len(ctx.notes)
    t = time.perf_counter()
    if with_needs:
        _needs(s, ctx)
    value = s.fn(ctx)
    seconds = time.perf_counter() - t
    after = _snapshot(ctx.run)
    changed = sorted(ctx.run.relative(p) for p, m in after.items() if before.get(p) != m)
    return StageResult(s.name, "done" if changed else "up to date", seconds, changed, ctx.notes[n_notes:], value)
