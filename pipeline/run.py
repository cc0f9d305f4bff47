"""``polyfact run``: dataset → base model → CPT, SFT, GRPO, CPT+GRPO → evaluation → neurons and
heads → routing, deactivation, representations → figures → report.

Every stage reads and writes artifacts in the run directory and is skipped when its inputs and
config fingerprints match its outputs (checkpoint manifests, result provenance), so a killed run
resumes where it stopped and reaches the same results as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from polyfact.errors import PolyFactError
from polyfact.io import atomic_write_json, fingerprint
from pipeline.config import CONFIG_VERSION, RunConfig, load_yaml, resolve, save

ACCELERATE_DIR = Path(__file__).parent / "accelerate"


@dataclass
class Step:
    """One stage: a name, what it runs (as a command line, for ``--dry-run`` and the README) and
    the function that runs it."""

    name: str
    command: str
    fn: Callable[[], Any]


@dataclass
class RunContext:
    run_dir: Path
    cfg: RunConfig
    timings: dict[str, float] = field(default_factory=dict)


def method_chain(spec: str) -> tuple[str | None, str, str]:
    """``"cpt+grpo"`` → (parent ``cpt``, method ``grpo``, id ``cpt+grpo``); ``"sft"`` → (base, sft, sft)."""
    parts = spec.split("+")
    method = parts[-1]
    parent = "+".join(parts[:-1]) or "base"
    return parent, method, spec


def checkpoint_ids(cfg: RunConfig) -> list[str]:
    return ["base", *[method_chain(m)[2] for m in cfg.methods]]


def _expected_fingerprint(parent: str | None, parent_fp: str | None, method: str, family: str, data_fp: str,
                          section: Any, seed: int) -> str:
    """The fingerprint ``save_checkpoint`` would give this checkpoint (so a match means done)."""
    from training.checkpoints import manifest_fingerprint
    from training.common import config_to_dict

    return manifest_fingerprint({"parent": parent, "parent_fingerprint": parent_fp, "method": method,
                                 "family": family, "data_fingerprint": data_fp, "config": config_to_dict(section),
                                 "seed": seed})


def _done(run_dir: Path, ckpt: str, expected: str) -> bool:
    path = run_dir / "checkpoints" / ckpt / "manifest.json"
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("fingerprint") == expected
    except json.JSONDecodeError:
        return False


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse unwritable directories and runs made by an incompatible version; save the config."""
    saved = run_dir / "config.yaml"
    if saved.exists():
        old = load_yaml(saved)
        if old.get("version") != CONFIG_VERSION:
            raise PolyFactError(f"{run_dir} was made by an incompatible polyfact (config version "
                                f"{old.get('version')}, this one writes {CONFIG_VERSION}); use a new --run directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PolyFactError(f"cannot create run directory {run_dir}: {err.strerror}; choose a writable --run") from None
    if not os.access(run_dir, os.W_OK):
        raise PolyFactError(f"run directory {run_dir} is not writable; choose another --run")
    save(cfg, saved)


def plan(ctx: RunContext) -> list[Step]:
    """The stages of the run, in order."""
    run, cfg = ctx.run_dir, ctx.cfg
    r = shlex.quote(str(run))
    steps: list[Step] = [Step("data", f"polyfact data build --source {cfg.data.source} --out {r}/data", lambda: _data(ctx))]
    if cfg.model is None:
        steps.append(Step("pretrain", f"polyfact train pretrain --run {r}", lambda: _pretrain(ctx)))
    else:
        steps.append(Step("base", f"(base = {cfg.model})", lambda: _external_base(ctx)))
    for spec in cfg.methods:
        parent, method, ckpt = method_chain(spec)
        launch = f"accelerate launch --config_file {ACCELERATE_DIR / 'zero3.yaml'} -m pipeline.cli " \
            if cfg.model else "polyfact "
        steps.append(Step(f"train {ckpt}", f"{launch}train {method} --run {r} --from {parent} --id {ckpt}",
                          lambda p=parent, m=method, c=ckpt: _train(ctx, m, p, c)))
    ids = ",".join(checkpoint_ids(cfg))
    steps += [
        Step("evaluate", f"polyfact eval checkpoints --run {r} --checkpoints {ids}", lambda: _evaluate(ctx)),
        Step("neurons", f"polyfact analyze neurons --run {r} --checkpoint {ids}", lambda: _neurons(ctx)),
        Step("heads", f"polyfact analyze heads --run {r} --checkpoint {ids}", lambda: _heads(ctx)),
        Step("routing", f"polyfact analyze routing --run {r}", lambda: _routing(ctx)),
        Step("ablate", f"polyfact analyze ablate --run {r}", lambda: _ablate(ctx)),
        Step("representations", f"polyfact analyze representations --run {r}", lambda: _representations(ctx)),
        Step("report", f"polyfact report --run {r}", lambda: _report(ctx)),
    ]
    return steps


def _data(ctx: RunContext) -> bool:
    """Build (or import) the dataset unless one made with the same settings is there."""
    from polyfact.dataset import load_meta
    from polyfact.make import build_dataset, import_dataset

    d = ctx.cfg.data
    key = fingerprint(asdict(d)) + f"-{ctx.cfg.seed}"
    out = ctx.run_dir / "data"
    marker = ctx.run_dir / ".polyfact" / "data.json"
    if out.exists() and marker.exists() and json.loads(marker.read_text()).get("key") == key:
        try:
            load_meta(out)
            return True
        except PolyFactError:
            pass
    if d.import_kind:
        if not d.import_path:
            raise PolyFactError("data.import_kind needs data.import_path (the release's local directory)")
        import_dataset(d.import_kind, d.import_path, out, langs=d.langs, seed=ctx.cfg.seed, force=True)
    else:
        build_dataset(d.source, out, langs=d.langs, relations=d.relations, seed=ctx.cfg.seed,
                      split_fracs=d.split_fracs, max_per_relation=d.max_per_relation, dump=d.dump, force=True)
    atomic_write_json(marker, {"key": key})
    return False


def _data_fp(ctx: RunContext) -> str:
    from polyfact.dataset import load_meta

    return str(load_meta(ctx.run_dir / "data")["fingerprint"])


def _pretrain(ctx: RunContext) -> bool:
    from training.methods import train

    cfg = ctx.cfg
    expected = _expected_fingerprint(None, None, "pretrain", cfg.pretrain.model.family, _data_fp(ctx), cfg.pretrain,
                                     cfg.seed)
    if _done(ctx.run_dir, "base", expected):
        return True
    train("pretrain", ctx.run_dir, cfg.pretrain, seed=cfg.seed)
    return False


def _external_base(ctx: RunContext) -> bool:
    """A pointer checkpoint ``base`` → the configured Hugging Face model (no weights copied)."""
    path = ctx.run_dir / "checkpoints" / "base" / "manifest.json"
    manifest = {"id": "base", "parent": None, "method": "external", "source": ctx.cfg.model,
                "family": "external", "fingerprint": fingerprint({"external": ctx.cfg.model})}
    if path.exists() and json.loads(path.read_text()).get("source") == ctx.cfg.model:
        return True
    atomic_write_json(path, manifest)
    return False


def _manifest(ctx: RunContext, ckpt: str) -> dict:
    return json.loads((ctx.run_dir / "checkpoints" / ckpt / "manifest.json").read_text())


def _train(ctx: RunContext, method: str, parent: str, ckpt: str) -> bool:
    from training.methods import CONFIG_SECTION, train

    cfg = ctx.cfg
    section = getattr(cfg, CONFIG_SECTION[method])
    pm = _manifest(ctx, parent)
    family = pm.get("family") if pm.get("method") != "external" else None
    expected = _expected_fingerprint(parent, pm.get("fingerprint"), method, str(family), _data_fp(ctx), section,
                                     cfg.seed)
    if _done(ctx.run_dir, ckpt, expected):
        return True
    train(method, ctx.run_dir, section, parent=parent, ckpt_id=ckpt, seed=cfg.seed)
    return False


def _evaluate(ctx: RunContext) -> dict:
    from analyses.recall import evaluate_checkpoint, paired_tests

    e = ctx.cfg.eval
    ids = checkpoint_ids(ctx.cfg)
    out = {c: evaluate_checkpoint(ctx.run_dir, c, split=e.split, mode=e.mode, normalization=e.normalization,
                                  max_facts=e.max_facts, bootstrap=e.bootstrap, seed=ctx.cfg.seed) for c in ids}
    paired_tests(ctx.run_dir, "base", ids[1:], bootstrap=e.bootstrap, seed=ctx.cfg.seed)
    if e.klar_path:
        from polyfact.make import import_dataset

        klar = ctx.run_dir / "klar"
        if not (klar / "dataset_dict.json").exists():
            import_dataset("klar", e.klar_path, klar, seed=ctx.cfg.seed, force=True)
        for c in ids:
            evaluate_checkpoint(ctx.run_dir, c, data_dir=klar, max_facts=e.max_facts, bootstrap=e.bootstrap,
                                seed=ctx.cfg.seed)
    return out


def _neurons(ctx: RunContext) -> None:
    from analyses.specialization import neuron_analysis

    for c in checkpoint_ids(ctx.cfg):
        neuron_analysis(ctx.run_dir, c, ctx.cfg.analysis, seed=ctx.cfg.seed)


def _heads(ctx: RunContext) -> None:
    from analyses.specialization import head_analysis

    for c in checkpoint_ids(ctx.cfg):
        head_analysis(ctx.run_dir, c, ctx.cfg.analysis, seed=ctx.cfg.seed)


def _routing(ctx: RunContext) -> dict:
    from analyses.routing import routing_analysis

    return routing_analysis(ctx.run_dir, checkpoint_ids(ctx.cfg)[1:], ctx.cfg.analysis, ctx.cfg.routing,
                            seed=ctx.cfg.seed)


def _ablate(ctx: RunContext) -> None:
    from analyses.ablate import ablation_analysis

    for c in checkpoint_ids(ctx.cfg):
        ablation_analysis(ctx.run_dir, c, ctx.cfg.ablate)


def _representations(ctx: RunContext) -> None:
    from analyses.representations import representation_analysis

    for c in checkpoint_ids(ctx.cfg):
        representation_analysis(ctx.run_dir, c, ctx.cfg.representations)


def _report(ctx: RunContext) -> Path:
    from figures.report import build_report

    return build_report(ctx.run_dir, static=False)


def summary_table(run_dir: Path, ids: list[str]) -> dict[str, Any]:
    """Accuracy and Total Consistency per checkpoint, and its specialization change against base."""
    from analyses.recall import load_result

    routing_path = run_dir / "results" / "routing" / "summary.json"
    routing = {r["checkpoint"]: r for r in json.loads(routing_path.read_text())["rows"]} if routing_path.exists() else {}
    rows = []
    for c in ids:
        res = load_result(run_dir, c)
        m = res["metrics"]
        row = {"checkpoint": c, "mean_accuracy": m["mean_accuracy"], "en": m["accuracy"].get("en"),
               "total_consistency": m["total_consistency"],
               "total_consistency_training": res.get("consistency_subsets", {}).get("training"),
               "accuracy_by_group": m["accuracy_by_group"]}
        if c in routing:
            row["delta_neuron_entropy"] = routing[c]["neuron_entropy"]
            row["delta_head_entropy"] = routing[c]["head_entropy"]
            row["delta_neurons"] = routing[c]["neuron_count"]
        rows.append(row)
    return {"rows": rows}


def run(preset: str | None = None, run_dir: str | Path | None = None, config_file: str | Path | None = None,
        sets: list[str] | None = None, dry_run: bool = False, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or, with ``dry_run``, print) the whole study; returns the summary."""
    run_dir = Path(run_dir or f"runs/{preset or 'default'}")
    saved = run_dir / "config.yaml"
    base = load_yaml(saved) if saved.exists() and not preset and not config_file else None
    cfg = resolve(preset=preset or (None if base else "default"), config_file=config_file, sets=sets, base=base)
    ctx = RunContext(run_dir, cfg)
    steps = plan(ctx)
    if dry_run:
        echo(f"plan for {run_dir} (preset {cfg.preset}, seed {cfg.seed}, model {cfg.model or 'toy ' + cfg.pretrain.model.family}):")
        for i, s in enumerate(steps, 1):
            echo(f"{i:2d}. {s.name:<16s} {s.command}")
        if cfg.model:
            echo(f"accelerate configs: {ACCELERATE_DIR / 'zero3.yaml'} (DeepSpeed ZeRO-3), "
                 f"{ACCELERATE_DIR / 'fsdp.yaml'} (FSDP); LoRA: sft {cfg.sft.lora.enabled}, grpo {cfg.grpo.lora.enabled}")
        return {"plan": [(s.name, s.command) for s in steps]}
    prepare_run_dir(run_dir, cfg)
    t_all = time.perf_counter()
    for s in steps:
        t = time.perf_counter()
        result = s.fn()
        dt = time.perf_counter() - t
        ctx.timings[s.name] = dt
        skipped = result is True
        echo(f"[{s.name}] {'up to date' if skipped else 'done'} in {dt:.1f} s")
    summary = {"timings": ctx.timings, "total_seconds": time.perf_counter() - t_all,
               **summary_table(run_dir, checkpoint_ids(cfg))}
    atomic_write_json(run_dir / "results" / "summary.json",  # no times: identical runs give identical files
                      {k: v for k, v in summary.items() if k not in ("timings", "total_seconds")})
    atomic_write_json(run_dir / ".polyfact" / "timings.json", ctx.timings)
    return summary
