"""Behavioral evaluation of checkpoints: per-item records, recall and consistency metrics with
bootstrap intervals, and paired tests between checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from analyses import metrics as M
from analyses.provenance import fresh, provenance, result_path, write_result
from polyfact.errors import PolyFactError
from polyfact.io import atomic_write_text, read_json
from training.common import RunData, sample_facts
from training.models import load_checkpoint
from training.scoring import NORMALIZATIONS, OptionScores, generation_records, mcq_records

MODES = ("mcq", "generate")


def analysis_name(run_dir: str | Path, data_dir: str | Path | None) -> str:
    """``recall`` for the run's own dataset, ``recall-<name>`` for another one (e.g. KLAR)."""
    if data_dir is None or Path(data_dir).resolve() == (Path(run_dir) / "data").resolve():
        return "recall"
    return f"recall-{Path(data_dir).name}"


def read_records(path: str | Path) -> list[dict]:
    """Records from JSONL (one-line errors for bad lines)."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise PolyFactError(f"records file not found: {path}") from None
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise PolyFactError(f"{path} line {i} is not JSON ({err.msg}); fix or regenerate the file") from None
    return out


def normalization_accuracy(records: list[dict]) -> dict[str, dict[str, float]]:
    """Per-language accuracy under each MCQ normalization (token, byte, sum)."""
    out = {}
    for how in NORMALIZATIONS:
        rescored = [{**r, "correct": OptionScores(r["option_logprob"], r["option_tokens"], r["option_bytes"]).best(how)
                     == r["answer_index"]} for r in records]
        out[how] = M.accuracy(rescored)
    return out


def evaluate_checkpoint(
    run_dir: str | Path,
    ckpt_id: str,
    *,
    data_dir: str | Path | None = None,
    split: str = "test",
    mode: str = "mcq",
    normalization: str = "byte",
    max_facts: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``ckpt_id`` on a split; writes ``results/<analysis>/<id>.json`` and ``.records.jsonl``."""
    if mode not in MODES:
        raise PolyFactError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    if normalization not in NORMALIZATIONS:
        raise PolyFactError(f"unknown normalization {normalization!r}; use one of: {', '.join(NORMALIZATIONS)}")
    data = RunData(run_dir, data_dir)
    analysis = analysis_name(run_dir, data_dir)
    config = {"split": split, "mode": mode, "normalization": normalization, "max_facts": max_facts,
              "bootstrap": bootstrap}
    prov = provenance(run_dir, ckpt_id, analysis=analysis, data_fingerprint=data.fingerprint, config=config, seed=seed)
    path = result_path(run_dir, analysis, ckpt_id)
    if not force and (done := fresh(path, prov)) is not None:
        return done
    rows = sample_facts(data.require(split), max_facts, seed)
    model, tok = load_checkpoint(ckpt_id, run_dir)
    if mode == "mcq":
        records = mcq_records(model, tok, rows, normalization=normalization, progress=progress)
    else:
        records = generation_records(model, tok, rows, progress=progress)
    payload: dict[str, Any] = {"checkpoint": ckpt_id, "split": split, "mode": mode,
                               "metrics": M.summarize(records), "intervals": M.fast_accuracy_ci(records, bootstrap, seed)}
    if mode == "mcq":
        payload["accuracy_by_normalization"] = normalization_accuracy(records)
    roles = {"training": set(data.training_langs), "heldout": set(data.meta.get("heldout_langs", []))}
    payload["consistency_subsets"] = {name: M.total_consistency([r for r in records if r["lang"] in langs])
                                      for name, langs in roles.items() if len(langs) >= 2}
    atomic_write_text(result_path(run_dir, analysis, ckpt_id, ".records.jsonl"),
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return write_result(path, payload, prov)


def load_records(run_dir: str | Path, ckpt_id: str, analysis: str = "recall") -> list[dict]:
    return read_records(result_path(run_dir, analysis, ckpt_id, ".records.jsonl"))


def load_result(run_dir: str | Path, ckpt_id: str, analysis: str = "recall") -> dict:
    return read_json(result_path(run_dir, analysis, ckpt_id), f"{analysis} result of {ckpt_id}")


def paired_tests(run_dir: str | Path, reference: str, others: Sequence[str], analysis: str = "recall",
                 bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each checkpoint against ``reference``: McNemar on items, paired fact-bootstrap on mean
    accuracy and Total Consistency. Written to ``results/<analysis>/paired-<reference>.json``."""
    ref = load_records(run_dir, reference, analysis)
    out: dict[str, Any] = {}
    for other in others:
        recs = load_records(run_dir, other, analysis)
        out[other] = {"mcnemar": M.mcnemar(recs, ref), **M.paired_changes(recs, ref, n=bootstrap, seed=seed)}
    from polyfact.io import atomic_write_json

    atomic_write_json(Path(run_dir) / "results" / analysis / f"paired-{reference}.json",
                      {"reference": reference, "comparisons": out, "bootstrap": bootstrap, "seed": seed})
    return out


def score_file(path: str | Path) -> dict[str, Any]:
    """Metrics recomputed from a records file: evaluation records (``fact_id, lang, correct``) or
    free-form prediction lists (``language, relation, index, target, pred``, rescored with
    ``polyfact.answers.match``, lenient)."""
    from polyfact.answers import match

    raw = read_records(path)
    if not raw:
        raise PolyFactError(f"{path} has no records")
    records = []
    for i, r in enumerate(raw):
        if {"fact_id", "lang", "correct"} <= set(r):
            records.append(r)
        elif {"language", "target", "pred"} <= set(r):
            lang = r["language"]
            fid = f"{r.get('relation', '')}:{r.get('index', i)}"
            records.append({"fact_id": fid, "lang": lang, "relation": r.get("relation", ""),
                            "correct": match(str(r["pred"]), str(r["target"]), r.get("aliases", []), lang=lang)})
        else:
            raise PolyFactError(f"{path} record {i + 1} lacks fact_id/lang/correct (or language/target/pred)")
    return M.summarize(records, with_rankc=True)
