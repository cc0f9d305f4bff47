"""``polyfact data`` from the command line: one-line errors, exit 2, outputs left intact."""

from polyfact.core.io import dir_digest
from tests.helpers import cli as run


def test_build_show_and_refuse_overwrite(tmp_path):
    out = tmp_path / "data"
    r = run("data", "build", "--langs", "en,de", "--relations", "P36,P38", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "fingerprint:" in r.stdout and "facts" in r.stdout
    before = dir_digest(out)
    r = run("data", "build", "--langs", "en", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {out} already exists; pass --force to replace it"]
    assert dir_digest(out) == before
    r = run("data", "show", str(out))
    assert r.returncode == 0 and "P36" in r.stdout and "German" in r.stdout


def test_bad_inputs_are_one_line_errors(tmp_path):
    cases = [
        (["data", "build", "--langs", "en,xx", "--out", str(tmp_path / "a")], "unknown language code 'xx'"),
        (["data", "build", "--relations", "P9999", "--out", str(tmp_path / "b")], "unknown relation 'P9999'"),
        (["data", "build", "--relations", "P50", "--out", str(tmp_path / "c")], "cldr source has no relation P50"),
        (["data", "build", "--source", "wikidata-dump", "--out", str(tmp_path / "d")], "needs --dump"),
        (["data", "build", "--source", "nope", "--out", str(tmp_path / "e")], "unknown data source 'nope'"),
        (["data", "build", "--splits", "0.5,0.5", "--out", str(tmp_path / "f")], "split fractions"),
        (["data", "show", str(tmp_path)], "not a PolyFact dataset"),
    ]
    for args, msg in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], (args, r.stderr)
    assert not any(p.name in "abcdef" for p in tmp_path.iterdir())  # nothing half-written


def test_corrupt_existing_output_is_kept_when_force_build_fails(tmp_path):
    out = tmp_path / "data"
    assert run("data", "build", "--langs", "en", "--relations", "P38", "--out", str(out)).returncode == 0
    before = dir_digest(out)
    r = run("data", "build", "--langs", "en", "--relations", "P38", "--min-coverage", "2", "--force", "--out", str(out))
    assert r.returncode == 2 and dir_digest(out) == before
