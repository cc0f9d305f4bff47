"""The dump reader on small dumps in the real format, corrupt lines included."""

import pytest

from polyfact.core.errors import PolyFactError
from polyfact.data.make import build_dataset
from polyfact.data.sources.wikidata_dump import DumpStats, dump_facts, iter_entities
from tests.wikidata_fixtures import ENTITIES, write_dump


@pytest.mark.parametrize("suffix", [".json.gz", ".json.bz2", ".json"])
def test_reads_every_compression_and_counts_corrupt_lines(tmp_path, suffix):
    path = write_dump(tmp_path / f"latest-all{suffix}")
    stats = DumpStats()
    ids = [e["id"] for e in iter_entities(path, stats)]
    assert ids == [e["id"] for e in ENTITIES]
    assert stats.corrupt == 2 and stats.entities == len(ENTITIES)
    assert len(stats.corrupt_examples) == 2 and "line 4" in stats.corrupt_examples[0]


def test_facts_labels_aliases_and_two_passes(tmp_path):
    path = write_dump(tmp_path / "d.json.gz")
    facts = {f.fact_id: f for f in dump_facts(path, ["en", "ja"], ["P36", "P17", "P30"], progress=False)}
    # Europe (Q46) appears after France in the dump: its labels come from the second pass.
    assert facts["Q142|P30|Q46"].object == {"en": "Europe", "ja": "ヨーロッパ"}
    assert facts["Q142|P36|Q90"].object_aliases == {"en": ["City of Light"], "ja": ["巴里"]}
    assert facts["Q142|P36|Q90"].subject == {"en": "France", "ja": "フランス"}  # no 'de': not asked
    assert "Q183|P36|Q1055" not in facts  # deprecated rank skipped
    assert "Q142|P47|Q183" not in facts  # property not asked
    assert len(facts) == 2 + 3 + 2  # P36 ×2, P17 ×3, P30 ×2


def test_max_facts_bounds_the_read(tmp_path):
    path = write_dump(tmp_path / "d.json")
    assert len(dump_facts(path, ["en"], ["P36", "P17", "P30", "P47"], max_facts=3, progress=False)) == 3


def test_build_from_dump_cli_path(tmp_path):
    path = write_dump(tmp_path / "d.json.bz2")
    meta = build_dataset("wikidata-dump", tmp_path / "out", dump=path, langs="en,de,ja",
                         relations="P17,P36,P30,P47", n_options=2, split_fracs=(0.5, 0.0, 0.5), min_coverage=1.0)
    assert sum(meta["n_facts"].values()) >= 2
    assert meta["source"] == "wikidata-dump"


def test_missing_and_truncated_dumps_are_one_line_errors(tmp_path):
    with pytest.raises(PolyFactError, match="dump not found"):
        list(iter_entities(tmp_path / "nope.json.gz"))
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(write_dump(tmp_path / "ok.json.gz").read_bytes()[:40])
    with pytest.raises(PolyFactError, match="cannot read dump"):
        list(iter_entities(bad))
