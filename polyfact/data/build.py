"""Facts → question rows: coverage filters, relation balancing, MCQ options, splits by fact."""

from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from polyfact.data.answers import normalize
from polyfact.core.errors import PolyFactError
from polyfact.core.registry import choices
from polyfact.data.facts import Fact
from polyfact.data.languages import POLYFACT_LANGS, get_language, order_langs, spaceless
from polyfact.data.relations import RELATIONS

SPLITS = ("train", "validation", "test")


@dataclass
class BuildConfig:
    """How facts become rows. ``split_fracs`` are train/validation/test shares of facts."""

    langs: list[str]
    seed: int = 0
    n_options: int = 4
    split_fracs: tuple[float, float, float] = (0.5, 0.1, 0.4)
    min_coverage: float = 1.0
    max_per_relation: int | None = None
    single_object: bool = False
    training_langs: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.split_fracs) != 3 or any(f < 0 for f in self.split_fracs) or not math.isclose(
            sum(self.split_fracs), 1.0, abs_tol=1e-6
        ):
            raise PolyFactError(
                f"split fractions {self.split_fracs} must be three non-negative numbers summing to 1, e.g. 0.7,0.1,0.2"
            )
        if not 0 < self.min_coverage <= 1:
            raise PolyFactError(f"min_coverage {self.min_coverage} must be in (0, 1]")
        if self.n_options < 2:
            raise PolyFactError(f"n_options {self.n_options} must be at least 2")
        if self.training_langs is None:
            self.training_langs = [c for c in self.langs if c in POLYFACT_LANGS] or list(self.langs)

    @property
    def heldout_langs(self) -> list[str]:
        return [c for c in self.langs if c not in (self.training_langs or [])]


@dataclass
class BuildReport:
    """What the builder kept and dropped, for the dataset card and the CLI."""

    facts_in: int = 0
    dropped: Counter = field(default_factory=Counter)


def prompt_for(question: str, lang: str) -> str:
    """The text a model is conditioned on before an answer: question, newline, answer cue."""
    return f"{question}\n{get_language(lang).answer_cue}"


def continuation(prompt: str, answer: str, lang: str) -> str:
    """The answer as it follows ``prompt``: after a space, except in scripts written without
    spaces, after full-width punctuation (``答案：``) or after whitespace."""
    tail = prompt[-1:]
    if spaceless(lang) or not tail or tail.isspace() or unicodedata.east_asian_width(tail) in ("F", "W"):
        return answer
    return " " + answer


PROMPT_STYLES = choices("prompt style", {
    "cue": "the row's own question and localized answer cue",
    "study": "the study's scaffold (Question: …\\nAnswer:; GRPO rollouts: the options listed, answer text asked)",
})


def mcq_prompt(row: dict, style: str = "cue") -> str:
    """The MCQ scoring prompt of a row: the row's own (question + localized answer cue), or the
    study's scaffold ``Question: {question}\nAnswer:`` (``evaluate_crosslingual_consistency.py``)."""
    if PROMPT_STYLES.check(style, "prompt") == "study":
        return f"Question: {row['question']}\nAnswer:"
    return row["prompt"]


LETTERS = "ABCDEFGHIJ"


def letter_prompt(row: dict) -> str:
    """The study's MCQ scaffold with the options shown (its SFT, and Global-MMLU):
    ``Question: {q}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:`` (the answer is the letter)."""
    options = "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(row["options"]))
    return f"Question: {row['question']}\n{options}Answer:"


def option_continuation(prompt: str, option: str, lang: str, style: str = "cue") -> str:
    """An option as scored after ``prompt``: :func:`continuation` for the cue style; the study
    always puts one space before the option text."""
    return " " + option if style == "study" else continuation(prompt, option, lang)


def rollout_prompt(row: dict, style: str = "cue") -> str:
    """What a GRPO rollout answers: the row's prompt (cue), or the study's scaffold with the four
    options listed (letters A–D, the answer asked as text in the question's language)."""
    if PROMPT_STYLES.check(style, "prompt") == "cue":
        return row["prompt"]
    name = get_language(row["lang"]).name
    options = "".join(f"{'ABCDEFGH'[i]}. {o}\n" for i, o in enumerate(row["options"]))
    return (f"You will be given one factual multiple-choice question in {name}.\n"
            f"Return only the full answer text in {name}.\nDo not return the letter.\nDo not explain.\n\n"
            f"Question: {row['question']}\n{options}\nAnswer text:")


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


def _filter(facts: list[Fact], cfg: BuildConfig, report: BuildReport) -> list[Fact]:
    need = math.ceil(cfg.min_coverage * len(cfg.langs) - 1e-9)
    kept = []
    for f in facts:
        if not f.options and f.relation not in RELATIONS:
            report.dropped["unknown relation"] += 1
        elif len(f.langs() & set(cfg.langs)) < need:
            report.dropped["label coverage"] += 1
        else:
            kept.append(f)
    if cfg.single_object:
        by_key: dict[tuple[str, str], Fact] = {}
        for f in sorted(kept, key=lambda f: f.fact_id):
            by_key.setdefault((f.subject_id, f.relation), f)
        report.dropped["single object"] += len(kept) - len(by_key)
        kept = list(by_key.values())
    if cfg.max_per_relation:
        by_rel: dict[str, list[Fact]] = defaultdict(list)
        for f in sorted(kept, key=lambda f: f.fact_id):
            by_rel[f.relation].append(f)
        kept = []
        for rel, group in sorted(by_rel.items()):
            if len(group) > cfg.max_per_relation:
                report.dropped["relation balance"] += len(group) - cfg.max_per_relation
                group = sorted(_rng(cfg.seed, "balance", rel).sample(group, cfg.max_per_relation),
                               key=lambda f: f.fact_id)
            kept.extend(group)
    return sorted(kept, key=lambda f: f.fact_id)


def _distractors(fact: Fact, langs: Sequence[str], pool: list[str], labels: dict[str, dict[str, str]],
                 true_objects: set[str], k: int, seed: int) -> list[str] | None:
    """``k`` object ids of the same relation, none a true object of the subject, each labelled in
    every language of ``langs`` and distinct (after normalization) from the gold and each other."""
    rng = _rng(seed, "options", fact.fact_id)
    chosen: list[str] = []
    taken = {lang: {normalize(fact.object[lang], lang)} for lang in langs}
    for oid in rng.sample(pool, len(pool)):
        if oid in true_objects or oid in chosen:
            continue
        lab = labels[oid]
        if any(lang not in lab or normalize(lab[lang], lang) in taken[lang] for lang in langs):
            continue
        chosen.append(oid)
        for lang in langs:
            taken[lang].add(normalize(lab[lang], lang))
        if len(chosen) == k:
            return chosen
    return None


def _assign_splits(facts: list[Fact], cfg: BuildConfig) -> dict[str, str]:
    if facts and all(f.split in SPLITS for f in facts):  # released data keeps its own splits
        return {f.fact_id: str(f.split) for f in facts}
    ids = sorted(f.fact_id for f in facts)
    _rng(cfg.seed, "splits").shuffle(ids)
    n = len(ids)
    n_train = round(cfg.split_fracs[0] * n)
    n_val = round(cfg.split_fracs[1] * n)
    out = {}
    for i, fid in enumerate(ids):
        out[fid] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    return out


def build_rows(facts: Iterable[Fact], cfg: BuildConfig) -> tuple[dict[str, list[dict]], BuildReport]:
    """Turn facts into MCQ rows, one per fact × language, grouped by split.

    Options are the gold plus ``n_options - 1`` distractors drawn from the same relation's
    objects (never another true object of the subject), the same entities in every language,
    shuffled per language with the seed. Facts that come with their own options keep them.
    """
    all_facts = list(facts)
    report = BuildReport(facts_in=len(all_facts))
    if not all_facts:
        raise PolyFactError("the source produced no facts; check the source path, languages and relations")
    true_objects: dict[tuple[str, str], set[str]] = defaultdict(set)
    labels: dict[str, dict[str, str]] = {}
    pools: dict[str, set[str]] = defaultdict(set)
    for f in all_facts:
        true_objects[(f.subject_id, f.relation)].add(f.object_id)
        labels.setdefault(f.object_id, {}).update({k: v for k, v in f.object.items() if v})
        pools[f.relation].add(f.object_id)
    sorted_pools = {rel: sorted(p) for rel, p in pools.items()}

    kept = _filter(all_facts, cfg, report)
    rows_by_fact: dict[str, list[dict]] = {}
    for f in kept:
        langs = order_langs(f.langs() & set(cfg.langs))
        if f.options:
            rows_by_fact[f.fact_id] = [_preset_row(f, lang) for lang in langs]
            continue
        extra = _distractors(f, langs, sorted_pools[f.relation], labels,
                             true_objects[(f.subject_id, f.relation)], cfg.n_options - 1, cfg.seed)
        if extra is None:
            report.dropped["too few distractors"] += 1
            continue
        entity_ids = [f.object_id, *extra]
        rows = []
        for lang in langs:
            order = _rng(cfg.seed, "shuffle", f.fact_id, lang).sample(range(len(entity_ids)), len(entity_ids))
            ids = [entity_ids[i] for i in order]
            question = RELATIONS[f.relation].question(lang, f.subject[lang])
            rows.append(_row(f, lang, question, prompt_for(question, lang),
                             [labels[i][lang] if i != f.object_id else f.object[lang] for i in ids],
                             ids, order.index(0), []))
        rows_by_fact[f.fact_id] = rows
    if not rows_by_fact:
        raise PolyFactError(
            f"no fact passed the filters (dropped: {dict(report.dropped)}); lower --min-coverage or add languages"
        )
    split_of = _assign_splits([f for f in kept if f.fact_id in rows_by_fact], cfg)
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for fid in sorted(rows_by_fact):
        for row in rows_by_fact[fid]:
            row["split"] = split_of[fid]
            out[split_of[fid]].append(row)
    return out, report


def _row(f: Fact, lang: str, question: str, prompt: str, options: list[str], option_ids: list[str],
         answer_index: int, paraphrases: list[str]) -> dict:
    return {
        "fact_id": f.fact_id,
        "relation": f.relation,
        "lang": lang,
        "subject_id": f.subject_id,
        "object_id": f.object_id,
        "subject": f.subject.get(lang, ""),
        "object": options[answer_index],
        "question": question,
        "prompt": prompt,
        "options": options,
        "option_ids": option_ids,
        "answer_index": answer_index,
        "aliases": list(f.object_aliases.get(lang, [])),
        "paraphrases": paraphrases,
        "split": "",
    }


def _preset_row(f: Fact, lang: str) -> dict:
    options = f.options[lang]
    question = f.questions.get(lang, "")
    prompt = f.prompts.get(lang) or prompt_for(question, lang)
    ids = f.option_ids.get(lang) or [f"{f.fact_id}#{i}" for i in range(len(options))]
    return _row(f, lang, question, prompt, list(options), ids, f.answer_index[lang], f.paraphrases.get(lang, []))
