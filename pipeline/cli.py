"""The ``polyfact`` command line: argument parsing only. Every command that works on a run turns
its flags into settings and runs one stage of ``polyfact.pipeline.stages`` under the run's lock; rendering
is ``polyfact.pipeline.tables``. A user error becomes one line on stderr and exit status 2; Ctrl-C and
SIGTERM one line and 130 / 143."""

from __future__ import annotations

import gc
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from polyfact.core.errors import PolyFactError
from polyfact.core.layout import check_id
from polyfact.core.registry import choices
from polyfact.interp.registry import BACKENDS, HEAD_METHODS
from polyfact.data.answers import MODES as MATCH_MODES
from polyfact.data.make import IMPORTS, SOURCES
from polyfact.training.config import NORMALIZATIONS
from polyfact.training.methods import METHODS

try:  # outside methods and analyses declare themselves before the commands are built
    from polyfact.core.plugins import load_plugins

    load_plugins()
    _PLUGIN_ERROR: PolyFactError | None = None
except PolyFactError as _err:
    _PLUGIN_ERROR = _err  # reported by main() as one line, exit 2


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="PolyFact: cross-lingual factual recall — data, training, evaluation, analyzers.")
data_app = typer.Typer(no_args_is_help=True, help="Build, import, inspect and export PolyFact datasets.")
app.add_typer(data_app, name="data")
ckpt_app = typer.Typer(no_args_is_help=True, help="Register and list a run's checkpoints.")
app.add_typer(ckpt_app, name="checkpoints")
eval_app = typer.Typer(no_args_is_help=True, help="Recall and cross-lingual consistency of checkpoints.")
app.add_typer(eval_app, name="eval")
analyze_app = typer.Typer(no_args_is_help=True, help="Language specialization of neurons and heads, routing analyses.")
app.add_typer(analyze_app, name="analyze")
figures_app = typer.Typer(no_args_is_help=True, help="Figures from released results.")
app.add_typer(figures_app, name="figures")

_PRESET = typer.Option(None, "--preset", help="smoke | default | replicate | paper (default: the run's saved config)")
_CONFIG = typer.Option(None, "--config", help="A YAML file of settings.")
_SETS = typer.Option(None, "--set", help="key=value overrides, e.g. --set grpo.steps=10 (repeatable).")
_FORCE = typer.Option(False, "--force", help="Redo the work even when its outputs are current.")
_CKPTS = typer.Option(None, "--checkpoint", "--checkpoints",
                      help="Checkpoint ids, directories or hub ids, comma-separated (default: all of the run's).")
_REF = typer.Option(None, "--reference", help="Reference checkpoint for calibration and before/after "
                    "(default: base if the run has one; 'none' for none).")
_TEXTS = typer.Option(None, "--texts", help="dataset | dataset:SPLIT | statements | files:DIR | hf:PATH:COLUMN[:LANG] | "
                      "multiway:FILE.jsonl")


def _floats(spec: Optional[str], what: str) -> Optional[list[float]]:
    if spec is None:
        return None
    try:
        return [float(x) for x in spec.split(",")]
    except ValueError:
        raise PolyFactError(f"{what} must be comma-separated numbers, e.g. 0.7,0.1,0.2; got {spec!r}") from None


def _csv(spec: str, what: str = "--checkpoints", example: str = "base,cpt,sft,grpo") -> list[str]:
    items = [x.strip() for x in spec.split(",") if x.strip()]
    if not items:
        raise PolyFactError(f"{what} is empty; pass comma-separated values such as {example}")
    repeated = sorted({x for x in items if items.count(x) > 1})
    if repeated:
        raise PolyFactError(f"{what} lists {', '.join(repeated)} more than once; name each once")
    return items


def _context(run: Path, preset: Optional[str], config: Optional[Path], sets: Optional[list[str]],
             overrides: Optional[dict] = None, checkpoints: Optional[str] = None, force: bool = False,
             data_dir: Optional[Path] = None):
    """The stage context of a command: the run's saved config (or a preset) with file, ``--set``
    and flag overrides, checked before anything runs."""
    from polyfact.core.layout import layout
    from polyfact.pipeline.run import load_run_config
    from polyfact.pipeline.stages import Context

    run_l = layout(run)
    cfg = load_run_config(run_l, preset, config, sets, overrides)
    return Context(run_l, cfg, _csv(checkpoints) if checkpoints else None, force, data_dir=data_dir)


def _execute(ctx, stage, with_needs: bool = True) -> Any:
    """Run one stage for a single command, under the run's lock."""
    from polyfact.pipeline.run import run_lock
    from polyfact.pipeline.stages import execute

    with run_lock(ctx.run):
        return execute(stage, ctx, with_needs=with_needs).value


def _named(name: str):
    from polyfact.pipeline.stages import stage

    return stage(name)


def _json_safe(obj: Any) -> Any:
    """NaN and infinities as JSON ``null`` (valid JSON; a measure that is not computable)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _put(overrides: dict, key: str, value: Any) -> None:
    """``overrides["a"]["b"] = value`` for ``key="a.b"``, when ``value`` is given."""
    if value is None:
        return
    node = overrides
    *parents, last = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


# ------------------------------------------------------------------------------------ data
@data_app.command("build")
def data_build(
    out: Path = typer.Option(..., "--out", help="Output directory (a DatasetDict)."),
    source: str = typer.Option("cldr", "--source", help=SOURCES.choices()),
    dump: Optional[Path] = typer.Option(None, "--dump", help="Wikidata JSON dump (.json.gz/.bz2/.json)."),
    langs: Optional[str] = typer.Option(None, "--langs", help="Codes or groups (all, polyfact, heldout); default all 22."),
    relations: Optional[str] = typer.Option(None, "--relations", help="Property ids, e.g. P36,P38; default all of the source's."),
    seed: int = typer.Option(0, "--seed"),
    n_options: int = typer.Option(4, "--options", help="Options per question (gold + distractors)."),
    splits: Optional[str] = typer.Option(None, "--splits", help="train,validation,test fractions of facts."),
    min_coverage: float = typer.Option(1.0, "--min-coverage", help="Share of languages a fact needs labels in."),
    max_per_relation: Optional[int] = typer.Option(None, "--max-per-relation", help="Balance relations by capping facts."),
    single_object: bool = typer.Option(False, "--single-object", help="Keep one object per (subject, relation)."),
    max_facts: Optional[int] = typer.Option(None, "--max-facts", help="Stop reading a dump after this many facts."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="On-disk cache for the Wikidata API."),
    api_url: Optional[str] = typer.Option(None, "--api-url", help="wbgetentities endpoint (default: wikidata.org)."),
    sparql_url: Optional[str] = typer.Option(None, "--sparql-url", help="SPARQL endpoint (default: query.wikidata.org)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Build PolyFact from a source; prints counts and the content fingerprint."""
    from polyfact.pipeline.tables import print_dataset_meta
    from polyfact.data.make import build_dataset

    meta = build_dataset(source, out, langs=langs, relations=relations, seed=seed, n_options=n_options,
                         split_fracs=_floats(splits, "--splits"), min_coverage=min_coverage,
                         max_per_relation=max_per_relation, single_object=single_object, dump=dump,
                         max_facts=max_facts, cache_dir=cache, api_url=api_url, sparql_url=sparql_url, force=force)
    print_dataset_meta(meta, out)


@data_app.command("import")
def data_import(
    kind: str = typer.Argument(..., help=IMPORTS.choices()),
    src: Path = typer.Argument(..., help="Local directory of the release."),
    out: Path = typer.Option(..., "--out"),
    langs: Optional[str] = typer.Option(None, "--langs", help="Languages to keep (default: all present)."),
    seed: int = typer.Option(0, "--seed"),
    splits: Optional[str] = typer.Option(None, "--splits", help="train,validation,test fractions (KLAR default: all test)."),
    min_coverage: float = typer.Option(1.0, "--min-coverage"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Import a local release (KLAR, the released PolyFact format, …)."""
    from polyfact.pipeline.tables import print_dataset_meta
    from polyfact.data.make import import_dataset

    meta = import_dataset(kind, src, out, langs=langs, seed=seed, split_fracs=_floats(splits, "--splits"),
                          min_coverage=min_coverage, force=force)
    print_dataset_meta(meta, out)


@data_app.command("show")
def data_show(
    path: Path = typer.Argument(..., help="A dataset directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summary table: rows per split, language and relation."""
    from polyfact.pipeline.tables import print_dataset
    from polyfact.data.dataset import summarize

    s = summarize(path)
    if as_json:
        print(json.dumps(s, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print_dataset(path, s)


@data_app.command("export")
def data_export(
    path: Path = typer.Argument(..., help="A dataset directory."),
    out: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Export as per-language configs (<out>/<lang>/<split>.jsonl) like the released PolyFact."""
    from polyfact.data.dataset import export_configs

    files = export_configs(path, out, force=force)
    print(f"wrote {len(files)} files under {out}")


# ------------------------------------------------------------------------------------ training
@app.command("train")
def train_cmd(
    method: str = typer.Argument(..., help=METHODS.choices()),
    run: Path = typer.Option(..., "--run", help="Run directory (reads its dataset at RUN/data)."),
    parent: Optional[str] = typer.Option(None, "--from", help="Parent checkpoint id, directory or hub id (default: base)."),
    ckpt_id: Optional[str] = typer.Option(None, "--id", help="Id of the new checkpoint (default: the method, or PARENT+METHOD)."),
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (default: RUN/data)."),
    force: bool = typer.Option(False, "--force", help="Retrain even when a checkpoint with the same inputs exists."),
) -> None:
    """Train a checkpoint of the run with one method (skipped when one made with the same inputs
    is intact); writes RUN/checkpoints/ID with its manifest."""
    from polyfact.pipeline.stages import Stage, train_one
    from polyfact.pipeline.tables import print_manifest
    from polyfact.training.methods import default_id

    METHODS.check(method, "method")
    if method == "pretrain" and parent is not None:
        raise PolyFactError("pretrain starts from scratch; drop --from")
    parent = None if method == "pretrain" else (parent or "base")
    ckpt = ckpt_id or default_id(method, parent)
    ctx = _context(run, preset, config, sets, force=force, data_dir=data)
    stage = Stage(f"train {ckpt}", f"polyfact train {method}",
                  lambda c: train_one(c, method, parent, ckpt, c.cfg.seed))
    print_manifest(_execute(ctx, stage), ckpt)


@ckpt_app.command("add")
def checkpoints_add(
    source: str = typer.Argument(..., help="A saved model directory or a Hugging Face hub id."),
    run: Path = typer.Option(..., "--run"),
    ckpt_id: Optional[str] = typer.Option(None, "--id", help="Name in the run (default: the directory's name)."),
    parent: Optional[str] = typer.Option(None, "--parent", help="The checkpoint this one was trained from."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (default: the cached or latest)."),
) -> None:
    """Register an outside checkpoint without copying its weights (manifest: source, fingerprint, external)."""
    from polyfact.core.checkpoints import external_id, register_external
    from polyfact.core.layout import layout
    from polyfact.pipeline.run import run_lock

    with run_lock(layout(run)):
        m = register_external(run, ckpt_id or external_id(source), source, parent=parent, revision=revision)
    print(f"registered {m['id']} → {m['source']} (fingerprint {m['fingerprint']}, family {m['family']})")


@ckpt_app.command("list")
def checkpoints_list(run: Path = typer.Option(..., "--run")) -> None:
    """Checkpoints of a run with their method, parent and source."""
    from polyfact.core.checkpoints import list_checkpoints, read_manifest
    from polyfact.pipeline.tables import print_checkpoints

    print_checkpoints([(c, read_manifest(run, c)) for c in list_checkpoints(run)])


# ------------------------------------------------------------------------------------ evaluation
@eval_app.command("checkpoints")
def eval_checkpoints(
    run: Path = typer.Option(..., "--run"),
    checkpoints: Optional[str] = _CKPTS,
    split: Optional[str] = typer.Option(None, "--split", help="train | validation | test (eval.split)"),
    mode: Optional[str] = typer.Option(None, "--mode", help="mcq | generate (eval.mode)"),
    data: Optional[Path] = typer.Option(None, "--data", help="Another dataset directory (e.g. the KLAR import)."),
    normalization: Optional[str] = typer.Option(None, "--normalization", help=f"MCQ scores: {NORMALIZATIONS.choices()}"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="MCQ prompt: cue | study ('Question: …\\nAnswer:')"),
    match_mode: Optional[str] = typer.Option(None, "--match", help=f"Free-form answers: {MATCH_MODES.choices()}"),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="KLAR: mcq | study (3-shot generation, the "
                                           "study's template, matcher and every sample)"),
    max_facts: Optional[int] = typer.Option(None, "--max-facts"),
    bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help="Bootstrap resamples for intervals (0: none)."),
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = typer.Option(False, "--force", help="Recompute even when a matching result exists."),
) -> None:
    """Evaluate checkpoints (the run's evaluate stage); writes results/recall/<id>.json and records."""
    from polyfact.pipeline.tables import print_recall

    if protocol == "study" and data is None:
        raise PolyFactError("--protocol study is KLAR's 3-shot protocol: give --data DIR of a KLAR import "
                            "(polyfact data import klar …), or drop --protocol")
    if match_mode is not None and (mode or "mcq") == "mcq" and protocol != "study":
        raise PolyFactError("--match scores free-form answers: add --mode generate (or --protocol study with KLAR "
                            "--data), or drop --match")
    overrides: dict = {}
    for key, value in (("split", split), ("mode", mode), ("normalization", normalization), ("max_facts", max_facts),
                       ("bootstrap", bootstrap), ("prompt", prompt), ("match", match_mode), ("protocol", protocol)):
        _put(overrides, f"eval.{key}", value)
    ctx = _context(run, preset, config, sets, overrides, checkpoints or "base", force, data)
    results, paired = _execute(ctx, _named("evaluate"))
    if ctx.cfg.eval.protocol == "study" and (data is not None or ctx.cfg.eval.klar_path):
        from polyfact.pipeline.tables import print_klar_study

        print_klar_study(results)
    else:
        print_recall(results, paired)


@eval_app.command("score")
def eval_score(
    records: Path = typer.Argument(..., help="JSONL records (fact_id, lang, correct) or predictions (language, relation, index, target, pred)."),
    as_json: bool = typer.Option(False, "--json"),
    match_mode: Optional[str] = typer.Option(None, "--match", help=f"{MATCH_MODES.choices()} (predictions only; "
                                             "default study, the PolyFact study's KLAR matcher)."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Keep the first of duplicate (fact, language) records."),
) -> None:
    """Recompute the metrics from a records or predictions file, without the model."""
    from polyfact.analyses.recall import score_file
    from polyfact.pipeline.tables import print_recall

    metrics = score_file(records, match=match_mode, dedupe=dedupe)
    if as_json:
        print(json.dumps(_json_safe(metrics), indent=2, ensure_ascii=False, default=float, allow_nan=False))
    else:
        if metrics.get("match"):
            print(f"predictions re-scored with the {metrics['match']!r} matcher")
        print_recall({records.name: {"metrics": metrics}}, {})


# ------------------------------------------------------------------------------------ analyses
def _analysis_overrides(backend: Optional[str] = None, texts: Optional[str] = None, max_tokens: Optional[int] = None,
                        reference: Optional[str] = None, method: Optional[str] = None) -> dict:
    """The analyzer flags as settings (``--backend`` sets both backends, ``--max-tokens`` both budgets)."""
    o: dict = {}
    for key in ("backend", "head_backend"):
        _put(o, f"analysis.{key}", backend)
    for key in ("max_tokens", "head_max_tokens"):
        _put(o, f"analysis.{key}", max_tokens)
    _put(o, "analysis.texts", texts)
    _put(o, "analysis.head_method", method)
    if reference is not None:
        o.setdefault("analysis", {})["reference"] = None if reference.lower() == "none" else reference
    return o


def _unit(name: str, run: Path, checkpoint: Optional[str], preset: Optional[str], config: Optional[Path],
          sets: Optional[list[str]], force: bool, overrides: dict) -> None:
    from polyfact.pipeline import tables

    ctx = _context(run, preset, config, sets, overrides, checkpoint, force)
    for res in _execute(ctx, _named(name)).values():
        getattr(tables, f"print_{name}")(res)


@analyze_app.command("neurons")
def analyze_neurons(
    run: Path = typer.Option(..., "--run"),
    checkpoint: Optional[str] = _CKPTS,
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKENDS.choices()),
    texts: Optional[str] = _TEXTS,
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget per language."),
    reference: Optional[str] = _REF,
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = _FORCE,
) -> None:
    """LAPE language-specific neurons; writes results/neurons/<id>.*"""
    _unit("neurons", run, checkpoint, preset, config, sets, force,
          _analysis_overrides(backend, texts, max_tokens, reference))


@analyze_app.command("heads")
def analyze_heads(
    run: Path = typer.Option(..., "--run"),
    checkpoint: Optional[str] = _CKPTS,
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKENDS.choices()),
    method: Optional[str] = typer.Option(None, "--method", help=HEAD_METHODS.choices()),
    texts: Optional[str] = _TEXTS,
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget per language."),
    reference: Optional[str] = _REF,
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = _FORCE,
) -> None:
    """Per-language head importance (LAHIS by default); writes results/heads/<id>.*"""
    _unit("heads", run, checkpoint, preset, config, sets, force,
          _analysis_overrides(backend, texts, max_tokens, reference, method))


def _run_analysis(name: str, show: str, each: bool) -> None:
    """``polyfact analyze NAME`` over a run's checkpoints: the registry's stage with shared options."""
    from polyfact.pipeline.stages import STAGES

    def command(
        run: Path = typer.Option(..., "--run"),
        checkpoints: Optional[str] = _CKPTS,
        reference: Optional[str] = _REF,
        preset: Optional[str] = _PRESET,
        config: Optional[Path] = _CONFIG,
        sets: Optional[list[str]] = _SETS,
        force: bool = _FORCE,
    ) -> None:
        from polyfact.pipeline import tables

        ctx = _context(run, preset, config, sets, _analysis_overrides(reference=reference), checkpoints, force)
        value = _execute(ctx, _named(name))
        printer = show if callable(show) else getattr(tables, show)
        for res in (value.values() if each else [value]):
            printer(res)

    command.__doc__ = STAGES.get(name).help[0].upper() + STAGES.get(name).help[1:] + "."
    analyze_app.command(name)(command)


def _declared_analyses() -> list[tuple[str, str, bool]]:
    """The stages that declare a table printer: each is ``polyfact analyze NAME`` (pipeline.stages.STAGES)."""
    from polyfact.pipeline.stages import STAGES

    return [(e.name, *e["printer"]) for e in STAGES.entries() if e.get("printer")]


for _name, _show, _each in _declared_analyses():
    _run_analysis(_name, _show, _each)


SERIES_ORDERS = choices("series order", {"given": "as listed",
                                         "step": "by the step in each name (step-N, checkpoint-N, -sN)"})


@analyze_app.command("trajectory")
def analyze_trajectory(
    run: Path = typer.Option(..., "--run"),
    methods: Optional[str] = typer.Option(None, "--methods", help="Arms to follow, e.g. grpo,sft (default: every arm "
                                          "that kept intermediate states: trajectory.points)."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Any series instead: ids, directories, hub ids "
                                              "or hub_id@revision, comma-separated."),
    order: str = typer.Option("given", "--order", help=SERIES_ORDERS.choices()),
    name: str = typer.Option("series", "--name", help="Name of the series' result file."),
    reference: Optional[str] = _REF,
    texts: Optional[str] = _TEXTS,
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = _FORCE,
) -> None:
    """How specialization moves during training: measures at every kept state of each arm (or along a
    series of checkpoints) beside the learning curves; writes results/trajectory/."""
    from polyfact.pipeline.tables import print_trajectory

    SERIES_ORDERS.check(order, "--order")
    ctx = _context(run, preset, config, sets, _analysis_overrides(texts=texts, reference=reference), checkpoints,
                   force)
    names = _csv(checkpoints, "--checkpoints", "A,B,C") if checkpoints else None
    if names is not None and len(names) < 2:
        raise PolyFactError(f"a trajectory needs two or more checkpoints; got {names[0]!r}")
    if checkpoints:
        from polyfact.core.checkpoints import list_checkpoints
        from polyfact.core.layout import split_seed

        arms = {split_seed(c)[0] for c in list_checkpoints(run)} if run.is_dir() else set()
        if name == "summary" or name in arms:
            raise PolyFactError(f"--name {name!r} is taken ({'the trajectory summary' if name == 'summary' else 'an arm'}"
                                "'s result file); choose another name for the series")
    ctx.options = {"series": bool(checkpoints), "order": order, "name": check_id(name, "--name"), "names": names,
                   "methods": _csv(methods, "--methods", "grpo,sft") if methods else None}
    print_trajectory(_execute(ctx, _named("trajectory")))


@app.command("compare")
def compare_cmd(
    run: Path = typer.Option(..., "--run"),
    before: str = typer.Option(..., "--before", help="Checkpoint id, directory or hub id (the reference)."),
    after: str = typer.Option(..., "--after", help="Checkpoint id, directory or hub id."),
    texts: Optional[str] = _TEXTS,
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = _FORCE,
) -> None:
    """Before/after analyses of any two checkpoints (e.g. a base model and its GRPO fine-tune)."""
    from polyfact.pipeline.run import run_lock
    from polyfact.pipeline.stages import execute, resolve_checkpoints
    from polyfact.pipeline.tables import print_compare

    ctx = _context(run, preset, config, sets, _analysis_overrides(texts=texts), f"{before},{after}", force)
    with run_lock(ctx.run):
        resolve_checkpoints(ctx)
        ctx.cfg.analysis.reference = ctx.checkpoints[0]  # the before of this comparison calibrates it
        print_compare(execute(_named("compare"), ctx, with_needs=True).value)


# ------------------------------------------------------------------------------------ the study
@app.command("run")
def run_cmd(
    preset: Optional[str] = typer.Option(None, "--preset", help="smoke | default | replicate | paper (default: default, or the run's saved config)"),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory (default: runs/<preset>)."),
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Training seeds, e.g. 0,1,2 (every method once per seed)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the commands; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: the plan and every setting with its help, as JSON."),
    force: bool = typer.Option(False, "--force", help="Redo every stage even when its outputs are current."),
) -> None:
    """The whole study: data → base → CPT/SFT/GRPO (per seed) → evaluation → analyzers → figures → report."""
    from polyfact.pipeline.run import run as run_study
    from polyfact.pipeline.tables import print_summary

    sets = list(sets or [])
    if seeds is not None:
        try:
            sets.append("seeds=[" + ",".join(str(int(x)) for x in _csv(seeds, "--seeds", "0,1,2")) + "]")
        except ValueError:
            raise PolyFactError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {seeds!r}") from None
    if dry_run and as_json:
        out = run_study(preset=preset, run_dir=run, config_file=config, sets=sets, dry_run=True, echo=lambda _: None)
        print(json.dumps(out, indent=2, default=str))
        return
    out = run_study(preset=preset, run_dir=run, config_file=config, sets=sets, dry_run=dry_run, force=force)
    if not dry_run:
        print_summary(out)


@app.command("steer")
def steer_cmd(
    run: Path = typer.Option(..., "--run"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint ids (default: steer.checkpoints)."),
    units: Optional[str] = typer.Option(None, "--units", help="lape | lahis | diffmean | shared (steer.units)"),
    source: Optional[str] = typer.Option(None, "--source", help="The language the model knows facts in (en)."),
    target: Optional[str] = typer.Option(None, "--target", help="The language steered (default: the weakest)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="One layer set, e.g. 2,3 (default: each layer swept)."),
    strength: Optional[str] = typer.Option(None, "--strength", help="One strength or several, e.g. 2 or -1,1,2."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Control draws and text samples (steer.seeds)."),
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = _FORCE,
) -> None:
    """Steer recall from the source to the target language at inference: layer × strength chosen on train
    facts, judged on test facts against a size-matched random control; writes results/steer/."""
    from polyfact.pipeline.tables import print_steer

    overrides: dict = {}
    for key, value in (("units", units), ("source", source), ("target", target), ("seeds", seeds),
                       ("layers", [_ints(layers, "--layers")] if layers else None),
                       ("strengths", _floats(strength, "--strength"))):
        _put(overrides, f"steer.{key}", value)
    ctx = _context(run, preset, config, sets, overrides, checkpoint, force)
    for res in _execute(ctx, _named("steer")).values():
        print_steer(res)


def _ints(spec: str, what: str) -> list[int]:
    try:
        return [int(x) for x in _csv(spec, what, "1,2")]
    except ValueError:
        raise PolyFactError(f"{what} takes integers, e.g. {what} 1,2; got {spec!r}") from None


@app.command("report")
def report_cmd(
    run: Path = typer.Option(..., "--run"),
    static: bool = typer.Option(False, "--static", help="Also write PNG and PDF (needs Chromium)."),
) -> None:
    """Write RUN/report.html and RUN/figures/ from the run's result files."""
    from polyfact.core.layout import layout
    from polyfact.figures.report import build_report
    from polyfact.pipeline.run import run_lock

    run_l = layout(run)
    if not run_l.root.is_dir():
        raise PolyFactError(f"no run directory at {run}; make one with polyfact run --run {run}")
    with run_lock(run_l):
        print(f"wrote {build_report(run, static=static)}")


# ------------------------------------------------------------------------------------ released results
@figures_app.command("lape")
def figures_lape(
    paper_dir: Path = typer.Option(..., "--paper-dir", help="A released LAPE folder (lape_results.json + meta.json)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="Another checkpoint's folder: adds the change."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    static: bool = typer.Option(True, "--static/--no-static", help="PNG and PDF too (needs Chromium)."),
) -> None:
    """The LAPE figures of released results (per language and layer, totals, change)."""
    from polyfact.analyses.paper.released import released_lape
    from polyfact.figures.report import paper_lape_figures

    out = _out_dir(out)
    for path in paper_lape_figures(released_lape(paper_dir, compare), out, static=static):
        print(f"wrote {path}")


@figures_app.command("heads")
def figures_heads(
    paper_dir: Path = typer.Option(..., "--paper-dir", help="A released LAHIS folder (lahis_<lang>.pth + meta.json)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="Another checkpoint's folder: adds the change."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    frac: float = typer.Option(0.02, "--top", help="Top fraction of heads per language (the study: 0.02)."),
    static: bool = typer.Option(True, "--static/--no-static", help="PNG and PDF too (needs Chromium)."),
) -> None:
    """The study's head figures of released LAHIS results: top heads by layer, overlap, and the change."""
    from polyfact.analyses.paper.released import released_heads
    from polyfact.figures.report import paper_head_figures

    if not 0 < frac <= 1:
        raise PolyFactError(f"--top is the share of heads per language, in (0, 1] (the study: 0.02); got {frac}")
    out = _out_dir(out)
    for path in paper_head_figures(released_heads(paper_dir, compare, frac), out, static=static):
        print(f"wrote {path}")


@app.command("paper")
def paper_cmd(
    release: Path = typer.Option(..., "--release", help="The study's released results/ folder (summary/, lape/, olmo2*/)."),
    out: Path = typer.Option(..., "--out", help="Output folder (figures, tables, index.html, sources.json)."),
    tags: Optional[str] = typer.Option(None, "--tags", help="Checkpoint tag per role, e.g. base=qwen-base,sft=qwen-sft-10k,"
                                       "grpo=qwen-sw-clip5 (default: read from what the release holds)."),
    run: Optional[Path] = typer.Option(None, "--run", help="A run whose own results are drawn beside the release."),
    static: bool = typer.Option(True, "--static/--no-static", help="PNG and PDF too (needs Chromium)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
) -> None:
    """The paper's figures and main and appendix tables from the study's released results (and a run's)."""
    from polyfact.analyses.paper.release import parse_tags
    from polyfact.figures.paper import paper_outputs
    from polyfact.pipeline.tables import print_paper

    print_paper(paper_outputs(release, out, tags=parse_tags(tags) or None, static=static, run_dir=run, force=force))


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise PolyFactError(f"--out {out} is a file; pass a folder for the figures")
    return out


# ------------------------------------------------------------------------------------ entry point
class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException: no library's ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _log_dir(argv: list[str]) -> Path:
    """Where a traceback goes: ``RUN/logs`` of the command's ``--run`` when that run exists, else
    the user cache (a refused command leaves nothing in a run it did not make)."""
    from polyfact.core.layout import layout

    for i, a in enumerate(argv):
        value = argv[i + 1] if a == "--run" and i + 1 < len(argv) else a.split("=", 1)[1] if a.startswith("--run=") else None
        if value and Path(value).is_dir():
            return layout(value).logs
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "polyfact" / "logs"


def _write_log(argv: list[str]) -> Path | None:
    import datetime
    import traceback

    text = f"polyfact {' '.join(argv)}\n\n{traceback.format_exc()}"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (_log_dir(argv), Path(os.environ.get("TMPDIR", "/tmp")) / "polyfact-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def environment_fault(err: OSError) -> str | None:
    """One line for a fault of the machine rather than of the toolkit (a full disk, a name too long
    for the file system, a read-only or missing place), or None. Writes are atomic, so nothing
    half-written is left behind."""
    import errno

    where = f" ({err.filename})" if getattr(err, "filename", None) else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device{where}; free space and rerun (nothing half-written was kept)"
    if err.errno == errno.ENAMETOOLONG:
        return f"a file name is too long for the file system{where}; choose a shorter name"
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write{where}: {err.strerror.lower()}; choose a place you can write to"
    return None


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the console script: one-line errors and exit status 2 for bad input;
    ``interrupted; rerun the same command to resume`` and 130 / 143 for SIGINT / SIGTERM; an
    unexpected failure prints one line naming the log file that holds its traceback (``--debug``
    prints the traceback instead)."""
    import signal

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    signum: int | None = None  # set when a signal stopped the command
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[s] = signal.signal(s, _on_signal)
        except ValueError:  # not the main thread (e.g. an embedding application): keep its handlers
            pass
    try:
        if _PLUGIN_ERROR is not None:
            raise _PLUGIN_ERROR
        app(args=argv, standalone_mode=False)
    except PolyFactError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except (Interrupted, KeyboardInterrupt) as err:
        signum = int(getattr(err, "signum", signal.SIGINT))
    except OSError as err:
        line = environment_fault(err)
        if line is None or debug:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except RecursionError:
        print("error: an input file is nested too deeply to read (JSON depth beyond Python's limit); check that "
              "it is the file you meant", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - the one place that turns failures into a line
        if hasattr(err, "show") and hasattr(err, "exit_code"):  # click (or typer's vendored click) usage errors
            err.show()
            sys.exit(2)
        if type(err).__name__ == "Abort":  # click turns Ctrl-C inside a prompt into Abort
            print("interrupted; rerun the same command to resume", file=sys.stderr)
            sys.exit(130)
        if debug:
            raise
        log = _write_log(argv)
        command = " ".join(a for a in argv[:2] if not a.startswith("-")) or "polyfact"
        where = f"; the traceback is in {log}" if log else ""
        print(f"error: polyfact {command} failed unexpectedly ({type(err).__name__}: "
              f"{str(err).splitlines()[0][:200] if str(err) else 'no message'}){where}; rerun with --debug to see it",
              file=sys.stderr)
        sys.exit(1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signum is not None:
        # outside the except block the interrupted frames are freed, so their progress bars close (and
        # print) before this line, which stays the last one
        gc.collect()
        sys.stderr.flush()
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(128 + signum)


if __name__ == "__main__":
    main()
