"""Bad input and faults, as a user meets them: each probe expects either a non-zero exit with one
line naming the problem (and no traceback, and the other outputs unchanged) or a correct rebuild."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from polyfact.core.errors import PolyFactError

from tests.helpers import cli, one_line_error, snapshot


# ---------------------------------------------------------------------------------------------- 1. ids
@pytest.mark.parametrize("bad_id", [".", "..", "../data", "a/b", "/tmp/x", ".hidden", "sp ace"])
def test_checkpoint_ids_that_are_paths_are_refused(study, bad_id):
    before = snapshot(study)
    r = cli("train", "sft", "--run", study, "--id", bad_id, "--preset", "smoke")
    one_line_error(r, "invalid checkpoint id")
    assert snapshot(study) == before


def test_register_with_a_path_id_is_refused(study):
    r = cli("checkpoints", "add", "--run", study, "--id", "..", str(study / "checkpoints" / "base"))
    one_line_error(r, "invalid checkpoint id")


# ---------------------------------------------------------------------------------------------- 2. resume state
def test_resume_state_of_other_settings_is_discarded(smoke_run, tmp_path, capfd):
    from polyfact.core.checkpoints import start_work

    run, _ = smoke_run
    work = start_work(run, "probe", "key-a")
    (work / "checkpoint-3").mkdir()
    assert start_work(run, "probe", "key-a") == work and (work / "checkpoint-3").exists()  # same settings: kept
    start_work(run, "probe", "key-b")
    assert not (work / "checkpoint-3").exists()
    assert "discarding the resume state of probe" in capfd.readouterr().err
    shutil.rmtree(work)


def test_changed_learning_rate_does_not_resume_an_old_state(study):
    """A state saved under other settings is not reused: the checkpoint equals a clean run's."""
    from polyfact.training.lm import last_state

    work = study / "checkpoints" / ".work-cpt"
    r = cli("train", "cpt", "--run", study, "--set", "cpt.train.max_steps=6", "--set", "cpt.train.save_steps=2")
    assert r.returncode == 0, r.stderr[-1500:]
    fake = work / "checkpoint-4"  # a leftover state of other settings, as a killed run leaves it
    shutil.copytree(study / "checkpoints" / "cpt", fake)
    (fake / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    for f in ("optimizer.pt", "scheduler.pt"):
        (fake / f).write_bytes(b"x")
    (work / "settings.json").write_text(json.dumps({"key": "other settings"}))
    assert last_state(work)
    r = cli("train", "cpt", "--run", study, "--set", "cpt.train.max_steps=6", "--set", "cpt.train.save_steps=2",
            "--set", "cpt.train.learning_rate=0.05")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "discarding the resume state of cpt" in r.stderr
    m = json.loads((study / "checkpoints" / "cpt" / "manifest.json").read_text())
    assert m["config"]["train"]["learning_rate"] == 0.05 and m["metrics"]["train"]["steps"] == 6


# ---------------------------------------------------------------------------------------------- 3. damaged checkpoints
@pytest.mark.parametrize("damage", ["truncate", "delete_config", "flip_byte"])
def test_damaged_checkpoint_is_retrained_by_run(study, damage):
    ck = study / "checkpoints" / "sft"
    weights = ck / "model.safetensors"
    good = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(good[: len(good) // 2])
    elif damage == "delete_config":
        (ck / "config.json").unlink()
    else:
        data = bytearray(good)
        data[-10] ^= 0xFF
        weights.write_bytes(bytes(data))
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "sft", "--force")
    one_line_error(r, "is damaged")
    r = cli("train", "sft", "--run", study)  # the stage that owns the checkpoint (polyfact run runs the same)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "checkpoint sft (sft, from base" in r.stdout and "checkpoint sft:" in r.stderr
    assert weights.read_bytes() == good  # retrained to the same bytes (deterministic)
    assert (ck / "config.json").exists()


# ---------------------------------------------------------------------------------------------- 4. damaged caches
OWNER = {  # a damaged file and the command of the stage that owns it
    "results/heads/base.shards.json": ("analyze", "heads", "--checkpoint", "base"),
    "results/heads/base.json": ("analyze", "heads", "--checkpoint", "base"),
    "results/neurons/base.stats.safetensors": ("analyze", "neurons", "--checkpoint", "base"),
    "results/neurons/base.stats.json": ("analyze", "neurons", "--checkpoint", "base"),
    "results/recall/base.json": ("eval", "checkpoints", "--checkpoints", "base"),
    "results/routing/sft.json": ("analyze", "routing", "--checkpoints", "sft"),
    ".polyfact/data.json": ("run",),
    "results/summary.json": ("run",),
}


@pytest.mark.parametrize("rel", sorted(OWNER))
def test_damaged_cached_file_is_rebuilt(study, rel):
    path = study / rel
    good = path.read_bytes()
    path.write_bytes(good[: max(1, len(good) // 3)])
    r = cli(*OWNER[rel], "--run", study)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    if rel != ".polyfact/data.json":
        assert path.read_bytes() == good  # rebuilt to the same bytes


def test_damaged_records_file_is_rebuilt(study):
    path = study / "results" / "recall" / "base.records.jsonl"
    good = path.read_text()
    path.write_text(good[: len(good) // 2])
    r = cli("eval", "checkpoints", "--run", study, "--checkpoints", "base")
    assert r.returncode == 0, r.stderr[-1500:]
    assert path.read_text() == good


def test_damaged_config_is_one_line(study):
    (study / "config.yaml").write_text("version: 1\npreset: [smoke\n")
    r = cli("run", "--run", study)
    one_line_error(r, "config.yaml")


# ---------------------------------------------------------------------------------------------- 5. lock
def test_second_run_on_a_busy_directory_exits_at_once(study):
    from filelock import FileLock

    (study / ".polyfact").mkdir(exist_ok=True)
    (study / ".polyfact" / "run.pid").write_text("4242")
    with FileLock(str(study / ".polyfact" / "run.lock")):
        r = cli("run", "--run", study)
        one_line_error(r, "is in use by PID 4242")
        r = cli("analyze", "neurons", "--run", study, "--checkpoint", "base")
        one_line_error(r, "is in use by PID")


# ---------------------------------------------------------------------------------------------- 6. eval score
RECORD = {"fact_id": "f1", "lang": "en", "correct": True}
PRED = {"language": "en", "relation": "capital", "index": 1, "target": "Paris", "pred": "Paris"}


@pytest.mark.parametrize("lines, needle", [
    ([{**RECORD, "correct": "false"}], "'correct' must be true or false"),
    ([{**RECORD, "correct": 1}], "'correct' must be true or false"),
    ([{**RECORD, "lang": None}], "'lang' must be a non-empty string"),
    ([{**RECORD, "lang": ""}], "'lang' must be a non-empty string"),
    ([{**RECORD, "fact_id": 7}], "'fact_id' must be a non-empty string"),
    ([{**PRED, "target": None}], "'target' must be a non-empty string"),
    ([{**PRED, "pred": None}], "'pred' must be a string"),
    ([{**PRED, "aliases": "Paname"}], "'aliases' must be a list"),
    ([RECORD, RECORD], "repeats fact 'f1' in 'en' (first on line 1)"),
    (["null"], "line 1 is not a JSON object"),
    (["[1, 2]"], "line 1 is not a JSON object"),
    (["{not json"], "line 1 is not JSON"),
    ([{"x": 1}], "lacks fact_id/lang/correct"),
    ([], "has no records"),
])
def test_eval_score_rejects_bad_records(tmp_path, lines, needle):
    path = tmp_path / "recs.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    one_line_error(cli("eval", "score", path, "--json"), needle)


def test_eval_score_dedupe_and_match_modes(tmp_path):
    path = tmp_path / "preds.jsonl"
    rows = [PRED, PRED, {**PRED, "language": "es", "target": "ruso", "pred": "uralo-ruso"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    r = cli("eval", "score", path, "--json", "--dedupe")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["match"] == "study" and out["accuracy"] == {"en": 1.0, "es": 0.0}
    out = json.loads(cli("eval", "score", path, "--json", "--dedupe", "--match", "lenient").stdout)
    assert out["match"] == "lenient" and out["accuracy"]["es"] == 1.0  # lenient accepts "uralo-ruso" for "ruso"
    one_line_error(cli("eval", "score", path, "--match", "fuzzy", "--dedupe"), "--match: unknown match mode 'fuzzy'")


@pytest.mark.parametrize("kind", ["binary", "directory", "missing"])
def test_eval_score_rejects_bad_files(tmp_path, kind):
    path = tmp_path / "x.jsonl"
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
        needle = "not UTF-8 text"
    elif kind == "directory":
        path.mkdir()
        needle = "is a folder; pass a file"
    else:
        needle = "not found"
    one_line_error(cli("eval", "score", path), needle)


# ---------------------------------------------------------------------------------------------- 7. config
@pytest.mark.parametrize("sets, needle", [
    (["grpo.steps=-5"], "grpo.steps must be at least 1, got -5; fix it with --set grpo.steps=..."),
    (["methods=[foo]"], "unknown training method 'foo'"),
    (["methods=[cpt+grpo]"], "starts from 'cpt', which must be listed before it"),
    (["sft.train.learning_rate=5"], "sft.train.learning_rate must be more than 0 and less than 1"),
    (["analysis.top_frac=0"], "analysis.top_frac must be more than 0 and less than 1"),
    (["grpo.num_generations=1"], "grpo.num_generations must be at least 2"),
    (["grpo.temperature=0"], "grpo.temperature must be more than 0"),
    (["eval.bootstrap=-1"], "eval.bootstrap must be at least 0"),
    (["analysis.backend=tensorflow"], "analysis.backend: unknown hook backend 'tensorflow'; use one of: nnsight, lens, torch"),
    (["analysis.head_method=magic"], "analysis.head_method: unknown head-importance method 'magic'"),
    (["seeds=[0,0]"], "seeds must be distinct"),
    (["data.source=nowhere"], "data.source: unknown data source 'nowhere'"),
    (["grpo.learning_rate=.nan"], "grpo.learning_rate must be a finite number"),
    (["grpo.reward.resolver=fuzzy"], "grpo.reward.resolver: unknown answer resolver 'fuzzy'"),
    (["analysis.texts=nowhere:x"], "analysis.texts must be one of: dataset[:SPLIT]"),
])
def test_config_values_are_checked_before_anything_runs(tmp_path, sets, needle):
    args = [x for s in sets for x in ("--set", s)]
    r = cli("run", "--preset", "smoke", "--run", tmp_path / "r", "--dry-run", *args)
    one_line_error(r, needle)
    assert not (tmp_path / "r").exists()


def test_failed_run_keeps_the_saved_config(study):
    before = (study / "config.yaml").read_bytes()
    one_line_error(cli("run", "--run", study, "--set", "grpo.steps=-5"), "grpo.steps")
    assert (study / "config.yaml").read_bytes() == before
    r = cli("run", "--run", study, "--dry-run")
    assert r.returncode == 0, r.stderr[-1000:]


# ---------------------------------------------------------------------------------------------- 8. inputs and options
def test_mistyped_option_is_a_usage_line_not_a_traceback(tmp_path):
    r = cli("run", "--seedz", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "No such option" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 4


def _klar(tmp_path: Path, samples) -> Path:
    root = tmp_path / "klar"
    (root / "en").mkdir(parents=True)
    (root / "en" / "capital.json").write_text(json.dumps({"prompt_templates": ["The capital of <subject> is <mask>."],
                                                          "samples": samples}))
    return root


@pytest.mark.parametrize("samples, needle", [
    ([{"subject": "France", "object": "Paris", "object_candidates": "Paris, Rome"}], "sample 1 lacks 'index'"),
    ([{"subject": "France", "index": 0, "object_candidates": "Paris, Rome"}], "sample 1 lacks 'object'"),
    ({"subject": "France"}, "'samples' must be a list"),
    ([["France", "Paris"]], "sample 1 is not an object"),
    ([{"subject": 3, "object": "Paris", "index": 0, "object_candidates": "Paris, Rome"}], "'subject' must be text"),
])
def test_bad_klar_files_are_one_line(tmp_path, samples, needle):
    r = cli("data", "import", "klar", _klar(tmp_path, samples), "--out", tmp_path / "out")
    one_line_error(r, needle)
    assert not (tmp_path / "out").exists()


def test_mistyped_wikidata_entities_are_skipped_and_counted(tmp_path):
    from polyfact.data.sources.wikidata_dump import DumpStats, dump_facts

    good = {"id": "Q1", "labels": {"en": {"value": "France"}},
            "claims": {"P36": [{"mainsnak": {"snaktype": "value", "datavalue": {"value": {"entity-type": "item",
                                                                                         "id": "Q2"}}}}]}}
    bad = [{"id": "Q3", "labels": ["France"]}, {"id": "Q4", "claims": "P36"},
           {"id": "Q5", "labels": {"en": "x"}, "claims": {"P36": "Q2"}}, {"id": "Q2", "labels": {"en": {"value": "Paris"}},
                                                                         "aliases": {"en": "Paname"}}]
    path = tmp_path / "dump.json"
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in [good, *bad]) + "\n]\n")
    stats = DumpStats()
    facts = dump_facts(path, ["en"], ["P36"], stats=stats, progress=False)
    assert [f.fact_id for f in facts] == ["Q1|P36|Q2"] and stats.corrupt >= 2


def test_plain_dump_cut_mid_file_is_an_error(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[\n{"id": "Q1", "labels": {"en": {"value": "France"}}},\n{"id": "Q2", "lab')
    r = cli("data", "build", "--source", "wikidata-dump", "--dump", path, "--out", tmp_path / "out",
            "--relations", "P36")
    one_line_error(r, "truncated")


def test_unwritable_places_are_one_line(study, tmp_path):
    shutil.rmtree(study / "figures", ignore_errors=True)
    (study / "figures").write_text("a file where a folder belongs")
    one_line_error(cli("report", "--run", study), "cannot create")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(cli("figures", "lape", "--paper-dir", tmp_path, "--out", a_file), "is a file")
    one_line_error(cli("run", "--preset", "smoke", "--run", "/proc/polyfact-cannot-be-here"), "cannot create run directory")


def test_unexpected_failure_prints_one_line_and_logs_the_traceback(tmp_path, monkeypatch, capsys):
    import polyfact.pipeline.cli as C
    import polyfact.pipeline.run as R

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(R, "run", boom)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for run, logs in ((tmp_path / "new", tmp_path / "cache" / "polyfact" / "logs"),  # no run made: nothing left in it
                      (tmp_path, tmp_path / "logs")):  # an existing run keeps its own log
        with pytest.raises(SystemExit) as ex:
            C.main(["run", "--run", str(run)])
        err = capsys.readouterr().err
        assert ex.value.code == 1 and len(err.strip().splitlines()) == 1
        assert "polyfact run failed unexpectedly (RuntimeError: boom)" in err and "--debug" in err
        log = next(logs.glob("error-*.log"))
        assert "Traceback" in log.read_text() and "boom" in log.read_text()
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError, match="boom"):
        C.main(["run", "--run", str(tmp_path), "--debug"])


# ---------------------------------------------------------------------------------------------- 9. minor
def test_atomic_writes_follow_the_umask(tmp_path):
    from polyfact.core.io import atomic_dir, atomic_write_text

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "inner").write_text("y")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_page_titles_and_data_strings_are_escaped(tmp_path):
    import plotly.graph_objects as go

    from polyfact.figures.export import write_html
    from polyfact.data.dataset import dataset_card

    page = write_html([go.Figure()], tmp_path / "p.html", title="<script>alert(1)</script>").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    row = {"fact_id": "f", "lang": "en", "relation": "P36", "subject": "<b>Land</b>", "object": "<i>City</i>",
           "question": "q", "prompt": "p", "options": ["<i>City</i>", "b", "c", "d"], "answer_index": 0, "split": "train"}
    card = dataset_card({"train": [row], "validation": [], "test": []},
                        {"source": "<img src=x>", "fingerprint": "f", "languages": ["en"], "training_langs": ["en"],
                         "heldout_langs": [], "relations": ["P36"], "n_facts": {"train": 1, "validation": 0, "test": 0},
                         "n_rows": {"train": 1, "validation": 0, "test": 0}, "seed": 0, "dropped": {},
                         "licenses": "<a href=x>CC0</a>"})
    assert "<img" not in card and "<a href" not in card and "&lt;img" in card


def test_library_errors_are_polyfact_errors(tmp_path):
    from polyfact.interp.heads import HeadImportance
    from polyfact.interp.stats import ActivationStats

    (tmp_path / "s.safetensors").write_bytes(b"\x00" * 10)
    (tmp_path / "s.json").write_text('{"languages": ["en"]}')
    with pytest.raises(PolyFactError, match="cannot read"):
        ActivationStats.load(tmp_path / "s")
    (tmp_path / "h.safetensors").write_bytes(b"junk")
    (tmp_path / "h.json").write_text("{")
    with pytest.raises(PolyFactError, match="cannot read"):
        HeadImportance.load(tmp_path / "h")


# ---------------------------------------------------------------------------------------------- 10. the comparison's arms
@pytest.mark.parametrize("sets, needle", [
    (["sft.objective=magic"], "sft.objective: unknown SFT objective 'magic'; use one of: answer, study"),
    (["methods=[sft,dpo]"], "unknown training method 'dpo'"),
    (["budget.facts=0"], "budget.facts must be at least 1"),
    (["cm_align.candidates=1"], "cm_align.candidates must be at least 2"),
])
def test_arm_settings_are_checked_before_anything_runs(tmp_path, sets, needle):
    args = [x for s in sets for x in ("--set", s)]
    one_line_error(cli("run", "--preset", "smoke", "--run", tmp_path / "r", "--dry-run", *args), needle)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (["sft", "--set", "budget.facts=100000"], "budget.facts=100000 is more than the"),
    (["dco", "--set", "dco.langs=[en]"], "dco pairs two languages of each fact"),
    (["cm-align", "--set", "cm_align.encoder=/nowhere/labse"], "cm_align.encoder '/nowhere/labse' cannot be loaded offline"),
])
def test_arm_inputs_are_refused_with_nothing_written(study, args, needle):
    before = snapshot(study)
    one_line_error(cli("train", *args, "--run", study, "--id", "probe"), needle)
    assert snapshot(study) == before and not (study / "checkpoints" / ".work-probe").exists()


# ---------------------------------------------------------------------------------------------- 11. reliability, third pass
def test_language_codes_never_become_paths_outside_the_run(study, tmp_path):
    text = tmp_path / "multi.jsonl"
    text.write_text(json.dumps({"para_data": {"en": "The capital of France is Paris, a city.",
                                              "../../../../outside/x": "La capital de Francia es París."}}) + "\n")
    one_line_error(cli("analyze", "neurons", "--run", study, "--checkpoint", "base", "--texts", f"multiway:{text}"),
                   "invalid language code")
    files = tmp_path / "files"
    files.mkdir()
    (files / "en.txt").write_text("hello there\n")
    (files / "en#9.txt").write_text("merged into en?\n")
    one_line_error(cli("analyze", "neurons", "--run", study, "--checkpoint", "base", "--texts", f"files:{files}"),
                   "'en#9': use letters, digits")
    assert not (tmp_path.parent / "outside").exists() and not (study.parent / "outside").exists()


@pytest.mark.parametrize("case, needle", [
    ("one_language", "has text in 1 language(s) (en)"),
    ("bad_utf8", "line 2 is not UTF-8 text"),
])
def test_text_sources_need_two_languages_and_name_bad_lines(study, tmp_path, case, needle):
    files = tmp_path / "files"
    files.mkdir()
    (files / "en.txt").write_text("hello there\nmore text\n")
    if case == "bad_utf8":
        (files / "de.txt").write_bytes(b"guten Tag\n\xff\xfe kaputt\n")
    one_line_error(cli("analyze", "neurons", "--run", study, "--checkpoint", "base", "--texts", f"files:{files}"),
                   needle)


def test_outside_checkpoints_are_checked(study, tmp_path):
    import shutil as sh

    base = study / "checkpoints" / "base"
    no_tok = tmp_path / "no-tokenizer"
    sh.copytree(base, no_tok)
    for f in no_tok.glob("tokenizer*"):
        f.unlink()
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    cases = [(tmp_path / "missing", "no model directory"), (study / "config.yaml", "is a file"),
             (loop, "symlink loop"), (no_tok, "has no tokenizer files"),
             ("nobody/nothing-here", "neither a local model directory nor a hub model")]
    for source, needle in cases:
        one_line_error(cli("checkpoints", "add", source, "--run", study, "--id", "probe"), needle)
        assert not (study / "checkpoints" / "probe").exists()
    one_line_error(cli("checkpoints", "add", base, "--run", study, "--id", "x" * 150), "at most 100")
    mine = tmp_path / "mine"
    sh.copytree(base, mine)
    (mine / "manifest.json").unlink()
    assert cli("checkpoints", "add", mine, "--run", study, "--id", "mine").returncode == 0
    r = cli("analyze", "neurons", "--run", study, "--checkpoint", "mine")
    assert r.returncode == 0, r.stderr[-800:]
    from safetensors.torch import load_file, save_file

    w = load_file(mine / "model.safetensors")
    save_file({k: v + 0.01 for k, v in w.items()}, mine / "model.safetensors", metadata={"format": "pt"})
    before = (study / "results" / "neurons" / "mine.json").read_text()
    r = cli("analyze", "neurons", "--run", study, "--checkpoint", "mine")
    assert r.returncode == 0 and "weights of mine" in r.stderr and "changed since it was registered" in r.stderr
    assert (study / "results" / "neurons" / "mine.json").read_text() != before  # recomputed, not stale
    (mine / "model.safetensors").write_bytes((mine / "model.safetensors").read_bytes()[:1000])
    r = cli("analyze", "neurons", "--run", study, "--checkpoint", "mine")  # a note that it changed, then the error
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: cannot load model")


def _release(tmp_path: Path, tensor=None, meta=None, lape=None) -> Path:
    import torch

    d = tmp_path / "rel"
    d.mkdir(exist_ok=True)
    for lang in ("en", "de"):
        torch.save(tensor if tensor is not None else torch.rand(4, 4), d / f"lahis_{lang}.pth")
    (d / "meta.json").write_text(json.dumps(meta if meta is not None else {"langs": ["en", "de"], "num_layers": 4,
                                                                            "num_heads": 4}))
    if lape is not None:
        (d / "lape_results.json").write_text(json.dumps(lape))
    return d


@pytest.mark.parametrize("kind, args, needle", [
    ("heads", {"tensor": "nan"}, "NaN or infinite"),
    ("heads", {"tensor": "empty"}, "non-empty float tensor"),
    ("heads", {"meta": {"langs": ["en", "fr"]}}, "make them agree"),
    ("heads", {"meta": {"num_layers": "four"}}, "'num_layers' must be int"),
    ("heads", {"meta": ["not", "an", "object"]}, "must hold a JSON object"),
    ("lape", {"lape": {"1": {"en": [-3]}}}, "neuron indices must be integers"),
    ("lape", {"lape": {"99999999": {"en": [1]}}}, "must be a 1-based layer number up to 4"),
    ("lape", {"lape": {"1": {"fr": [1]}}}, "does not list"),
])
def test_released_files_are_validated(tmp_path, kind, args, needle):
    import torch

    if args.get("tensor") == "nan":
        args = {**args, "tensor": torch.full((4, 4), float("nan"))}
    elif args.get("tensor") == "empty":
        args = {**args, "tensor": torch.zeros(0, 0)}
    if kind == "lape":
        args = {**args, "meta": {"langs": ["en", "de"], "num_layers": 4, "intermediate_size": 8}}
    d = _release(tmp_path, **args)
    one_line_error(cli("figures", kind, "--paper-dir", d, "--out", tmp_path / "figs", "--no-static"), needle)
    assert not (tmp_path / "figs").exists()


def test_released_top_must_be_a_share(tmp_path):
    d = _release(tmp_path)
    for top in ("0", "-1", "2"):
        one_line_error(cli("figures", "heads", "--paper-dir", d, "--out", tmp_path / "f", "--top", top), "--top")


@pytest.mark.parametrize("content, needle", [
    ("grpo:\n  steps: 3\n  steps: 4\n", "line 3 repeats the key 'steps'"),
    ("grpo:\n  learning_rate: .nan\n", "grpo.learning_rate must be a finite number"),
    ("grpo:\n  facts_per_step: 100\n  num_generations: 512\n  max_new_tokens: 100\n", "above the ceiling"),
    ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "grpo:\n  steps: *c\n", "unknown config key 'a'"),
    (b"grpo:\n  steps: \xff\n", "is not UTF-8 text"),
])
def test_bad_config_files_are_one_line_and_leave_nothing(tmp_path, content, needle):
    path = tmp_path / "c.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = cli("run", "--preset", "smoke", "--config", path, "--run", tmp_path / "r", "--dry-run")
    one_line_error(r, needle)
    assert len(r.stderr) < 400 and not (tmp_path / "r").exists()
    one_line_error(cli("run", "--preset", "smoke", "--config", tmp_path, "--run", tmp_path / "r"), "is a directory")
    assert not (tmp_path / "r").exists()


def test_data_outputs_never_replace_their_inputs_and_edits_are_noticed(study, tmp_path):
    from polyfact.data.dataset import data_fingerprint

    data = study / "data"
    one_line_error(cli("data", "export", data, "--out", data, "--force"), "is, contains or lies inside the input")
    one_line_error(cli("data", "export", data, "--out", data / "inside", "--force"), "lies inside the input")
    assert (data / "dataset_dict.json").exists()
    before = data_fingerprint(data)
    arrow = next((data / "test").glob("*.arrow"))
    raw = bytearray(arrow.read_bytes())
    raw[-200] ^= 0x01  # one row's bytes edited in place
    arrow.write_bytes(bytes(raw))
    assert data_fingerprint(data) != before  # everything that depends on the data is stale now


def test_commands_that_write_hold_the_lock(study):
    from filelock import FileLock

    with FileLock(str(study / ".polyfact" / "run.lock")):
        one_line_error(cli("checkpoints", "add", study / "checkpoints" / "base", "--run", study, "--id", "b2"),
                       "is in use")
        one_line_error(cli("report", "--run", study), "is in use")
        one_line_error(cli("train", "sft", "--run", study), "is in use")
