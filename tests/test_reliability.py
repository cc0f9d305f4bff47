"""Reliability, fourth pass: no command deletes what it did not make, one question has one result
file, importers are faithful or refuse, every setting acts or is refused, scores never invent
zeros and JSON is always valid, environment faults are one line, and advice is never unsafe."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from polyfact.core.errors import PolyFactError
from polyfact.core.io import OUTPUT_MARKER, atomic_dir, atomic_write_text, read_json
from tests.helpers import cli, one_line_error


# ------------------------------------------------------------------ nothing deleted that was not made
def test_force_replaces_only_what_the_command_wrote(tmp_path):
    out = tmp_path / "figs"
    with atomic_dir(out, made_by="paper") as d:
        (d / "fig.html").write_text("1")
    assert json.loads((out / OUTPUT_MARKER).read_text())["files"] == ["fig.html"]
    with atomic_dir(out, force=True, made_by="paper") as d:  # its own output: replaced
        (d / "fig.html").write_text("2")
    assert (out / "fig.html").read_text() == "2"
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PolyFactError, match="holds other files: notes.txt"):
        with atomic_dir(out, force=True, made_by="paper"):
            pass
    assert (out / "notes.txt").read_text() == "mine"  # nothing removed
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter.tex").write_text("x")
    with pytest.raises(PolyFactError, match="files it did not write"):
        with atomic_dir(foreign, force=True, made_by="paper"):
            pass
    assert (foreign / "chapter.tex").exists()
    long_name = tmp_path / ("d" * 250)  # a valid name: the temporary one must not be longer
    with atomic_dir(long_name) as d:
        (d / "x").write_text("1")
    atomic_write_text(tmp_path / ("f" * 250), "ok")
    assert long_name.is_dir() and (tmp_path / ("f" * 250)).read_text() == "ok"


def test_paper_refuses_an_output_inside_its_run(smoke_study, tmp_path):
    run, _ = smoke_study
    release = tmp_path / "release"
    release.mkdir()
    for out in (run, run / "figures-paper"):
        one_line_error(cli("paper", "--release", release, "--out", out, "--run", run, "--force"),
                       f"is, contains or lies inside the input {run}")
    assert (run / "checkpoints").is_dir() and (run / "results").is_dir()


# ------------------------------------------------------------------ one question, one result file
def test_another_question_gets_its_own_result_file(study):
    base = study / "results" / "recall" / "base.json"
    before = base.read_bytes()
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "base", "--prompt", "study")
    assert r.returncode == 0, r.stderr[-1500:]
    assert base.read_bytes() == before  # the run's own question is untouched
    other = json.loads((study / "results" / "recall-prompt-study" / "base.json").read_text())
    assert other["provenance"]["config"]["prompt"] == "study"
    one_line_error(cli("analyze", "trajectory", "--run", study, "--checkpoints", "base,sft", "--name", "summary"),
                   "--name 'summary' is taken")
    one_line_error(cli("analyze", "trajectory", "--run", study, "--checkpoints", "base,cpt", "--name", "sft"),
                   "--name 'sft' is taken")


# ------------------------------------------------------------------ importers: faithful or refuse
def _release(root: Path, rows: dict[str, list[dict]]) -> Path:
    for lang, items in rows.items():
        (root / lang).mkdir(parents=True, exist_ok=True)
        (root / lang / "test.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items),
                                                encoding="utf-8")
    return root


def _row(fid: str, answer=0, options=("Paris", "Rome", "Oslo", "Bern")) -> dict:
    return {"fact_id": fid, "question": "Capital?", "options": list(options), "answer_index": answer}


@pytest.mark.parametrize("rows, needle", [
    ({"en": [_row("Q1|P36|Q2"), _row("Q1|P36|Q2")]}, "repeats 'Q1|P36|Q2' in 'en'"),
    ({"en": [_row("Q1|P36|Q2")], "zz": [_row("Q1|P36|Q2")]}, "is not a language folder ('zz'"),
    ({"en": [_row("Q1|P36|Q2", answer=1.7)]}, "answer_index must be an integer, got 1.7"),
    ({"en": [_row("Q1|P36|Q2", answer="abc")]}, "answer_index must be an integer, got 'abc'"),
    ({"en": [_row("Q1|P36|Q2", answer=7)]}, "answer_index 7 is outside the 4 options"),
    ({"en": [_row("Q1|P36|Q2", options=("Paris",) * 4)]}, "two options are the same"),
])
def test_a_release_is_imported_faithfully_or_refused(tmp_path, rows, needle):
    src = _release(tmp_path / "rel", rows)
    r = cli("data", "import", "polyfact", src, "--out", tmp_path / "out")
    one_line_error(r, needle)
    assert not (tmp_path / "out").exists()


def test_klar_and_encodings_are_refused_in_one_line(tmp_path):
    klar = tmp_path / "klar" / "en"
    klar.mkdir(parents=True)
    (klar / "capital.json").write_text(json.dumps({"prompt_templates": ["The capital of <subject> is"],
                                                   "samples": []}))
    one_line_error(cli("data", "import", "klar", tmp_path / "klar", "--out", tmp_path / "o1"), "lacks <mask>")
    src = _release(tmp_path / "rel", {"en": [_row("Q1|P36|Q2")]})
    (src / "en" / "test.jsonl").write_bytes(json.dumps(_row("Q1|P36|Q2", options=("Zürich", "b", "c", "d")),
                                                       ensure_ascii=False).encode("latin-1") + b"\n")
    one_line_error(cli("data", "import", "polyfact", src, "--out", tmp_path / "o2"), "is not UTF-8 text")


# ------------------------------------------------------------------ every setting acts or is refused
@pytest.mark.parametrize("args, needle", [
    (["--set", "budget.facts="], "has no value"),
    (["--set", "sft.consistency_weight=0.5"], "sft.consistency_weight weighs the study objective"),
    (["--set", "budget.trajectory_points=2"], "budget.trajectory_points is set from trajectory.points"),
    (["--set", "seed=4294967296"], "outside the random generators' range"),
    (["--set", "budget.facts=null"], "the planned arms are not matched: budget.facts is not set"),
    (["--set", "sft.langs=[en,de]"], "the arms train on different languages"),
])
def test_settings_that_would_do_nothing_are_refused(tmp_path, args, needle):
    one_line_error(cli("run", "--preset", "smoke", "--run", tmp_path / "r", "--dry-run", *args), needle)
    assert not (tmp_path / "r").exists()


def test_command_options_that_would_do_nothing_are_refused(study, tmp_path):
    one_line_error(cli("eval", "checkpoints", "--run", study, "--checkpoints", "base,base,sft"),
                   "lists base more than once")
    one_line_error(cli("eval", "checkpoints", "--run", study, "--protocol", "study"), "KLAR's 3-shot protocol")
    one_line_error(cli("eval", "checkpoints", "--run", study, "--match", "lenient"), "--match scores free-form")
    local = tmp_path / "models" / "mine"
    local.mkdir(parents=True)
    one_line_error(cli("analyze", "neurons", "--run", study, "--checkpoint", f"{local}@main"),
                   "is a local directory, which has no revisions")
    one_line_error(cli("paper", "--release", tmp_path, "--out", tmp_path / "p", "--tags", "base=a,base=b"),
                   "gives the role 'base' twice")


# ------------------------------------------------------------------ scores never invent zeros
def test_missing_inputs_are_not_computable_and_json_is_valid(tmp_path):
    path = tmp_path / "records.jsonl"
    recs = [{"fact_id": "f1", "lang": lang, "correct": ok} for lang, ok in (("en", True), ("de", False))]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = cli("eval", "score", path)
    assert r.returncode == 0 and "agreement: not computable" in r.stdout and "agreement mean not computable" in r.stdout
    r = cli("eval", "score", path, "--json")
    doc = json.loads(r.stdout)  # strict JSON: NaN would not parse as a value here
    assert "NaN" not in r.stdout and doc["not_computable"]["agreement"].startswith("the records name no")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"fact_id": "f1", "lang": "en", "correct": True}) + "\n")
    r = cli("eval", "score", one, "--json")
    assert json.loads(r.stdout)["total_consistency"] is None  # one language: no consistency, not 0


# ------------------------------------------------------------------ environment faults are named
def test_a_full_disk_is_one_line_and_exit_2(monkeypatch, tmp_path):
    import polyfact.data.dataset as D

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr(D, "atomic_dir", full)
    r = cli("data", "build", "--out", tmp_path / "out", "--langs", "en,de", "--max-per-relation", "3")
    one_line_error(r, "no space left on the device")


def test_fifos_and_deep_json_are_refused_not_hung(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(PolyFactError, match="is not a regular file"):
        read_json(fifo, "released result")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PolyFactError, match="nested too deeply"):
        read_json(deep, "released result")
    records = tmp_path / "deep.jsonl"
    records.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(cli("eval", "score", records), "nested too deeply")


def test_advice_is_never_unsafe(tmp_path):
    import pickle

    from polyfact.interp.heads import HeadImportance

    folder = tmp_path / "lahis"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"langs": ["en"]}))
    with open(folder / "lahis_en.pth", "wb") as fh:
        pickle.dump({"a": Path("x")}, fh)  # an object torch's safe loader will not build
    with pytest.raises(PolyFactError) as err:
        HeadImportance.read_released(folder)
    assert "weights_only" not in str(err.value) and "pickled object is refused" in str(err.value)


def test_impossible_released_counts_are_errors_not_numbers(tmp_path):
    """A released histogram that counts more facts than the release has (10^30) is refused when the
    release is read, instead of being recomputed "without disagreement"."""
    from polyfact.figures.paper import paper_outputs
    from tests.test_paper import QWEN, write_release

    root = write_release(tmp_path / "rel")
    path = root / "summary" / f"{QWEN['base']}_polyfact_clean_consistency.json"
    doc = json.loads(path.read_text())
    doc["total_consistency"]["correct_language_count_histogram"]["12"] = 10 ** 30
    path.write_text(json.dumps(doc))
    with pytest.raises(PolyFactError, match="counts .* facts, more than n_facts_all_langs 40"):
        paper_outputs(root, tmp_path / "out", static=False)
    assert not (tmp_path / "out").exists()


def test_a_hub_revision_that_cannot_be_checked_offline_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("checkpoints", "add", "--run", tmp_path / "run", "--revision", "v1", "nobody/no-such-model")
    one_line_error(r, "revision v1 is not in the cache")
    local = tmp_path / "mine"
    local.mkdir()
    (local / "config.json").write_text("{}")
    one_line_error(cli("checkpoints", "add", "--run", tmp_path / "run", "--revision", "v1", local),
                   "is a local directory, which has no revisions")
