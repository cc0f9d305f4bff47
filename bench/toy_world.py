"""How robust is the toy world's phenomenon? Pretrain the base at several pretraining seeds and
torch thread counts and print, per base: English, training-language mean and held-out accuracy on
the test facts, and Total Consistency over the training languages (the README's table).

    python bench/toy_world.py --seeds 0,1,2,3,4 --threads 1,2 [--set pretrain.train.epochs=8 ...]
    python bench/toy_world.py --table RUN [RUN ...]     # the markdown table of finished rows

Each (seed, threads) pair runs in its own process (torch threads are per process). Never time
this while another torch job runs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(run: Path, preset: str, sets: list[str], seed: int, threads: int, out: Path) -> None:
    import torch

    torch.set_num_threads(threads)
    import numpy as np

    from polyfact.analyses.recall import evaluate_checkpoint
    from polyfact.pipeline.config import resolve
    from polyfact.pipeline.stages import Context, data as data_stage
    from polyfact.core.layout import layout
    from polyfact.training.pretrain import pretrain

    cfg = resolve(preset, sets=sets)
    ctx = Context(layout(run), cfg)
    data_stage(ctx)
    ckpt = f"base-s{seed}-t{threads}"
    t0 = time.perf_counter()
    pretrain(run, cfg.pretrain, ckpt_id=ckpt, seed=seed)
    secs = time.perf_counter() - t0
    res = evaluate_checkpoint(run, ckpt, bootstrap=0, progress=False, normalization=cfg.eval.normalization)
    from polyfact.data.dataset import load_meta

    meta = load_meta(layout(run).data)
    acc = res["metrics"]["accuracy"]
    training = [acc[x] for x in meta["training_langs"] if x in acc and x != "en"]
    heldout = [acc[x] for x in meta.get("heldout_langs") or [] if x in acc]
    row = {"seed": seed, "threads": threads, "seconds": round(secs, 1), "en": acc.get("en"),
           "training_mean": float(np.mean(training)), "heldout": float(np.mean(heldout)) if heldout else None,
           "tc_training": res["consistency_subsets"].get("training"), "accuracy": acc}
    out.write_text(json.dumps(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--run", default="bench/out/toy_world")
    ap.add_argument("--child", nargs=3, type=str, help=argparse.SUPPRESS)
    ap.add_argument("--table", nargs="+", type=Path, help="print docs/RESULTS.md's table from the row files of "
                                                           "these run folders (no training)")
    a = ap.parse_args()
    if a.table:
        table(sorted((json.loads(p.read_text()) for d in a.table for p in d.glob("row-*.json")),
                     key=lambda r: (r["threads"], r["seed"])))
        return
    run = Path(a.run)
    if a.child:
        one(run, a.preset, a.sets, int(a.child[0]), int(a.child[1]), Path(a.child[2]))
        return
    run.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in map(int, a.threads.split(",")):
        for s in map(int, a.seeds.split(",")):
            out = run / f"row-s{s}-t{t}.json"
            env = {**os.environ, "OMP_NUM_THREADS": str(t), "POLYFACT_QUIET": "1"}
            subprocess.run([sys.executable, __file__, "--run", str(run), "--preset", a.preset,
                            *sum((["--set", x] for x in a.sets), []), "--child", str(s), str(t), str(out)],
                           check=True, env=env, cwd=ROOT)
            r = json.loads(out.read_text())
            rows.append(r)
            print(f"seed {s} threads {t}: en {r['en']:.3f} training {r['training_mean']:.3f} "
                  f"held-out {r['heldout']:.3f} TC {r['tc_training']:.3f} ({r['seconds']} s)", flush=True)
    import numpy as np

    for k in ("en", "training_mean", "heldout", "tc_training"):
        v = np.array([r[k] for r in rows])
        print(f"{k}: {v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f} (min {v.min():.3f}, max {v.max():.3f})")
    gap_h = np.array([r["en"] - r["heldout"] for r in rows])
    gap_t = np.array([r["en"] - r["training_mean"] for r in rows])
    print(f"en - heldout: min {gap_h.min():.3f}; en - training mean: min {gap_t.min():.3f}")


def table(rows: list[dict]) -> None:
    """Markdown: one row per (pretraining seed, threads), the gaps the toy world must show, and the
    mean ± sd over pretraining seeds at each thread count."""
    import numpy as np

    print("| pretraining seed | torch threads | English | training-language mean | held-out | English − training "
          "| English − held-out | TC (training) | pretraining s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['threads']} | {r['en']:.3f} | {r['training_mean']:.3f} | {r['heldout']:.3f} | "
              f"{r['en'] - r['training_mean']:.3f} | {r['en'] - r['heldout']:.3f} | {r['tc_training']:.3f} | "
              f"{r['seconds']:.0f} |")
    for t in sorted({r["threads"] for r in rows}):
        sub = [r for r in rows if r["threads"] == t]
        cell = lambda f: (lambda v: f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}")(  # noqa: E731
            np.array([f(r) for r in sub]))
        print(f"| mean ± sd ({len(sub)} seeds) | {t} | {cell(lambda r: r['en'])} | {cell(lambda r: r['training_mean'])} "
              f"| {cell(lambda r: r['heldout'])} | {cell(lambda r: r['en'] - r['training_mean'])} | "
              f"{cell(lambda r: r['en'] - r['heldout'])} | {cell(lambda r: r['tc_training'])} | |")


if __name__ == "__main__":
    main()
