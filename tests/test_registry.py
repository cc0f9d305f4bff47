"""Language and relation registries: coverage of templates, groups, errors, Korean particles."""

import pytest

from polyfact.core.errors import PolyFactError
from polyfact.data.languages import ALL_LANGS, HELDOUT_LANGS, LANGUAGES, POLYFACT_LANGS, parse_langs
from polyfact.data.relations import RELATIONS, get_relation, render
from polyfact.data.sources import cldr

RELEASE = "P17 P19 P20 P27 P30 P37 P38 P50 P57 P61 P69 P84 P108 P136 P170 P176 P178 P407 P495 P36 P47".split()


def test_language_groups_match_the_study():
    assert list(POLYFACT_LANGS) == "en de id pt ar bn sw es ru fr ja zh".split()
    assert set(HELDOUT_LANGS) == set("ca el fa he hu ko nl tr uk vi".split())
    assert {c for c, lang in LANGUAGES.items() if lang.group == "low"} == {"id", "bn", "sw"}
    assert all(lang.name and lang.script and lang.answer_cue for lang in LANGUAGES.values())


def test_parse_langs_orders_and_validates():
    assert parse_langs("zh,en,heldout")[:2] == ["en", "zh"]
    assert len(parse_langs("all")) == 22
    with pytest.raises(PolyFactError, match="unknown language code 'xx'"):
        parse_langs("en,xx")


def test_every_relation_has_a_question_in_all_22_languages():
    for pid in RELEASE + list(cldr.RELATIONS):
        rel = get_relation(pid)
        assert set(rel.questions) == set(ALL_LANGS), pid
        for lang, tpl in rel.questions.items():
            assert tpl.count("{subject}") == 1, (pid, lang)
            assert "{object}" not in tpl


def test_embedded_relations_have_statements_in_all_languages():
    for pid in cldr.RELATIONS:
        rel = RELATIONS[pid]
        assert set(rel.statements) == set(ALL_LANGS), pid
        for lang in ALL_LANGS:
            s = rel.statement(lang, "S", "O")
            assert "S" in s and "O" in s and "{" not in s


def test_korean_particles_follow_the_last_syllable():
    assert render("{subject}은(는) 어디?", "ko", subject="서울") == "서울은 어디?"  # 울 has a final consonant
    assert render("{subject}은(는) 어디?", "ko", subject="파리") == "파리는 어디?"
    assert render("{subject}와(과) 국경", "ko", subject="독일") == "독일과 국경"
    assert render("{subject}와(과) 국경", "ko", subject="스위스") == "스위스와 국경"
    assert render("{subject}을(를)", "ko", subject="Apple") == "Apple을(를)"  # not Hangul: keep both


def test_unknown_relation_error_names_the_fix():
    with pytest.raises(PolyFactError, match="unknown relation 'P9999'"):
        get_relation("P9999")


def _help(*args: str) -> str:
    import re

    from tests.helpers import cli

    r = cli(*args, "--help")
    assert r.returncode == 0, r.stderr
    return re.sub(r"[\s│|]+", " ", r.stdout)  # rich wraps help text in boxes


def test_every_registered_name_is_in_the_command_line_help():
    from polyfact.analyses.texts import TEXT_SOURCES
    from polyfact.interp.registry import BACKENDS, HEAD_METHODS
    from polyfact.pipeline.stages import STAGES
    from polyfact.data.make import IMPORTS, SOURCES
    from polyfact.training.methods import METHODS

    where = {"train": METHODS, "data build": SOURCES, "data import": IMPORTS, "analyze neurons": BACKENDS,
             "analyze heads": HEAD_METHODS}
    for command, registry in where.items():
        text = _help(*command.split())
        for name in registry:
            assert name in text, (command, name)
    analyze = _help("analyze")
    for name in ("neurons", "heads", "routing", "curves", "seeds", "ablate", "representations"):
        assert name in STAGES and name in analyze
    neurons = _help("analyze", "neurons")
    for kind in TEXT_SOURCES:
        assert kind in neurons


def test_every_config_field_documents_itself():
    from polyfact.core.settings import undocumented
    from polyfact.pipeline.config import RunConfig

    assert undocumented(RunConfig) == []


def test_registry_errors_and_lazy_targets():
    from polyfact.core.registry import Registry

    reg = Registry("widget", hint="(see the docs)")
    reg.add("a", "the a", "polyfact.core.layout:seeded_id", section="x", colour="red")
    assert reg.load("a")("sft", 2) == "sft@s2" and reg.get("a")["colour"] == "red" and reg.get("a").section == "x"
    with pytest.raises(PolyFactError, match=r"^size: unknown widget 'b'; use one of: a \(see the docs\)$"):
        reg.get("b", "size")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", "again")


def test_settings_rules_next_to_the_field():
    from dataclasses import dataclass

    from polyfact.core.settings import SettingError, check, describe, setting

    @dataclass
    class Probe:
        rate: float = setting(0.5, help="a rate", gt=0, lt=1)
        kind: str = setting("x", help="a kind", choices=("x", "y"))

        def __post_init__(self):
            check(self)

    assert describe(Probe())["rate"] == {"value": 0.5, "help": "a rate", "rule": "more than 0 and less than 1"}
    for kwargs, text in (({"rate": 1.0}, "rate must be more than 0 and less than 1"),
                         ({"rate": float("nan")}, "rate must be a finite number"),
                         ({"kind": "z"}, "kind must be one of: x, y")):
        with pytest.raises(SettingError, match=text):
            Probe(**kwargs)
