"""Rewards of fact-grouped GRPO. A rollout answers one fact once in every training language.

``study`` (the PolyFact study's, ``train_wikifact_grpo_accelerate.py``): each language's answer is
resolved to at most one of its options (:func:`resolve_to_option`); per language +1 when it
resolves to the gold, 0 to another option, −0.5 when it resolves to nothing, −``empty_penalty``
when empty; the rollout's reward is the **sum** over languages plus ``bonus`` when every language
is correct (the study's ablations: bonus 0 and 5). :meth:`RewardConfig.study` makes it.

``correctness`` (the project's): per-language +1 correct (lenient match), −0.5 wrong, −1 empty,
**averaged** over languages, plus a consistency bonus (``all``, ``power``, ``ladder``).
``agreement`` (label-free): each language is rewarded for naming the entity most languages name.

Hedging earns nothing under any kind: an answer that names two options is unresolved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from core.errors import PolyFactError
from polyfact.answers import match, normalize

BONUSES = ("none", "all", "power", "ladder")
KINDS = ("study", "correctness", "agreement")


@dataclass
class RewardConfig:
    """Reward values and the consistency bonus (see the module docstring). For ``study``,
    ``wrong`` is the value of a resolved wrong option (0), ``unresolved`` of an answer that
    resolves to no option (−0.5), ``empty`` of an empty answer (−empty_penalty), and
    ``bonus_weight`` the all-correct bonus added to the **sum**."""

    kind: str = "correctness"
    correct: float = 1.0
    wrong: float = -0.5
    unresolved: float = -0.5
    empty: float = -1.0
    bonus: str = "all"
    bonus_weight: float = 1.0
    ladder_steps: int = 4

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PolyFactError(f"unknown reward {self.kind!r}; use one of: {', '.join(KINDS)}")
        if self.bonus not in BONUSES:
            raise PolyFactError(f"unknown consistency bonus {self.bonus!r}; use one of: {', '.join(BONUSES)}")

    @classmethod
    def study(cls, bonus: float = 1.0, empty_penalty: float = 0.0) -> "RewardConfig":
        """The study's reward: +1 / 0 / −0.5 / −empty_penalty per language, summed, + ``bonus``
        when all are correct (its ablations: ``bonus=0`` and ``bonus=5``)."""
        return cls(kind="study", correct=1.0, wrong=0.0, unresolved=-0.5, empty=-float(empty_penalty),
                   bonus="all" if bonus else "none", bonus_weight=float(bonus))


def _study_text(text: str) -> str:
    """The study's reward normalization: lowercase, quotes unified, leading/trailing quotes,
    brackets, colons and dashes (and trailing . , ! ?) stripped, whitespace collapsed."""
    import re

    t = text.strip().lower().replace("\u2019", "'").replace("`", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"^[\"'`\s:;\-\u2013\u2014\(\)\[\]\{\}]+", "", t)
    t = re.sub(r"[\"'`\s:;\-\u2013\u2014\(\)\[\]\{\}\.,!?]+$", "", t)
    return re.sub(r"\s+", " ", t)


def resolve_to_option(answer: str, options: Sequence[str]) -> int | None:
    """The option an answer names, as the study resolves it: its first line (an ``Answer:``
    label stripped), then an exact option text, else the one option contained in it or
    containing it (at least two characters). A bare letter (``B``, ``b)``) names nothing; an
    answer that names two options (a hedge) names nothing."""
    import re

    first = re.sub(r"^\s*(answer|answer text)\s*:\s*", "", answer.strip(), flags=re.I).split("\n")[0]
    pred = _study_text(first)
    if not pred or re.fullmatch(r"[abcd][\.\)\]:\-]?", pred):
        return None
    opts = [_study_text(o) for o in options]
    exact = [i for i, o in enumerate(opts) if o and pred == o]
    if len(exact) == 1:
        return exact[0]
    hits = [i for i, o in enumerate(opts) if o and ((len(pred) >= 2 and pred in o) or o in pred)]
    return hits[0] if len(hits) == 1 else None


def language_reward(answer: str, row: Mapping, cfg: RewardConfig) -> tuple[float, bool]:
    """Reward of one language's answer and whether it is correct.

    ``study``: resolved to the gold option or not (see :func:`resolve_to_option`). Otherwise a
    lenient match of the gold that does not also match another option (a hedge is wrong)."""
    if not answer.strip():
        return cfg.empty, False
    options = list(row.get("options") or [])
    if cfg.kind == "study":
        if not options:
            raise PolyFactError("the study reward resolves answers to options: rows need 'options' and 'answer_index'")
        idx = resolve_to_option(answer, options)
        if idx is None:
            return cfg.unresolved, False
        ok = idx == int(row["answer_index"])
        return (cfg.correct if ok else cfg.wrong), ok
    lang = row.get("lang", "en")
    ok = match(answer, row["object"], row.get("aliases", []), lang=lang, mode="lenient")
    if ok and options:
        gold = normalize(row["object"], lang)
        others = [o for o in options if normalize(o, lang) != gold]
        ok = not any(match(answer, o, lang=lang, mode="lenient") for o in others)  # a hedge names several
    return (cfg.correct if ok else cfg.wrong), ok


def consistency_bonus(k: int, n: int, cfg: RewardConfig) -> float:
    """Bonus for ``k`` correct languages out of ``n``."""
    if n <= 0 or cfg.bonus == "none":
        return 0.0
    if cfg.bonus == "all":
        return cfg.bonus_weight if k == n else 0.0
    if cfg.bonus == "power":
        return cfg.bonus_weight * (k / n) ** 4
    return cfg.bonus_weight * int(cfg.ladder_steps * k / n) / cfg.ladder_steps


def _entity(answer: str, row: Mapping) -> str | None:
    """The option entity an answer names in its language (None when it names none or several)."""
    hits = [oid for oid, label in zip(row["option_ids"], row["options"])
            if match(answer, label, lang=row["lang"], mode="lenient")]
    return hits[0] if len(set(hits)) == 1 else None


def rollout_reward(answers: Mapping[str, str], rows: Mapping[str, Mapping], cfg: RewardConfig) -> dict:
    """Reward of one rollout: the fact answered once in every language of ``rows``.

    Returns ``total``, ``per_lang`` rewards, ``correct`` flags (against the gold) and ``k``, the
    number of languages the bonus counts."""
    langs = list(rows)
    correct, per_lang = {}, {}
    for lang in langs:
        per_lang[lang], correct[lang] = language_reward(answers.get(lang, ""), rows[lang], cfg)
    if cfg.kind == "agreement":
        entities = {lang: _entity(answers.get(lang, ""), rows[lang]) if answers.get(lang, "").strip() else None
                    for lang in langs}
        votes = Counter(e for e in entities.values() if e is not None)
        majority = votes.most_common(1)[0][0] if votes and votes.most_common(1)[0][1] > 1 else None
        for lang in langs:
            if not answers.get(lang, "").strip():
                per_lang[lang] = cfg.empty
            else:
                per_lang[lang] = cfg.correct if majority is not None and entities[lang] == majority else cfg.wrong
        k = sum(1 for lang in langs if majority is not None and entities[lang] == majority)
    else:
        k = sum(correct.values())
    pooled = sum(per_lang.values()) if cfg.kind == "study" else sum(per_lang.values()) / max(len(langs), 1)
    return {"total": pooled + consistency_bonus(k, len(langs), cfg), "per_lang": per_lang, "correct": correct, "k": k}
