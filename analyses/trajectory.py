"""How specialization moves during training: the study's and the project's measures at every kept
state of an arm's training (``<arm>/step-<n>``, from its parent at step 0 to the arm itself), or
along any series of checkpoints, against the run's reference, beside the arm's learning curve;
across seeds the mean and t interval at each point, and which moves first.

Each point is an ordinary checkpoint analysis (``neuron_analysis``, ``head_analysis``,
``compare_pair``): resumable, skipped when fresh, the reference's statistics computed once."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from polyfact.analyses.config import RoutingConfig, SpecializationConfig
from polyfact.analyses.routing import compare_pair
from polyfact.analyses.seeds import t_interval
from polyfact.analyses.specialization import effective_reference, head_analysis, neuron_analysis
from polyfact.core.checkpoints import list_points, read_manifest
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json, read_cached
from polyfact.core.layout import layout, split_seed

SPECIALIZATION = {  # measure -> (label, panel)
    "lape_total": ("LAPE top-1 % neurons, all languages (study)", "study"),
    "head_overlap": ("mean pairwise overlap of top-2 % heads, % (study)", "study"),
    "calibrated_neurons": ("language-specific neurons, base-calibrated (project)", "project"),
    "neuron_kappa": ("neuron contrast change κ (project)", "project"),
    "head_kappa": ("head contrast change κ (project)", "project"),
}
BEHAVIOR = {
    "probe_accuracy": "accuracy on the arm's own probe facts", "test_accuracy": "accuracy on test facts",
    "total_consistency": "Total Consistency (test facts)", "greedy_reward": "greedy reward (probe facts)",
}
_STEP = re.compile(r"(?:step-|checkpoint-|-s|_s|@s|step)(\d+)$")


def step_of(name: str) -> int | None:
    """The training step a checkpoint's name states (``…step-N``, ``checkpoint-N``, ``…-sN``)."""
    m = _STEP.search(str(name).rstrip("/").split("/")[-1] if "@" not in str(name) else str(name))
    return int(m.group(1)) if m else None


def arm_series(run_dir: str | Path, ckpt: str) -> list[tuple[int, str]]:
    """``(step, checkpoint)`` of an arm's trajectory: its parent (step 0), every kept state, itself."""
    manifest = read_manifest(run_dir, ckpt)
    total = int(((manifest.get("metrics") or {}).get("budget") or {}).get("steps") or 0)
    points = list_points(run_dir, ckpt)
    wanted = int((manifest.get("budget") or {}).get("trajectory_points") or 0)
    if wanted and len(points) != wanted:
        from polyfact.training.arms import trajectory_steps

        have = {s for s, _ in points}
        missing = [s for s in trajectory_steps(total, wanted) if s not in have]
        raise PolyFactError(f"{ckpt} kept {len(points)} of its {wanted} intermediate states (missing step "
                            f"{', '.join(map(str, missing)) or '?'}); retrain it (polyfact train … --force) to keep them")
    parent = manifest.get("parent")
    if not parent:
        raise PolyFactError(f"{ckpt} names no parent; its trajectory starts from nothing")
    return [(0, parent), *points, (total, ckpt)]


def _curve_at(curve: list[dict], step: int) -> dict[str, Any]:
    point = next((p for p in curve if p["step"] == step), None)
    if point is None:
        return {}
    out = {"probe_accuracy": point["probe"]["mean_accuracy"], "test_accuracy": point["test"]["mean_accuracy"],
           "total_consistency": point["test"]["total_consistency"]}
    if "greedy_reward" in point["probe"]:
        out["greedy_reward"] = point["probe"]["greedy_reward"]
    return out


def point_measures(run_dir: str | Path, ckpt: str, reference: str | None, spec: SpecializationConfig,
                   rcfg: RoutingConfig, seed: int, force: bool) -> dict[str, Any]:
    """The measures of one point: the study's (LAPE top-1 % counts, top-2 % head overlap) and the
    project's (base-calibrated neuron count, neuron and head κ against ``reference``)."""
    from polyfact.core.results import Neurons

    neurons = Neurons(neuron_analysis(run_dir, ckpt, spec, seed=seed, force=force))
    heads = head_analysis(run_dir, ckpt, spec, seed=seed, force=force)
    counts = neurons.counts()
    out: dict[str, Any] = {"lape_counts": counts, "lape_total": float(sum(counts.values())),
                           "head_overlap": float(heads["study"]["mean_overlap_pct"]),
                           "calibrated_neurons": float(sum(neurons.calibrated_counts().values()))}
    if reference is None or reference == ckpt:
        out.update(neuron_kappa=0.0, head_kappa=0.0)
    else:
        change = compare_pair(run_dir, ckpt, reference, spec, rcfg, seed=seed, force=force)["change"]
        for key, unit in (("neuron_kappa", "neurons"), ("head_kappa", "heads")):
            delta = change[unit]["contrast"]["delta"]
            out[key] = float(delta[0] if isinstance(delta, list) else delta)
    return out


def series_analysis(run_dir: str | Path, series: Sequence[tuple[int, str]], name: str,
                    spec: SpecializationConfig | None = None, rcfg: RoutingConfig | None = None, seed: int = 0,
                    force: bool = False, curve: list[dict] | None = None, method: str | None = None,
                    memo: dict[str, dict] | None = None) -> dict[str, Any]:
    """The measures at every point of ``series`` (``(step, checkpoint)``), against the reference (the
    run's; its first point in a run without one); written to ``results/trajectory/<name>.json``.
    ``memo`` keeps each checkpoint's measures across series (every arm shares its parent)."""
    spec, rcfg = spec or SpecializationConfig(), rcfg or RoutingConfig()
    _check_series(run_dir, series)
    reference = effective_reference(run_dir, spec) or series[0][1]  # a run without a base: the series' start
    memo = {} if memo is None else memo
    points = []
    for step, ckpt in series:
        if ckpt not in memo:
            memo[ckpt] = point_measures(run_dir, ckpt, reference, spec, rcfg, seed, force)
        points.append({"step": step, "checkpoint": ckpt, **memo[ckpt],
                       **(_curve_at(curve, step) if curve else {})})
    total = max(series[-1][0], 1)
    out = {"name": name, "method": method, "reference": reference, "points": points,
           "half_step": {m: half_step([p["step"] / total for p in points], [p[m] for p in points])
                         for m in [*SPECIALIZATION, *BEHAVIOR] if all(m in p for p in points)},
           "labels": {**{k: v[0] for k, v in SPECIALIZATION.items()}, **BEHAVIOR}}
    atomic_write_json(layout(run_dir).result("trajectory", name), out)
    return out


def _check_series(run_dir: str | Path, series: Sequence[tuple[int, str]]) -> None:
    if len(series) < 2:
        raise PolyFactError(f"a trajectory needs two or more points; got {len(series)} ({', '.join(c for _, c in series)})")
    steps = [s for s, _ in series]
    if len(set(steps)) != len(steps):
        dup = sorted({s for s in steps if steps.count(s) > 1})
        raise PolyFactError(f"points {', '.join(c for s, c in series if s in dup)} share step {dup[0]}; give each "
                            "point its own step (or order them as given)")
    from polyfact.core.checkpoints import resolve_checkpoint

    shapes = {}
    for _, ckpt in series:
        where = Path(resolve_checkpoint(ckpt, run_dir))
        cfg_path = where / "config.json"
        if cfg_path.exists():
            from polyfact.core.io import read_cached

            cfg = read_cached(cfg_path) or {}
            shapes[ckpt] = (cfg.get("model_type"), cfg.get("num_hidden_layers"), cfg.get("hidden_size"))
    if len(set(shapes.values())) > 1:
        first = next(iter(shapes.values()))
        odd = next(c for c, s in shapes.items() if s != first)
        raise PolyFactError(f"{odd} is a {shapes[odd][0]} model of {shapes[odd][1]} layers, unlike the series' "
                            f"{first[0]} of {first[1]}; a trajectory follows one architecture")


def half_step(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Where (as a share of training) a measure first reaches half of its final change, linearly
    interpolated; None when it does not change."""
    if len(y) < 2 or y[-1] == y[0] or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in y):
        return None
    target = y[0] + (y[-1] - y[0]) / 2
    sign = 1 if y[-1] > y[0] else -1
    for i in range(1, len(y)):
        if sign * (y[i] - target) >= 0:
            prev = sign * (y[i - 1] - target)
            frac = 0.0 if prev == sign * (y[i] - y[i - 1]) else -prev / (sign * (y[i] - y[i - 1]))
            return float(x[i - 1] + frac * (x[i] - x[i - 1]))
    return float(x[-1])


def across_seeds(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One method's trajectories over seeds: the mean and t interval of each measure at each point,
    each measure's half-change step over seeds, and the order of events: a paired test over seeds of
    "specialization (neuron κ) reaches half its change before Total Consistency does"."""
    n_points = min(len(r["points"]) for r in runs)
    measures = [m for m in [*SPECIALIZATION, *BEHAVIOR] if all(m in p for r in runs for p in r["points"][:n_points])]
    table = {}
    for m in measures:
        rows = []
        for k in range(n_points):
            vals = [float(r["points"][k][m]) for r in runs]
            lo, hi = t_interval(vals)
            rows.append({"share": runs[0]["points"][k]["step"] / max(runs[0]["points"][-1]["step"], 1),
                         "mean": float(np.mean(vals)), "ci": [lo, hi], "seeds": vals})
        table[m] = rows
    halves = {m: [r["half_step"].get(m) for r in runs] for m in measures}
    order = order_of_events(halves.get("neuron_kappa", []), halves.get("total_consistency", []))
    return {"n_seeds": len(runs), "points": table, "half_step": {
        m: {"seeds": v, "mean": float(np.mean([x for x in v if x is not None])) if any(x is not None for x in v)
            else None, "ci": list(t_interval([x for x in v if x is not None]))} for m, v in halves.items()},
        "order": order}


def order_of_events(spec: Sequence[float | None], consistency: Sequence[float | None]) -> dict[str, Any]:
    """Paired over seeds: d = half-step(specialization) − half-step(Total Consistency); d < 0 means
    specialization moved first. Mean, t interval, sign count and a paired t test (two-sided)."""
    pairs = [(a, b) for a, b in zip(spec, consistency) if a is not None and b is not None]
    d = [a - b for a, b in pairs]
    if len(d) < 2:
        return {"n": len(d), "differences": d, "reading": f"not testable at {len(d)} seed(s) with both changes"}
    from scipy.stats import ttest_1samp

    lo, hi = t_interval(d)
    p = float(ttest_1samp(d, 0.0).pvalue) if np.std(d) > 0 else float("nan")
    first = "specialization moves before consistency" if np.mean(d) < 0 else "consistency moves before specialization"
    resolved = (lo > 0 or hi < 0) and all(np.sign(x) == np.sign(np.mean(d)) for x in d)
    return {"n": len(d), "differences": d, "mean": float(np.mean(d)), "ci": [lo, hi], "p_value": p,
            "earlier_first": int(sum(x < 0 for x in d)),
            "reading": (f"{first}: neuron κ reaches half of its change {abs(np.mean(d)):.2f} of training "
                        f"{'before' if np.mean(d) < 0 else 'after'} Total Consistency ([{lo:+.2f}, {hi:+.2f}], "
                        f"paired t p={p:.3g}, {len(d)} seeds)") if resolved else
            (f"no evidence which moves first (specialization − consistency: {np.mean(d):+.2f} of training "
             f"[{lo:+.2f}, {hi:+.2f}], paired t p={p:.3g}, {len(d)} seeds)")}


def trajectory_analysis(run_dir: str | Path, arms: Sequence[str], spec: SpecializationConfig | None = None,
                        rcfg: RoutingConfig | None = None, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Every arm's trajectory (one file per method and seed) and, per method, the summary across
    seeds; written to ``results/trajectory/<arm>.json`` and ``summary.json`` (where the methods not
    analyzed this time keep their earlier summaries)."""
    per_method: dict[str, list[dict]] = {}
    memo: dict[str, dict] = {}  # the shared parent (base) is measured once, not once per arm
    for ckpt in arms:
        manifest = read_manifest(run_dir, ckpt)
        curve = (manifest.get("metrics") or {}).get("curve")
        res = series_analysis(run_dir, arm_series(run_dir, ckpt), ckpt, spec, rcfg, seed, force, curve,
                              method=split_seed(ckpt)[0], memo=memo)
        per_method.setdefault(split_seed(ckpt)[0], []).append(res)
    earlier = read_cached(layout(run_dir).result("trajectory", "summary"))  # other methods' (--methods) stay
    methods = dict(earlier.get("methods") or {}) if isinstance(earlier, dict) else {}
    methods.update({m: across_seeds(runs) for m, runs in per_method.items()})
    summary = {"methods": methods,
               "labels": {**{k: v[0] for k, v in SPECIALIZATION.items()}, **BEHAVIOR},
               "panels": {k: v[1] for k, v in SPECIALIZATION.items()}}
    atomic_write_json(layout(run_dir).result("trajectory", "summary"), summary)
    return summary


def order_by_step(items: Sequence[str]) -> list[tuple[int, str]]:
    """``(step, item)`` ordered by the step each name states (a one-line error naming an item
    without one, or two items with the same step)."""
    out = []
    for item in items:
        step = step_of(item)
        if step is None:
            raise PolyFactError(f"{item!r} states no step (step-N, checkpoint-N, -sN); order the series as given "
                                "(--order given) or rename it")
        out.append((step, item))
    steps = [s for s, _ in out]
    for s in steps:
        if steps.count(s) > 1:
            raise PolyFactError(f"{', '.join(i for t, i in out if t == s)} state the same step {s}; order the series "
                                "as given (--order given)")
    return sorted(out)
