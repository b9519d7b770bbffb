"""Wall time and peak memory of the README's main command, `mmxfer study starter` (aims on 2 CPU cores: 6 minutes
where the CPU has no native bf16, 4 where it has, 4 GB).

Runs the study in a child process with a fresh runs folder (and, with --fresh-cache, a fresh
mmxfer cache so the starter-trunk conversion is included), offline, and writes JSON:

    python benchmarks/starter_study.py --out benchmarks/results/starter_study.json [--fresh-cache]

The study is compute-bound (matrix products of the trunk's layers: bf16 where the CPU has it natively, else fp32),
so its wall time follows the CPU: the JSON records the host's bf16 and fp32 matrix-product speed, measured before
the study, to compare runs across hosts (benchmarks/starter_floor.py turns it into the study's floor time).
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

#: a child process: GFLOP/s of 2048 x 2048 matrix products in bf16 and fp32 on torch's default threads, ~3 s each
_GEMM_PROBE = """
import json, time, torch
out = {"torch_threads": torch.get_num_threads()}
for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3.0:
        a @ b
        n += 1
    out[name + "_matmul_gflops"] = round(n * 2 * 2048**3 / (time.perf_counter() - start) / 1e9, 1)
print(json.dumps(out))
"""


def host_speed() -> dict:
    """The CPU model and its measured matrix-product speed (what the study's wall time scales with)."""
    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    probe = subprocess.run([sys.executable, "-c", _GEMM_PROBE], capture_output=True, text=True)
    speed = (
        json.loads(probe.stdout) if probe.returncode == 0 else {"probe_error": probe.stderr[-500:]}
    )
    return {"cpu_model": model, **speed}


def _bf16_native() -> bool:
    from mmxfer.runs.env import cpu_bf16_native

    return cpu_bf16_native()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/starter_study.json")
    parser.add_argument(
        "--fresh-cache", action="store_true", help="include the first-use starter conversion"
    )
    parser.add_argument("--study", default="starter")
    args = parser.parse_args()

    host = host_speed()
    work = Path(tempfile.mkdtemp(prefix="mmxfer-starter-bench-"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    if args.fresh_cache:
        env["MMXFER_CACHE"] = str(work / "cache")
    command = [
        sys.executable,
        "-m",
        "mmxfer",
        "study",
        args.study,
        "--runs-dir",
        str(work / "runs"),
    ]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, largest child
    lines = proc.stdout.splitlines()
    answer = lines[
        next((i for i, line in enumerate(lines) if line.startswith("gap analysis:")), len(lines)) :
    ]
    headline = [
        line
        for line in answer
        if line.startswith(
            ("Modality effect", "(1)", "(2)", "Intermediate training", "Positive control", "Note:")
        )
    ]
    result = {
        "benchmark": "mmxfer study " + args.study,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "fresh_cache": args.fresh_cache,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "platform": platform.platform(),
        "host_speed": host,
        "headline": headline,
        "budget": {"wall_s": 240 if _bf16_native() else 360, "memory_mb": 4000},
    }
    if proc.returncode != 0:
        result["stderr_tail"] = proc.stderr[-2000:]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
