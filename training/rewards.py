"""Rewards of the study's fact-grouped GRPO: per-language correctness, consistency bonuses, and a
label-free cross-language agreement reward."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from polyfact.answers import match
from core.errors import PolyFactError

BONUSES = ("none", "all", "power", "ladder")
KINDS = ("correctness", "agreement")


@dataclass
class RewardConfig:
    """Per-language reward (+1 correct, −0.5 wrong non-empty, −1 empty) and the consistency bonus
    added to a rollout: ``all`` B if every language is correct, ``power`` B·(k/n)^4, ``ladder``
    B·⌊steps·k/n⌋/steps."""

    kind: str = "correctness"
    correct: float = 1.0
    wrong: float = -0.5
    empty: float = -1.0
    bonus: str = "all"
    bonus_weight: float = 1.0
    ladder_steps: int = 4

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PolyFactError(f"unknown reward {self.kind!r}; use one of: {', '.join(KINDS)}")
        if self.bonus not in BONUSES:
            raise PolyFactError(f"unknown consistency bonus {self.bonus!r}; use one of: {', '.join(BONUSES)}")


def language_reward(answer: str, gold: str, aliases, lang: str, cfg: RewardConfig) -> tuple[float, bool]:
    """Reward of one language's answer and whether it is correct (lenient match)."""
    if not answer.strip():
        return cfg.empty, False
    ok = match(answer, gold, aliases, lang=lang, mode="lenient")
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

    ``correctness``: mean per-language reward against the gold, plus the consistency bonus.
    ``agreement`` (label-free): each language is rewarded for naming the entity most languages
    name (resolved through the options), plus the bonus on the count that agree.
    Returns ``total``, ``per_lang`` rewards, ``correct`` flags (against the gold, for logging)."""
    langs = list(rows)
    correct = {}
    per_lang = {}
    for lang in langs:
        r = rows[lang]
        per_lang[lang], correct[lang] = language_reward(answers.get(lang, ""), r["object"], r.get("aliases", []),
                                                        lang, cfg)
    if cfg.kind == "correctness":
        k = sum(correct.values())
    else:
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
    total = sum(per_lang.values()) / max(len(langs), 1) + consistency_bonus(k, len(langs), cfg)
    return {"total": total, "per_lang": per_lang, "correct": correct, "k": k}
