"""Terminal tables (rich) for the command line's summaries."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from polyfact.core.results import KlarStudy, Neurons, Recall

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for 22-language matrices
    console = Console(width=200)


def _f(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def matrix_table(title: str, m: dict[str, dict[str, float]], order: list[str] | None = None) -> Table:
    langs = [x for x in (order or list(m)) if x in m]
    t = Table(title=title, show_lines=False)
    t.add_column("")
    for lang in langs:
        t.add_column(lang, justify="right")
    for a in langs:
        t.add_row(a, *[_f(m[a].get(b)) for b in langs])
    return t


def print_recall(results: dict[str, dict], paired: dict[str, dict]) -> None:
    """Accuracy per language per checkpoint, Total Consistency with its interval, paired tests,
    and the consistency matrices of the first checkpoint."""
    results = {c: Recall(r) for c, r in results.items()}
    first = next(iter(results.values()))
    t = Table(title="accuracy per language (rows) and checkpoint (columns)")
    t.add_column("language")
    for ckpt in results:
        t.add_column(ckpt, justify="right")
    for lang in first.languages:
        t.add_row(lang, *[_f(res.accuracy.get(lang)) for res in results.values()])
    t.add_row("mean", *[_f(res.mean_accuracy) for res in results.values()])
    for group in ("high", "low", "heldout"):
        if group in first.accuracy_by_group:
            t.add_row(f"{group}-resource" if group != "heldout" else "held-out",
                      *[_f(res.accuracy_by_group.get(group)) for res in results.values()])
    t.add_row("Total Consistency", *[_f(res.total_consistency) for res in results.values()])
    for subset in ("training", "heldout"):
        if any(subset in res.consistency_subsets for res in results.values()):
            t.add_row(f"  … {subset} langs", *[_f(res.consistency(subset)) for res in results.values()])
    t.add_row("TC 95% CI", *[
        "[{}, {}]".format(*(_f(x) for x in res.total_consistency_ci))
        if res.total_consistency_ci and not math.isnan(res.total_consistency) else "-"
        for res in results.values()])
    console.print(t)
    if paired:
        t = Table(title="paired tests against the first checkpoint")
        for c in ("checkpoint", "Δ mean acc", "95% CI", "p (bootstrap)", "McNemar p", "Δ total cons.", "p"):
            t.add_column(c, justify="right" if c != "checkpoint" else "left")
        for ckpt, p in paired.items():
            ma, tc = p["mean_accuracy"], p["total_consistency"]
            t.add_row(ckpt, f"{ma['difference']:+.3f}", f"[{ma['ci'][0]:+.3f}, {ma['ci'][1]:+.3f}]",
                      _f(ma["p_value"], 3), _f(p["mcnemar"]["p_value"], 3), f"{tc['difference']:+.3f}",
                      _f(tc["p_value"], 3))
        console.print(t)
    name = next(iter(results))
    agreement = first.metric("agreement_mean")
    console.print(f"consistency of {name}: Total Consistency {_f(first.total_consistency)}, "
                  f"COverlap mean {_f(first.metric('coverlap_mean'))}, agreement mean "
                  f"{'not computable' if agreement is None else _f(agreement)}"
                  + (f", RankC mean {_f(first.metric('rankc_mean'))}" if first.metric("rankc_mean") is not None else ""))
    for what, why in (first.metric("not_computable") or {}).items():
        console.print(f"{what}: not computable ({why})")
    langs = first.languages
    console.print(matrix_table(f"COverlap ({name})", first.metric("coverlap"), langs))
    for kind, title in (("agreement", "answer agreement"), ("rankc", "RankC")):
        if first.metric(kind) is not None:
            console.print(matrix_table(f"{title} ({name})", first.metric(kind), langs))


def print_neurons(res: dict) -> None:
    """Language-specific neurons per language (both LAPE variants, fixed and calibrated)."""
    langs = res["languages"]
    t = Table(title=f"language-specific neurons of {res['checkpoint']} "
                    f"({res['n_layers']} layers × {res['d_mlp']} neurons)")
    t.add_column("")
    for lang in langs:
        t.add_column(lang, justify="right")
    res = Neurons(res)
    for variant in res.variants:
        counts, calibrated = res.counts(variant), res.calibrated_counts(variant)
        t.add_row(f"{variant} (top_frac)", *[str(counts.get(lang, 0)) for lang in langs])
        t.add_row(f"{variant} (calibrated)", *[str(calibrated.get(lang, 0)) for lang in langs])
    t.add_row("tokens", *[str(res["tokens"].get(lang, 0)) for lang in langs])
    console.print(t)
    ent = res["entropy"]["mean"]
    console.print("mean normalized entropy per layer: " + " ".join(_f(x) for x in ent))


def print_heads(res: dict) -> None:
    """The study's top heads per language (raw importance) and the project's top-k by specificity."""
    study = res.get("study", {})
    t = Table(title=f"heads of {res['checkpoint']} ({res['method']}; layer.head) — text: {res.get('text_source', '?')}")
    t.add_column("language")
    t.add_column(f"top {study.get('top_frac', 0.02):.0%} (study, n = {study.get('n_top', '?')})")
    t.add_column(f"top-{res['k']} by specificity (project)")
    t.add_column("per layer (project)")
    for lang in res["languages"]:
        t.add_row(lang, " ".join(f"{a}.{b}" for a, b in study.get("top", {}).get(lang, [])),
                  " ".join(f"{a}.{b}" for a, b in res["top_k"][lang]), " ".join(map(str, res["layer_distribution"][lang])))
    console.print(t)
    console.print(f"mean pairwise overlap of top heads (study): {_f(study.get('mean_overlap_pct'), 1)} %; "
                  f"mean normalized entropy of head importance: {_f(res['entropy_mean'])}")


def _signed(x: float) -> str:
    return f"{x:+.2e}" if x and abs(x) < 0.01 else f"{x:+.3f}"


def _ci(c: dict) -> str:
    return f"{_signed(c['delta'])} [{_signed(c['ci'][0])}, {_signed(c['ci'][1])}] p={c['p_value']:.3f}"


def _me(c: dict | None) -> str:
    """Δ [measurement-error interval]."""
    if not c:
        return "-"
    return f"{_signed(c['delta'])} [{_signed(c['ci'][0])}, {_signed(c['ci'][1])}]"


def _p(p: float | None) -> str:
    return "-" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.3f}"


def print_routing(summary: dict) -> None:
    """Per checkpoint: changes against the reference with text-shard (measurement-error) intervals,
    the differential test, the study's head-overlap change, Δ Total Consistency."""
    t = Table(title=f"change against {summary['base']} — 95 % intervals over text shards (measurement error of one "
                    f"model; training noise: polyfact analyze seeds)")
    for c in ("checkpoint", "Δ neuron contrast κ", "Δ calibrated neurons", "Δ neuron entropy", "head contrast κ",
              "p differs by language (neurons/heads)", "Δ head overlap % (study)", "Δ Total Consistency"):
        t.add_column(c)
    for r in summary["rows"]:
        tc = r.get("total_consistency")
        d = r.get("differential_p") or {}
        t.add_row(r["checkpoint"], _me(r.get("neuron_contrast")), _me(r["neuron_count"]), _me(r["neuron_entropy"]),
                  _me(r.get("head_contrast")), f"{_p(d.get('neurons'))} / {_p(d.get('heads'))}",
                  _f(r.get("study_head_overlap_change"), 1),
                  f"{tc['difference']:+.3f} [{tc['ci'][0]:+.3f}, {tc['ci'][1]:+.3f}]" if tc else "-")
    console.print(t)


def seed_rows(seeds: dict, measures: list[str] | None = None) -> list[dict]:
    """One row per (method, measure) of the seed table, for printing."""
    out = []
    labels = seeds.get("labels", {})
    for m in measures or seeds.get("headline", []):
        for method, row in seeds.get("measures", {}).get(m, {}).items():
            t = row["test"]
            versus = "; ".join(f"vs {k}: {v['difference']:+.3g} (p {_p(v['p'])}, BH {_p(v['p_adjusted'])})"
                               for k, v in row.get("versus", {}).items())
            out.append({"method": method, "measure": labels.get(m, m), "change": _signed(t["difference"]),
                        "interval": "[{}, {}]".format(*(_signed(x) if not math.isnan(x) else "-" for x in t["ci"])),
                        "p (BH)": f"{_p(t['p'])} ({_p(t['p_adjusted'])})",
                        "exact p (BH)": f"{_p(t['exact_p'])} ({_p(t['exact_p_adjusted'])})",
                        "seeds": " ".join(_signed(v) for v in row["seeds"]), "versus": versus or "-",
                        "verdict": row["verdict"]})
    return out


SEED_COLUMNS = ("method", "measure", "change", "interval", "p (BH)", "exact p (BH)", "versus", "verdict")


def print_seeds(seeds: dict) -> None:
    """The seed-level table (per method and headline measure: its change against the base with the
    crossed test's interval, raw and Benjamini–Hochberg p, the exact test, the comparison arms, a
    verdict), then the claims and the controls."""
    if seeds.get("unmatched"):
        console.print(f"[bold]Unmatched arms:[/bold] {seeds['unmatched']}; the verdicts below compare unequal budgets")
    for d in seeds.get("drops", []):
        console.print(f"note: {d}")
    t = Table(title=f"method effects across training seeds (n = {seeds.get('n_seeds')}; facts and seeds as noise; "
                    f"BH across {seeds.get('n_tests', 0)} tests)")
    for c in SEED_COLUMNS:
        t.add_column(c)
    for r in seed_rows(seeds):
        t.add_row(*[r[c] for c in SEED_COLUMNS])
    console.print(t)
    console.print(seeds.get("note", ""))
    for name, c in seeds.get("correlations", {}).items():
        console.print(f"correlation {name} over seed-level points: r={_f(c['pearson'])} [{_f(c['ci'][0])}, "
                      f"{_f(c['ci'][1])}], ρ={_f(c['spearman'])}, n={c['n']}")
    print_claims(seeds)


def print_claims(seeds: dict) -> None:
    """The study's claims under the rule, and the controls."""
    ctl = seeds.get("controls") or {}
    if ctl:
        console.print(f"controls: {ctl.get('reason')}" + ("" if ctl.get("answers_claims") else
                                                            " — this run cannot answer the claims"))
    for c in seeds.get("claims", []):
        line = f"the study's claim — {c['text']}: [bold]{c['verdict']}[/bold]"
        if c.get("sentence"):
            line += f" ({c['sentence'].split(': ', 1)[-1]})"
        console.print(line)
    steer = {m: v for m, v in (seeds.get("context") or {}).items() if m.startswith("steer-") and v}
    for method, by in steer.items():
        console.print(f"beside the claims, the training-free arm {method} (the steered base): " + "; ".join(
            f"{seeds.get('labels', {}).get(m, m)} {v['difference']:+.3g}, {v['verdict']}" for m, v in by.items()))


def print_compare(res: dict) -> None:
    """Before/after measures of two checkpoints."""
    ch = res["change"]
    t = Table(title=f"{res['after']} against {res['before']} (95 % intervals over text shards: measurement error)")
    for c in ("measure", "change"):
        t.add_column(c)
    for section, key, label in (("neurons", "contrast", "neuron contrast change κ (−: less language-specific)"),
                                ("neurons", "count_total", "Δ language-specific neurons (calibrated, Tang)"),
                                ("neurons", "entropy_mean", "Δ mean neuron entropy"),
                                ("heads", "contrast", "head contrast change κ"),
                                ("heads", "entropy_mean", "Δ mean head entropy")):
        c = ch[section][key]
        t.add_row(label, _me({"delta": c["delta"][0], "ci": [c["ci"][0][0], c["ci"][1][0]]}))
    for unit, d in ch.get("differential", {}).items():
        t.add_row(f"change differs by language ({unit})", f"p = {_p(d['p_value'])} (floor {_p(d['p_floor'])})")
    study = ch.get("study", {})
    if study.get("neuron_counts"):
        t.add_row("Δ top-1 % neurons per language (study)",
                  " ".join(f"{k}={v['change']:+d}" for k, v in study["neuron_counts"].items()))
    if study.get("mean_pairwise_overlap_pct"):
        t.add_row("Δ mean pairwise head overlap % (study)", f"{study['mean_pairwise_overlap_pct']['change']:+.1f}")
    if study.get("head_jaccard"):
        t.add_row("top-head set Jaccard with before (study)",
                  " ".join(f"{k}={_f(v)}" for k, v in study["head_jaccard"].items()))
    console.print(t)


def print_ablation(res: dict) -> None:
    """Diagonal dominance of the deactivation matrices against their random controls."""
    t = Table(title=f"deactivation of {res['checkpoint']}: diagonal dominance (Δloss margin, share of rows)")
    for c in ("units", "margin", "share", "control margin", "control share"):
        t.add_column(c)
    for unit in ("neurons", "heads"):
        d, c = res[unit]["loss_dominance"], res[f"{unit}_control"]["loss_dominance"]
        t.add_row(unit, _f(d["margin"], 4), _f(d["share"]), _f(c["margin"], 4), _f(c["share"]))
    console.print(t)


def print_representations(res: dict) -> None:
    """Per layer: mean CKA and retrieval over all pairs, language-ID probe accuracy."""
    t = Table(title=f"representations of {res['checkpoint']} ({res['n_facts']} parallel facts)")
    for c in ("layer", "CKA (all pairs)", "retrieval P@1", "language-ID probe"):
        t.add_column(c, justify="right")
    for i in range(res["n_layers"]):
        t.add_row(str(i), _f(res["cka_all_pairs"][i]), _f(res["retrieval_all_pairs"][i]), _f(res["probe_accuracy"][i]))
    console.print(t)


def print_summary(summary: dict) -> None:
    """The run's closing tables: recall per checkpoint, then the seed-level verdicts."""
    t = Table(title="PolyFact run summary (specialization changes: text-shard interval = measurement error)")
    for c in ("checkpoint", "mean acc.", "English", "high", "low", "held-out", "TC (all)", "TC (training)",
              "neuron contrast κ", "Δ head overlap % (study)"):
        t.add_column(c, justify="right" if c != "checkpoint" else "left")
    for r in summary["rows"]:
        g = r.get("accuracy_by_group", {})
        t.add_row(r["checkpoint"], _f(r["mean_accuracy"]), _f(r.get("en")), _f(g.get("high")), _f(g.get("low")),
                  _f(g.get("heldout")), _f(r["total_consistency"]), _f(r.get("total_consistency_training")),
                  _me(r.get("delta_neuron_contrast")), _f(r.get("study_head_overlap_change"), 1))
    console.print(t)
    arms = [r for r in summary["rows"] if r.get("budget")]
    if arms:
        t = Table(title="what each arm learned from, and whether its own objective improved (learning curve)")
        for c in ("checkpoint", "facts", "facts hash", "examples", "steps", "forward tokens", "generated tokens",
                  "seconds", "objective", "first → last", "improved"):
            t.add_column(c, justify="left" if c in ("checkpoint", "facts hash", "objective") else "right")
        for r in arms:
            b, o = r["budget"], r.get("objective") or {}
            t.add_row(r["checkpoint"], str(b["facts"]), b["facts_hash"][:8], str(b["examples"]), str(b["steps"]),
                      str(b["forward_tokens"]), str(b["generated_tokens"]), _f(b.get("seconds"), 0), o.get("measure", "-"),
                      f"{_f(o.get('first'), 3)} → {_f(o.get('last'), 3)}", "yes" if o.get("improved") else "no")
        console.print(t)
    seeds = summary.get("seeds")
    if seeds:
        print_seeds(seeds)
    timings = summary.get("timings", {})
    if timings:
        console.print("stage times: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
                      + f" — total {summary.get('total_seconds', sum(timings.values())):.0f} s")


def print_dataset_meta(meta: dict, out: Any) -> None:
    """What ``polyfact data build|import`` wrote."""
    n_facts = sum(meta["n_facts"].values())
    n_rows = sum(meta["n_rows"].values())
    print(f"wrote {out}: {n_facts} facts, {n_rows} rows, {len(meta['languages'])} languages, "
          f"{len(meta['relations'])} relations")
    print("facts per split: " + ", ".join(f"{k} {meta['n_facts'][k]}" for k in ("train", "validation", "test")))
    if meta["dropped"]:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in meta["dropped"].items()))
    print(f"fingerprint: {meta['fingerprint']}")


def print_dataset(path: Any, s: dict) -> None:
    """``polyfact data show``: rows per split, language and relation."""
    from polyfact.data.languages import LANGUAGES, order_langs
    from polyfact.data.relations import RELATIONS

    meta = s["meta"]
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


def print_manifest(manifest: dict | None, ckpt: str) -> None:
    """A trained checkpoint: method, parent, and the recall checks its manifest records."""
    if manifest is None:
        print(f"checkpoint {ckpt} is up to date (same inputs and settings; --force retrains it)")
        return
    m = manifest.get("metrics", {})
    print(f"checkpoint {manifest['id']} ({manifest['method']}, from {manifest.get('parent') or 'scratch'}, "
          f"{manifest['family']})")
    for key in ("train_recall_before", "train_recall", "test_recall"):
        rec = m.get(key)
        if rec:
            acc = " ".join(f"{k}={v:.2f}" for k, v in rec["accuracy"].items())
            gap = f"  en-vs-rest gap {rec['en_gap']:+.3f}" if "en_gap" in rec else ""
            print(f"{key} ({rec['mode']}, {rec['n_items']} items): {acc}{gap}")


def print_checkpoints(rows: list[tuple[str, dict]]) -> None:
    """``polyfact checkpoints list``."""
    for c, m in rows:
        print(f"{c}\t{m.get('method')}\tfrom {m.get('parent') or '-'}\t{m.get('source', 'trained here')}")


def print_paper(res: dict) -> None:
    """What ``polyfact paper`` wrote, what it skipped and what recomputation found."""
    print(f"wrote {len(res['figures'])} figures and {len(res['tables'])} tables to {res['out']} "
          f"(open {res['out']}/index.html)")
    for line in res["skipped"]:
        print(f"skipped: {line}")
    for line in res["missing"]:
        print(f"incomplete: {line}")
    for line in res["notes"]:
        print(f"note: {line}")
    print(f"recomputed {res['checked']} released values: {len(res['disagreements'])} disagreement(s) "
          f"(see {res['out']}/disagreements.md)")


def print_curves(curves: dict) -> None:
    """Each arm's learning curve at its first and last point, and whether its objective improved."""
    t = Table(title="learning curves (probe: the arm's own train facts; test: fixed test facts)")
    for c in ("checkpoint", "steps", "objective", "first", "last", "improved", "probe acc.", "test acc.", "facts"):
        t.add_column(c, justify="right" if c not in ("checkpoint", "objective") else "left")
    for ckpt, r in curves.items():
        curve, obj = r["curve"], r.get("objective") or {}
        first, last = curve[0], curve[-1]
        t.add_row(ckpt, f"{first['step']}→{last['step']}", obj.get("measure", "-"), _f(obj.get("first"), 3),
                  _f(obj.get("last"), 3), "yes" if obj.get("improved") else "no",
                  f"{_f(first['probe']['mean_accuracy'])}→{_f(last['probe']['mean_accuracy'])}",
                  f"{_f(first['test']['mean_accuracy'])}→{_f(last['test']['mean_accuracy'])}",
                  str((r.get("budget") or {}).get("facts", "-")))
    console.print(t)


def print_klar_study(results: dict) -> None:
    """KLAR by the study's protocol: accuracy per language, trained vs held-out means."""
    results = {c: KlarStudy(r) for c, r in results.items()}
    langs = list(next(iter(results.values())).accuracy)
    t = Table(title="KLAR, the study's protocol (3-shot, template 1, 10 greedy tokens, study matcher)")
    t.add_column("language")
    for ckpt in results:
        t.add_column(ckpt, justify="right")
    for lang in langs:
        t.add_row(lang, *[_f(r.accuracy.get(lang)) for r in results.values()])
    t.add_row("trained languages", *[_f(r.trained_mean) for r in results.values()])
    t.add_row("held-out languages", *[_f(r.heldout_mean) for r in results.values()])
    console.print(t)
    console.print("predictions: results/klar-study/<id>.predictions.jsonl (re-score: polyfact eval score FILE --match study)")


def print_trajectory(res: dict) -> None:
    """Each method's trajectory: the measures at each point (mean over seeds) and the order of events."""
    if "series" in res:
        s = res["series"]
        t = Table(title=f"trajectory of the series {s['name']} (against {s['reference'] or 'no reference'})")
        cols = [c for c in ("lape_total", "head_overlap", "calibrated_neurons", "neuron_kappa", "head_kappa")
                if c in s["points"][0]]
        for c in ("step", "checkpoint", *cols):
            t.add_column(c, justify="left" if c == "checkpoint" else "right")
        for p in s["points"]:
            t.add_row(str(p["step"]), p["checkpoint"], *[_f(p[c], 3) for c in cols])
        console.print(t)
        return
    for method, m in res["methods"].items():
        t = Table(title=f"{method}: measures along training (mean over {m['n_seeds']} seed(s))")
        keys = list(m["points"])
        t.add_column("share of training")
        for k in keys:
            t.add_column(k, justify="right")
        for i in range(len(m["points"][keys[0]])):
            t.add_row(f"{m['points'][keys[0]][i]['share']:.2f}", *[_f(m["points"][k][i]["mean"], 3) for k in keys])
        console.print(t)
        console.print(f"{method}: {m['order']['reading']}")


def print_steer(res: dict) -> None:
    """A steering result: the sweep's choice on train facts, and each test-fact measure's steered −
    control change under the rule."""
    c = res["chosen"]
    console.print(f"[bold]{res['checkpoint']}[/bold] — {res['units']} from {res['source']} to {res['target']}: "
                  f"chosen on train facts layers {c['layers']}, strength {c['strength']:+g} (target "
                  f"{c['target_gain']:+.3f}, English {c['english_change']:+.3f})")
    t = Table(title=f"steered − size-matched random control on {res['test_facts']} test facts × {res['seeds']} seeds "
                    "(Holm; facts and seeds as noise)")
    for col in ("measure", "change", "95% interval", "p (Holm)", "exact p (Holm)", "outcome", "detectable"):
        t.add_column(col)
    for x in res["tests"]:
        t.add_row(x["measure"], _signed(x["difference"]), "[{}, {}]".format(*(_signed(v) for v in x["ci"])),
                  f"{_p(x['p'])} ({_p(x['p_adjusted'])})", f"{_p(x['exact_p'])} ({_p(x['exact_p_adjusted'])})",
                  x["outcome"], "-" if not math.isfinite(x["mde"]) else f"|δ| ≥ {x['mde']:.3g}")
    console.print(t)
    console.print(f"verdict: {res['verdict']}")
