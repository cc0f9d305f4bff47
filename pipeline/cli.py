"""The ``polyfact`` command line. Commands parse arguments and call library functions; every
user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from core.errors import PolyFactError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="PolyFact: cross-lingual factual recall — data, training, evaluation, analyzers.")
data_app = typer.Typer(no_args_is_help=True, help="Build, import, inspect and export PolyFact datasets.")
app.add_typer(data_app, name="data")


def _floats(spec: Optional[str], what: str) -> Optional[list[float]]:
    if spec is None:
        return None
    try:
        return [float(x) for x in spec.split(",")]
    except ValueError:
        raise PolyFactError(f"{what} must be comma-separated numbers, e.g. 0.7,0.1,0.2; got {spec!r}") from None


@data_app.command("build")
def data_build(
    out: Path = typer.Option(..., "--out", help="Output directory (a DatasetDict)."),
    source: str = typer.Option("cldr", "--source", help="cldr | wikidata-dump | wikidata-api"),
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
    from polyfact.make import build_dataset

    meta = build_dataset(source, out, langs=langs, relations=relations, seed=seed, n_options=n_options,
                         split_fracs=_floats(splits, "--splits"), min_coverage=min_coverage,
                         max_per_relation=max_per_relation, single_object=single_object, dump=dump,
                         max_facts=max_facts, cache_dir=cache, api_url=api_url, sparql_url=sparql_url, force=force)
    _print_meta(meta, out)


@data_app.command("import")
def data_import(
    kind: str = typer.Argument(..., help="klar | polyfact"),
    src: Path = typer.Argument(..., help="Local directory of the release."),
    out: Path = typer.Option(..., "--out"),
    langs: Optional[str] = typer.Option(None, "--langs", help="Languages to keep (default: all present)."),
    seed: int = typer.Option(0, "--seed"),
    splits: Optional[str] = typer.Option(None, "--splits", help="train,validation,test fractions (KLAR default: all test)."),
    min_coverage: float = typer.Option(1.0, "--min-coverage"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Import KLAR or the released PolyFact format."""
    from polyfact.make import import_dataset

    meta = import_dataset(kind, src, out, langs=langs, seed=seed, split_fracs=_floats(splits, "--splits"),
                          min_coverage=min_coverage, force=force)
    _print_meta(meta, out)


def _print_meta(meta: dict, out: Path) -> None:
    n_facts = sum(meta["n_facts"].values())
    n_rows = sum(meta["n_rows"].values())
    print(f"wrote {out}: {n_facts} facts, {n_rows} rows, {len(meta['languages'])} languages, "
          f"{len(meta['relations'])} relations")
    print("facts per split: " + ", ".join(f"{k} {meta['n_facts'][k]}" for k in ("train", "validation", "test")))
    if meta["dropped"]:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in meta["dropped"].items()))
    print(f"fingerprint: {meta['fingerprint']}")


@data_app.command("show")
def data_show(
    path: Path = typer.Argument(..., help="A dataset directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summary table: rows per split, language and relation."""
    from rich.console import Console
    from rich.table import Table

    from polyfact.dataset import summarize
    from polyfact.languages import LANGUAGES, order_langs
    from polyfact.relations import RELATIONS

    s = summarize(path)
    if as_json:
        print(json.dumps(s, indent=2, ensure_ascii=False, sort_keys=True))
        return
    meta = s["meta"]
    console = Console()
    console.print(f"[bold]{path}[/bold]  source={meta['source']}  fingerprint={meta['fingerprint']}  seed={meta['seed']}")
    t = Table(title="splits")
    for c in ("split", "facts", "rows"):
        t.add_column(c, justify="right" if c != "split" else "left")
    for split in ("train", "validation", "test"):
        t.add_row(split, str(meta["n_facts"][split]), str(meta["n_rows"][split]))
    console.print(t)
    t = Table(title="languages")
    for c in ("code", "name", "group", "role", "rows"):
        t.add_column(c)
    for code in order_langs(s["per_lang"]):
        lang = LANGUAGES.get(code)
        role = "training" if code in meta["training_langs"] else "held-out"
        t.add_row(code, lang.name if lang else "?", lang.group if lang else "?", role, str(s["per_lang"][code]))
    console.print(t)
    t = Table(title="relations")
    for c in ("pid", "name", "rows"):
        t.add_column(c)
    for pid, n in sorted(s["per_relation"].items()):
        t.add_row(pid, RELATIONS[pid].name if pid in RELATIONS else "-", str(n))
    console.print(t)
    console.print("options per row: " + ", ".join(f"{k}: {v}" for k, v in sorted(s["options_per_row"].items())))


@data_app.command("export")
def data_export(
    path: Path = typer.Argument(..., help="A dataset directory."),
    out: Path = typer.Option(..., "--out"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Export as per-language configs (<out>/<lang>/<split>.jsonl) like the released PolyFact."""
    from polyfact.dataset import export_configs

    files = export_configs(path, out, force=force)
    print(f"wrote {len(files)} files under {out}")


def _context(run: Path, preset: Optional[str], config: Optional[Path], sets: Optional[list[str]],
             checkpoints: Optional[list[str]] = None, force: bool = False):
    """The stage context of a command: the run's saved config (or a preset) with file and
    ``--set`` overrides, checked before anything runs."""
    from core.layout import layout
    from pipeline.run import load_run_config
    from pipeline.stages import Context

    run_l = layout(run)
    return Context(run_l, load_run_config(run_l, preset, config, sets), checkpoints, force)


def _execute(name: str, ctx, fn) -> object:
    """Run one stage of the registry for a single command (under the run's lock)."""
    from pipeline.run import run_lock
    from pipeline.stages import Stage, execute

    with run_lock(ctx.run):
        res = execute(Stage(name, name, fn), ctx)
    return res.value


@app.command("train")
def train_cmd(
    method: str = typer.Argument(..., help="pretrain | cpt | sft | grpo | grpo-perlang | grpo-trl"),
    run: Path = typer.Option(..., "--run", help="Run directory (reads its dataset at RUN/data)."),
    parent: Optional[str] = typer.Option(None, "--from", help="Parent checkpoint id, directory or hub id (default: base)."),
    ckpt_id: Optional[str] = typer.Option(None, "--id", help="Id of the new checkpoint (default: the method, or PARENT+METHOD)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="smoke | default | replicate | paper"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override a setting, e.g. --set grpo.steps=10."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (default: RUN/data)."),
) -> None:
    """Train a checkpoint of the run with one method; writes RUN/checkpoints/ID with its manifest."""
    from training.methods import CONFIG_SECTION, METHODS, train

    if method not in METHODS:
        raise PolyFactError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    ctx = _context(run, preset, config, sets)
    manifest = _execute(f"train {method}", ctx, lambda c: train(
        method, c.run.root, getattr(c.cfg, CONFIG_SECTION[method]), parent=parent, ckpt_id=ckpt_id,
        seed=c.cfg.seed, data_dir=data))
    _print_manifest(manifest)


def _print_manifest(manifest: dict) -> None:
    m = manifest.get("metrics", {})
    print(f"checkpoint {manifest['id']} ({manifest['method']}, from {manifest.get('parent') or 'scratch'}, "
          f"{manifest['family']})")
    for key in ("train_recall_before", "train_recall", "test_recall"):
        rec = m.get(key)
        if rec:
            acc = " ".join(f"{k}={v:.2f}" for k, v in rec["accuracy"].items())
            gap = f"  en-vs-rest gap {rec['en_gap']:+.3f}" if "en_gap" in rec else ""
            print(f"{key} ({rec['mode']}, {rec['n_items']} items): {acc}{gap}")


ckpt_app = typer.Typer(no_args_is_help=True, help="Register and list a run's checkpoints.")
app.add_typer(ckpt_app, name="checkpoints")


@ckpt_app.command("add")
def checkpoints_add(
    source: str = typer.Argument(..., help="A saved model directory or a Hugging Face hub id."),
    run: Path = typer.Option(..., "--run"),
    ckpt_id: Optional[str] = typer.Option(None, "--id", help="Name in the run (default: the directory's name)."),
    parent: Optional[str] = typer.Option(None, "--parent", help="The checkpoint this one was trained from."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision (default: the cached or latest)."),
) -> None:
    """Register an outside checkpoint without copying its weights (manifest: source, fingerprint, external)."""
    from core.checkpoints import external_id, register_external

    m = register_external(run, ckpt_id or external_id(source), source, parent=parent, revision=revision)
    print(f"registered {m['id']} → {m['source']} (fingerprint {m['fingerprint']}, family {m['family']})")


@ckpt_app.command("list")
def checkpoints_list(run: Path = typer.Option(..., "--run")) -> None:
    """Checkpoints of a run with their method, parent and source."""
    from core.checkpoints import list_checkpoints, read_manifest

    for c in list_checkpoints(run):
        m = read_manifest(run, c)
        print(f"{c}\t{m.get('method')}\tfrom {m.get('parent') or '-'}\t{m.get('source', 'trained here')}")


eval_app = typer.Typer(no_args_is_help=True, help="Recall and cross-lingual consistency of checkpoints.")
app.add_typer(eval_app, name="eval")


def _csv(spec: str) -> list[str]:
    items = [x.strip() for x in spec.split(",") if x.strip()]
    if not items:
        raise PolyFactError("empty list; pass comma-separated ids such as base,cpt,sft,grpo")
    return items



_PRESET = typer.Option(None, "--preset", help="smoke | default | replicate | paper (default: the run's saved config)")
_CONFIG = typer.Option(None, "--config", help="A YAML file of settings.")
_SETS = typer.Option(None, "--set", help="key=value overrides, e.g. --set grpo.steps=10 (repeatable).")

@eval_app.command("checkpoints")
def eval_checkpoints(
    run: Path = typer.Option(..., "--run"),
    checkpoints: str = typer.Option("base", "--checkpoints", help="Comma-separated checkpoint ids."),
    split: Optional[str] = typer.Option(None, "--split"),
    mode: Optional[str] = typer.Option(None, "--mode", help="mcq | generate"),
    data: Optional[Path] = typer.Option(None, "--data", help="Another dataset directory (e.g. the KLAR import)."),
    normalization: Optional[str] = typer.Option(None, "--normalization", help="MCQ scores: byte | token | sum"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="MCQ prompt: cue | study ('Question: …\\nAnswer:')"),
    match_mode: Optional[str] = typer.Option(None, "--match", help="Free-form answers: study | lenient | exact"),
    max_facts: Optional[int] = typer.Option(None, "--max-facts"),
    bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help="Bootstrap resamples for intervals (0: none)."),
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = typer.Option(False, "--force", help="Recompute even when a matching result exists."),
) -> None:
    """Evaluate checkpoints; writes results/recall/<id>.json and records; prints the tables."""
    from analyses.recall import analysis_name, evaluate_checkpoint, paired_tests
    from pipeline.tables import print_recall

    ctx = _context(run, preset, config, sets, _checkpoint_list(run, checkpoints), force)
    e = ctx.cfg.eval
    for key, value in (("split", split), ("mode", mode), ("normalization", normalization), ("max_facts", max_facts),
                       ("bootstrap", bootstrap), ("prompt", prompt), ("match", match_mode)):
        if value is not None:
            setattr(e, key, value)

    def stage(c):
        ids = c.ids()
        res = {k: evaluate_checkpoint(c.run.root, k, data_dir=data, split=e.split, mode=e.mode,
                                      normalization=e.normalization, max_facts=e.max_facts, bootstrap=e.bootstrap,
                                      seed=c.cfg.seed, force=c.force, prompt=e.prompt, match=e.match) for k in ids}
        paired = paired_tests(c.run.root, ids[0], ids[1:], analysis_name(c.run.root, data), bootstrap=e.bootstrap,
                              seed=c.cfg.seed) if len(ids) > 1 else {}
        return res, paired

    print_recall(*_execute("evaluate", ctx, stage))


@eval_app.command("score")
def eval_score(
    records: Path = typer.Argument(..., help="JSONL records (fact_id, lang, correct) or predictions (language, relation, index, target, pred)."),
    as_json: bool = typer.Option(False, "--json"),
    match_mode: Optional[str] = typer.Option(None, "--match", help="study | lenient | exact (predictions only; "
                                             "default study, the PolyFact study's KLAR matcher)."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Keep the first of duplicate (fact, language) records."),
) -> None:
    """Recompute the metrics from a records or predictions file, without the model."""
    from analyses.recall import score_file
    from pipeline.tables import print_recall

    metrics = score_file(records, match=match_mode, dedupe=dedupe)
    if as_json:
        print(json.dumps(metrics, indent=2, ensure_ascii=False, default=float))
    else:
        if metrics.get("match"):
            print(f"predictions re-scored with the {metrics['match']!r} matcher")
        print_recall({records.name: {"metrics": metrics}}, {})


analyze_app = typer.Typer(no_args_is_help=True, help="Language specialization of neurons and heads, routing analyses.")
app.add_typer(analyze_app, name="analyze")


def _checkpoint_list(run: Path, spec: Optional[str]) -> list[str]:
    """Checkpoint ids from ``--checkpoint(s)``: run ids, or directories / hub ids, which are
    registered in the run on the fly (``polyfact checkpoints add``). Default: every checkpoint."""
    from core.checkpoints import external_id, list_checkpoints, register_external
    from core.layout import layout

    if not spec:
        ids = list_checkpoints(run)
        if not ids:
            raise PolyFactError(f"no checkpoints in {layout(run).checkpoints}; train some (polyfact train ...) "
                                "or register one (polyfact checkpoints add --run RUN PATH)")
        return ids
    out = []
    for item in _csv(spec):
        if layout(run).manifest(item).exists() if "/" not in item and item not in (".", "..") else False:
            out.append(item)
        elif Path(item).is_dir() or "/" in item:
            out.append(register_external(run, external_id(item), item)["id"])
        else:
            out.append(item)  # unknown ids get the library's one-line error, naming the run's checkpoints
    return out


def _analysis_ctx(run: Path, checkpoints: Optional[str], preset, config, sets, force: bool,
                  backend: Optional[str] = None, texts: Optional[str] = None, max_tokens: Optional[int] = None,
                  reference: Optional[str] = None, method: Optional[str] = None):
    ctx = _context(run, preset, config, sets, _checkpoint_list(run, checkpoints), force)
    a = ctx.cfg.analysis
    if backend is not None:
        a.backend = a.head_backend = backend
    if texts is not None:
        a.texts = texts
    if max_tokens is not None:
        a.max_tokens = a.head_max_tokens = max_tokens
    if reference is not None:
        a.reference = None if reference.lower() == "none" else reference
    if method is not None:
        a.head_method = method
    a.validate()
    return ctx


_CKPTS = typer.Option(None, "--checkpoint", "--checkpoints",
                      help="Checkpoint ids, directories or hub ids, comma-separated (default: all of the run's).")
_REF = typer.Option(None, "--reference", help="Reference checkpoint for calibration and before/after "
                    "(default: base if the run has one; 'none' for none).")
_TEXTS = typer.Option(None, "--texts", help="dataset | dataset:SPLIT | statements | files:DIR | hf:PATH:COLUMN[:LANG] | "
                      "multiway:FILE.jsonl")


def _register_unit_analysis(name: str, help_text: str, backends: str, with_method: bool) -> None:
    """``polyfact analyze neurons|heads``: per-checkpoint specialization with analyzer options."""

    def command(
        run: Path = typer.Option(..., "--run"),
        checkpoint: Optional[str] = _CKPTS,
        backend: Optional[str] = typer.Option(None, "--backend", help=backends),
        method: Optional[str] = typer.Option(None, "--method", help="lahis | gradient | ablation (heads)"),
        texts: Optional[str] = _TEXTS,
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget per language."),
        reference: Optional[str] = _REF,
        preset: Optional[str] = _PRESET,
        config: Optional[Path] = _CONFIG,
        sets: Optional[list[str]] = _SETS,
        force: bool = typer.Option(False, "--force"),
    ) -> None:
        from pipeline import stages
        from pipeline import tables

        if method is not None and not with_method:
            raise PolyFactError("--method chooses the head-importance method: use it with polyfact analyze heads")
        ctx = _analysis_ctx(run, checkpoint, preset, config, sets, force, backend, texts, max_tokens, reference, method)
        printer = getattr(tables, f"print_{name}")
        for res in _execute(name, ctx, getattr(stages, name)).values():
            printer(res)

    command.__doc__ = help_text
    analyze_app.command(name)(command)


_register_unit_analysis("neurons", "LAPE language-specific neurons; writes results/neurons/<id>.*",
                        "nnsight | lens | torch", with_method=False)
_register_unit_analysis("heads", "Per-language head importance (LAHIS by default); writes results/heads/<id>.*",
                        "torch | nnsight | lens", with_method=True)


def _register_run_analysis(name: str, help_text: str, fn, show) -> None:
    """``polyfact analyze NAME`` over a run's checkpoints: the registry's stage with shared options."""

    def command(
        run: Path = typer.Option(..., "--run"),
        checkpoints: Optional[str] = _CKPTS,
        reference: Optional[str] = _REF,
        preset: Optional[str] = _PRESET,
        config: Optional[Path] = _CONFIG,
        sets: Optional[list[str]] = _SETS,
        force: bool = typer.Option(False, "--force", help="Recompute even when matching results exist."),
    ) -> None:
        ctx = _analysis_ctx(run, checkpoints, preset, config, sets, force, reference=reference)
        show(_execute(name, ctx, fn))

    command.__doc__ = help_text
    analyze_app.command(name)(command)


def _show_each(printer):
    def show(results: dict) -> None:
        for res in results.values():
            printer(res)
    return show


def _routing_with_inputs(ctx):
    """Routing needs each checkpoint's (and the reference's) neuron and head results."""
    from analyses.specialization import effective_reference
    from pipeline import stages

    ref = effective_reference(ctx.run.root, ctx.cfg.analysis)
    ids = list(dict.fromkeys([*([ref] if ref else []), *ctx.ids()]))
    sub = type(ctx)(ctx.run, ctx.cfg, ids, False, ctx.notes)
    stages.neurons(sub)
    stages.heads(sub)
    return stages.routing(ctx)


def _ablate_with_inputs(ctx):
    from pipeline import stages

    stages.neurons(ctx)
    stages.heads(ctx)
    return stages.ablate(ctx)


def _register_all() -> None:
    from pipeline import stages
    from pipeline.tables import print_ablation, print_representations, print_routing, print_seeds

    _register_run_analysis("routing", "Before/after specialization changes against the reference (and each "
                           "checkpoint's parent), with measurement-error intervals and the differential test.",
                           _routing_with_inputs, print_routing)
    _register_run_analysis("seeds", "Each method's change against the base across training seeds: mean, t interval, "
                           "sign agreement, tests against the control, verdicts.", stages.seeds, print_seeds)
    _register_run_analysis("ablate", "Deactivate each language's neurons / top heads: Δloss and Δaccuracy "
                           "matrices with random controls.", _ablate_with_inputs, _show_each(print_ablation))
    _register_run_analysis("representations", "Cross-lingual similarity, CKA, retrieval, language-ID probes "
                           "and logit lens per layer.", stages.representations, _show_each(print_representations))


_register_all()


@app.command("compare")
def compare_cmd(
    run: Path = typer.Option(..., "--run"),
    before: str = typer.Option(..., "--before", help="Checkpoint id, directory or hub id (the reference)."),
    after: str = typer.Option(..., "--after", help="Checkpoint id, directory or hub id."),
    texts: Optional[str] = _TEXTS,
    preset: Optional[str] = _PRESET,
    config: Optional[Path] = _CONFIG,
    sets: Optional[list[str]] = _SETS,
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Before/after analyses of any two checkpoints (e.g. a base model and its GRPO fine-tune)."""
    from analyses.routing import compare_pair
    from pipeline import stages
    from pipeline.tables import print_compare

    (a,) = _checkpoint_list(run, before)
    (b,) = _checkpoint_list(run, after)
    ctx = _analysis_ctx(run, f"{a},{b}", preset, config, sets, force, texts=texts, reference=a)

    def stage(c):
        stages.neurons(c)
        stages.heads(c)
        return compare_pair(c.run.root, b, a, c.cfg.analysis, c.cfg.routing, seed=c.cfg.seed, force=c.force)

    print_compare(_execute("compare", ctx, stage))


@app.command("run")
def run_cmd(
    preset: Optional[str] = typer.Option(None, "--preset", help="smoke | default | replicate | paper (default: default, or the run's saved config)"),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory (default: runs/<preset>)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override a setting, e.g. --set grpo.steps=10."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Training seeds, e.g. 0,1,2 (every method once per seed)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the commands; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: print the plan and resolved settings as JSON."),
    force: bool = typer.Option(False, "--force", help="Redo every stage even when its outputs are current."),
) -> None:
    """The whole study: data → base → CPT/SFT/GRPO (per seed) → evaluation → analyzers → figures → report."""
    from pipeline.config import to_dict
    from pipeline.run import load_run_config, run as run_study
    from pipeline.tables import print_summary
    from core.layout import layout

    sets = list(sets or [])
    if seeds is not None:
        try:
            sets.append("seeds=[" + ",".join(str(int(x)) for x in _csv(seeds)) + "]")
        except ValueError:
            raise PolyFactError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {seeds!r}") from None
    if dry_run and as_json:
        out = run_study(preset=preset, run_dir=run, config_file=config, sets=sets, dry_run=True, echo=lambda _: None)
        cfg = load_run_config(layout(run or f"runs/{preset or 'default'}"), preset, config, sets)
        print(json.dumps({**out, "config": to_dict(cfg)}, indent=2, default=str))
        return
    out = run_study(preset=preset, run_dir=run, config_file=config, sets=sets, dry_run=dry_run, force=force)
    if not dry_run:
        print_summary(out)


@app.command("report")
def report_cmd(
    run: Path = typer.Option(..., "--run"),
    static: bool = typer.Option(False, "--static", help="Also write PNG and PDF (needs Chromium)."),
) -> None:
    """Write RUN/report.html and RUN/figures/ from the run's result files."""
    from figures.report import build_report

    print(f"wrote {build_report(run, static=static)}")


figures_app = typer.Typer(no_args_is_help=True, help="Figures from released results.")
app.add_typer(figures_app, name="figures")


@figures_app.command("lape")
def figures_lape(
    paper_dir: Path = typer.Option(..., "--paper-dir", help="A released LAPE folder (lape_results.json + meta.json)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="Another checkpoint's folder: adds the change."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    static: bool = typer.Option(True, "--static/--no-static", help="PNG and PDF too (needs Chromium)."),
) -> None:
    """The LAPE figures of released results (per language and layer, totals, change)."""
    from analyses.released import released_lape
    from figures.report import paper_lape_figures

    out = _out_dir(out)
    summary = released_lape(paper_dir, compare)
    for path in paper_lape_figures(summary, out, static=static):
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
    from analyses.released import released_heads
    from figures.report import paper_head_figures

    out = _out_dir(out)
    summary = released_heads(paper_dir, compare, frac)
    for path in paper_head_figures(summary, out, static=static):
        print(f"wrote {path}")


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise PolyFactError(f"--out {out} is a file; pass a folder for the figures")
    return out


def _log_dir(argv: list[str]) -> Path:
    """Where a traceback goes: ``RUN/logs`` of the command's ``--run``, else the user cache."""
    from core.layout import layout

    for i, a in enumerate(argv):
        if a == "--run" and i + 1 < len(argv):
            return layout(argv[i + 1]).logs
        if a.startswith("--run="):
            return layout(a.split("=", 1)[1]).logs
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


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the console script: one-line errors and exit status 2 for bad input; an
    unexpected failure prints one line naming the log file that holds its traceback (``--debug``
    prints the traceback instead)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        app(args=argv, standalone_mode=False)
    except PolyFactError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place that turns failures into a line
        if hasattr(err, "show") and hasattr(err, "exit_code"):  # click (or typer's vendored click) usage errors
            err.show()
            sys.exit(2)
        if type(err).__name__ == "Abort":
            print("aborted", file=sys.stderr)
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


if __name__ == "__main__":
    main()
