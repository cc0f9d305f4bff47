"""What makes the arms of a run comparable: the same train facts for every method
(:func:`budget_facts`), a record of what each arm spent (:class:`Spend`: facts, examples, optimizer
steps, forward and generated tokens, seconds), and a learning curve on fixed probe facts of the
arm's own budget and fixed test facts (:class:`CurveCallback`), so "no effect" can be told apart
from "did not train"."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_json, read_cached
from polyfact.training.config import BudgetConfig


def fact_pool(rows: list[dict]) -> list[str]:
    """The facts every arm may learn from (sorted): asked in every language of ``rows`` with the same
    option entities in each. One rule for all arms, so none drops a fact for a reason of its own: the
    study keeps facts of all 12 languages (CM-Align's port, GRPO), DCO aligns options by identity."""
    langs = {r["lang"] for r in rows}
    per_fact: dict[str, dict[str, tuple]] = {}
    for r in rows:
        per_fact.setdefault(r["fact_id"], {})[r["lang"]] = tuple(sorted(r.get("option_ids") or ()))
    return sorted(f for f, by_lang in per_fact.items()
                  if set(by_lang) == langs and len(langs) >= 2 and len(set(by_lang.values())) == 1)


def budget_facts(rows: list[dict], budget: BudgetConfig | None, max_facts: int | None, seed: int) -> list[str]:
    """The train facts an arm is offered, in the order it sees them, from :func:`fact_pool`.

    With ``budget.facts`` = N: N facts drawn with the seed, in a seeded order — the same subset and
    order for every arm of a run. Without: the method's own ``max_facts`` (a seeded subset), in id order."""
    pool = fact_pool(rows)
    if budget is None or budget.facts is None:
        if max_facts and len(pool) > max_facts:
            return sorted(random.Random(f"{seed}|sample").sample(pool, max_facts))
        return pool
    if budget.facts > len(pool):
        raise PolyFactError(f"budget.facts={budget.facts} is more than the {len(pool)} train facts asked in every "
                            f"training language with the same options; lower it (--set budget.facts={len(pool)})")
    return random.Random(f"{seed}|budget").sample(pool, budget.facts)


def control_of(method: str) -> str | None:
    """``"positive"`` / ``"negative"`` for a registered control arm (``sft-oracle``, ``grpo-placebo``), else None."""
    from polyfact.training.methods import METHODS

    return METHODS.get(method, "method").get("control") if method in METHODS else None


def arm_budget(method: str, budget: BudgetConfig, trajectory_points: int) -> BudgetConfig:
    """The budget ``method`` trains under: the run's, with the trajectory's kept states, and the
    oracle's test share only for a positive control (0 for every other arm, so changing it
    retrains the oracle alone)."""
    share = budget.oracle_test_share if control_of(method) == "positive" else 0.0
    return dataclasses.replace(budget, trajectory_points=trajectory_points, oracle_test_share=share)


def oracle_share(method: str, budget: BudgetConfig | None) -> float:
    """The share of test facts ``method`` trains on (a positive control's; 0 for every other arm)."""
    return budget.oracle_test_share if budget is not None and control_of(method) == "positive" else 0.0


def oracle_facts(test_rows: list[dict], share: float, seed: int) -> list[str]:
    """The test facts a positive control also trains on: a seeded ``share`` of them, in a seeded order."""
    pool = sorted({r["fact_id"] for r in test_rows})
    return random.Random(f"{seed}|oracle").sample(pool, round(share * len(pool)))


def check_budget(langs: list[str] | None, budget: BudgetConfig | None):
    """A ``begin(check=...)`` that refuses a ``budget.facts`` larger than the pool before anything is
    written."""
    def check(data: Any) -> None:
        budget_facts(data.require("train", langs or data.training_langs), budget, None, 0)
    return check


def rows_of(rows: list[dict], facts: list[str]) -> list[dict]:
    """The rows of ``facts``, fact by fact in their order (each fact's languages together)."""
    by_fact: dict[str, list[dict]] = {}
    for r in rows:
        by_fact.setdefault(r["fact_id"], []).append(r)
    return [r for f in facts for r in by_fact.get(f, [])]


def fact_groups(rows: list[dict], facts: list[str]) -> list[dict[str, dict]]:
    """``{lang: row}`` of each of ``facts``, in their order (the unit DCO and CM-Align build from)."""
    groups: dict[str, dict[str, dict]] = {}
    for r in rows_of(rows, facts):
        groups.setdefault(r["fact_id"], {})[r["lang"]] = r
    return list(groups.values())


def facts_hash(facts: list[str], ordered: bool = False) -> str:
    """A short hash of fact ids: of their set (arms that learned the same facts share it), or with
    ``ordered`` of their sequence (the order an arm saw them in)."""
    return hashlib.sha256("\n".join(facts if ordered else sorted(facts)).encode()).hexdigest()[:16]


COUNTS = ("examples", "forward_tokens", "generated_tokens")


@dataclass
class Spend:
    """What an arm spent; ``record()`` is the manifest's ``budget`` entry. The counts are saved with
    every resumable state (:class:`SpendCallback`) and restored on resume, so an interrupted arm
    reports what an uninterrupted one does (wall seconds add up over the attempts)."""

    facts: list[str]  # offered: the budget's draw, in its order
    trained: list[str] | None = None  # learned from, in training order, after every drop (None: as offered)
    examples: int = 0  # fact × language training examples (a DCO instance counts its two languages)
    forward_tokens: int = 0  # tokens through the policy in training forwards
    generated_tokens: int = 0  # tokens sampled by the policy (rollouts, candidates)
    steps: int = 0
    earlier_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def record(self) -> dict[str, Any]:
        """The manifest's ``budget``: the facts trained on (count, set hash, hash of the training
        order), what was offered (count, set hash) and what the arm spent."""
        trained = list(dict.fromkeys(self.trained if self.trained is not None else self.facts))
        return {"facts_hash": facts_hash(trained), "facts": len(trained),
                "order_hash": facts_hash(trained, ordered=True), "offered_hash": facts_hash(self.facts),
                "offered": len(set(self.facts)), "examples": self.examples, "steps": self.steps,
                "forward_tokens": self.forward_tokens, "generated_tokens": self.generated_tokens,
                "seconds": round(self.seconds(), 1)}

    def restore(self, state_dir: str | Path | None) -> "Spend":
        """Continue the counts saved with the resumable state ``state_dir`` (if any)."""
        saved = read_cached(Path(state_dir) / "spend.json") if state_dir else None
        if isinstance(saved, dict):
            for key in COUNTS:
                setattr(self, key, int(saved.get(key, 0)))
            self.earlier_seconds = float(saved.get("seconds", 0.0))
        return self


class SpendCallback(TrainerCallback):
    """Saves an arm's counts beside each resumable state the trainer writes."""

    def __init__(self, spend: Spend) -> None:
        self.spend = spend

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            atomic_write_json(folder / "spend.json", {**{k: getattr(self.spend, k) for k in COUNTS},
                                                      "seconds": self.spend.seconds()})


def curve_steps(total: int, points: int) -> list[int]:
    """``points`` evenly spaced optimizer steps from 0 to ``total``, both included."""
    return sorted({round(i * total / (points - 1)) for i in range(points)})


class CurveCallback(TrainerCallback):
    """Evaluates the model at evenly spaced steps of its training (start and end included), keeping
    each point in ``path`` as it is taken, so a resumed run keeps the points before the kill."""

    def __init__(self, evaluate: Callable[[Any], dict[str, Any]], points: int, path: Path, extra: int = 0) -> None:
        """``extra``: also evaluate at the steps where ``extra`` trajectory states are kept."""
        self.evaluate, self.points, self.path, self.extra = evaluate, points, path, extra
        saved = read_cached(path)
        self.curve: list[dict[str, Any]] = saved if isinstance(saved, list) else []
        self.steps: list[int] = []

    def _at(self, step: int, model: Any) -> None:
        if any(p["step"] == step for p in self.curve):
            return
        was_training = model.training
        model.eval()
        try:
            self.curve.append({"step": step, **self.evaluate(model)})
        finally:
            model.train(was_training)
        self.curve.sort(key=lambda p: p["step"])
        atomic_write_json(self.path, self.curve)

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: D102
        self.steps = sorted(set(curve_steps(state.max_steps, self.points))
                            | set(trajectory_steps(state.max_steps, self.extra)))
        if state.global_step == 0:
            self._at(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        if state.global_step in self.steps:
            self._at(state.global_step, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        self._at(state.global_step, model)


def _by_fact(records: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        out.setdefault(r["fact_id"], {})[r["lang"]] = r
    return out


def consistency(records: list[dict], langs: list[str]) -> dict[str, float]:
    """Mean accuracy over languages, Total Consistency (facts correct in every language of
    ``langs``) and answer agreement (language pairs naming the same option entity) of MCQ records."""
    from itertools import combinations

    acc: dict[str, list[bool]] = {}
    for r in records:
        acc.setdefault(r["lang"], []).append(bool(r["correct"]))
    per_lang = {lang: sum(v) / len(v) for lang, v in acc.items()}
    facts = [f for f in _by_fact(records).values() if all(lang in f for lang in langs)]
    tc = sum(all(f[lang]["correct"] for lang in langs) for f in facts) / len(facts) if facts else float("nan")

    def entity(r: dict) -> str:
        ids = r.get("option_ids") or []
        return ids[r["pred_index"]] if len(ids) > r["pred_index"] >= 0 else f"#{r['pred_index']}"

    pairs = [entity(f[a]) == entity(f[b]) for f in facts for a, b in combinations(langs, 2)]
    return {"accuracy": per_lang, "mean_accuracy": sum(per_lang.values()) / max(len(per_lang), 1),
            "total_consistency": tc, "agreement": sum(pairs) / len(pairs) if pairs else float("nan")}


def curve_evaluator(tokenizer, probe_rows: list[dict], test_rows: list[dict], langs: list[str], *,
                    normalization: str, prompt: str, grpo: Any = None) -> Callable[[Any], dict[str, Any]]:
    """What one curve point measures: MCQ accuracy, Total Consistency and agreement on the probe
    facts (the arm's own) and on the test facts; with a GRPO config also the greedy reward and
    the all-correct rate of rollouts on the probe facts."""
    import torch

    from polyfact.data.build import rollout_prompt
    from polyfact.training.rewards import rollout_reward
    from polyfact.training.evaluation.scoring import generate_answers, mcq_records

    def evaluate(model: Any) -> dict[str, Any]:
        with torch.no_grad():
            out = {"probe": consistency(mcq_records(model, tokenizer, probe_rows, normalization, prompt=prompt), langs),
                   "test": consistency(mcq_records(model, tokenizer, test_rows, normalization, prompt=prompt), langs)}
            if grpo is not None:
                facts = _by_fact(probe_rows)
                items = [(f, lang, row) for f, rows in facts.items() for lang, row in rows.items()]
                answers = generate_answers(model, tokenizer, [rollout_prompt(r, grpo.prompt) for _, _, r in items],
                                           max_new_tokens=grpo.max_new_tokens)
                said: dict[str, dict[str, str]] = {}
                for (f, lang, _), (text,) in zip(items, answers):
                    said.setdefault(f, {})[lang] = text
                res = [rollout_reward(said[f], rows, grpo.reward) for f, rows in facts.items()]
                out["probe"]["greedy_reward"] = sum(r["total"] for r in res) / len(res)
                out["probe"]["all_correct"] = sum(r["k"] == len(facts[f]) for r, f in zip(res, facts)) / len(res)
        return out

    return evaluate


def curve_rows(data: Any, facts: list[str], langs: list[str], budget: BudgetConfig | None, seed: int
               ) -> tuple[list[dict], list[dict]]:
    """The fixed probe rows (the first ``probe_facts`` of the arm's facts) and test rows (a seeded
    sample of ``test_facts`` test facts) of a learning curve."""
    b = budget or BudgetConfig()
    probe = rows_of(data.rows("train", langs), facts[: b.probe_facts])
    test_rows = data.rows("test", langs)
    pool = sorted({r["fact_id"] for r in test_rows})
    chosen = random.Random(f"{seed}|curve-test").sample(pool, min(b.test_facts, len(pool)))
    return probe, rows_of(test_rows, sorted(chosen))


def objective_change(curve: list[dict[str, Any]], measure: str) -> dict[str, Any] | None:
    """First and last value of an arm's own objective on its probe facts, and whether it improved."""
    values = [p["probe"].get(measure) for p in curve if isinstance(p.get("probe"), dict)]
    values = [v for v in values if isinstance(v, (int, float))]
    if len(values) < 2:
        return None
    return {"measure": measure, "first": values[0], "last": values[-1], "improved": values[-1] > values[0]}


def save_point(job: Any, step: int, model: Any) -> Path:
    """Keep ``model`` at ``step`` of ``job``'s training as checkpoint ``<arm>/step-<n>`` (a LoRA model:
    its adapter only), with a manifest naming the arm, its parent and the step."""
    from polyfact.core.checkpoints import MANIFEST, content_record, package_versions
    from polyfact.core.io import atomic_dir, fingerprint
    from polyfact.core.layout import point_id
    from polyfact.training.config import fingerprint_view

    pid = point_id(job.ckpt_id, step)
    folder = job.run.checkpoint(pid)
    adapter = hasattr(model, "peft_config")
    with atomic_dir(folder, force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        job.tokenizer.save_pretrained(tmp)
        manifest = {"id": pid, "parent": job.parent, "method": job.method, "family": job.family,
                    "data_fingerprint": job.data.fingerprint, "config": fingerprint_view(job.cfg), "seed": job.seed,
                    "point": {"of": job.ckpt_id, "step": step, "of_fingerprint": job.fingerprint},
                    "adapter": adapter, "fingerprint": fingerprint([job.fingerprint, step]),
                    "files": content_record(tmp), "versions": package_versions()}
        atomic_write_json(tmp / MANIFEST, manifest)
    return folder


class TrajectoryCallback(TrainerCallback):
    """Keeps ``points`` evenly spaced intermediate states of a training run as checkpoints (the
    start is the parent, the end the arm itself); states kept by an earlier training of the arm are
    removed once the new one is known to be possible."""

    def __init__(self, job: Any, points: int) -> None:
        self.job, self.points = job, points
        self.steps: list[int] = []

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        total = state.max_steps
        if self.points > max(total - 1, 0):
            raise PolyFactError(f"trajectory.points={self.points} is more than the {max(total - 1, 0)} intermediate "
                                f"steps of {self.job.ckpt_id} ({total} optimizer steps); lower it or train longer")
        self.steps = trajectory_steps(total, self.points)
        from polyfact.core.checkpoints import list_points, read_manifest

        for _, pid in list_points(self.job.run.root, self.job.ckpt_id):  # kept by an earlier training of the arm
            if (read_manifest(self.job.run.root, pid).get("point") or {}).get("of_fingerprint") != self.job.fingerprint:
                shutil.rmtree(self.job.run.checkpoint(pid), ignore_errors=True)

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        from polyfact.core.checkpoints import checkpoint_problem
        from polyfact.core.layout import point_id

        step = state.global_step
        if step in self.steps and checkpoint_problem(self.job.run.root, point_id(self.job.ckpt_id, step)):
            save_point(self.job, step, model)


def trajectory_steps(total: int, points: int) -> list[int]:
    """The optimizer steps at which ``points`` intermediate states are kept."""
    return curve_steps(total, points + 2)[1:-1] if points else []
