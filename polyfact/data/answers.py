"""Answer normalization and matching across scripts.

Written by hand because no library bundles these rules. Three modes of :func:`match`:

``study``    the PolyFact study's KLAR matcher (``evaluate/evaluate_klar.py``): NFC, lowercase,
             runs of whitespace and of ASCII, CJK and typographic punctuation become one space;
             correct iff equal, or the gold is one whole whitespace token of the prediction, or
             the prediction starts with the gold. Hyphens and dashes are kept ("uralo-ruso" does
             not contain "ruso"). Use it to set numbers beside the paper's.
``lenient``  the project's: NFKC, casefold, *all* Unicode punctuation removed, Arabic-script letter
             variants unified, spaceless scripts (zh, ja) compared without spaces; correct when
             the gold is a whole token run inside the prediction or its prefix. It accepts more
             (on the study's released KLAR judgments, 1.2 % more answers): use it for scripts the
             study's rule handles poorly (Arabic letter variants, spaced CJK output).
``exact``    the lenient normalization, equality only.

:func:`resolve_option` maps a free-form answer to one of a question's options, for the reward,
scoring and evaluation alike, under the study's two rules (``head``, ``paper``) or the project's
(``lenient``); :func:`first_line` is the one place that cuts a completion to its answer line.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from polyfact.core.errors import PolyFactError
from polyfact.core.registry import choices
from polyfact.data.languages import spaceless
_ARABIC_MAP = str.maketrans(
    {
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",  # alef variants
        "ة": "ه",  # ta marbuta
        "ى": "ي", "ی": "ي", "ې": "ي",  # alef maqsura, Persian/Pashto yeh
        "ك": "ک",  # Arabic kaf -> Persian keheh (one form for both)
        "ۀ": "ه", "ە": "ه",
        "ـ": None,  # tatweel
    }
)
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670\u06d6-\u06ed]")
_LETTER = re.compile(r"^\s*[\(\[]?([A-Da-d])\s*(?:[\)\]\.:：、]|$)")
_STUDY_PUNCT = re.compile(r"[\s\.\,\!\?\:\;\"\'\(\)\[\]\{\}«»“”‘’、。，．！？；：]+")
MODES = choices("match mode", {
    "study": "the study's KLAR matcher (equal, a whole token of the prediction, or its prefix)",
    "lenient": "the project's: all punctuation dropped, the gold a token run or prefix of the prediction",
    "exact": "the lenient normalization, equality only",
})
RESOLVERS = choices("answer resolver", {
    "head": "the study's HEAD resolver: exact option, bare letters resolve to nothing, then unique containment "
            "with a 2-character guard",
    "paper": "the study's paper-era resolver (5b537cb): exact option, then a leading letter a–d, then unique "
             "containment with no length guard",
    "lenient": "the project's: a bare letter, an exact option, then the one (or longest) option matched leniently",
})
_ANSWER_LABEL = re.compile(r"^\s*(answer|answer text)\s*:\s*", re.I)
_BARE_LETTER = re.compile(r"[abcd][\.\)\]:\-]?")
_LEADING_LETTER = re.compile(r"^([abcd])(?:[\.\)\]:\-\s]|$)")


def first_line(text: str) -> str:
    """The answer line of a completion: its first line, stripped (the study's rule everywhere)."""
    return str(text).split("\n")[0].strip()


def study_answer_text(text: str) -> str:
    """The study's resolver normalization of an answer or option (``normalize_text``): lowercase,
    quotes unified, leading quotes/brackets/colons/dashes and trailing ones plus ``. , ! ?``
    stripped, whitespace collapsed."""
    t = str(text).strip().lower().replace("\u2019", "'").replace("`", "'").replace("\u201c", '"')
    t = t.replace("\u201d", '"')
    t = re.sub(r"^[\"'`\s:;\-\u2013\u2014\(\)\[\]\{\}]+", "", t)
    t = re.sub(r"[\"'`\s:;\-\u2013\u2014\(\)\[\]\{\}\.,!?]+$", "", t)
    return re.sub(r"\s+", " ", t)


def study_normalize(text: str) -> str:
    """The study's KLAR normalization: NFC, lowercase, punctuation and whitespace runs → one space."""
    return _STUDY_PUNCT.sub(" ", unicodedata.normalize("NFC", str(text)).lower().strip()).strip()


def _study_match(prediction: str, gold: str) -> bool:
    p, t = study_normalize(prediction), study_normalize(gold)
    if not p or not t:
        return False
    return p == t or t in p.split() or p.startswith(t)


def normalize(text: str, lang: str = "en") -> str:
    """Canonical form for comparison: NFKC, casefold, Arabic-script variants unified,
    punctuation dropped, whitespace collapsed (removed entirely for zh and ja)."""
    if not isinstance(text, str):
        raise PolyFactError(f"expected text to normalize, got {type(text).__name__}")
    s = unicodedata.normalize("NFKC", text).casefold()
    s = _ARABIC_MARKS.sub("", s.translate(_ARABIC_MAP))
    s = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in s)
    if spaceless(lang):
        return "".join(s.split())
    return " ".join(s.split())


def _contains_token_run(haystack: str, needle: str, spaceless: bool) -> bool:
    if spaceless:
        return needle in haystack
    h, n = haystack.split(), needle.split()
    return any(h[i : i + len(n)] == n for i in range(len(h) - len(n) + 1))


def match(
    prediction: str,
    gold: str,
    aliases: Sequence[str] = (),
    lang: str = "en",
    mode: str = "lenient",
) -> bool:
    """Whether ``prediction`` gives the answer ``gold`` (or one of its ``aliases``) under ``mode``
    (``study``, ``lenient`` or ``exact``; see the module docstring)."""
    MODES.check(mode, "match mode")
    if mode == "study":
        return any(_study_match(prediction, cand) for cand in (gold, *aliases))
    pred = normalize(prediction, lang)
    if not pred:
        return False
    no_spaces = spaceless(lang)
    for cand in (gold, *aliases):
        c = normalize(cand, lang)
        if not c:
            continue
        if pred == c:
            return True
        if mode == "lenient" and (pred.startswith(c) or _contains_token_run(pred, c, no_spaces)):
            return True
    return False


def resolve_option(output: str, options: Sequence[str], lang: str = "en", mode: str = "head") -> int | None:
    """The index of the option a free-form answer names, or None (``mode``: see :data:`RESOLVERS`).

    ``head`` and ``paper`` first take the answer line (an ``Answer:``/``Answer text:`` label
    stripped) and compare :func:`study_answer_text` forms. ``head``: an exact option (the first);
    a bare letter (``B``, ``b)``) names nothing; else the one option contained in the answer or
    containing it (the answer at least 2 characters). ``paper``: an exact option; else a leading
    letter a–d followed by punctuation, a space or the end ("A. Paris", "a Paris", "B"); else the
    one option contained either way, with no length guard. A hedge naming two options names
    nothing under both. ``lenient`` (the project's): a bare letter, an exact option under
    :func:`normalize`, else the one option matched leniently (the longest when several are nested)."""
    RESOLVERS.check(mode, "resolver")
    if mode == "lenient":
        return _resolve_lenient(output, options, lang)
    pred = study_answer_text(first_line(_ANSWER_LABEL.sub("", str(output).strip())))
    if not pred:
        return None
    opts = [study_answer_text(o) for o in options]
    exact = next((i for i, o in enumerate(opts) if o and pred == o), None)
    if exact is not None:
        return exact
    if mode == "head":
        if _BARE_LETTER.fullmatch(pred):
            return None
        hits = [i for i, o in enumerate(opts) if o and ((len(pred) >= 2 and pred in o) or o in pred)]
    else:
        m = _LEADING_LETTER.match(pred)
        if m and "abcd".index(m.group(1)) < len(options):
            return "abcd".index(m.group(1))
        hits = [i for i, o in enumerate(opts) if o and (pred in o or o in pred)]
    return hits[0] if len(hits) == 1 else None


def _resolve_lenient(output: str, options: Sequence[str], lang: str) -> int | None:
    m = _LETTER.match(output)
    if m and len(options) > "abcd".index(m.group(1).lower()):
        return "abcd".index(m.group(1).lower())
    exact = [i for i, o in enumerate(options) if match(output, o, lang=lang, mode="exact")]
    if len(exact) == 1:
        return exact[0]
    lenient = [i for i, o in enumerate(options) if match(output, o, lang=lang, mode="lenient")]
    if len(lenient) == 1:
        return lenient[0]
    if len(lenient) > 1:  # prefer the longest option the output contains ("South Sudan" over "Sudan")
        best = max(lenient, key=lambda i: len(normalize(options[i], lang)))
        if sum(len(normalize(options[i], lang)) == len(normalize(options[best], lang)) for i in lenient) == 1:
            return best
    return None
