"""Runs that cannot be corrupted: two processes on one run, `kill -9` and SIGTERM in every phase.

- a second process on a run that is being trained stops at once, naming the holder; the first finishes with
  one copy of every row;
- `kill -9` in phase 2 leaves the run's and the phase-2 folder's locks behind; `--resume` takes both over at
  once (their process is gone) and ends with the numbers of an uninterrupted run;
- SIGTERM (what SLURM sends at a time limit) in phase 2, phase 3, zero-shot prediction and retrieval:
  training checkpoints, every lock is released, the exit code is 143 with a "resume with --resume" line, and
  `--resume` ends with the numbers of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmxfer.cli import main
from mmxfer.evaluation import runner
from mmxfer.runs.store import Run
from mmxfer.train import loop

HERE = Path(__file__).resolve().parent
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
BASELINE = ["train", "--intermediate", "none", "--target", "starter-names", "--seed", "3", *TINY]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path_factory.getbasetemp() / "crash-cache"))


def _run_dir(runs_dir: Path) -> Path:
    (run,) = [p for p in (runs_dir / "starter").iterdir() if not p.name.startswith("_")]
    return run


def _results(runs_dir: Path) -> tuple[list, dict]:
    run = Run(_run_dir(runs_dir))
    rows = run.verified_metrics()  # DONE matches the files, no torn or doubled rows
    preds = {p.name: p.read_text() for p in sorted(run.predictions_dir.glob("*/*.jsonl"))}
    return [(m["lang"], m["score"]) for m in rows], preds


def _locks(runs_dir: Path) -> list[Path]:
    return sorted(runs_dir.rglob("LOCK"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted arm run (phase 2 + phase 3 + prediction)."""
    runs = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMXFER_CACHE", str(tmp_path_factory.getbasetemp() / "crash-cache"))
        assert main([*ARM, "--runs-dir", str(runs)]) == 0
    return _results(runs)


def _worker(tmp_path: Path, argv: list[str]) -> tuple[subprocess.Popen, Path, Path]:
    mark, go = tmp_path / "MARK", tmp_path / "GO"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "pause_worker.py"), str(mark), str(go), "--", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not mark.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"worker ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("worker never reached its first checkpoint")
        time.sleep(0.1)
    return proc, mark, go


class Hung(Exception):
    pass


def _within(seconds: int):
    """Fail instead of hanging (the old phase-2 lock waited for 7 days)."""

    def alarm(signum, frame):
        raise Hung(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    return previous


def _no_alarm(previous) -> None:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_second_process_on_a_run_stops_naming_the_holder(tmp_path, capsys):
    runs = tmp_path / "runs"
    proc, _, go = _worker(tmp_path, [*BASELINE, "--runs-dir", str(runs), "--resume"])
    try:
        assert main([*BASELINE, "--runs-dir", str(runs), "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by pid {proc.pid} on host" in err and "mmxfer train" in err
        # without --resume: the holder, not "pass --resume"
        assert main([*BASELINE, "--runs-dir", str(runs)]) == 2
        assert f"pid {proc.pid}" in capsys.readouterr().err
    finally:
        go.touch()
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    rows, _ = _results(runs)
    assert len(rows) == 30 and len(set(rows)) == 30  # one copy of each language's row
    assert _locks(runs) == []


def test_kill_9_in_phase_2_then_resume_takes_the_locks_over_at_once(tmp_path, reference, capsys):
    runs = tmp_path / "runs"
    proc, mark, _ = _worker(tmp_path, [*ARM, "--runs-dir", str(runs)])
    # paused in phase 2, right after its first checkpoint
    assert "_intermediate" in mark.read_text()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = _locks(runs)
    # the run's and phase 2's
    assert len(left) == 2 and any("_intermediate" in str(p) for p in left)
    assert all(json.loads(p.read_text())["pid"] == proc.pid for p in left)
    previous = _within(180)
    try:
        start = time.monotonic()
        assert main([*ARM, "--runs-dir", str(runs), "--resume"]) == 0
        took = time.monotonic() - start
    finally:
        _no_alarm(previous)
    assert "waiting for" not in capsys.readouterr().err
    assert took < 150
    assert _results(runs) == reference
    assert _locks(runs) == []


def _sigterm_at(monkeypatch, where: str) -> None:
    """Send this process SIGTERM at ``where``: the 2nd optimizer step of phase 2 or 3, the 3rd predictions file
    (zero-shot prediction, after training) or the 1st retrieval predictions file."""
    me = os.getpid()
    count = {"n": 0}
    if where in ("phase2", "phase3"):
        real_step = loop._PhaseRun._optimizer_step

        def step(self):
            real_step(self)
            if self.name.startswith(where) and self.state.global_step == 2:
                os.kill(me, signal.SIGTERM)

        monkeypatch.setattr(loop._PhaseRun, "_optimizer_step", step)
        return
    if where == "predict":
        real_write = Run.write_predictions

        def write(self, task, split, lang, rows):
            count["n"] += 1
            if count["n"] == 3:
                os.kill(me, signal.SIGTERM)
            return real_write(self, task, split, lang, rows)

        monkeypatch.setattr(Run, "write_predictions", write)
        return
    real_write_file = runner.write_predictions

    def write_file(path, rows):
        os.kill(me, signal.SIGTERM)
        return real_write_file(path, rows)

    monkeypatch.setattr(runner, "write_predictions", write_file)


@pytest.mark.parametrize("where", ["phase2", "phase3", "predict"])
def test_sigterm_checkpoints_releases_the_locks_and_resume_finishes(
    where, tmp_path, reference, monkeypatch, capsys
):
    runs = tmp_path / "runs"
    with monkeypatch.context() as patch:
        _sigterm_at(patch, where)
        assert main([*ARM, "--runs-dir", str(runs)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in err and "resume with --resume" in err
    if where != "predict":
        assert f"{where}:" in err and "checkpoint" in err
        folder = (
            next((runs / "starter" / "_intermediate").iterdir())
            if where == "phase2"
            else _run_dir(runs)
        )
        assert loop.latest_checkpoint(folder / "checkpoints").name == "step-000000002"
    assert _locks(runs) == []  # the run's and phase 2's locks are released
    assert not Run(_run_dir(runs)).is_done()
    assert main([*ARM, "--runs-dir", str(runs), "--resume"]) == 0
    assert _results(runs) == reference


def test_sigterm_in_retrieval_then_resume(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "one.yaml"
    suite.write_text(
        "name: one\ntasks:\n  - {task: starter-bitext, languages: [de, fr], category: retrieval}\n"
    )
    argv = [
        "train",
        "--intermediate",
        "none",
        "--seed",
        "3",
        *TINY,
        "--set",
        f"suite={suite}",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    with monkeypatch.context() as patch:
        _sigterm_at(patch, "retrieval")
        assert main(argv) == 143
    assert "resume with --resume" in capsys.readouterr().err
    assert _locks(tmp_path / "runs") == []
    assert main([*argv, "--resume"]) == 0
    rows, preds = _results(tmp_path / "runs")
    assert [lang for lang, _ in rows].count("de") >= 1 and len(preds) == 2
