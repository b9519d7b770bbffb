"""`mmxfer train` end to end on the tiny trunk: killed mid-epoch, `--resume` gives the same predictions
and metrics as an uninterrupted run; the same seed twice gives identical results."""

from __future__ import annotations

import json

import pytest

from mmxfer.cli import main
from mmxfer.train import loop

ARGS = [
    "train",
    "--target",
    "starter-names",
    "--seed",
    "2",
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "target.max_train_examples=32",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=2",
    "--set",
    "target.checkpoint_every=3",
    "--set",
    "target.max_eval_examples=8",
    "--set",
    "target.lr=1e-3",
]


class Killed(Exception):
    pass


def _results(runs_dir):
    (run,) = [p for p in (runs_dir / "starter").iterdir() if not p.name.startswith("_")]
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    preds = {p.name: p.read_text() for p in sorted((run / "predictions").glob("*/*.jsonl"))}
    selection = json.loads((run / "selection.json").read_text())
    assert (run / "DONE").is_file()
    return [(m["lang"], m["score"]) for m in metrics], preds, selection


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def test_killed_then_resume_equals_uninterrupted_and_seed_repeats(tmp_path, monkeypatch, capsys):
    assert main(ARGS + ["--runs-dir", str(tmp_path / "a")]) == 0
    full = _results(tmp_path / "a")
    assert main(ARGS + ["--runs-dir", str(tmp_path / "b")]) == 0
    assert _results(tmp_path / "b") == full  # same seed, same everything

    real_save = loop._save_checkpoint

    def save_then_die(*args, **kwargs):
        path = real_save(*args, **kwargs)
        raise Killed(path)

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed) as info:
        main(ARGS + ["--runs-dir", str(tmp_path / "c")])
    assert str(info.value).endswith("step-000000003")  # mid-epoch: 4 steps per epoch
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    # unfinished folder: must say --resume
    assert main(ARGS + ["--runs-dir", str(tmp_path / "c")]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(ARGS + ["--runs-dir", str(tmp_path / "c"), "--resume"]) == 0
    resumed = _results(tmp_path / "c")
    assert resumed == full
    assert main(ARGS + ["--runs-dir", str(tmp_path / "c")]) == 0  # finished: skipped, not redone
    assert "already finished" in capsys.readouterr().out
