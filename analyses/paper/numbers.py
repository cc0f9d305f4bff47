"""The study's tables and figure data from a release (:mod:`polyfact.analyses.paper.release`), computed as its
scripts do (``emit_main_table.py``, ``emit_appendix_tables.py``, ``plot_klar_*.py``,
``plot_lape_figure.py``, ``lahis_analysis.py``, ``plot_mexa_layers.py``):

* High / Low = unweighted mean of per-language accuracy over the group ∩ the languages in the file
  (High: en de pt ar es ru fr ja zh; Low: id bn sw); KLAR Train / OOD = mean of per-language
  accuracy over the 7 trained KLAR languages / the others; all × 100.
* TotC = 100 × ``all_langs_correct_fraction``; RankC = 100 × ``rankc.average``. The TotC "wrong"
  half (every language names the same wrong entity) needs per-fact predictions: rendered "–".

Each gatherer returns its data, the files it read (``sources``) and one line per missing file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyfact.analyses.paper.release import (BENCHMARKS, HIGH, KLAR_TRAINED, LOW, ROLE_LABELS, Family, Release, read_consistency,
                                    read_klar, read_lahis, read_lape, read_mexa)

MAIN_ROLES = ("base", "sft", "dco", "cm-align", "grpo")
CPT_PAIRS = (("cpt", "base"), ("cpt+sft", "sft"), ("cpt+dco", "dco"), ("cpt+grpo", "grpo"))
APPENDIX_ROLES = ("base", "cpt", "grpo", "cpt+grpo", "sft", "cpt+sft", "dco", "cpt+dco", "cm-align")
APPENDIX_LABELS = {"base": "Baseline", "cpt": "Aligned (CPT)", "grpo": "GRPO", "cpt+grpo": "Aligned + GRPO",
                   "sft": "SFT", "cpt+sft": "Aligned + SFT", "dco": "DCO", "cpt+dco": "Aligned + DCO",
                   "cm-align": "CM-Align"}
PF_ORDER = ("en", "de", "es", "fr", "pt", "id", "ru", "zh", "ar", "ja", "sw", "bn")
KLAR_UNSEEN = ("ca", "el", "fa", "he", "hu", "ko", "nl", "tr", "uk", "vi")
FIG4A_ROLES = ("base", "sft", "grpo")
FIG4A_FULL = ("base", "sft", "dco", "cm-align", "grpo", "cpt", "cpt+sft", "cpt+dco", "cpt+grpo")
FIG5_ROLES = ("base", "sft", "dco", "cm-align", "grpo", "cpt+grpo")
MEXA_ROLES = ("sft", "dco", "cm-align", "grpo", "cpt+grpo")


@dataclass
class Column:
    """A table column; ``rank`` marks best (bold) and second (underline) per column."""

    key: str
    label: str
    group: str = ""
    digits: int = 1
    rank: bool = False
    suffix: str = ""  # e.g. " / –" for TotC cells whose wrong half cannot be recomputed


@dataclass
class Row:
    key: str
    label: str
    values: dict[str, float | None]
    tags: list[str] = field(default_factory=list)
    section: str = ""


@dataclass
class Table:
    """A table with its provenance; ``signed`` tables hold deltas (printed with a sign)."""

    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    sources: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: bool = False
    label: str = ""

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)


@dataclass
class Gathered:
    data: Any
    sources: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def group_means(acc: dict[str, float]) -> tuple[float | None, float | None]:
    """(High, Low) means of per-language accuracies (any scale), over the languages present."""
    return mean([acc[x] for x in HIGH if x in acc]), mean([acc[x] for x in LOW if x in acc])


def klar_split(acc: dict[str, float], trained: tuple[str, ...] | list[str] = KLAR_TRAINED) -> tuple[float | None, float | None]:
    """(Train, OOD): mean accuracy over the trained languages present / every other language."""
    return mean([v for x, v in acc.items() if x in trained]), mean([v for x, v in acc.items() if x not in trained])


# --------------------------------------------------------------------------------------------
# Gatherers (read what a figure or table needs; say what is missing)


def _label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def gather(rel: Release, fam: Family, kind: str, roles: tuple[str, ...], reader, what: str) -> Gathered:
    """``{role: (tag, parsed)}`` for the roles whose file of ``kind`` exists; one line per missing one."""
    out = Gathered({})
    for role in roles:
        if role not in fam.roles:
            continue
        tag = rel.tag_for(fam, role, kind)
        if tag is None:
            out.missing.append(f"{what}: no {_label(role)} ({rel.expected(kind, fam.roles[role][0])} is missing)")
            continue
        path = rel.path(kind, tag)
        out.data[role] = (tag, reader(path))
        out.sources.append(path / "lape_results.json" if kind == "lape" else path)
        if kind == "lape" and (path / "meta.json").exists():
            out.sources.append(path / "meta.json")
    return out


def klar_arms(rel: Release, fam: Family, roles: tuple[str, ...] = FIG4A_FULL, what: str = "KLAR") -> Gathered:
    """Per arm: tag, per-language accuracy (%), Train and OOD means (Fig 4a/4b, the KLAR table)."""
    g = gather(rel, fam, "klar", roles, read_klar, what)
    g.data = {role: {"tag": tag, "accuracy": k.accuracy(), "split": klar_split(k.accuracy()), "klar": k}
              for role, (tag, k) in g.data.items()}
    return g


def lape_arms(rel: Release, fam: Family, roles: tuple[str, ...] = FIG5_ROLES) -> Gathered:
    """Per arm: tag and LAPE counts per language (Fig 5, the LAPE table)."""
    g = gather(rel, fam, "lape", roles, read_lape, "Fig 5 (LAPE)")
    g.data = {role: {"tag": tag, "counts": lape.counts(), "lape": lape} for role, (tag, lape) in g.data.items()}
    return g


def mexa_arms(rel: Release, fam: Family, roles: tuple[str, ...] = ("base", *MEXA_ROLES)) -> Gathered:
    """Per arm: tag and the MEXA summary (per-layer curves)."""
    g = gather(rel, fam, "mexa", roles, read_mexa, "MEXA figure")
    g.data = {role: {"tag": tag, "mexa": m} for role, (tag, m) in g.data.items()}
    return g


def lahis_models(rel: Release, frac: float = 0.02) -> Gathered:
    """Per LAHIS model: languages, n_top, overlap (%), mean off-diagonal overlap, layer profile (%)."""
    out = Gathered({})
    for name, (files, label) in rel.lahis_sets().items():
        imp = read_lahis(files, name)
        out.data[name] = {"label": label, "languages": imp.languages, "n_layers": imp.n_layers,
                          "n_heads": imp.n_heads, "n_top": imp.n_top(frac), "overlap_pct": imp.overlap(frac),
                          "mean_overlap_pct": imp.mean_overlap(frac), "layer_profile_pct": imp.layer_profile(frac),
                          "sources": [files[x] for x in imp.languages]}
        out.sources.extend(out.data[name]["sources"])
    return out


def delta_curves(mexa: dict[str, dict], variant: str, metric: str) -> dict[str, list[float]]:
    """Per arm: its curve minus the base curve (layer by layer)."""
    base = mexa["base"]["mexa"].per_layer.get(variant, {}).get(metric)
    out = {}
    for role, v in mexa.items():
        curve = v["mexa"].per_layer.get(variant, {}).get(metric)
        if role != "base" and curve is not None and base is not None and len(curve) == len(base):
            out[role] = [a - b for a, b in zip(curve, base)]
    return out


# --------------------------------------------------------------------------------------------
# Tables


def _bench(rel: Release, fam: Family, roles: tuple[str, ...]) -> tuple[dict[str, dict[str, Any]], list[Path], list[str]]:
    """``{role: {benchmark: Consistency, "klar": Klar}}`` with sources and missing lines."""
    data: dict[str, dict[str, Any]] = {r: {} for r in roles}
    sources: list[Path] = []
    missing: list[str] = []
    for bench, reader in (("polyfact_clean", read_consistency), ("bmlama53", read_consistency),
                          ("gmmlu_lite", read_consistency), ("klar", read_klar)):
        g = gather(rel, fam, bench, roles, reader, "main table")
        for role, (tag, parsed) in g.data.items():
            data[role][bench] = (tag, parsed)
        sources += g.sources
        missing += g.missing
    return data, sources, missing


MAIN_COLUMNS = [
    Column("pf_hi", "High", "PolyFact-Clean", rank=True), Column("pf_lo", "Low", "PolyFact-Clean", rank=True),
    Column("bm_hi", "High", "BMLAMA-53", rank=True), Column("bm_lo", "Low", "BMLAMA-53", rank=True),
    Column("gm_hi", "High", "G-MMLU-Lite", rank=True), Column("gm_lo", "Low", "G-MMLU-Lite", rank=True),
    Column("kl_tr", "Train", "KLAR", rank=True), Column("kl_ood", "OOD", "KLAR", rank=True),
    Column("pf_tc", "PF TotC", "Consistency", rank=True, suffix=" / –"), Column("pf_rk", "PF RankC", "Consistency", rank=True),
    Column("bm_rk", "BM RankC", "Consistency", rank=True), Column("gm_tc", "GM TotC", "Consistency", rank=True, suffix=" / –"),
    Column("gm_rk", "GM RankC", "Consistency", rank=True),
]


def main_values(entry: dict[str, Any]) -> dict[str, float | None]:
    """One row of the main table (× 100) from ``{benchmark: (tag, parsed)}``."""
    v: dict[str, float | None] = {c.key: None for c in MAIN_COLUMNS}
    for bench, prefix in (("polyfact_clean", "pf"), ("bmlama53", "bm"), ("gmmlu_lite", "gm")):
        if bench in entry:
            c = entry[bench][1]
            hi, lo = group_means({x: 100 * a for x, a in c.accuracy.items()})
            v[f"{prefix}_hi"], v[f"{prefix}_lo"] = hi, lo
            v[f"{prefix}_rk"] = 100 * c.rankc["average"]
            if prefix != "bm":
                v[f"{prefix}_tc"] = 100 * c.totc
    if "klar" in entry:
        v["kl_tr"], v["kl_ood"] = klar_split(entry["klar"][1].accuracy())
    return v


def main_tables(rel: Release, fam: Family) -> tuple[list[Table], list[str]]:
    """The main table (Baseline, SFT, DCO, CM-Align, GRPO), its delta form (vs Baseline) and the
    CPT table (each CPT arm minus its counterpart), as ``emit_main_table.py`` (--delta, --cpt)."""
    data, sources, missing = _bench(rel, fam, tuple(dict.fromkeys((*MAIN_ROLES, *(r for p in CPT_PAIRS for r in p)))))
    values = {role: main_values(e) for role, e in data.items() if e}
    tags = {role: sorted({t for t, _ in e.values()}) for role, e in data.items()}
    head = f"{fam.label}: " if fam.label else ""
    notes = ["High/Low: unweighted mean of per-language accuracy over the group's languages in each file "
             "(realised sizes: " + _group_sizes(data) + ").",
             "TotC cells read 'x / –': the share of facts every language gets wrong with the same entity needs the "
             "per-fact predictions the release does not include.",
             "BMLAMA RankC pools ~10 candidates (floor ≈ 0.008); PolyFact and G-MMLU use 4 (floor 0.090, chance 0.377): "
             "not on one scale. BMLAMA TotC is not a column (it sits at the floor)."]
    modes = sorted({f"{e['gmmlu_lite'][0]}: {e['gmmlu_lite'][1].score_mode}" for e in data.values()
                    if "gmmlu_lite" in e and e["gmmlu_lite"][1].score_mode not in (None, "byte")})
    if modes:
        notes.append("G-MMLU files scored with per-token averaging instead of bytes (harmless for single letters): "
                     + ", ".join(modes) + ".")
    rows = [Row(r, "Baseline" if r == "base" else _label(r), values[r], tags[r], "baseline" if r == "base" else "methods")
            for r in MAIN_ROLES if r in values]
    main = Table("main", f"{head}main table (accuracy and consistency, ×100)", MAIN_COLUMNS, rows, sources,
                 notes + missing, label="tab:main")
    out = [main]
    if "base" in values:
        drows = [Row(r, _label(r), _delta(values[r], values["base"]), tags[r], "methods")
                 for r in MAIN_ROLES[1:] if r in values]
        if drows:
            out.append(Table("main_delta", f"{head}main table, change against Baseline (points)",
                             [Column(c.key, c.label, c.group, rank=c.rank) for c in MAIN_COLUMNS], drows, sources,
                             notes[:1] + missing, signed=True, label="tab:main_delta"))
    crows = [Row(cpt, f"{_label(cpt)} vs {_label(ref)}", _delta(values[cpt], values[ref]), tags[cpt] + tags[ref], "cpt")
             for cpt, ref in CPT_PAIRS if cpt in values and ref in values]
    if crows:
        out.append(Table("main_cpt", f"{head}CPT: each arm against its counterpart without CPT (points)",
                         [Column(c.key, c.label, c.group) for c in MAIN_COLUMNS], crows, sources, notes[:1],
                         signed=True, label="tab:main_cpt"))
    return out, missing


def _delta(a: dict[str, float | None], b: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (a[k] - b[k]) if a.get(k) is not None and b.get(k) is not None else None for k in a}


def _group_sizes(data: dict[str, dict[str, Any]]) -> str:
    parts = []
    for bench in ("polyfact_clean", "bmlama53", "gmmlu_lite"):
        sizes = {(sum(x in HIGH for x in c.accuracy), sum(x in LOW for x in c.accuracy))
                 for e in data.values() if bench in e for c in [e[bench][1]]}
        if sizes:
            parts.append(f"{BENCHMARKS[bench]} " + ", ".join(f"{h}/{lo}" for h, lo in sorted(sizes)))
    return "; ".join(parts) or "none"


def appendix_tables(rel: Release, fam: Family) -> tuple[list[Table], list[str]]:
    """Per-language tables as ``emit_appendix_tables.py``: PolyFact-Clean (.2f), KLAR (Seen |
    Unseen, .1f), Global-MMLU-Lite and BMLAMA-53 (.2f, with a High column). A language is kept only
    where every row has it; rows without the file are dropped with a note."""
    tables, missing = [], []
    specs = (("polyfact_clean", "appendix_polyfact", "PolyFact accuracy per language (%)", False, "tab:wikifact_appendix"),
             ("klar", "appendix_klar", "KLAR accuracy per language (%)", False, "tab:klar_appendix"),
             ("gmmlu_lite", "appendix_gmmlu", "Global-MMLU-Lite accuracy per language (%)", True, "tab:global_mmlu_appendix"),
             ("bmlama53", "appendix_bmlama", "BMLAMA-53 accuracy per language (%)", True, "tab:bmlama_appendix"))
    for kind, name, title, high, label in specs:
        reader = read_klar if kind == "klar" else read_consistency
        g = gather(rel, fam, kind, APPENDIX_ROLES, reader, f"appendix table {name}")
        missing += g.missing
        if not g.data:
            continue
        acc = {role: (p.accuracy() if kind == "klar" else {x: 100 * a for x, a in p.accuracy.items()})
               for role, (_, p) in g.data.items()}
        order = [*KLAR_TRAINED, *KLAR_UNSEEN] if kind == "klar" else list(PF_ORDER)
        present = set.intersection(*(set(a) for a in acc.values()))
        extra = sorted(present - set(order))
        notes = [f"column {x} dropped: " + ("not in every row" if any(x in a for a in acc.values()) else
                                            "in none of these files") for x in order if x not in present]
        digits = 1 if kind == "klar" else 2
        cols = [Column(x, x.upper(), ("Seen" if x in KLAR_TRAINED else "Unseen") if kind == "klar" else "", digits)
                for x in [*order, *extra] if x in present]
        if high:
            cols.append(Column("high", "High", "", digits))
        rows = []
        for role in APPENDIX_ROLES:
            if role in acc:
                vals: dict[str, float | None] = {c.key: acc[role].get(c.key) for c in cols}
                if high:
                    vals["high"] = mean([v for x, v in acc[role].items() if x in present and x not in LOW])
                rows.append(Row(role, APPENDIX_LABELS[role], vals, [g.data[role][0]]))
        tables.append(Table(name, title, cols, rows, g.sources, notes + g.missing, label=label))
    return tables, missing


def klar_table(arms: dict[str, dict]) -> Table:
    """KLAR Train / OOD per arm and the change against Base (Fig 4a's numbers)."""
    base = arms.get("base", {}).get("split")
    cols = [Column("train", "Trained (7)"), Column("ood", "Held-out (10)"), Column("d_train", "Δ trained"),
            Column("d_ood", "Δ held-out")]
    rows = []
    for role, a in arms.items():
        tr, ood = a["split"]
        d = (tr - base[0], ood - base[1]) if base and role != "base" and None not in (tr, ood, *base) else (None, None)
        rows.append(Row(role, _label(role), {"train": tr, "ood": ood, "d_train": d[0], "d_ood": d[1]}, [a["tag"]]))
    return Table("klar_train_heldout", "KLAR accuracy, trained vs held-out languages (%, mean of per-language accuracy)",
                 cols, rows, [a["klar"].path for a in arms.values()], label="tab:klar")


def klar_language_table(base: dict, other: dict, other_role: str = "grpo") -> Table:
    """Per language: Base, the other arm and the change (Fig 4b's numbers), trained languages first."""
    order = klar_language_order(base["accuracy"])
    rows = [Row(x, x.upper(), {"base": base["accuracy"][x], "other": other["accuracy"].get(x),
                               "delta": other["accuracy"][x] - base["accuracy"][x] if x in other["accuracy"] else None},
                section="trained" if x in KLAR_TRAINED else "held-out") for x in order]
    up = sum(1 for r in rows if (r.values["delta"] or 0) > 0)
    return Table("klar_per_language", f"KLAR per language: Base vs {_label(other_role)} (%)",
                 [Column("base", "Base"), Column("other", _label(other_role)), Column("delta", "Δ")], rows,
                 [base["klar"].path, other["klar"].path], [f"{_label(other_role)} improves {up}/{len(rows)} languages."],
                 label="tab:klar_lang")


def klar_language_order(base_acc: dict[str, float]) -> list[str]:
    """Trained languages by Base accuracy (descending), then held-out ones likewise (Fig 4b)."""
    trained = sorted((x for x in base_acc if x in KLAR_TRAINED), key=lambda x: -base_acc[x])
    return trained + sorted((x for x in base_acc if x not in KLAR_TRAINED), key=lambda x: -base_acc[x])


def lape_table(arms: dict[str, dict]) -> Table:
    """Language-specific neurons per language and arm, languages by Base count, with totals."""
    first = arms.get("base") or next(iter(arms.values()))
    langs = sorted(first["counts"], key=lambda x: -first["counts"][x])
    cols = [Column(role, _label(role), digits=0) for role in arms]
    rows = [Row(x, x.upper(), {role: float(a["counts"].get(x, 0)) for role, a in arms.items()},
                section="low" if x in LOW else "high") for x in langs]
    rows.append(Row("total", "Total", {role: float(sum(a["counts"].values())) for role, a in arms.items()}))
    srcs = [p for a in arms.values() for p in (a["lape"].path / "lape_results.json", a["lape"].meta_path) if p]
    return Table("lape_counts", "LAPE language-specific neurons per language (top 1 %, argmax language)", cols, rows,
                 srcs, [f"{_label(r)} = {a['tag']}" for r, a in arms.items()], label="tab:lape")


def lahis_tables(models: dict[str, dict]) -> list[Table]:
    """Per LAHIS model: the pairwise overlap of top-2 % heads (%) and their layer profile (%), plus
    a summary of mean off-diagonal overlaps."""
    out = [Table("lahis_summary", "LAHIS: mean off-diagonal overlap of the top-2 % heads",
                 [Column("n_top", "heads per language", digits=0), Column("mean", "mean overlap (%)")],
                 [Row(n, m["label"], {"n_top": float(m["n_top"]), "mean": m["mean_overlap_pct"]}) for n, m in models.items()],
                 [p for m in models.values() for p in m["sources"]], label="tab:lahis")]
    for name, m in models.items():
        langs, srcs = m["languages"], m["sources"]
        out.append(Table(f"lahis_overlap_{name}", f"Top-2 % head overlap (%) — {m['label']}",
                         [Column(x, x.upper(), digits=0) for x in langs],
                         [Row(a, a.upper(), {b: m["overlap_pct"][a][b] for b in langs}) for a in langs], srcs))
        out.append(Table(f"lahis_layers_{name}", f"Share of top-2 % heads per layer (%) — {m['label']}",
                         [Column(str(i), str(i), digits=0) for i in range(m["n_layers"])],
                         [Row(x, x.upper(), {str(i): v for i, v in enumerate(m["layer_profile_pct"][x])}) for x in langs],
                         srcs))
    return out


def mexa_table(arms: dict[str, dict], metric: str = "x_y") -> Table:
    """Per layer: Base retrieval and each arm's change, raw and centered."""
    variants = [v for v in ("raw", "centered") if metric in arms["base"]["mexa"].per_layer.get(v, {})]
    cols, values = [], {}
    for var in variants:
        cols.append(Column(f"{var}:base", "Base", var, 3))
        values[f"{var}:base"] = arms["base"]["mexa"].per_layer[var][metric]
        for role, curve in delta_curves(arms, var, metric).items():
            cols.append(Column(f"{var}:{role}", f"Δ {_label(role)}", var, 3))
            values[f"{var}:{role}"] = curve
    n = arms["base"]["mexa"].n_layers
    rows = [Row(str(i), str(i), {k: v[i] for k, v in values.items()}) for i in range(n)]
    notes = []
    for var in variants:
        base = values[f"{var}:base"]
        peak = max(range(n), key=base.__getitem__)
        notes.append(f"{var}: Base peaks at {base[peak]:.3f} at layer {peak}; " + "; ".join(
            f"{_label(r)} max {max(c):+.3f} @L{c.index(max(c))}, min {min(c):+.3f} @L{c.index(min(c))}"
            for r, c in delta_curves(arms, var, metric).items()))
    return Table(f"mexa_{metric}", f"MEXA top-1 retrieval per layer ({'non-English pairs X–Y' if metric == 'x_y' else 'English pairs EN–X'}): "
                 "Base and change against Base", cols, rows, [a["mexa"].path for a in arms.values()], notes,
                 label=f"tab:mexa_{metric}")


def significance_table(rel: Release, fam: Family) -> Table | None:
    """Paired fact-bootstrap tests of each arm against Base where both have per-fact predictions
    (2,000 resamples, seed 0), as a table; None when no benchmark has them."""
    from polyfact.analyses.paper import recompute as RC

    rows, sources = [], []
    for bench in ("polyfact_clean", "gmmlu_lite", "bmlama53"):
        base_tag = rel.tag_for(fam, "base", bench)
        if not base_tag:
            continue
        base = read_consistency(rel.path(bench, base_tag))
        if base.predictions is None:
            continue
        for role in FIG4A_FULL[1:]:
            tag = rel.tag_for(fam, role, bench)
            other = read_consistency(rel.path(bench, tag)) if tag else None
            res = RC.significance(base, other) if other else None
            if res:
                sources += [base.path, other.path]
                for measure, r in res.items():
                    rows.append(Row(f"{bench}:{role}:{measure}", f"{BENCHMARKS[bench]} {ROLE_LABELS[role]} {measure}",
                                    {"diff": 100 * r["difference"], "lo": 100 * r["ci"][0], "hi": 100 * r["ci"][1],
                                     "p": r["p_value"], "n": float(r["n_facts"])}, [tag, base_tag]))
    if not rows:
        return None
    cols = [Column("diff", "Δ vs Base (points)"), Column("lo", "95 % CI low"), Column("hi", "95 % CI high"),
            Column("p", "p", digits=4), Column("n", "facts", digits=0)]
    return Table("significance", "Paired fact bootstrap against Base (2,000 resamples, seed 0)", cols, rows,
                 list(dict.fromkeys(sources)), ["Facts resampled as units, the same resamples for both checkpoints."])
