"""KLAR evaluated by the study's protocol (``evaluate/evaluate_klar.py``): 3-shot free-form
generation with template 1, 10 greedy tokens, the first line, scored by the study's matcher against
the single target, every sample kept. Its predictions file has the study's per-item fields
(``language, relation, index, target, pred``), so ``polyfact eval score --match study`` re-scores it.

The source is a KLAR release directory (``<lang>/<relation>.json`` with ``prompt_templates``), or a
dataset imported from one (its metadata names the release directory)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from polyfact.core.errors import PolyFactError
from polyfact.core.io import atomic_write_text
from polyfact.core.layout import layout
from polyfact.core.provenance import fresh, provenance, write_result

N_SHOT, SEED, TEMPLATE, MAX_NEW_TOKENS = 3, 42, 1, 10
SEEN = ("en", "es", "fr", "ru", "zh", "ja", "ar")  # KLAR's languages among the study's training languages


def klar_source(data_dir: str | Path) -> Path:
    """The KLAR release directory behind ``data_dir`` (itself, or the one its import recorded)."""
    path = Path(data_dir)
    if any(path.glob("*/*.json")) and not (path / "dataset_dict.json").exists():
        return path
    from polyfact.data.dataset import load_meta

    try:
        meta = load_meta(path)
    except PolyFactError:
        meta = None
    src = (meta or {}).get("source_path")
    if (meta or {}).get("source") == "klar" and src and Path(src).is_dir():
        return Path(src)
    raise PolyFactError(f"--protocol study needs KLAR's few-shot templates: {path} is neither a KLAR release directory "
                        "(<lang>/<relation>.json with prompt_templates) nor a KLAR import that names one; pass --data "
                        "the release directory")


def format_template(template: str, subject: str) -> str:
    """The study's ``format_template``: the subject filled, ``<mask>`` (and the space before it) removed."""
    return template.replace("<subject>", subject).replace(" <mask>", "").replace("<mask>", "").rstrip()


def study_prompts(src: Path, langs: list[str]) -> list[dict[str, Any]]:
    """Every sample of every (language, relation) file with its 3-shot prompt, drawn as the study does:
    one ``random`` stream seeded 42, languages in the given order, relations in file-name order."""
    from polyfact.data.sources.klar import _read_file

    rng = random.Random(SEED)
    items = []
    for lang in langs:
        files = sorted((src / lang).glob("*.json"))
        for path in files:
            templates, samples = _read_file(path)
            template = templates[TEMPLATE % len(templates)]  # the study's index, modulo the file's templates
            inputs = [format_template(template, s["subject"]) for s in samples]
            for i, s in enumerate(samples):
                pool = [j for j in range(len(samples)) if j != i]
                demos = rng.sample(pool, min(N_SHOT, len(pool)))
                prompt = "".join(f"{inputs[j]} {samples[j]['object']}\n" for j in demos) + f"{inputs[i]} "
                items.append({"language": lang, "relation": path.stem, "index": s["index"], "target": s["object"],
                              "prompt": prompt})
    return items


def klar_study_evaluation(run_dir: str | Path, ckpt_id: str, data_dir: str | Path, *, langs: list[str] | None = None,
                          batch_size: int = 32, force: bool = False) -> dict[str, Any]:
    """Evaluate ``ckpt_id`` on KLAR by the study's protocol; writes ``results/klar-study/<id>.json``
    and ``<id>.predictions.jsonl``."""
    import json

    from polyfact.analyses.recall import score_file
    from polyfact.core.checkpoints import load_checkpoint
    from polyfact.data.answers import match
    from polyfact.training.evaluation.scoring import generate_answers

    src = klar_source(data_dir)
    present = sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.json")))
    langs = [x for x in (langs or present) if x in present]
    if not langs:
        raise PolyFactError(f"{src} has no language folder of KLAR files")
    prov = provenance(run_dir, ckpt_id, analysis="klar-study", data_fingerprint=str(src.resolve()),
                      config={"n_shot": N_SHOT, "seed": SEED, "template": TEMPLATE, "max_new_tokens": MAX_NEW_TOKENS,
                              "langs": langs}, seed=SEED)
    run = layout(run_dir)
    path, preds_path = run.result("klar-study", ckpt_id), run.result("klar-study", ckpt_id, ".predictions.jsonl")
    if not force and preds_path.exists() and (done := fresh(path, prov)) is not None:
        return done
    items = study_prompts(src, langs)
    model, tok = load_checkpoint(ckpt_id, run_dir)
    answers = generate_answers(model, tok, [x["prompt"] for x in items], max_new_tokens=MAX_NEW_TOKENS,
                               batch_size=batch_size)
    import unicodedata

    preds = []
    for x, (pred,) in zip(items, answers):
        pred = unicodedata.normalize("NFC", pred).lower().strip()
        preds.append({k: x[k] for k in ("language", "relation", "index", "target")} | {
            "pred": pred, "correct": match(pred, x["target"], mode="study")})
    atomic_write_text(preds_path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds))
    metrics = score_file(preds_path, match="study")
    acc = metrics["accuracy"]
    seen = [acc[x] for x in acc if x in SEEN]
    unseen = [acc[x] for x in acc if x not in SEEN]
    payload = {"checkpoint": ckpt_id, "protocol": "study", "source": str(src), "n_items": len(preds),
               "metrics": metrics, "trained_mean": sum(seen) / len(seen) if seen else None,
               "heldout_mean": sum(unseen) / len(unseen) if unseen else None,
               "trained_langs": [x for x in acc if x in SEEN]}
    return write_result(path, payload, prov)
