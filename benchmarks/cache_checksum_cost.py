"""What the checksums of sealed cache folders (mmxfer.runs.sealed) cost: sha256 speed on this host, and the bytes a
starter run hashes (its feature-cache entries and the converted starter trunk) and the seconds that takes.

Each run is a child process with one BLAS/OpenMP thread that counts every byte ``sealed.sha256_file`` reads (sealing
a new folder, checking one on its first load in the process) and the time spent there. The first run goes to an
empty cache (conversion and features made and sealed), the second to the same cache (every entry checked on load):

    OMP_NUM_THREADS=1 python benchmarks/cache_checksum_cost.py --out benchmarks/results/cache_checksum_cost.json

The host's fp32 matrix-product speed is recorded beside the hashing speed, to compare hosts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the starter profile's baseline run on its classification target (SIB-200, 32 languages), as `mmxfer study starter`
#: runs it for each seed
RUN = ["train", "--intermediate", "none", "--target", "starter-sib200", "--seed", "1"]

#: the child: count what sealed.sha256_file hashes, run the command, print the counts as JSON on the last line
CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from mmxfer.runs import sealed
from mmxfer.cli import main
counts = {"bytes": 0, "files": 0, "wall_s": 0.0, "cpu_s": 0.0, "by_folder": {}}
real = sealed.sha256_file
def counted(path):
    import os
    w, c = time.perf_counter(), time.process_time()
    out = real(path)
    counts["wall_s"] += time.perf_counter() - w
    counts["cpu_s"] += time.process_time() - c
    size = os.path.getsize(path)
    counts["bytes"] += size
    counts["files"] += 1
    parts = str(path).split("/")
    top = next((p for p in reversed(parts) if p in ("features", "trunks", "testing")), "run folder")
    counts["by_folder"][top] = counts["by_folder"].get(top, 0) + size
    return out
sealed.sha256_file = counted
w = time.perf_counter()
code = main(sys.argv[1:])
counts["run_wall_s"] = time.perf_counter() - w
counts["exit"] = code
print(json.dumps(counts))
"""


def hash_speed(mib: int = 256, repeats: int = 3) -> dict[str, float]:
    """sha256 MB/s (10^6 bytes) of ``mib`` MiB in 1 MiB blocks, as sealed.sha256_file reads them: from memory, and
    from a file in the page cache; the best of ``repeats``, in CPU time and wall time."""
    from mmxfer.runs.sealed import sha256_file

    block = os.urandom(1 << 20)
    out: dict[str, float] = {}

    def best(fn) -> tuple[float, float]:
        wall = cpu = float("inf")
        for _ in range(repeats):
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
        return wall, cpu

    def from_memory() -> None:
        digest = hashlib.sha256()
        for _ in range(mib):
            digest.update(block)
        digest.hexdigest()

    wall, cpu = best(from_memory)
    out["memory_mb_s_wall"], out["memory_mb_s_cpu"] = (
        mib * 2**20 / wall / 1e6,
        mib * 2**20 / cpu / 1e6,
    )
    with tempfile.NamedTemporaryFile(suffix=".bin") as handle:
        for _ in range(mib):
            handle.write(block)
        handle.flush()
        sha256_file(handle.name)  # into the page cache
        wall, cpu = best(lambda: sha256_file(handle.name))
    out["file_mb_s_wall"], out["file_mb_s_cpu"] = mib * 2**20 / wall / 1e6, mib * 2**20 / cpu / 1e6
    return {k: round(v, 1) for k, v in out.items()}


def host() -> dict:
    import torch

    from mmxfer.study.throughput import cpu_matmul_flops

    torch.set_num_threads(1)
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else ""
    )
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "sha_extensions": " sha_ni " in flags or " sha2 " in flags,
        "fp32_matmul_gflops_1_thread": round(
            cpu_matmul_flops("fp32", clock=time.process_time) / 1e9, 1
        ),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "openssl": __import__("ssl").OPENSSL_VERSION,
    }


def child_run(cache: Path, runs: Path) -> dict:
    env = {
        **os.environ,
        "MMXFER_CACHE": str(cache),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *RUN, "--runs-dir", str(runs)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"the run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default="cache_checksum_cost.json")
    ap.add_argument("--mib", type=int, default=256, help="MiB hashed per speed measurement")
    args = ap.parse_args()

    speed = hash_speed(args.mib)
    with tempfile.TemporaryDirectory(prefix="bench-checksum-") as tmp:
        cold = child_run(Path(tmp) / "cache", Path(tmp) / "runs-cold")
        warm = child_run(Path(tmp) / "cache", Path(tmp) / "runs-warm")
    rate = speed["file_mb_s_cpu"] * 1e6
    for counts in (cold, warm):
        counts["cache_bytes"] = sum(v for k, v in counts["by_folder"].items() if k != "run folder")
        counts["cache_seconds_at_measured_rate"] = round(counts["cache_bytes"] / rate, 3)
    report = {
        "benchmark": "cache_checksum_cost",
        "host": host(),
        "sha256": speed,
        "run": "mmxfer " + " ".join(RUN) + " (starter profile, one torch thread)",
        "cold_cache": cold,
        "warm_cache": warm,
        "how": "hash speed: 1 MiB blocks from memory and from a page-cached file (sealed.sha256_file), best of 3; "
        "runs: a child process per run with sealed.sha256_file counted; cold = empty MMXFER_CACHE (the "
        "starter conversion and features are made and sealed), warm = the same cache again (each entry "
        "checked once on load). bytes, wall_s, cpu_s: everything sha256_file read and the time inside it during "
        "the run, which includes the run folder's own DONE checksums (by_folder 'run folder'); cache_bytes: "
        "the cache's part (feature entries, the converted trunk); cache_seconds_at_measured_rate: cache_bytes / "
        "file_mb_s_cpu.",
    }
    for key in ("cold_cache", "warm_cache"):
        for name in ("wall_s", "cpu_s", "run_wall_s"):
            report[key][name] = round(report[key][name], 3)
        report[key]["share_of_run"] = round(report[key]["wall_s"] / report[key]["run_wall_s"], 4)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
