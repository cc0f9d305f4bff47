"""Language registry: the study's 12 PolyFact languages and 10 held-out languages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from polyfact.core.errors import PolyFactError


@dataclass(frozen=True)
class Language:
    """One language: ISO 639-1 code, English name, main script, resource group, answer cue."""

    code: str
    name: str
    script: str
    group: str  # "high" | "low" | "heldout"
    answer_cue: str  # what precedes the answer in a prompt, e.g. "Answer:"

    @property
    def spaceless(self) -> bool:
        """True for scripts written without spaces between words (zh, ja)."""
        return self.script in SPACELESS_SCRIPTS


SPACELESS_SCRIPTS = frozenset({"Hans", "Hant", "Jpan", "Thai"})


def spaceless(code: str) -> bool:
    """Whether language ``code`` is written without spaces between words (unknown codes: False)."""
    lang = LANGUAGES.get(code)
    return bool(lang and lang.spaceless)


_ROWS = [
    # code, name, script, group, answer cue
    ("en", "English", "Latn", "high", "Answer:"),
    ("de", "German", "Latn", "high", "Antwort:"),
    ("id", "Indonesian", "Latn", "low", "Jawaban:"),
    ("pt", "Portuguese", "Latn", "high", "Resposta:"),
    ("ar", "Arabic", "Arab", "high", "الإجابة:"),
    ("bn", "Bengali", "Beng", "low", "উত্তর:"),
    ("sw", "Swahili", "Latn", "low", "Jibu:"),
    ("es", "Spanish", "Latn", "high", "Respuesta:"),
    ("ru", "Russian", "Cyrl", "high", "Ответ:"),
    ("fr", "French", "Latn", "high", "Réponse :"),
    ("ja", "Japanese", "Jpan", "high", "答え："),
    ("zh", "Chinese", "Hans", "high", "答案："),
    ("ca", "Catalan", "Latn", "heldout", "Resposta:"),
    ("el", "Greek", "Grek", "heldout", "Απάντηση:"),
    ("fa", "Persian", "Arab", "heldout", "پاسخ:"),
    ("he", "Hebrew", "Hebr", "heldout", "תשובה:"),
    ("hu", "Hungarian", "Latn", "heldout", "Válasz:"),
    ("ko", "Korean", "Kore", "heldout", "답:"),
    ("nl", "Dutch", "Latn", "heldout", "Antwoord:"),
    ("tr", "Turkish", "Latn", "heldout", "Cevap:"),
    ("uk", "Ukrainian", "Cyrl", "heldout", "Відповідь:"),
    ("vi", "Vietnamese", "Latn", "heldout", "Trả lời:"),
]

LANGUAGES: dict[str, Language] = {r[0]: Language(*r) for r in _ROWS}
"""All 22 languages in the study's order (the 12 PolyFact languages, then the held-out ones)."""

POLYFACT_LANGS: tuple[str, ...] = tuple(c for c, lang in LANGUAGES.items() if lang.group != "heldout")
HELDOUT_LANGS: tuple[str, ...] = tuple(c for c, lang in LANGUAGES.items() if lang.group == "heldout")
HIGH_RESOURCE: tuple[str, ...] = tuple(c for c, lang in LANGUAGES.items() if lang.group == "high")
LOW_RESOURCE: tuple[str, ...] = tuple(c for c, lang in LANGUAGES.items() if lang.group == "low")
ALL_LANGS: tuple[str, ...] = tuple(LANGUAGES)


def get_language(code: str) -> Language:
    """The registered language ``code``; a one-line error listing the known codes otherwise."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise PolyFactError(
            f"unknown language code {code!r}; use one of: {' '.join(LANGUAGES)}"
        ) from None


def parse_langs(spec: str | Iterable[str] | None, default: Iterable[str] = ALL_LANGS) -> list[str]:
    """Parse ``"en,de"`` / ``["en", "de"]`` / group names (``polyfact``, ``heldout``, ``all``,
    ``high``, ``low``) into validated codes in the study's order, without duplicates."""
    if spec is None:
        return list(default)
    items = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec)
    groups = {"all": ALL_LANGS, "polyfact": POLYFACT_LANGS, "heldout": HELDOUT_LANGS,
              "high": HIGH_RESOURCE, "low": LOW_RESOURCE}
    chosen: set[str] = set()
    for item in items:
        if item in groups:
            chosen.update(groups[item])
        else:
            chosen.add(get_language(item).code)
    if not chosen:
        raise PolyFactError("empty language list; pass codes such as --langs en,de,ja")
    return order_langs(chosen)


def order_langs(codes: Iterable[str]) -> list[str]:
    """Codes in the study's order (registered ones first, then unknown ones alphabetically)."""
    codes = set(codes)
    known = [c for c in LANGUAGES if c in codes]
    return known + sorted(codes - set(known))


def language_group(code: str) -> str:
    """``high``, ``low`` or ``heldout``; ``other`` for codes outside the registry."""
    lang = LANGUAGES.get(code)
    return lang.group if lang else "other"
