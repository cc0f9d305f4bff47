"""KLAR importer (Wang et al., ACL 2025): ``<dir>/<lang>/<relation>.json`` files.

Each file has 5 ``prompt_templates`` with ``<subject>`` and ``<mask>`` and ``samples`` with
``subject``, ``object``, ``object_candidates`` (10, comma-separated, aligned across languages)
and ``index`` (aligns a fact across languages). Candidates become the options (shuffled per
language with the seed); the first template is the prompt, all five are kept as paraphrases.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from polyfact.core.errors import PolyFactError
from polyfact.core.io import read_json
from polyfact.data.facts import Fact
from polyfact.data.sources import validate as V

LICENSE = "KLAR (Wang et al., ACL 2025), as released by its authors"

# KLAR relation name -> Wikidata property id (reference table of Wikidata's own ids).
KLAR_PIDS = {
    "applies_to_jurisdiction": "P1001", "capital": "P36", "capital_of": "P1376", "continent": "P30",
    "country_of_citizenship": "P27", "developer": "P178", "field_of_work": "P101",
    "headquarters_location": "P159", "instrument": "P1303", "language_of_work_or_name": "P407",
    "languages_spoken": "P1412", "location_of_formation": "P740", "manufacturer": "P176",
    "native_language": "P103", "occupation": "P106", "official_language": "P37", "owned_by": "P127",
    "place_of_birth": "P19", "place_of_death": "P20", "religion": "P140",
}


def _prefix(template: str, subject: str) -> str:
    """The template with the subject filled, cut before ``<mask>``: the cloze prompt."""
    return template.replace("<subject>", subject).split("<mask>")[0].rstrip()


def _read_file(path: Path) -> tuple[list[str], list[dict]]:
    """A KLAR file's templates and samples, each checked (one-line errors naming the file and sample)."""
    data = read_json(path, "KLAR file", "re-download it")
    if not isinstance(data, dict):
        raise PolyFactError(f"KLAR file {path} must hold an object with 'prompt_templates' and 'samples'")
    templates, samples = data.get("prompt_templates"), data.get("samples")
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise PolyFactError(f"KLAR file {path}: 'prompt_templates' must be a non-empty list of texts")
    for k, t in enumerate(templates, 1):
        V.template(t, ("<subject>", "<mask>"), f"KLAR file {path} template {k}")
    if not isinstance(samples, list):
        raise PolyFactError(f"KLAR file {path}: 'samples' must be a list, got {type(samples).__name__}")
    for i, s in enumerate(samples, 1):
        if not isinstance(s, dict):
            raise PolyFactError(f"KLAR file {path}: sample {i} is not an object")
        for key in ("index", "subject", "object", "object_candidates"):
            if key not in s:
                raise PolyFactError(f"KLAR file {path}: sample {i} lacks {key!r}")
        for key in ("subject", "object", "object_candidates"):
            if not isinstance(s[key], str):
                raise PolyFactError(f"KLAR file {path}: sample {i}: {key!r} must be text, got {s[key]!r}")
        if not isinstance(s["index"], (int, str)) or isinstance(s["index"], bool):
            raise PolyFactError(f"KLAR file {path}: sample {i}: 'index' must be an integer or text")
    return templates, samples


def klar_facts(src: str | Path, seed: int = 0, dropped: dict[str, int] | None = None) -> list[Fact]:
    """All KLAR facts found under ``src``; per-language MCQ rows are preset on each fact."""
    src = Path(src)
    files = sorted(src.glob("*/*.json"))
    if not files:
        raise PolyFactError(f"no KLAR files under {src}; expected <dir>/<lang>/<relation>.json")
    dropped = dropped if dropped is not None else defaultdict(int)
    facts: dict[str, Fact] = {}
    seen: dict[tuple, str] = {}
    for path in files:
        lang, rel = V.language_folder(path.parent), path.stem
        templates, samples = _read_file(path)
        pid = KLAR_PIDS.get(rel, rel)
        for i, s in enumerate(samples, 1):
            fid = f"klar:{rel}:{s['index']}"
            V.unique((fid, lang), seen, f"KLAR file {path} sample {i}")
            candidates = [c.strip() for c in str(s["object_candidates"]).split(",") if c.strip()]
            if s["object"] not in candidates:
                dropped["gold not among candidates"] = dropped.get("gold not among candidates", 0) + 1
                continue
            if len(set(candidates)) != len(candidates):
                dropped["duplicate candidates"] = dropped.get("duplicate candidates", 0) + 1
                continue
            f = facts.setdefault(fid, Fact(fid, pid, f"klar:{rel}:{s['index']}:s", f"klar:{rel}:{s['index']}:o", {}, {}))
            f.subject[lang], f.object[lang] = s["subject"], s["object"]
            order = random.Random(f"{seed}|klar|{fid}|{lang}").sample(range(len(candidates)), len(candidates))
            f.options[lang] = [candidates[i] for i in order]
            f.option_ids[lang] = [f"{fid}#c{i}" for i in order]
            f.answer_index[lang] = f.options[lang].index(s["object"])
            f.prompts[lang] = _prefix(templates[0], s["subject"])
            f.questions[lang] = f.prompts[lang]
            f.paraphrases[lang] = [_prefix(t, s["subject"]) for t in templates]
    return list(facts.values())
