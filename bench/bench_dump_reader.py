"""Benchmark: the Wikidata dump reader on a generated 100K-fact dump extract.

Reports wall time, peak memory (max RSS of a fresh process) and the ratio to the floor, a bare
decompress-and-``json.loads`` loop over the same file.

    python bench/bench_dump_reader.py [--facts 100000] [--out bench/out/dump_reader.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LANGS = ["en", "de", "ja", "zh", "ar", "ru", "fr", "es", "pt", "id", "bn", "sw"]


def generate(path: Path, n_facts: int, seed: int = 0) -> None:
    """Entities with 2 claims each (P17 and P30 over a pool of 300 objects), labels in 12 languages
    plus 30 other languages as noise, aliases and descriptions, like real dump lines."""
    from tests.wikidata_fixtures import entity

    rng = random.Random(seed)
    objects = [f"Q{i}" for i in range(1, 301)]
    noise = [f"x{i}" for i in range(30)]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("[\n")
        for q in objects:
            fh.write(json.dumps(entity(q, {l: f"obj {q} {l}" for l in LANGS + noise})) + ",\n")
        n_subjects = n_facts // 2
        for i in range(n_subjects):
            q = f"Q{1000 + i}"
            e = entity(q, {l: f"subject {i} {l}" for l in LANGS + noise},
                       {"P17": [rng.choice(objects)], "P30": [rng.choice(objects)]},
                       aliases={"en": [f"alias {i}"]})
            e["descriptions"] = {l: {"language": l, "value": "a thing " * 5} for l in LANGS}
            fh.write(json.dumps(e) + ("," if i < n_subjects - 1 else "") + "\n")
        fh.write("]\n")


def floor(path: Path) -> int:
    n = 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            s = line.strip()
            if s in ("[", "]", ""):
                continue
            json.loads(s[:-1] if s.endswith(",") else s)
            n += 1
    return n


def reader(path: Path) -> int:
    from polyfact.data.sources.wikidata_dump import dump_facts

    return len(dump_facts(path, LANGS, ["P17", "P30"], progress=False))


def child(kind: str, path: str) -> None:
    t = time.perf_counter()
    n = floor(Path(path)) if kind == "floor" else reader(Path(path))
    dt = time.perf_counter() - t
    print(json.dumps({"kind": kind, "seconds": dt, "items": n,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--facts", type=int, default=100_000)
    ap.add_argument("--out", default="bench/out/dump_reader.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "latest-all.json.gz"
        generate(path, a.facts)
        size = path.stat().st_size / 2**20
        res = {}
        for kind in ("floor", "reader"):
            out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True,
                                 text=True, check=True).stdout
            res[kind] = json.loads(out.strip().splitlines()[-1])
    ratio = res["reader"]["seconds"] / res["floor"]["seconds"]
    report = {"facts_requested": a.facts, "dump_mb_gz": round(size, 1), "floor": res["floor"],
              "reader": res["reader"], "ratio_reader_over_floor": round(ratio, 2)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=2))
    print(f"dump: {size:.1f} MB gz, {a.facts} facts")
    print(f"floor  (decompress + json.loads): {res['floor']['seconds']:.2f} s, peak RSS {res['floor']['max_rss_mb']:.0f} MB")
    print(f"reader (two passes, dump_facts):  {res['reader']['seconds']:.2f} s, peak RSS {res['reader']['max_rss_mb']:.0f} MB, "
          f"{res['reader']['items']} facts")
    print(f"ratio reader / floor: {ratio:.2f}x")


if __name__ == "__main__":
    main()
