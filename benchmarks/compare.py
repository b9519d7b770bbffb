"""Time `mmxfer compare` on a synthetic study: 12 arms x 9 XTREME tasks x 3 seeds x every language.

Arms: 1 baseline, 5 text, 6 image-text (41 comparisons). Tasks carry XTREME's language counts
(162 task x language cells). Writes a JSON with the timings of each stage.

    python benchmarks/compare.py --n 1000 --bootstrap 1000 --out bench_compare.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from mmxfer.compare.gaps import GapSettings, compute_gaps
from mmxfer.compare.plots import all_plots
from mmxfer.compare.report import write_report
from mmxfer.compare.results import build_results, write_results
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

XTREME = {
    "xnli": ("classification", 15),
    "pawsx": ("classification", 7),
    "udpos": ("structured", 33),
    "panx": ("structured", 40),
    "xquad": ("qa", 11),
    "mlqa": ("qa", 7),
    "tydiqa": ("qa", 9),
    "bucc": ("retrieval", 4),
    "tatoeba": ("retrieval", 36),
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1000, help="examples per predictions file")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--workdir", default=None, help="where the synthetic runs go [default: a temp dir]"
    )
    ap.add_argument("--out", default="bench_compare.json")
    args = ap.parse_args()

    from mmxfer.languages import flores200_codes

    pool = list(flores200_codes())
    arms = [SynthArm("baseline", (), "none")]
    arms += [SynthArm(f"text{i}", (f"t{i}",), "text", 0.5 * i) for i in range(1, 6)]
    arms += [SynthArm(f"mm{i}", (f"v{i}",), "image-text", 0.4 * i) for i in range(1, 7)]
    tasks = [SynthTask(name, cat, tuple(pool[:k]), args.n) for name, (cat, k) in XTREME.items()]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-compare-"))
    t0 = time.perf_counter()
    if not any(work.glob("**/DONE")):
        make_study(work, arms, tasks, range(1, args.seeds + 1), exact=False, seed_sd=0.5)
    t_write = time.perf_counter() - t0

    t = time.perf_counter()
    results = build_results([work])
    t_table = time.perf_counter() - t
    t = time.perf_counter()
    gaps = compute_gaps(results, GapSettings(n_boot=args.bootstrap, progress=False))
    t_gaps = time.perf_counter() - t
    out_dir = work / "report"
    t = time.perf_counter()
    write_results(results, out_dir)
    plots = all_plots(gaps, out_dir)
    write_report(gaps, results, out_dir, "bench", plots)
    t_out = time.perf_counter() - t
    report = {
        "arms": len(arms),
        "tasks": len(tasks),
        "seeds": args.seeds,
        "cells": int(sum(len(x.languages) for x in tasks)),
        "examples_per_file": args.n,
        "bootstrap": args.bootstrap,
        "runs": int(results["run_id"].nunique()),
        "prediction_rows": int(
            len(arms) * args.seeds * args.n * sum(len(x.languages) for x in tasks)
        ),
        "comparisons": int(len(gaps.suite)),
        "language_margins": int(len(gaps.languages)),
        "seconds": {
            "write_synthetic_study": round(t_write, 2),
            "build_results": round(t_table, 2),
            "compute_gaps": round(t_gaps, 2),
            "tables_plots_report": round(t_out, 2),
            "compare_total": round(t_table + t_gaps + t_out, 2),
        },
        "cpu": platform.processor() or platform.machine(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
