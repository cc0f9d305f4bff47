"""Write ``analyses/expected_noise.json`` from a finished multi-seed toy run: the unit-level noise
(seed, fact and seed × fact variance components) of every claim test, which the dry run uses to
state each claim's minimum detectable effect at a planned number of seeds and test facts.

    python bench/expected_noise.py runs/replicate
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from polyfact.analyses.seeds import EXPECTED_NOISE
    from polyfact.core.io import atomic_write_json
    from polyfact.core.layout import layout

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    a = ap.parse_args()
    claims = json.loads(layout(a.run).claims.read_text())
    tests, facts = {}, None
    for c in claims["claims"]:
        for t in c.get("tests", []):
            comp = t.get("components") or {}
            if "seed_var" not in comp:
                continue
            tests[f"{t['measure']}|{t['a']}|{t['b']}"] = {k: comp[k] for k in ("seed_var", "fact_var", "resid_var")
                                                        if k in comp}
            facts = t.get("n_facts") or facts
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    atomic_write_json(EXPECTED_NOISE, {"measured": {"run": a.run.name, "seeds": claims.get("n_seeds"),
                                                    "test_facts": facts, "commit": commit,
                                                    "date": datetime.date.today().isoformat()},
                                       "tests": tests})
    print(f"wrote {EXPECTED_NOISE} ({len(tests)} tests, {claims.get('n_seeds')} seeds, {facts} test facts)")


if __name__ == "__main__":
    main()
