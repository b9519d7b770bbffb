"""`python pause_worker.py MARK GO [--at POINT] -- <mmxfer arguments>`: run mmxfer in this process and pause at
POINT - write a line to MARK, then wait until the file GO exists (never, when the caller kills the process).
Lets tests and `benchmarks/crash_matrix.py` act on a run at a known point: a second process, kill -9, SIGTERM.

POINT: ``checkpoint:N`` (after the N-th checkpoint is written; default ``checkpoint:1``), ``predictions:N``
(before the N-th predictions file of phase 3 is written), ``retrieval:N`` (before the N-th retrieval
predictions file), ``trunk-saved`` (phase 2's trunk is saved, its DONE not yet written), ``done`` (before the
run's DONE is written).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mmxfer.cli import main
from mmxfer.evaluation import runner
from mmxfer.runs.store import Run
from mmxfer.train import loop, phases


def _pause(mark: Path, go: Path, what: str) -> None:
    mark.write_text(what)
    while not go.exists():
        time.sleep(0.05)


def _hook(point: str, mark: Path, go: Path) -> None:
    kind, _, n = point.partition(":")
    count = {"n": 0}
    nth = int(n or 1)

    def due() -> bool:
        count["n"] += 1
        return count["n"] == nth

    if kind == "checkpoint":
        real_save = loop._save_checkpoint

        def save(*args, **kwargs):
            path = real_save(*args, **kwargs)
            if due():
                _pause(mark, go, str(path))
            return path

        loop._save_checkpoint = save
    elif kind == "predictions":
        real_write = Run.write_predictions

        def write(self, *args, **kwargs):
            if due():
                _pause(mark, go, f"predictions {args}")
            return real_write(self, *args, **kwargs)

        Run.write_predictions = write
    elif kind == "retrieval":
        real_file = runner.write_predictions

        def write_file(path, rows):
            if due():
                _pause(mark, go, f"retrieval {path}")
            return real_file(path, rows)

        runner.write_predictions = write_file
    elif kind == "trunk-saved":
        real_trunk = phases.save_trunk

        def save_trunk(*args, **kwargs):
            real_trunk(*args, **kwargs)
            _pause(mark, go, "phase-2 trunk saved")

        phases.save_trunk = save_trunk
    elif kind == "done":
        real_done = Run.mark_done

        def mark_done(self, *args, **kwargs):
            _pause(mark, go, "before DONE")
            return real_done(self, *args, **kwargs)

        Run.mark_done = mark_done
    else:
        raise SystemExit(f"unknown pause point {point!r}")


def run() -> int:
    mark, go = Path(sys.argv[1]), Path(sys.argv[2])
    head = sys.argv[3 : sys.argv.index("--")]
    point = head[head.index("--at") + 1] if "--at" in head else "checkpoint:1"
    _hook(point, mark, go)
    return main(sys.argv[sys.argv.index("--") + 1 :])


if __name__ == "__main__":
    sys.exit(run())
