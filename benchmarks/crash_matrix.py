"""`kill -9` and SIGTERM at every phase of a tiny run, then `--resume`: does it finish, at once, with the
numbers of an uninterrupted run, and leave no lock behind?

Points: phase 2 (after its first checkpoint), phase 2's trunk saved but no DONE yet, phase 3 (after its
first checkpoint), zero-shot prediction (before the 3rd predictions file), before the run's DONE, and a
retrieval run (before its first predictions file). Each is hit by ``tests/train/pause_worker.py`` in a
real ``mmxfer train`` process, which then gets SIGKILL or SIGTERM; ``--resume`` follows in a fresh process.

    python benchmarks/crash_matrix.py --out benchmarks/results/crash_matrix.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "train" / "pause_worker.py"
TINY = [
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "intermediate.max_train_examples=16",
    "--set",
    "intermediate.batch_size=8",
    "--set",
    "intermediate.checkpoint_every=1",
    "--set",
    "intermediate.epochs=2",
    "--set",
    "target.max_train_examples=16",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=2",
    "--set",
    "target.checkpoint_every=1",
    "--set",
    "target.max_eval_examples=8",
    "--set",
    "target.lr=1e-3",
]
ARM = [
    "train",
    "--intermediate",
    "starter-vqa-text",
    "--target",
    "starter-names",
    "--seed",
    "3",
    *TINY,
]
POINTS = {  # name -> (pause point, command); phase 2 writes 4 checkpoints (2 epochs x 2 steps), phase 3 is next
    "phase2-training": ("checkpoint:1", ARM),
    "phase2-trunk-saved": ("trunk-saved", ARM),
    "phase3-training": ("checkpoint:5", ARM),
    "prediction": ("predictions:3", ARM),
    "before-DONE": ("done", ARM),
    "retrieval": ("retrieval:1", None),
}


def _env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MMXFER_CACHE": str(cache),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }


def _results(runs: Path) -> list:
    run = next(p for p in (runs / "starter").iterdir() if not p.name.startswith("_"))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    preds = {p.name: p.read_text() for p in sorted((run / "predictions").glob("*/*.jsonl"))}
    return [sorted((r["lang"], r.get("part") or "", r["score"]) for r in rows), preds]


def _case(work: Path, env: dict, argv: list[str], point: str, sig: int) -> dict:
    runs = work / "runs"
    mark, go = work / "MARK", work / "GO"
    cmd = [
        sys.executable,
        str(WORKER),
        str(mark),
        str(go),
        "--at",
        point,
        "--",
        *argv,
        "--runs-dir",
        str(runs),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not mark.exists():
        if proc.poll() is not None:
            return {"error": f"ended before the pause point: {proc.stderr.read()[-500:]}"}
        time.sleep(0.1)
    proc.send_signal(sig)
    if sig == signal.SIGTERM:
        go.touch()  # a pause inside the training loop only records SIGTERM: let the step finish
    _, err = proc.communicate(timeout=300)
    locks_after_signal = [str(p.relative_to(runs)) for p in runs.rglob("LOCK")]
    start = time.monotonic()
    resume = subprocess.run(
        [sys.executable, "-m", "mmxfer", *argv, "--runs-dir", str(runs), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "exit": proc.returncode,
        "last_line": (err.strip().splitlines() or [""])[-1][-240:],
        "locks_left": locks_after_signal,
        "resume_exit": resume.returncode,
        "resume_s": round(time.monotonic() - start, 1),
        "waited": "waiting for" in resume.stderr,
        "locks_after_resume": [str(p) for p in runs.rglob("LOCK")],
        "_results": _results(runs) if resume.returncode == 0 else None,
        "resume_err": resume.stderr.strip().splitlines()[-1:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="crash-matrix-"))
    env = _env(base / "cache")
    suite = base / "one.yaml"
    suite.write_text(
        "name: one\ntasks:\n  - {task: starter-bitext, languages: [de, fr], category: retrieval}\n"
    )
    retrieval = ["train", "--intermediate", "none", "--seed", "3", *TINY, "--set", f"suite={suite}"]
    reference = {}
    for name, argv in (("arm", ARM), ("retrieval", retrieval)):
        runs = base / "reference" / name
        subprocess.run(
            [sys.executable, "-m", "mmxfer", *argv, "--runs-dir", str(runs)],
            env=env,
            check=True,
            capture_output=True,
        )
        reference[name] = _results(runs)
    rows = []
    for name, (point, argv) in POINTS.items():
        for sig in (signal.SIGKILL, signal.SIGTERM):
            work = base / f"{name}-{sig.name}"
            work.mkdir()
            out = _case(work, env, argv or retrieval, point, sig)
            results = out.pop("_results", None)
            out["same_numbers"] = results == reference["arm" if argv else "retrieval"]
            rows.append({"point": name, "signal": sig.name, **out})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
