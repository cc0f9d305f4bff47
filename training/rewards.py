"""Rewards of fact-grouped GRPO. A rollout answers one fact once in every training language.

``study`` (the PolyFact study's, ``train_wikifact_grpo_accelerate.py``): each language's answer is
resolved to at most one of its options (``polyfact.data.answers.resolve_option`` under
``RewardConfig.resolver``: the study's HEAD or paper-era rule); per language +1 when it
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
from typing import Mapping

from polyfact.core.errors import PolyFactError
from polyfact.data.answers import match, normalize, resolve_option
from polyfact.training.config import RewardConfig


def language_reward(answer: str, row: Mapping, cfg: RewardConfig) -> tuple[float, bool]:
    """Reward of one language's answer and whether it is correct.

    ``study``: resolved to the gold option or not (``resolve_option`` with ``cfg.resolver``). Otherwise a
    lenient match of the gold that does not also match another option (a hedge is wrong)."""
    if not answer.strip():
        return cfg.empty, False
    options = list(row.get("options") or [])
    if cfg.kind == "study":
        if not options:
            raise PolyFactError("the study reward resolves answers to options: rows need 'options' and 'answer_index'")
        idx = resolve_option(answer, options, row.get("lang", "en"), mode=cfg.resolver)
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
