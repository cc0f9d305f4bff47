"""Compare the result files of two run directories: every value a result file of the first run holds
must be equal in the second (provenance and timestamps aside; keys the second adds are listed, not
counted as differences). Used to show that a restructuring changed no result.

    python bench/compare_runs.py RUN_A RUN_B [--ignore KEY ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polyfact.core.layout import layout  # noqa: E402

IGNORED = {"provenance", "created_at", "provenance_key", "versions", "schema"}


def walk(a, b, path: str, diffs: list[str], added: set[str], ignore: set[str]) -> None:
    if isinstance(a, dict):
        if not isinstance(b, dict):
            diffs.append(f"{path}: {type(a).__name__} became {type(b).__name__}")
            return
        for k, v in a.items():
            if k in ignore:
                continue
            if k not in b:
                diffs.append(f"{path}.{k}: missing")
            else:
                walk(v, b[k], f"{path}.{k}", diffs, added, ignore)
        added.update(f"{path}.{k}" for k in b if k not in a and k not in ignore)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            diffs.append(f"{path}: list changed ({len(a)} → {len(b) if isinstance(b, list) else b!r})")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", diffs, added, ignore)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        diffs.append(f"{path}: {a!r} → {b!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--ignore", nargs="*", default=[])
    args = ap.parse_args()
    ignore = IGNORED | set(args.ignore)
    files = sorted(p.relative_to(args.a) for p in layout(args.a).results.rglob("*.json"))
    total, changed = 0, 0
    for rel in files:
        other = args.b / rel
        if not other.exists():
            print(f"{rel}: missing in {args.b}")
            changed += 1
            continue
        diffs: list[str] = []
        added: set[str] = set()
        walk(json.loads((args.a / rel).read_text()), json.loads(other.read_text()), "", diffs, added, ignore)
        total += 1
        if diffs:
            changed += 1
            print(f"{rel}: {len(diffs)} differences, e.g. {diffs[:3]}")
        elif added:
            print(f"{rel}: equal; new keys {sorted(added)[:5]}{' …' if len(added) > 5 else ''}")
    print(f"{total} result files compared, {changed} with differences")


if __name__ == "__main__":
    main()
