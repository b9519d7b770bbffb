"""Wall time and peak memory of the README's main command, `mmxfer study starter` (budget:
10 minutes on 2 CPU cores and 4 GB).

Runs the study in a child process with a fresh runs folder (and, with --fresh-cache, a fresh
mmxfer cache so the starter-trunk conversion is included), offline, and writes JSON:

    python benchmarks/starter_study.py --out benchmarks/results/starter_study.json [--fresh-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/starter_study.json")
    parser.add_argument("--fresh-cache", action="store_true", help="include the first-use starter conversion")
    parser.add_argument("--study", default="starter")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmxfer-starter-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TQDM_DISABLE": "1"}
    if args.fresh_cache:
        env["MMXFER_CACHE"] = str(work / "cache")
    command = [sys.executable, "-m", "mmxfer", "study", args.study, "--runs-dir", str(work / "runs")]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, largest child
    lines = proc.stdout.splitlines()
    answer = lines[next((i for i, line in enumerate(lines) if line.startswith("gap analysis:")), len(lines)):]
    headline = [line for line in answer if line.startswith(("Modality effect", "(1)", "(2)", "Intermediate training",
                                                              "Note:"))]
    result = {
        "benchmark": "mmxfer study " + args.study,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "fresh_cache": args.fresh_cache,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": {"before": [round(x, 2) for x in load_before],
                                "after": [round(x, 2) for x in load_after]},
        "platform": platform.platform(),
        "headline": headline,
        "budget": {"wall_s": 600, "memory_mb": 4000},
    }
    if proc.returncode != 0:
        result["stderr_tail"] = proc.stderr[-2000:]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
