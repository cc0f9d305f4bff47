"""The ``polyfact`` command line. Commands parse arguments and call library functions; every
user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from polyfact.errors import PolyFactError

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


def _run_config(run: Path, preset: Optional[str], config: Optional[Path], sets: Optional[list[str]]):
    """The run's saved config (``<run>/config.yaml``) or a preset, with file and ``--set`` overrides."""
    from pipeline.config import load_yaml, resolve

    saved = run / "config.yaml"
    base = load_yaml(saved) if saved.exists() else None
    return resolve(preset=preset, config_file=config, sets=sets, base=base)


@app.command("train")
def train_cmd(
    method: str = typer.Argument(..., help="pretrain | cpt | sft | grpo | grpo-trl"),
    run: Path = typer.Option(..., "--run", help="Run directory (reads its dataset at RUN/data)."),
    parent: Optional[str] = typer.Option(None, "--from", help="Parent checkpoint id, directory or hub id (default: base)."),
    ckpt_id: Optional[str] = typer.Option(None, "--id", help="Id of the new checkpoint (default: the method, or PARENT+METHOD)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="smoke | default | paper"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override a setting, e.g. --set grpo.steps=10."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (default: RUN/data)."),
) -> None:
    """Train a checkpoint of the run with one method; writes RUN/checkpoints/ID with its manifest."""
    from training.methods import CONFIG_SECTION, METHODS, train

    if method not in METHODS:
        raise PolyFactError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    cfg = _run_config(run, preset, config, sets)
    manifest = train(method, run, getattr(cfg, CONFIG_SECTION[method]), parent=parent, ckpt_id=ckpt_id,
                     seed=cfg.seed, data_dir=data)
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


eval_app = typer.Typer(no_args_is_help=True, help="Recall and cross-lingual consistency of checkpoints.")
app.add_typer(eval_app, name="eval")


def _csv(spec: str) -> list[str]:
    items = [x.strip() for x in spec.split(",") if x.strip()]
    if not items:
        raise PolyFactError("empty list; pass comma-separated ids such as base,cpt,sft,grpo")
    return items


@eval_app.command("checkpoints")
def eval_checkpoints(
    run: Path = typer.Option(..., "--run"),
    checkpoints: str = typer.Option("base", "--checkpoints", help="Comma-separated checkpoint ids."),
    split: str = typer.Option("test", "--split"),
    mode: str = typer.Option("mcq", "--mode", help="mcq | generate"),
    data: Optional[Path] = typer.Option(None, "--data", help="Another dataset directory (e.g. the KLAR import)."),
    normalization: str = typer.Option("byte", "--normalization", help="MCQ scores: byte | token | sum"),
    max_facts: Optional[int] = typer.Option(None, "--max-facts"),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for intervals (0: none)."),
    seed: int = typer.Option(0, "--seed"),
    force: bool = typer.Option(False, "--force", help="Recompute even when a matching result exists."),
) -> None:
    """Evaluate checkpoints; writes results/recall/<id>.json and records; prints the tables."""
    from analyses.recall import analysis_name, evaluate_checkpoint, paired_tests
    from pipeline.tables import print_recall

    ids = _csv(checkpoints)
    results = {c: evaluate_checkpoint(run, c, data_dir=data, split=split, mode=mode, normalization=normalization,
                                      max_facts=max_facts, bootstrap=bootstrap, seed=seed, force=force)
               for c in ids}
    paired = paired_tests(run, ids[0], ids[1:], analysis_name(run, data), bootstrap=bootstrap, seed=seed) \
        if len(ids) > 1 else {}
    print_recall(results, paired)


@eval_app.command("score")
def eval_score(
    records: Path = typer.Argument(..., help="JSONL records (fact_id, lang, correct) or predictions (language, relation, index, target, pred)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recompute the metrics from a records file, without the model."""
    from analyses.recall import score_file
    from pipeline.tables import print_recall

    metrics = score_file(records)
    if as_json:
        print(json.dumps(metrics, indent=2, ensure_ascii=False, default=float))
    else:
        print_recall({records.name: {"metrics": metrics}}, {})


analyze_app = typer.Typer(no_args_is_help=True, help="Language specialization of neurons and heads, routing analyses.")
app.add_typer(analyze_app, name="analyze")


def _analysis_cfg(run: Path, preset, config, sets, backend, texts, max_tokens):
    cfg = _run_config(run, preset, config, sets)
    a = cfg.analysis
    if backend is not None:
        a.backend = backend
        a.head_backend = backend
    if texts is not None:
        a.texts = texts
    if max_tokens is not None:
        a.max_tokens = max_tokens
        a.head_max_tokens = max_tokens
    return cfg


@analyze_app.command("neurons")
def analyze_neurons(
    run: Path = typer.Option(..., "--run"),
    checkpoint: str = typer.Option("base", "--checkpoint", help="Checkpoint id(s), comma-separated."),
    backend: Optional[str] = typer.Option(None, "--backend", help="nnsight | lens | torch"),
    texts: Optional[str] = typer.Option(None, "--texts", help="dataset | dataset:SPLIT | files:DIR | hf:PATH:COLUMN[:LANG]"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Token budget per language."),
    preset: Optional[str] = typer.Option(None, "--preset"),
    config: Optional[Path] = typer.Option(None, "--config"),
    sets: Optional[list[str]] = typer.Option(None, "--set"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """LAPE language-specific neurons; writes results/neurons/<id>.*"""
    from analyses.specialization import neuron_analysis
    from pipeline.tables import print_neurons

    cfg = _analysis_cfg(run, preset, config, sets, backend, texts, max_tokens)
    for ckpt in _csv(checkpoint):
        print_neurons(neuron_analysis(run, ckpt, cfg.analysis, seed=cfg.seed, force=force))


@analyze_app.command("heads")
def analyze_heads(
    run: Path = typer.Option(..., "--run"),
    checkpoint: str = typer.Option("base", "--checkpoint", help="Checkpoint id(s), comma-separated."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch | nnsight | lens"),
    method: Optional[str] = typer.Option(None, "--method", help="gradient | ablation"),
    texts: Optional[str] = typer.Option(None, "--texts"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens"),
    preset: Optional[str] = typer.Option(None, "--preset"),
    config: Optional[Path] = typer.Option(None, "--config"),
    sets: Optional[list[str]] = typer.Option(None, "--set"),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Per-language head importance; writes results/heads/<id>.*"""
    from analyses.specialization import head_analysis
    from pipeline.tables import print_heads

    cfg = _analysis_cfg(run, preset, config, sets, backend, texts, max_tokens)
    if method:
        cfg.analysis.head_method = method
    for ckpt in _csv(checkpoint):
        print_heads(head_analysis(run, ckpt, cfg.analysis, seed=cfg.seed, force=force))


def _checkpoint_list(run: Path, spec: Optional[str]) -> list[str]:
    from training.checkpoints import list_checkpoints

    ids = _csv(spec) if spec else list_checkpoints(run)
    if not ids:
        raise PolyFactError(f"no checkpoints in {run / 'checkpoints'}; train some first (polyfact train ...)")
    return ids


def _run_analysis(name: str, help_text: str, body) -> None:
    """Register ``polyfact analyze NAME`` over a run's checkpoints with the shared options."""

    def command(
        run: Path = typer.Option(..., "--run"),
        checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Default: every checkpoint of the run."),
        preset: Optional[str] = typer.Option(None, "--preset"),
        config: Optional[Path] = typer.Option(None, "--config"),
        sets: Optional[list[str]] = typer.Option(None, "--set"),
        force: bool = typer.Option(False, "--force", help="Recompute even when matching results exist."),
    ) -> None:
        body(run, _run_config(run, preset, config, sets), _checkpoint_list(run, checkpoints), force)

    command.__doc__ = help_text
    analyze_app.command(name)(command)


def _routing(run: Path, cfg, ids: list[str], force: bool) -> None:
    from analyses.routing import routing_analysis
    from analyses.specialization import head_analysis, neuron_analysis
    from pipeline.tables import print_routing

    for ckpt in dict.fromkeys(["base", *ids]):  # per-checkpoint results feed the point summaries
        neuron_analysis(run, ckpt, cfg.analysis, seed=cfg.seed)
        head_analysis(run, ckpt, cfg.analysis, seed=cfg.seed)
    print_routing(routing_analysis(run, ids, cfg.analysis, cfg.routing, seed=cfg.seed, force=force))


def _ablate(run: Path, cfg, ids: list[str], force: bool) -> None:
    from analyses.ablate import ablation_analysis
    from analyses.specialization import head_analysis, neuron_analysis
    from pipeline.tables import print_ablation

    for ckpt in ids:
        neuron_analysis(run, ckpt, cfg.analysis, seed=cfg.seed)
        head_analysis(run, ckpt, cfg.analysis, seed=cfg.seed)
        print_ablation(ablation_analysis(run, ckpt, cfg.ablate, force=force))


def _representations(run: Path, cfg, ids: list[str], force: bool) -> None:
    from analyses.representations import representation_analysis
    from pipeline.tables import print_representations

    for ckpt in ids:
        print_representations(representation_analysis(run, ckpt, cfg.representations, force=force))


_run_analysis("routing", "Before/after specialization changes with intervals and p-values, against parent and base.",
              _routing)
_run_analysis("ablate", "Deactivate each language's neurons / top heads: Δloss and Δaccuracy matrices with controls.",
              _ablate)
_run_analysis("representations", "Cross-lingual similarity, CKA, retrieval, language-ID probes and logit lens per layer.",
              _representations)


@app.command("run")
def run_cmd(
    preset: Optional[str] = typer.Option(None, "--preset", help="smoke | default | paper (default: default, or the run's saved config)"),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory (default: runs/<preset>)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override a setting, e.g. --set grpo.steps=10."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the commands; run nothing."),
) -> None:
    """The whole study: data → base → CPT/SFT/GRPO → evaluation → analyzers → figures → report."""
    from pipeline.run import run as run_study
    from pipeline.tables import print_summary

    out = run_study(preset=preset, run_dir=run, config_file=config, sets=sets, dry_run=dry_run)
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
    out: Path = typer.Option(..., "--out"),
    static: bool = typer.Option(True, "--static/--no-static", help="PNG and PDF too (needs Chromium)."),
) -> None:
    """The LAPE figures of released results (per language and layer, totals, change)."""
    from figures.report import paper_lape_figures

    for path in paper_lape_figures(paper_dir, out, compare=compare, static=static):
        print(f"wrote {path}")


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the console script: one-line errors, exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except PolyFactError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(2)
        if isinstance(err, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
