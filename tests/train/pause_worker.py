"""`python pause_worker.py MARK GO -- <mmxfer arguments>`: run mmxfer in this process, pausing right after its
first checkpoint is written - the path goes to MARK, then it waits until the file GO exists (never, when the
test kills it instead). Lets tests act on a run at a known point: a second process, kill -9, SIGTERM."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mmxfer.cli import main
from mmxfer.train import loop


def run() -> int:
    mark, go = Path(sys.argv[1]), Path(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1:]
    real_save = loop._save_checkpoint
    saved = []

    def save_then_pause(*args, **kwargs):
        path = real_save(*args, **kwargs)
        saved.append(path)
        if len(saved) == 1:
            mark.write_text(str(path))
            while not go.exists():
                time.sleep(0.05)
        return path

    loop._save_checkpoint = save_then_pause
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
