"""A study's local runs take the run lock too: a run another process holds is left to it, and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from mmxfer.cli import main
from mmxfer.config import load_study
from mmxfer.study.grid import plan


def test_study_leaves_a_run_in_use_to_its_holder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "mini.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "profile": "starter",
                "arms": [{"name": "baseline", "intermediate": []}],
                "targets": ["starter-names"],
                "seeds": [1, 2],
                "overrides": [
                    "trunk.name=tiny",
                    "target.max_train_examples=16",
                    "target.batch_size=8",
                    "target.epochs=1",
                    "target.max_eval_examples=8",
                ],
            }
        )
    )
    runs_dir = tmp_path / "runs"
    _, runs = plan(load_study(str(path)), runs_dir)
    busy = runs[0].path
    busy.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (busy / "LOCK").write_text(
            json.dumps(
                {
                    "pid": holder.pid,
                    "host": os.uname().nodename,
                    "token": "x",
                    "command": "mmxfer train ...",
                }
            )
        )
        assert main(["study", str(path), "--runs-dir", str(runs_dir), "--no-compare"]) == 2
    finally:
        holder.kill()
        holder.wait()
    out, err = capsys.readouterr()
    assert f"skipped: run folder {busy} is in use by pid {holder.pid}" in out
    assert "1 of 2 runs are being run by other processes" in err
    assert not runs[0].done and runs[1].done
    assert (busy / "LOCK").is_file()  # the holder's lock is left alone
