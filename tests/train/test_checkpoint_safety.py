"""Checkpoints never run code: every file is opened with the weights-only unpickler, the schedule is JSON."""

from __future__ import annotations

import json
import os

import pytest
import torch
from toy import ToyClassifier, ToyDataset, collate

from mmxfer.config import PhaseConfig
from mmxfer.errors import RunStoreError
from mmxfer.train import loop
from mmxfer.train.loop import BestWeights, LoopOptions, check_checkpoint, safe_load, train_phase


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _train(workdir, resume=False):
    data = ToyDataset(32, seed=0)
    phase = PhaseConfig(lr=1e-2, batch_size=8, epochs=1, checkpoint_every=2)
    return train_phase(
        ToyClassifier(), data, collate, phase, LoopOptions(workdir=workdir, seed=1, resume=resume)
    )


def test_checkpoints_hold_json_schedule_and_load_safely(tmp_path):
    _train(tmp_path)
    ckpt = loop.latest_checkpoint(tmp_path / "checkpoints")
    assert (ckpt / loop.SCHEDULER_FILE).is_file() and not (ckpt / "scheduler.pt").exists()
    check_checkpoint(ckpt)  # accelerate's own files pass the weights-only loader
    assert _train(tmp_path, resume=True).resumed_from == str(ckpt)


def test_a_checkpoint_without_a_json_schedule_is_refused_and_runs_no_code(tmp_path):
    _train(tmp_path)
    ckpt = loop.latest_checkpoint(tmp_path / "checkpoints")
    state = json.loads((ckpt / loop.SCHEDULER_FILE).read_text())
    (ckpt / loop.SCHEDULER_FILE).unlink()
    torch.save(state, ckpt / "scheduler.pt")  # plain numbers, loadable weights-only: still not read
    with pytest.raises(
        RunStoreError, match="no scheduler.json, so not a checkpoint this mmxfer wrote"
    ):
        _train(tmp_path, resume=True)
    torch.save(Payload(tmp_path / "PWNED"), ckpt / "scheduler.pt")
    with pytest.raises(RunStoreError, match="scheduler.pt: refused to load"):
        _train(tmp_path, resume=True)
    assert not (tmp_path / "PWNED").exists()


def test_best_weights_file_that_would_run_code_is_refused(tmp_path):
    best = loop.best_file(tmp_path, 3)
    best.parent.mkdir(parents=True)
    torch.save(Payload(tmp_path / "PWNED"), best)
    weights = BestWeights(tmp_path, accelerator=type("A", (), {"is_main_process": True})())
    with pytest.raises(RunStoreError, match="refused to load"):
        weights.load_selected(ToyClassifier(), 3, "phase3:toy")
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(RunStoreError):
        safe_load(best, mmap=True)
