"""What DONE records and what compare checks against it; files keep the umask's permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mmxfer.errors import DataError, RunFormatError, RunStoreError
from mmxfer.runs import atomic
from mmxfer.runs.store import RUN_FORMAT, Run, iter_runs, open_run

CONFIG = {"arm": {"name": "vqa", "intermediate": ["vqa"]}, "target": "xnli", "seed": 1}


def _finished(tmp_path) -> Run:
    run = open_run(tmp_path, "s", CONFIG, "x")
    run.write_predictions(
        "xnli", "test", "de", [{"id": "a", "pred": 1, "gold": 1}, {"id": "b", "pred": 0, "gold": 2}]
    )
    run.log_metric("xnli", "de", "test", "accuracy", 50.0, n=2)
    run.mark_done()
    return run


def test_done_records_row_count_and_checksums(tmp_path):
    run = _finished(tmp_path)
    info = run.done_info()
    assert info["n_metrics"] == 1 and len(info["metrics_sha256"]) == 64
    assert list(info["predictions_sha256"]) == ["xnli/test-de.jsonl"]
    assert [r["score"] for r in run.verified_metrics()] == [50.0]


def test_rescoring_a_finished_run_records_the_new_files(tmp_path):
    run = _finished(tmp_path)
    path = run.predictions_path("xnli", "test", "de")
    path.write_text(path.read_text().replace('"pred": 0', '"pred": 2'))
    with pytest.raises(RunStoreError, match="predictions differ"):
        run.verified_metrics()
    run.write_metrics(
        [{"task": "xnli", "lang": "de", "split": "test", "metric": "accuracy", "score": 100.0}]
    )
    assert [r["score"] for r in run.verified_metrics()] == [100.0]
    assert run.done_info()["rescored_at"]


def test_done_records_the_run_format_and_another_format_is_one_clear_error(tmp_path):
    run = _finished(tmp_path)
    assert run.done_info()["run_format"] == RUN_FORMAT == 1
    sealed = run.done_info()
    # before formats
    atomic.write_json(run.done_path, {"finished_at": "2024-01-01T00:00:00+00:00", "n_metrics": 1})
    with pytest.raises(
        RunFormatError,
        match=r"run folder of format 0 \(its DONE records no run_format\); mmxfer "
        r"0.1.0 reads format 1 only: run it again into a fresh folder",
    ):
        run.verified_metrics()
    with pytest.raises(RunFormatError, match="format 0"):
        open_run(tmp_path, "s", CONFIG, "x")  # not "already finished": it is of another format
    atomic.write_json(run.done_path, {**sealed, "run_format": 2})
    with pytest.raises(RunFormatError, match="format 2, newer than this mmxfer 0.1.0 reads"):
        run.verified_metrics()
    atomic.write_json(run.done_path, {**sealed, "run_format": "one"})
    with pytest.raises(DataError, match="run_format 'one' is not a format number"):
        run.done_info()
    unsealed = {k: v for k, v in sealed.items() if k != "metrics_sha256"}
    atomic.write_json(run.done_path, unsealed)
    with pytest.raises(
        RunStoreError, match="records no metrics_sha256, so the run's files cannot be checked"
    ):
        run.verified_metrics()


def test_force_keeps_the_lock_and_refuses_links(tmp_path):
    run = _finished(tmp_path)
    with run.lock():
        again = open_run(tmp_path, "s", CONFIG, "x", force=True)
        assert sorted(p.name for p in again.path.iterdir()) == ["LOCK", "config.yaml", "env.json"]


def test_symlinked_run_folders_are_found(tmp_path):
    real = _finished(tmp_path / "elsewhere")
    (tmp_path / "runs" / "s").mkdir(parents=True)
    (tmp_path / "runs" / "s" / real.run_id).symlink_to(real.path, target_is_directory=True)
    # a cycle
    (tmp_path / "runs" / "s" / "loop").symlink_to(tmp_path / "runs", target_is_directory=True)
    assert [r.run_id for r in iter_runs(tmp_path / "runs")] == [real.run_id]


def test_atomic_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_json(tmp_path / "a.json", {})
        (tmp_path / "plain").write_text("")
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == stat.S_IMODE(
            (tmp_path / "plain").stat().st_mode
        )
        os.umask(0o002)
        atomic.write_text(tmp_path / "b.txt", "x")
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_metrics_rows_must_be_whole_and_single(tmp_path):
    run = _finished(tmp_path)
    with open(run.metrics_path, "a") as handle:
        handle.write(
            json.dumps(
                {"task": "xnli", "lang": "de", "split": "test", "metric": "accuracy", "score": 75.0}
            )
            + "\n"
        )
    with pytest.raises(RunStoreError, match="lines 1 and 2 are the same result"):
        run.verified_metrics()
