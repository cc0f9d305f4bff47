"""Behavioral evaluation of checkpoints: per-item records, recall and consistency metrics with
bootstrap intervals, and paired tests between checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from polyfact.analyses import metrics as M
from polyfact.core.layout import layout
from polyfact.core.provenance import fresh, provenance, write_result
from polyfact.core.results import Recall
from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text, read_cached, regular_file
from polyfact.training.evaluation.data import RunData, sample_facts
from polyfact.core.checkpoints import load_checkpoint
from polyfact.analyses.config import EVAL_MODES
from polyfact.training.config import NORMALIZATIONS
from polyfact.training.evaluation.scoring import OptionScores, generation_records, mcq_records



QUESTION = ("split", "mode", "prompt", "normalization")  # the settings that change what a recall result means


def analysis_name(run_dir: str | Path, data_dir: str | Path | None, **question: str) -> str:
    """``recall`` for the run's own dataset asked the run's own question (its config's ``eval``
    split, mode, prompt and normalization), ``recall-<data>`` for another dataset (e.g. KLAR), and a
    suffix per setting that differs from the run's (``recall-prompt-study``): one question, one file."""
    name = "recall" if data_dir is None or Path(data_dir).resolve() == layout(run_dir).data.resolve() \
        else f"recall-{Path(data_dir).name}"
    own = _run_question(run_dir)
    return name + "".join(f"-{k}-{v}" for k, v in question.items() if k in QUESTION and v is not None
                          and v != own.get(k))


def _run_question(run_dir: str | Path) -> dict[str, str]:
    """The run's configured question (its saved config's eval settings; the defaults without one)."""
    from polyfact.analyses.config import EvalConfig

    saved = read_cached(layout(run_dir).config)
    ev = saved.get("eval") if isinstance(saved, dict) and isinstance(saved.get("eval"), dict) else {}
    default = EvalConfig()
    return {k: ev.get(k, getattr(default, k)) for k in QUESTION}


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """``(line number, object)`` of a JSONL file (one-line errors for bad lines)."""
    path = regular_file(path, "records file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise PolyFactError(f"records file not found: {path}") from None
    except UnicodeDecodeError:
        raise PolyFactError(f"{path} is not UTF-8 text; pass a .jsonl file of records or predictions") from None
    except OSError as err:
        raise PolyFactError(f"cannot read {path}: {err.strerror}") from None
    out = []
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise PolyFactError(f"{path} line {i} is not JSON ({err.msg}); fix or regenerate the file") from None
            except RecursionError:
                raise PolyFactError(f"{path} line {i} is nested too deeply to read; fix or regenerate the file") from None
            if not isinstance(obj, dict):
                raise PolyFactError(f"{path} line {i} is not a JSON object (got {type(obj).__name__})")
            out.append((i, obj))
    return out


def _text(obj: dict, key: str, path: Path, line: int, allow_empty: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise PolyFactError(f"{path} line {line}: {key!r} must be a {'' if allow_empty else 'non-empty '}string, "
                            f"got {value!r}")
    return value


def typed_records(path: str | Path, match: str | None = None, dedupe: bool = False) -> tuple[list[dict], str | None]:
    """Records to score from an evaluation records file (``fact_id``, ``lang``, boolean
    ``correct``) or a predictions file (``language``, ``target``, ``pred``, and ``relation`` and
    ``index`` naming the fact), re-scored with ``match`` (default ``study``). Wrong types and
    duplicate (fact, language) pairs are errors naming the line (``dedupe`` keeps the first)."""
    from polyfact.data.answers import MODES, match as match_fn

    path = Path(path)
    raw = read_records(path)
    if not raw:
        raise PolyFactError(f"{path} has no records")
    if match is not None:
        MODES.check(match, "--match")
    records, seen, used_match = [], {}, None
    for line, r in raw:
        if {"fact_id", "lang", "correct"} <= set(r):
            if not isinstance(r["correct"], bool):
                raise PolyFactError(f"{path} line {line}: 'correct' must be true or false, got {r['correct']!r}")
            rec = {**r, "fact_id": _text(r, "fact_id", path, line), "lang": _text(r, "lang", path, line)}
        elif {"language", "target", "pred"} <= set(r):
            used_match = match or "study"
            lang = _text(r, "language", path, line)
            target = _text(r, "target", path, line)
            pred = _text(r, "pred", path, line, allow_empty=True)
            aliases = r.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise PolyFactError(f"{path} line {line}: 'aliases' must be a list of strings")
            fid = f"{r.get('relation', '')}:{r.get('index', line)}"
            rec = {"fact_id": fid, "lang": lang, "relation": str(r.get("relation", "")),
                   "correct": match_fn(pred, target, aliases if used_match != "study" else (), lang=lang,
                                       mode=used_match)}
        else:
            raise PolyFactError(f"{path} line {line} lacks fact_id/lang/correct (records) or language/target/pred "
                                "(predictions)")
        key = (rec["fact_id"], rec["lang"])
        if key in seen:
            if dedupe:
                continue
            raise PolyFactError(f"{path} line {line} repeats fact {key[0]!r} in {key[1]!r} (first on line {seen[key]}); "
                                "remove it or pass --dedupe")
        seen[key] = line
        records.append(rec)
    return records, used_match


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
    prompt: str = "cue",
    match: str = "study",
) -> dict[str, Any]:
    """Score ``ckpt_id`` on a split; writes ``results/<analysis>/<id>.json`` and ``.records.jsonl``.
    ``prompt`` (MCQ): ``cue`` or the study's scaffold; ``match`` (generation): the answer matcher."""
    EVAL_MODES.check(mode, "mode")
    NORMALIZATIONS.check(normalization, "normalization")
    data = RunData(run_dir, data_dir)
    analysis = analysis_name(run_dir, data_dir, split=split, mode=mode, prompt=prompt, normalization=normalization)
    config = {"split": split, "mode": mode, "normalization": normalization, "max_facts": max_facts,
              "bootstrap": bootstrap}
    if prompt != "cue":  # keys only when not the default, so earlier results stay current
        config["prompt"] = prompt
    if mode == "generate":
        config["match"] = match
    prov = provenance(run_dir, ckpt_id, analysis=analysis, data_fingerprint=data.fingerprint, config=config, seed=seed)
    path = layout(run_dir).result(analysis, ckpt_id)
    records_path = layout(run_dir).result(analysis, ckpt_id, ".records.jsonl")
    if not force and (done := fresh(path, prov)) is not None and _readable_records(records_path):
        return done
    rows = sample_facts(data.require(split), max_facts, seed)
    model, tok = load_checkpoint(ckpt_id, run_dir)
    if mode == "mcq":
        records = mcq_records(model, tok, rows, normalization=normalization, progress=progress, prompt=prompt)
    else:
        records = generation_records(model, tok, rows, progress=progress, match_mode=match)
    payload: dict[str, Any] = {"checkpoint": ckpt_id, "split": split, "mode": mode,
                               "metrics": M.summarize(records), "intervals": M.fast_accuracy_ci(records, bootstrap, seed)}
    if mode == "mcq":
        payload["accuracy_by_normalization"] = normalization_accuracy(records)
    roles = {"training": set(data.training_langs), "heldout": set(data.meta.get("heldout_langs", []))}
    payload["consistency_subsets"] = {name: M.total_consistency([r for r in records if r["lang"] in langs])
                                      for name, langs in roles.items() if len(langs) >= 2}
    payload["consistency_subsets_ci"] = {
        name: M.fast_accuracy_ci([r for r in records if r["lang"] in roles[name]], bootstrap, seed)["total_consistency"]["ci"]
        for name in payload["consistency_subsets"]} if bootstrap else {}
    atomic_write_text(records_path,
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return write_result(path, payload, prov)


def _readable_records(path: Path) -> bool:
    try:
        return bool(read_records(path))
    except PolyFactError:
        return False


def load_records(run_dir: str | Path, ckpt_id: str, analysis: str = "recall") -> list[dict]:
    return [r for _, r in read_records(layout(run_dir).result(analysis, ckpt_id, ".records.jsonl"))]


def load_result(run_dir: str | Path, ckpt_id: str, analysis: str = "recall") -> Recall:
    """A checkpoint's recall result (a one-line error when it is missing or damaged)."""
    return Recall.from_json(layout(run_dir).result(analysis, ckpt_id))


def paired_tests(run_dir: str | Path, reference: str, others: Sequence[str], analysis: str = "recall",
                 bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each checkpoint against ``reference``: McNemar on items, paired fact-bootstrap on mean
    accuracy and Total Consistency. Written to ``results/<analysis>/paired-<reference>.json``."""
    ref = load_records(run_dir, reference, analysis)
    out: dict[str, Any] = {}
    for other in others:
        recs = load_records(run_dir, other, analysis)
        out[other] = {"mcnemar": M.mcnemar(recs, ref), **M.paired_changes(recs, ref, n=bootstrap, seed=seed)}
    from polyfact.core.io import atomic_write_json

    atomic_write_json(layout(run_dir).result(analysis, f"paired-{reference}"),
                      {"reference": reference, "comparisons": out, "bootstrap": bootstrap, "seed": seed})
    return out


def score_file(path: str | Path, match: str | None = None, dedupe: bool = False) -> dict[str, Any]:
    """Metrics recomputed from a records or predictions file (see :func:`typed_records`); the
    output names the matcher used for predictions (``match``)."""
    records, used = typed_records(path, match, dedupe)
    out = M.summarize(records, with_rankc=True)
    if used:
        out["match"] = used
    return out
