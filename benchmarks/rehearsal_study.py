"""Wall time and peak memory of ``mmxfer study rehearsal`` from a fresh clone: one command, an empty cache.

Not a test. Runs the command under ``/usr/bin/time -v`` in a new temporary folder with an empty
``$MMXFER_CACHE`` (so the tiny models and the fixtures are made on first use, as on a fresh clone), then
writes JSON (stdout, or ``--out``)::

    python benchmarks/rehearsal_study.py --out benchmarks/results/rehearsal_study.json
    python benchmarks/rehearsal_study.py --set data_form=release --set seeds=[1] \
        --out benchmarks/results/rehearsal_study_release.json                    # the release-form pass (CI)

The machine is shared: the load average before and after is recorded with the figures, and ``--wait-load``
waits (up to 10 minutes) until the 1-minute load average is below it before starting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME_FIELDS = {
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
    "Maximum resident set size (kbytes)": "rss_kb",
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
    "Percent of CPU this job got": "cpu_percent",
}


def _seconds(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def parse_time(stderr: str) -> dict[str, float]:
    out = {}
    for line in stderr.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in TIME_FIELDS:
            name = TIME_FIELDS[key]
            out[name] = _seconds(value) if name == "wall" else float(value.rstrip("%"))
    return out


def wait_for_load(limit: float, patience_s: float = 600) -> None:
    deadline = time.time() + patience_s
    while os.getloadavg()[0] >= limit and time.time() < deadline:
        time.sleep(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="study override (key=value)"
    )
    ap.add_argument(
        "--wait-load", type=float, default=None, help="start when the 1-minute load is below this"
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.wait_load is not None:
        wait_for_load(args.wait_load)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "MMXFER_CACHE": str(Path(tmp) / "cache"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        cmd = [
            sys.executable,
            "-m",
            "mmxfer",
            "study",
            "rehearsal",
            "--runs-dir",
            str(Path(tmp) / "runs"),
        ]
        for item in args.overrides:
            cmd += ["--set", item]
        load_before = os.getloadavg()
        done = subprocess.run(
            ["/usr/bin/time", "-v", *cmd], cwd=tmp, env=env, capture_output=True, text=True
        )
        load_after = os.getloadavg()
        if done.returncode != 0:
            sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
        done_runs = [p.parent.name for p in (Path(tmp) / "runs" / "rehearsal").glob("*/DONE")]
        runs = len(done_runs)
        phase2 = sum(1 for _ in (Path(tmp) / "runs" / "rehearsal" / "_intermediate").glob("*/DONE"))
        reports = sorted(p.parent.name for p in (Path(tmp) / "reports").glob("*/report.md"))
    figures = parse_time(done.stderr)
    result = {
        "command": "mmxfer study rehearsal " + " ".join(f"--set {o}" for o in args.overrides),
        "setup": {
            "code": _code(),
            "python": platform.python_version(),
            "torch": _version("torch"),
            "cpus": os.cpu_count(),
            "fresh_cache": True,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "wall_s": round(figures["wall"], 1),
        "peak_rss_mb": round(figures["rss_kb"] / 1024, 1),
        "user_s": figures["user_s"],
        "system_s": figures["system_s"],
        "cpu_percent": figures["cpu_percent"],
        "runs": runs,
        "phase2_trainings": phase2,
        "reports": reports,
        "runs_by_target": _by_target(done_runs),
        "stages_s": _stages(done.stdout),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


def _code() -> str:
    """The commit measured (with ``+dirty`` when the work tree differs from it)."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "absent"


def _by_target(names: list[str]) -> dict[str, int]:
    """Finished runs per target (``<arm>-<target>-s<seed>-<hash>``; ``retrieval`` = the trunk evaluations)."""
    out: dict[str, int] = {}
    for name in names:
        stem = re.sub(r"-s\d+-[0-9a-f]+$", "", name)
        target = next((t for t in TARGETS if stem.endswith("-" + t)), "other")
        out[target] = out.get(target, 0) + 1
    return dict(sorted(out.items()))


TARGETS = (
    "xnli",
    "pawsx",
    "udpos",
    "panx",
    "xquad",
    "mlqa",
    "tydiqa",
    "sib200",
    "flores200-translate",
    "retrieval",
)


def _stages(stdout: str) -> dict[str, float]:
    """The compare step of each suite, as the study prints it ("wrote N files to ... in 4.4s")."""
    return {
        f"compare {m.group(1)}": float(m.group(2))
        for m in re.finditer(
            r"wrote \d+ files to reports/(\S+) \(report\.md\) in ([\d.]+)s", stdout
        )
    }


if __name__ == "__main__":
    main()
