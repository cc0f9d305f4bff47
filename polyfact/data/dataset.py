"""PolyFact on disk: a Hugging Face ``DatasetDict`` (``save_to_disk``), ``polyfact.json`` with
languages, roles and fingerprint, a dataset card, and export as per-language configs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from polyfact.data.build import SPLITS, BuildConfig, BuildReport
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_dir, atomic_write_json, atomic_write_text, fingerprint, read_json
from polyfact.data.languages import LANGUAGES, order_langs
from polyfact.data.relations import RELATIONS

FORMAT_VERSION = 1
META_FILE = "polyfact.json"

FEATURES = datasets.Features(
    {
        "fact_id": datasets.Value("string"),
        "relation": datasets.Value("string"),
        "lang": datasets.Value("string"),
        "subject_id": datasets.Value("string"),
        "object_id": datasets.Value("string"),
        "subject": datasets.Value("string"),
        "object": datasets.Value("string"),
        "question": datasets.Value("string"),
        "prompt": datasets.Value("string"),
        "options": datasets.List(datasets.Value("string")),
        "option_ids": datasets.List(datasets.Value("string")),
        "answer_index": datasets.Value("int32"),
        "aliases": datasets.List(datasets.Value("string")),
        "paraphrases": datasets.List(datasets.Value("string")),
        "split": datasets.Value("string"),
    }
)


def rows_fingerprint(rows_by_split: dict[str, list[dict]]) -> str:
    """Content fingerprint of the rows: equal rows ⇔ equal fingerprint."""
    return fingerprint({s: rows_by_split.get(s, []) for s in SPLITS})


def _to_dataset(rows: list[dict], split: str, fp: str) -> datasets.Dataset:
    table = pa.Table.from_pylist(rows, schema=FEATURES.arrow_schema)
    info = datasets.DatasetInfo(features=FEATURES)
    # An explicit fingerprint keeps state.json (and so the saved bytes) a function of the rows.
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=info,
                            split=datasets.NamedSplit(split), fingerprint=f"{fp}-{split}")


def save_dataset(
    rows_by_split: dict[str, list[dict]],
    out: str | Path,
    *,
    source: str,
    cfg: BuildConfig,
    report: BuildReport | None = None,
    licenses: str = "",
    force: bool = False,
    source_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write the DatasetDict, ``polyfact.json`` and ``README.md`` to ``out`` atomically
    (``source_path``: the local release an import read, recorded for protocols that need its files).

    Returns the metadata written to ``polyfact.json`` (with its ``fingerprint``)."""
    fp = rows_fingerprint(rows_by_split)
    all_rows = [r for s in SPLITS for r in rows_by_split.get(s, [])]
    langs = order_langs({r["lang"] for r in all_rows})
    meta = {
        "format_version": FORMAT_VERSION,
        "source": source,
        **({"source_path": str(Path(source_path).resolve())} if source_path else {}),
        "licenses": licenses,
        "fingerprint": fp,
        "seed": cfg.seed,
        "config": {k: v for k, v in asdict(cfg).items()},
        "languages": langs,
        "training_langs": [c for c in (cfg.training_langs or []) if c in langs],
        "heldout_langs": [c for c in cfg.heldout_langs if c in langs],
        "relations": sorted({r["relation"] for r in all_rows}, key=_pid_key),
        "n_facts": {s: len({r["fact_id"] for r in rows_by_split.get(s, [])}) for s in SPLITS},
        "n_rows": {s: len(rows_by_split.get(s, [])) for s in SPLITS},
        "dropped": dict(sorted((report.dropped if report else Counter()).items())),
        "facts_in": report.facts_in if report else None,
    }
    dd = datasets.DatasetDict({s: _to_dataset(rows_by_split.get(s, []), s, fp) for s in SPLITS})
    datasets.disable_progress_bars()  # a save takes well under a second; its bars are noise
    with atomic_dir(out, force=force, made_by="data", written_before=lambda p: (p / META_FILE).is_file()) as tmp:
        dd.save_to_disk(str(tmp), num_shards={s: 1 for s in SPLITS})
        atomic_write_json(tmp / META_FILE, meta)
        atomic_write_text(tmp / "README.md", dataset_card(rows_by_split, meta))
    return meta


def _pid_key(pid: str) -> tuple[int, str]:
    digits = "".join(ch for ch in pid if ch.isdigit())
    return (int(digits) if digits else 10**9, pid)


def load_dataset_dir(path: str | Path) -> datasets.DatasetDict:
    """Load a PolyFact directory written by :func:`save_dataset` (one-line errors otherwise)."""
    path = Path(path)
    if not (path / "dataset_dict.json").exists():
        raise PolyFactError(
            f"{path} is not a PolyFact dataset (no dataset_dict.json); build one with "
            f"'polyfact data build --out {path}'"
        )
    try:
        return datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises many types for corrupt directories
        raise PolyFactError(f"cannot read dataset {path}: {err.__class__.__name__}: {err}; rebuild it") from None


def load_meta(path: str | Path) -> dict[str, Any]:
    """``polyfact.json`` of a dataset directory."""
    return read_json(Path(path) / META_FILE, "dataset metadata")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def data_fingerprint(path: str | Path) -> str:
    """The fingerprint of a dataset directory as it is on disk: its recorded fingerprint and the
    content of its data files (so rows edited in place make everything that depends on them stale;
    file hashes are reused while size and modification time are unchanged)."""
    from polyfact.core.io import file_digest, fingerprint

    root = Path(path)
    digests = []
    for f in sorted(root.glob("*/*.arrow")) + sorted(root.glob("*/state.json")):
        st = f.stat()
        key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = file_digest(f)
        digests.append((str(f.relative_to(root)), _DIGESTS[key]))
    return fingerprint({"rows": load_meta(root)["fingerprint"], "files": digests})


def _counts_table(title: str, counter: Counter, keys: list[str], head: str) -> str:
    lines = [f"### {title}", "", f"| {head} | rows |", "|---|---:|"]
    lines += [f"| {k} | {counter[k]} |" for k in keys]
    return "\n".join(lines) + "\n"


def dataset_card(rows_by_split: dict[str, list[dict]], meta: dict[str, Any]) -> str:
    """A Hugging Face dataset card: YAML header, counts per relation, language and split,
    sources and licenses."""
    from html import escape as esc  # labels, names and paths come from input files: never raw markup

    all_rows = [r for s in SPLITS for r in rows_by_split.get(s, [])]
    by_rel = Counter(r["relation"] for r in all_rows)
    by_lang = Counter(r["lang"] for r in all_rows)
    facts_by_split = meta["n_facts"]
    rel_rows = ["| relation | name | facts | rows |", "|---|---|---:|---:|"]
    for pid in meta["relations"]:
        n_facts = len({r["fact_id"] for r in all_rows if r["relation"] == pid})
        name = RELATIONS[pid].name if pid in RELATIONS else pid
        rel_rows.append(f"| {esc(pid)} | {esc(name)} | {n_facts} | {by_rel[pid]} |")
    lang_names = {c: LANGUAGES[c].name if c in LANGUAGES else c for c in meta["languages"]}
    lang_rows = ["| language | code | role | rows |", "|---|---|---|---:|"]
    for c in meta["languages"]:
        role = "training" if c in meta["training_langs"] else "held-out"
        lang_rows.append(f"| {esc(lang_names[c])} | {esc(c)} | {role} | {by_lang[c]} |")
    split_rows = ["| split | facts | rows |", "|---|---:|---:|"]
    split_rows += [f"| {s} | {facts_by_split[s]} | {meta['n_rows'][s]} |" for s in SPLITS]
    header = "\n".join(
        ["---", "language:", *[f"- {esc(c)}" for c in meta["languages"]], "task_categories:",
         "- question-answering", "pretty_name: PolyFact", "---", ""]
    )
    dropped = esc(", ".join(f"{k}: {v}" for k, v in meta["dropped"].items()) or "none")
    return (
        f"{header}\n# PolyFact ({esc(str(meta['source']))})\n\n"
        "Parallel multilingual factual questions: one row per fact × language, 4 options with the "
        "same entities in every language (shuffled per language), splits by fact.\n\n"
        f"- fingerprint: `{meta['fingerprint']}` (seed {meta['seed']})\n"
        f"- facts: {sum(facts_by_split.values())}, rows: {len(all_rows)}\n"
        f"- training languages: {esc(' '.join(meta['training_langs']))}\n"
        f"- held-out languages: {esc(' '.join(meta['heldout_langs'])) or '-'}\n"
        f"- dropped while building: {dropped}\n\n"
        "## Splits\n\n" + "\n".join(split_rows) + "\n\n"
        "## Relations\n\n" + "\n".join(rel_rows) + "\n\n"
        "## Languages\n\n" + "\n".join(lang_rows) + "\n\n"
        f"## Sources and licenses\n\n{esc(str(meta['licenses'])) if meta['licenses'] else 'see the source'}\n"
    )


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def export_configs(data_dir: str | Path, out: str | Path, force: bool = False) -> list[Path]:
    """Export as per-language configs like the released PolyFact: ``<out>/<lang>/<split>.jsonl``
    with ``question``, ``options`` (A, B, …), ``answer_index``, ``answer`` and ``fact_id``."""
    from polyfact.core.io import check_apart

    check_apart([data_dir], out, "--out")
    dd = load_dataset_dir(data_dir)
    written = []
    with atomic_dir(out, force=force, made_by="data export") as tmp:
        for split in SPLITS:
            by_lang: dict[str, list[str]] = {}
            for row in dd[split].to_list():
                rec = {
                    "fact_id": row["fact_id"], "relation": row["relation"], "subject": row["subject"],
                    "object": row["object"], "question": row["question"],
                    "options": {LETTERS[i]: o for i, o in enumerate(row["options"])},
                    "answer_index": row["answer_index"], "answer": LETTERS[row["answer_index"]],
                }
                by_lang.setdefault(row["lang"], []).append(json.dumps(rec, ensure_ascii=False))
            for lang, lines in by_lang.items():
                path = tmp / lang / f"{split}.jsonl"
                atomic_write_text(path, "\n".join(lines) + "\n")
                written.append(Path(out) / lang / f"{split}.jsonl")
    return written


def summarize(data_dir: str | Path) -> dict[str, Any]:
    """Counts per split, language and relation, plus the metadata: what ``polyfact data show`` prints."""
    dd = load_dataset_dir(data_dir)
    meta = load_meta(data_dir)
    per_lang: Counter = Counter()
    per_rel: Counter = Counter()
    n_opts: Counter = Counter()
    for split in dd:
        per_lang.update(dd[split]["lang"])
        per_rel.update(dd[split]["relation"])
        n_opts.update(len(o) for o in dd[split]["options"])
    return {"meta": meta, "per_lang": dict(per_lang), "per_relation": dict(per_rel),
            "options_per_row": dict(n_opts), "rows": {s: len(dd[s]) for s in dd}}
