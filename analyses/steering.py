"""Steering recall across languages, judged on the parallel facts against size-matched controls.

For one checkpoint, a source language (the one the model knows facts in: English) and a target
language, the units are built from the run's texts and results: ``lape`` (the target's LAPE neurons,
set to the target's mean activation, zeroed or scaled), ``lahis`` (the target's top LAHIS heads,
scaled), ``diffmean`` (the mean residual of the target minus the source, added with strength α)
or ``shared`` (that direction projected out of the residual stream). Layer × strength is chosen on
**train** facts (the target's accuracy gain minus the English accuracy lost) and reported on **test**
facts, never tuned there. The reported effect is judged by the toolkit's one rule
(:mod:`polyfact.analyses.verdicts`): per seed (a draw of the random control and of the text sample
the units are built from) and per test fact, the steered minus the control-steered outcome, with
facts and seeds as noise. The steered base is also a training-free arm of the seed table
(``steer-<units>``: its test-fact outcomes in every language at each seed). Measures: the target's accuracy (MCQ), Total Consistency over the
training languages (the target steered), the right-fact-wrong-language rate of greedy generation,
and the harm: English accuracy and next-token loss on the other languages' text under the same
intervention."""

from __future__ import annotations

import math
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from polyfact.analyses import verdicts as V
from polyfact.analyses.config import SteerConfig
from polyfact.core.checkpoints import load_checkpoint
from polyfact.core.errors import PolyFactError
from polyfact.core.layout import layout
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.interp import steering as S
from polyfact.interp.sites import adapter_for

UNITS = ("lape", "lahis", "diffmean", "shared")


def _rows(run_dir: Path, split: str, langs: list[str], max_facts: int | None, seed: int) -> list[dict]:
    from polyfact.training.evaluation.data import RunData, sample_facts

    return sample_facts(RunData(run_dir).require(split, langs), max_facts, seed)


def _accuracy(model, tok, rows: list[dict], normalization: str = "byte", prompt: str = "cue") -> dict[str, dict[str, float]]:
    """Per fact and language: 1.0 when the MCQ answer is right."""
    from polyfact.training.evaluation.scoring import mcq_records

    out: dict[str, dict[str, float]] = {}
    for r in mcq_records(model, tok, rows, normalization=normalization, prompt=prompt):
        out.setdefault(r["fact_id"], {})[r["lang"]] = float(r["correct"])
    return out


def _wrong_language(model, tok, rows: list[dict], by_fact: dict[str, dict[str, dict]]) -> dict[str, float]:
    """Per fact: 1.0 when greedy generation gives the fact's answer in another language than the
    prompt's (the right fact, the wrong language), 0.0 otherwise."""
    from polyfact.data.answers import match
    from polyfact.training.evaluation.scoring import generate_answers

    answers = generate_answers(model, tok, [r["prompt"] for r in rows], max_new_tokens=12)
    out = {}
    for r, (a,) in zip(rows, answers):
        own = match(a, r["object"], r.get("aliases") or (), lang=r["lang"], mode="lenient")
        other = any(match(a, x["object"], (), lang=lang, mode="lenient")
                    for lang, x in by_fact.get(r["fact_id"], {}).items() if lang != r["lang"] and
                    x["object"] != r["object"])
        out[r["fact_id"]] = float(other and not own)
    return out


class Units:
    """What one steering kind acts on, for one text sample (``seed``): built once, then applied
    with any layer set and strength, or replaced by its size-matched random control."""

    def __init__(self, run_dir: Path, ckpt: str, model, tok, cfg: SteerConfig, source: str, target: str, seed: int):
        self.cfg, self.model, self.seed = cfg, model, seed
        self.adapter = adapter_for(model)
        self.shape = self.adapter.shape(model)
        texts = _texts(run_dir, [source, target], cfg.max_texts, seed)
        if cfg.units in ("diffmean", "shared"):
            from polyfact.interp.representations import layer_states

            mean = {lang: layer_states(model, tok, texts[lang]).mean.mean(0) for lang in (source, target)}
            self.vectors = {layer: (mean[target][layer] - mean[source][layer]) for layer in range(self.shape.n_layers)}
        elif cfg.units == "lape":
            from polyfact.interp import CollectConfig, collect_stats
            from polyfact.interp.lape import lape

            stats = collect_stats(model, tok, _texts(run_dir, None, cfg.max_texts, seed),
                                  CollectConfig(backend="torch", seq_len=64, progress=False))
            probs = stats.act_prob()
            units = lape(probs, stats.languages, 0.01, "polyfact").units(target)
            self.neurons: dict[int, list[int]] = {}
            for layer, idx in units:
                self.neurons.setdefault(int(layer), []).append(int(idx))
            t = stats.languages.index(target)
            self.means = {layer: stats.act_sum[t, layer] / max(int(stats.tokens[t]), 1) for layer in self.neurons}
            self.rates = probs.mean(-1)  # [layers, d_mlp]: over languages
            if not self.neurons:
                raise PolyFactError(f"no LAPE neurons of {target} in {ckpt}; steer another unit kind")
        else:
            from polyfact.interp import CollectConfig, head_importance

            imp = head_importance(model, tok, _texts(run_dir, None, cfg.max_texts, seed), "gradient",
                                  CollectConfig(backend="torch", seq_len=64, progress=False))
            self.heads = [tuple(h) for h in imp.top(0.05)[target]]

    def context(self, layers: list[int], strength: float, control: bool = False):
        """The intervention at ``layers`` (unit kinds without layers use all of theirs) and
        ``strength``; ``control``: the size-matched random control of this seed instead."""
        c, m = self.cfg, self.model
        if c.units in ("diffmean", "shared"):
            vec = {k: v for k, v in self.vectors.items() if k in layers}
            if control:
                vec = S.random_like(vec, 10_000 + self.seed)
            return S.steer(m, "diffmean" if c.units == "diffmean" else "project", vectors=vec, strength=strength,
                           adapter=self.adapter)
        if c.units == "lape":
            neurons = {k: v for k, v in self.neurons.items() if k in layers} or self.neurons
            if control:
                neurons = S.random_neurons(neurons, self.rates, 10_000 + self.seed)
            mode = c.neuron_mode
            values = None
            if mode == "mean":
                values = {}
                for layer, idx in neurons.items():
                    v = torch.zeros(self.shape.d_mlp)
                    v[idx] = self.means.get(layer, torch.zeros(self.shape.d_mlp))[idx] * strength
                    values[layer] = v
            return S.steer(m, "neurons", neurons=neurons, mode=mode, values=values, strength=strength,
                           adapter=self.adapter)
        heads = [h for h in self.heads if h[0] in layers] or self.heads
        if control:
            heads = S.random_heads(heads, self.shape.n_layers, self.shape.n_heads, 10_000 + self.seed)
        return S.steer(m, "heads", heads=heads, strength=strength, adapter=self.adapter)


def _texts(run_dir: Path, langs: list[str] | None, n: int, seed: int) -> dict[str, list[str]]:
    """A seeded sample of ``n`` texts per language of the run's statements (the units' text sample)."""
    from polyfact.analyses.texts import text_source

    src = text_source(run_dir, "statements").texts
    pick = {lang: v for lang, v in src.items() if langs is None or lang in langs}
    missing = [x for x in (langs or []) if x not in pick]
    if missing:
        raise PolyFactError(f"the run has no text in {', '.join(missing)}; steer between languages it has "
                            f"({', '.join(sorted(src))})")
    rng = random.Random(f"{seed}|steer-texts")
    return {lang: rng.sample(v, min(n, len(v))) for lang, v in pick.items()}


def steering_analysis(run_dir: str | Path, ckpt: str, cfg: SteerConfig | None = None, seed: int = 0,
                      force: bool = False, progress: Callable[[str], None] | None = None,
                      normalization: str = "byte", prompt: str = "cue", arm: bool = True) -> dict[str, Any]:
    """Choose layer × strength on train facts, then judge it on test facts against the random
    control over ``cfg.seeds`` draws; writes ``results/steer/<ckpt>-<units>-<source>-<target>.json``.
    ``normalization``, ``prompt``: the MCQ question of the run's evaluation (the arm is compared with
    its records); ``arm``: also score the steered base as a seed-table arm (the run's evaluation must
    be MCQ on the test split for the two to be comparable)."""
    from polyfact.data.dataset import load_meta
    from polyfact.interp.interventions import lm_loss

    cfg = cfg or SteerConfig()
    run_dir = Path(run_dir)
    meta = load_meta(layout(run_dir).data)
    training = list(meta["training_langs"])
    target = cfg.target or _weakest(run_dir, training, cfg.source)
    for lang, what in ((cfg.source, "source"), (target, "target")):
        if lang not in meta["languages"]:
            raise PolyFactError(f"--{what} {lang}: the run's dataset has no {lang}; use one of {', '.join(meta['languages'])}")
    if target == cfg.source:
        raise PolyFactError("--source and --target are the same language; steer between two")
    name = f"{ckpt}-{cfg.units}-{cfg.source}-{target}"
    from polyfact.data.dataset import data_fingerprint

    prov = provenance(run_dir, ckpt, analysis="steer", data_fingerprint=data_fingerprint(layout(run_dir).data),
                      config={**asdict(cfg), "target": target, "normalization": normalization, "prompt": prompt,
                              "arm": arm}, seed=seed)
    path = layout(run_dir).result("steer", name)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    model, tok = load_checkpoint(ckpt, run_dir)
    model.eval()
    n_layers = adapter_for(model).shape(model).n_layers
    layer_sets = [[int(x) for x in s] for s in (cfg.layers or [[k] for k in range(n_layers)])]
    for s in layer_sets:
        S._check_layers(s, n_layers)
    strengths = [S._check_strength(x) for x in cfg.strengths]
    train = _rows(run_dir, "train", [cfg.source, target], cfg.max_facts, seed)
    test = _rows(run_dir, "test", training, cfg.max_facts, seed)
    say = progress or (lambda m: None)

    def gain(rows, ctx) -> tuple[float, float]:
        with ctx:
            acc = _accuracy(model, tok, rows, normalization, prompt)
        tgt = np.mean([v[target] for v in acc.values() if target in v])
        eng = np.mean([v[cfg.source] for v in acc.values() if cfg.source in v])
        return float(tgt), float(eng)

    base_t, base_e = gain(train, _nothing())
    units0 = Units(run_dir, ckpt, model, tok, cfg, cfg.source, target, seed)
    sweep = []
    for layers in layer_sets:
        for strength in strengths:
            t, e = gain(train, units0.context(layers, strength))
            sweep.append({"layers": layers, "strength": strength, "target_gain": t - base_t,
                          "english_change": e - base_e, "score": (t - base_t) + min(0.0, e - base_e)})
    best = max(sweep, key=lambda r: r["score"])
    say(f"chosen on train facts: layers {best['layers']}, strength {best['strength']:+g} "
        f"(target {best['target_gain']:+.3f}, English {best['english_change']:+.3f})")
    by_fact: dict[str, dict[str, dict]] = {}
    for r in test:
        by_fact.setdefault(r["fact_id"], {})[r["lang"]] = r
    tgt_rows = [r for r in test if r["lang"] == target]
    eng_rows = [r for r in test if r["lang"] == cfg.source]
    base_acc = _accuracy(model, tok, test, normalization, prompt)
    other_text = _texts(run_dir, [x for x in training if x not in (cfg.source, target)][:3] or None, 40, seed)
    base_loss = lm_loss(model, tok, other_text)
    heldout = [x for x in meta.get("heldout_langs") or [] if x not in training]
    arm_rows = _rows(run_dir, "test", training + heldout, cfg.arm_facts, seed) if arm and cfg.arm_facts != 0 else []
    per_seed, arm_outcomes = [], []
    for s in range(cfg.seeds):
        units = units0 if s == 0 else Units(run_dir, ckpt, model, tok, cfg, cfg.source, target, seed + s)
        arms = {}
        for kind, control in (("steered", False), ("control", True)):
            ctx = units.context(best["layers"], best["strength"], control)
            with ctx:
                acc = _accuracy(model, tok, tgt_rows + eng_rows, normalization, prompt)
                wrong = _wrong_language(model, tok, tgt_rows, by_fact) if cfg.generate else {}
                loss = lm_loss(model, tok, other_text)
                if kind == "steered" and arm_rows:  # the steered model as an arm: every language, test facts
                    arm_outcomes.append(_outcomes(_accuracy(model, tok, arm_rows, normalization, prompt), training, heldout))
            arms[kind] = {"acc": acc, "wrong": wrong, "loss": float(np.mean(list(loss.values())))}
        per_seed.append(arms)
        say(f"seed {s}: steered and control measured")
    facts = sorted(f for f in by_fact if all(target in a[k]["acc"].get(f, {}) for a in per_seed for k in a))

    def table(fn) -> np.ndarray:
        return np.array([[fn(a["steered"], f) - fn(a["control"], f) for f in facts] for a in per_seed])

    def tc(arm, f):  # Total Consistency of the fact over the training languages, the target steered
        return float(arm["acc"][f][target] > 0 and all(base_acc[f].get(x, 0.0) > 0 for x in training if x != target))

    tests = [V.Test("target_accuracy", "steered", "control", +1, V.crossed(table(lambda a, f: a["acc"][f][target]))),
             V.Test("total_consistency", "steered", "control", +1, V.crossed(table(tc))),
             V.Test("english_accuracy", "steered", "control", +1,
                    V.crossed(table(lambda a, f: a["acc"].get(f, {}).get(cfg.source, 0.0)))),
             V.Test("other_language_loss", "steered", "control", -1,
                    V.over_seeds([a["steered"]["loss"] - a["control"]["loss"] for a in per_seed]))]
    if cfg.generate:
        tests.append(V.Test("right_fact_wrong_language", "steered", "control", -1,
                            V.crossed(table(lambda a, f: a["wrong"].get(f, 0.0)))))
    V.decide(tests, "holm")
    steered_mean = lambda key: float(np.mean([np.mean([a["steered"]["acc"][f][key] for f in facts if key in a["steered"]["acc"][f]]) for a in per_seed]))  # noqa: E731
    payload = {"checkpoint": ckpt, "units": cfg.units, "source": cfg.source, "target": target,
               "chosen": best, "sweep": sweep, "seeds": cfg.seeds, "test_facts": len(facts),
               "base": {"target_accuracy": float(np.mean([base_acc[f][target] for f in facts])),
                        "english_accuracy": float(np.mean([base_acc[f].get(cfg.source, 0.0) for f in facts])),
                        "other_language_loss": float(np.mean(list(base_loss.values())))},
               "steered": {"target_accuracy": steered_mean(target), "english_accuracy": steered_mean(cfg.source)},
               "tests": [t.to_dict() for t in tests], "arm": arm_outcomes or None,
               "verdict": _verdict(tests), "rule": "analyses.verdicts (Holm over the tests; seeds: control draws and "
                                                    "text samples; facts: test facts)"}
    return write_result(path, payload, prov)


def _outcomes(acc: dict[str, dict[str, float]], training: list[str], heldout: list[str]) -> dict[str, dict[str, float]]:
    """The seed table's per-fact behavioral outcomes of one steered evaluation."""
    from polyfact.analyses.seeds import outcomes

    return outcomes([{"fact_id": f, "lang": lang, "correct": v} for f, by in acc.items() for lang, v in by.items()],
                    training, heldout)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _weakest(run_dir: Path, training: list[str], source: str) -> str:
    """The training language the base answers worst (the default target)."""
    from polyfact.core.results import Recall

    res = Recall.load(layout(run_dir).result("recall", "base"))
    acc = res.accuracy if res is not None else {}
    cands = [x for x in training if x != source]
    return min(cands, key=lambda x: acc.get(x, math.inf)) if acc else cands[-1]


def _verdict(tests: list[V.Test]) -> str:
    """One sentence from the rule's outcomes (the target's accuracy is the steering's claim)."""
    t = tests[0]
    if t.outcome == "claimed":
        word = "raises"
    elif t.outcome == "opposite":
        word = "lowers"
    else:
        return (f"not resolved: the steered − control change in the target's accuracy {t.estimate.difference:+.3f} "
                f"(detectable: {'nothing at these seeds' if not math.isfinite(t.mde) else f'|δ| ≥ {t.mde:.3g}'})")
    harm = [x.measure for x in tests[2:] if x.outcome == "opposite"]
    return f"{word} the target's accuracy beyond its random control ({t.estimate.difference:+.3f})" + (
        f"; harm: {', '.join(harm)}" if harm else "; no harm resolved")
