import json
import os

import pytest

from mmxfer.errors import RunStoreError
from mmxfer.runs import atomic
from mmxfer.runs.store import Run, iter_runs, open_run

CONFIG = {"arm": {"name": "vqa", "intermediate": ["vqa"]}, "target": "xnli", "seed": 1}


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "x.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp files left behind


def test_interrupted_write_keeps_previous_state(tmp_path):
    path = tmp_path / "metrics.jsonl"
    atomic.write_jsonl(path, [{"score": 1.0}])

    def rows():
        yield {"score": 2.0}
        raise KeyboardInterrupt  # killed half-way through writing

    with pytest.raises(KeyboardInterrupt):
        atomic.write_jsonl(path, rows())
    assert atomic.read_jsonl(path) == [{"score": 1.0}]
    assert sorted(os.listdir(tmp_path)) == ["metrics.jsonl"]


def test_open_run_writes_config_and_env(tmp_path):
    run = open_run(tmp_path, "study", CONFIG, "vqa-xnli-s1", seed=1)
    assert run.path.parent.name == "study"
    assert run.run_id.startswith("vqa-xnli-s1-")
    assert run.config() == CONFIG
    env = run.env()
    assert env["seed"] == 1 and env["packages"]["torch"] and env["python"]
    assert not run.is_done()


def test_run_id_is_content_hash(tmp_path):
    a = open_run(tmp_path, "s", CONFIG, "x")
    b = open_run(tmp_path, "s", {**CONFIG, "seed": 2}, "x")
    assert a.run_id != b.run_id
    again = open_run(tmp_path, "s", CONFIG, "x", resume=True)
    assert again.path == a.path


def test_done_semantics(tmp_path):
    run = open_run(tmp_path, "s", CONFIG, "x")
    run.log_metric("xnli", "de", "test", "accuracy", 71.5, n=5010)
    # unfinished: not a result, and not silently reopened
    assert list(iter_runs(tmp_path)) == []
    assert [r.path for r in iter_runs(tmp_path, finished_only=False)] == [run.path]
    with pytest.raises(RunStoreError, match="--resume"):
        open_run(tmp_path, "s", CONFIG, "x")
    with pytest.raises(RunStoreError, match="not finished"):
        run.require_done()
    run.mark_done({"wall_s": 1.0})
    assert run.done_info()["n_metrics"] == 1
    assert [r.path for r in iter_runs(tmp_path)] == [run.path]
    # finished: never overwritten without force
    with pytest.raises(RunStoreError, match="--force"):
        open_run(tmp_path, "s", CONFIG, "x", resume=True)
    fresh = open_run(tmp_path, "s", CONFIG, "x", force=True)
    assert not fresh.is_done() and fresh.metrics() == []


def test_metrics_skip_torn_last_line(tmp_path):
    run = open_run(tmp_path, "s", CONFIG, "x")
    run.log_metric("xnli", "de", "test", "accuracy", 70.0)
    with open(run.metrics_path, "a") as handle:
        handle.write('{"task": "xnli", "lang": "fr", "sc')  # process killed mid-append
    assert [m["lang"] for m in run.metrics()] == ["de"]


def test_predictions_round_trip(tmp_path):
    run = open_run(tmp_path, "s", CONFIG, "x")
    rows = [{"id": "a", "pred": 1, "gold": 1}, {"id": "b", "pred": 0, "gold": 2}]
    path = run.write_predictions("xnli", "test", "de", rows)
    assert path == run.path / "predictions" / "xnli" / "test-de.jsonl"
    assert run.read_predictions("xnli", "test", "de") == rows
    assert list(run.prediction_files()) == [("xnli", "test", "de", path)]
    with pytest.raises(RunStoreError, match="no predictions"):
        run.read_predictions("xnli", "test", "fr")


def test_reading_a_non_run_folder(tmp_path):
    with pytest.raises(RunStoreError, match="not a run folder"):
        Run(tmp_path).config()


def test_read_jsonl_is_strict_unless_told_to_skip_bad_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": ', encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        atomic.read_jsonl(path)
    assert atomic.read_jsonl(path, skip_bad=True) == [{"a": 1}, {"a": 2}]
