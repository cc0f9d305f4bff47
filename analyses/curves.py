"""Whether each arm trained, and on what: its learning curve (``results/curves/<id>.json``, from the
points its training recorded), whether its own objective improved between the first and the last
point, and the budget table of a run's arms, with the check that arms compared with each other saw
the same train facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from polyfact.core.checkpoints import read_manifest
from polyfact.core.errors import PolyFactError
from polyfact.core.layout import layout, split_seed
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.training.arms import objective_change
from polyfact.training.methods import METHODS


def deterministic(budget: dict[str, Any] | None) -> dict[str, Any] | None:
    """An arm's budget record without its wall seconds (result files repeat exactly; the seconds stay
    in the checkpoint's manifest)."""
    return {k: v for k, v in budget.items() if k != "seconds"} if isinstance(budget, dict) else None


def objective_measure(method: str) -> str:
    """The probe measure that is a method's own training objective (``mean_accuracy`` for a method
    the registry does not know)."""
    return METHODS.get(method).get("objective", "mean_accuracy") if method in METHODS else "mean_accuracy"


def curve_analysis(run_dir: str | Path, ckpt: str, force: bool = False) -> dict[str, Any] | None:
    """The learning curve of a trained checkpoint with its objective's change; None for a
    checkpoint that recorded none (the base, outside checkpoints)."""
    manifest = read_manifest(run_dir, ckpt)
    metrics = manifest.get("metrics") or {}
    curve = metrics.get("curve")
    if not curve:
        return None
    prov = provenance(run_dir, ckpt, analysis="curves", data_fingerprint=manifest.get("data_fingerprint"),
                      config={}, seed=int(manifest.get("seed") or 0))
    path = layout(run_dir).result("curves", ckpt)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    method = str(manifest.get("method"))
    payload = {"checkpoint": ckpt, "method": method, "arm": split_seed(ckpt)[0], "seed": manifest.get("seed"),
               "budget": deterministic(metrics.get("budget")),
               "objective": objective_change(curve, objective_measure(method)),
               "curve": curve}
    return write_result(path, payload, prov)


def budget_table(run_dir: str | Path, ids: Sequence[str], wall: bool = False) -> list[dict[str, Any]]:
    """One row per trained checkpoint: the facts it learned from (count and hash), examples,
    optimizer steps, forward and generated tokens (``seconds`` too with ``wall=True``: not for
    result files, which repeat exactly)."""
    rows = []
    for c in ids:
        budget = (read_manifest(run_dir, c).get("metrics") or {}).get("budget")
        if isinstance(budget, dict):
            rows.append({"checkpoint": c, **(budget if wall else deterministic(budget))})
    return rows


def check_matched(rows: list[dict[str, Any]], allow_unmatched: bool) -> str | None:
    """None when the arms of each training seed were offered the same train facts (each seed draws its
    own subset: ``sft@s0`` and ``grpo@s0`` must match, ``sft@s1`` may differ from them; what an arm
    dropped after sampling is listed by the seed analysis, the oracle's test facts are its own);
    otherwise a
    one-line description, raised as an error unless ``allow_unmatched`` (then returned, for the
    report to state above every verdict)."""
    from polyfact.core.layout import split_seed

    def key(r: dict) -> str:  # what the arm was offered (manifests before offered_hash: what it learned)
        return r.get("offered_hash") or r["facts_hash"]

    by_seed: dict[Any, set[str]] = {}
    for r in rows:
        by_seed.setdefault(split_seed(r["checkpoint"])[1], set()).add(key(r))
    if all(len(hashes) <= 1 for hashes in by_seed.values()):
        return None
    seen = ", ".join(f"{r['checkpoint']}: {r.get('offered', r['facts'])} facts ({key(r)[:6]})" for r in rows
                     if len(by_seed[split_seed(r["checkpoint"])[1]]) > 1)
    text = f"the arms learned from different train facts ({seen})"
    if not allow_unmatched:
        raise PolyFactError(f"{text}; give every arm the same facts with --set budget.facts=N, or compare them "
                            "anyway with --set budget.allow_unmatched=true")
    return text
