"""The core data model: a fact with per-language labels, before it becomes question rows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Fact:
    """One (subject, relation, object) triple with labels per language.

    ``fact_id`` is ``Q…|P…|Q…`` for Wikidata facts and ``<subject id>|<pid>|<object id>`` for
    the embedded CLDR facts. Importers of ready-made MCQ data (KLAR, released PolyFact) fill
    ``prompts``/``options``/``answer_index`` per language; the builder keeps them as they are.
    """

    fact_id: str
    relation: str
    subject_id: str
    object_id: str
    subject: dict[str, str]
    object: dict[str, str]
    object_aliases: dict[str, list[str]] = field(default_factory=dict)
    questions: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    paraphrases: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)
    answer_index: dict[str, int] = field(default_factory=dict)
    option_ids: dict[str, list[str]] = field(default_factory=dict)
    split: str | None = None  # a released split to keep; None lets the builder assign one

    def langs(self) -> set[str]:
        """Languages in which the fact can be asked (subject and object labelled, or preset MCQ)."""
        labelled = {lang for lang in self.subject if self.subject[lang] and self.object.get(lang)}
        return labelled | set(self.options)
