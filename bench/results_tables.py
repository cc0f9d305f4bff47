"""Markdown tables for docs/RESULTS.md from a finished run's result files (so the numbers there are
copied by a program, not by hand): the base by language group, each arm's change, and for a
multi-seed run the claims, the controls and the headline rows of the seed table.

    python bench/results_tables.py runs/replicate
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _f(x, d=3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.{d}f}" if d < 0 else f"{x:.{d}f}"


def _s(x) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.4f}"


def main(run: Path) -> None:
    from polyfact.core.layout import layout

    summary = json.loads(layout(run).summary.read_text())
    print("| checkpoint | mean acc. | English | high | low | held-out | TC (training) |")
    print("|---|---|---|---|---|---|---|")
    for r in summary["rows"]:
        g = r.get("accuracy_by_group", {})
        print(f"| {r['checkpoint']} | {_f(r['mean_accuracy'])} | {_f(r.get('en'))} | {_f(g.get('high'))} | "
              f"{_f(g.get('low'))} | {_f(g.get('heldout'))} | {_f(r.get('total_consistency_training'))} |")
    claims_path = layout(run).claims
    if not claims_path.exists():
        return
    doc = json.loads(claims_path.read_text())
    print(f"\nclaims at {doc['n_seeds']} seeds ({doc['rule']}):\n")
    print("| claim | verdict | test | difference [95 % CI] | p (Holm) | exact p (Holm) | detectable |")
    print("|---|---|---|---|---|---|---|")
    for c in doc["claims"]:
        for t in c.get("tests", []):
            mde = "nothing" if not math.isfinite(t["mde"]) else f"{t['mde']:.3g}"
            print(f"| {c['claim']} | {c['verdict']} | {t['measure']} {t['contrast']} | {_s(t['difference'])} "
                  f"[{_s(t['ci'][0])}, {_s(t['ci'][1])}] | {t['p']:.3g} ({t['p_adjusted']:.3g}) | "
                  f"{t['exact_p']:.3g} ({t['exact_p_adjusted']:.3g}) | {mde} |")
        sd = c.get("study_difference")
        if sd:
            print(f"\nstudy difference {sd['value']}: detectable here {sd['detectable_here']}, "
                  f"seeds needed {sd.get('seeds_needed')}\n")
    ctl = doc["controls"]
    print(f"\ncontrols: {ctl['reason']} (answers the claims: {ctl['answers_claims']})\n")
    for key in ("placebo", "oracle"):
        for t in ctl.get(key, {}).get("tests", []):
            mde = "nothing" if not math.isfinite(t["mde"]) else f"{t['mde']:.3g}"
            print(f"| {key} | {t['measure']} {t['contrast']} | {_s(t['difference'])} [{_s(t['ci'][0])}, "
                  f"{_s(t['ci'][1])}] | p {t['p']:.3g} (Holm {t['p_adjusted']:.3g}) | exact {t['exact_p']:.3g} | "
                  f"{t['outcome']} | {mde} |")
    seeds = json.loads(layout(run).seeds_summary.read_text())
    print(f"\nseed table ({seeds['n_tests']} tests, BH):\n")
    print("| method | measure | change vs base [95 % CI] | p (BH) | exact p (BH) | verdict |")
    print("|---|---|---|---|---|---|")
    for m in seeds["headline"]:
        for method, row in seeds["measures"].get(m, {}).items():
            t = row["test"]
            print(f"| {method} | {seeds['labels'].get(m, m)} | {_s(t['difference'])} [{_s(t['ci'][0])}, "
                  f"{_s(t['ci'][1])}] | {t['p']:.3g} ({t['p_adjusted']:.3g}) | {t['exact_p']:.3g} "
                  f"({t['exact_p_adjusted']:.3g}) | {row['verdict']} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
