"""``mmxfer study rehearsal``: the paper study in miniature, end to end, as a user runs it from a fresh clone.

One command in a fresh process with an empty ``$MMXFER_CACHE`` (the tiny models and the fixtures are made on
first use): the whole study - both seeds - on the fixtures' hub form (the Parquet mirror read through
``datasets``; the tasks the hub cannot serve read their release files), then seed 1 again on the release form
(``--set data_form=release``: every task in local-file mode), into its own runs and reports folders. A run with
both seeds in release form would double the time and exercise no code the first seed does not; seed 2 in hub form
checks that phase-2 trunks and runs are kept apart per seed. Each ends with the compare report of every suite of
the study, in which every task, every category and the overall score must be present for every comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmxfer.config import load_study
from mmxfer.evaluation.suites import category_of, load, suite_tasks
from mmxfer.study.grid import plan
from mmxfer.study.reports import comparison_suites

pytestmark = pytest.mark.slow

STUDY = load_study("rehearsal")
TIMEOUT_S = 1200  # a hang, not a budget: the study takes about a minute and a half on 2 busy cores


def run_study(folder: Path, cache: Path, *extra: str) -> str:
    """``mmxfer study rehearsal`` in a fresh process, in ``folder`` (its reports/ go there); its output."""
    env = {**os.environ, "MMXFER_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("MMXFER_HUB_MIRROR", "MMXFER_COCO_IMAGES", "MMXFER_LOCAL_DATA"):  # only what the study sets
        env.pop(key, None)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "mmxfer", "study", "rehearsal", "--runs-dir", str(folder / "runs"),
                           *extra], cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")  # empty: everything the rehearsal needs is made on first use


@pytest.fixture(scope="module")
def hub_study(tmp_path_factory, cache) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("hub")
    return folder, run_study(folder, cache)


@pytest.fixture(scope="module")
def release_study(tmp_path_factory, cache, hub_study) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("release")
    return folder, run_study(folder, cache, "--set", "data_form=release", "--set", "seeds=[1]")


def finished_runs(runs_dir: Path) -> list[Path]:
    return sorted(p.parent for p in (runs_dir / "rehearsal").glob("*/DONE"))


def study_suites(runs_dir: Path) -> list[str]:
    profile, runs = plan(STUDY, runs_dir)
    return comparison_suites(STUDY, profile, list(dict.fromkeys(r.target for r in runs if r.target)),
                             runs_dir / "rehearsal")


def check_report(report: Path, suite: str, arms: list[str]) -> None:
    """Every task, category and the overall score of ``suite``, with a margin for every comparison."""
    comparisons = {f"{arm} - baseline" for arm in arms if arm != "baseline"}
    entries = suite_tasks(suite)
    tasks = {e.label or e.task for e in entries}
    categories = {category_of(e) for e in entries}
    for table, columns in (("tasks", tasks), ("categories", categories)):
        frame = pd.read_csv(report / f"table_{table}.csv").set_index("comparison")
        assert columns <= set(frame.columns), (table, sorted(columns - set(frame.columns)))
        assert comparisons <= set(frame.index), (table, sorted(comparisons - set(frame.index)))
        cells = frame[sorted(columns)].astype(str)
        assert not cells.isin(["nan", ""]).any().any(), (table, cells[cells.isin(["nan", ""]).any(axis=1)])
        assert not cells.apply(lambda c: c.str.contains("missing")).any().any(), table
    if load(suite).overall:
        overall = pd.read_csv(report / "table_suite.csv").set_index("comparison")
        assert comparisons <= set(overall.index)
        assert overall["margin [CI]"].notna().all()
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "missing" not in text.lower()


def test_the_hub_form_study_finishes_every_run(hub_study, cache):
    folder, out = hub_study
    assert "data: fixtures, hub form" in out
    _, runs = plan(STUDY, folder / "runs")
    assert len(finished_runs(folder / "runs")) == len(runs) > 150
    assert (cache / "testing").is_dir()  # the models and the fixtures were made on first use


def test_the_hub_form_reads_the_mirror_and_local_releases_only_where_the_hub_cannot_serve(hub_study, cache):
    folder, _ = hub_study
    sources = {}
    for key in (folder / "runs" / "rehearsal" / "_intermediate").glob("*/phase2.yaml"):
        data = yaml.safe_load(key.read_text(encoding="utf-8"))
        sources.update(zip(data["tasks"], data["data"]))
    assert sources["mnli"]["hub"] == "nyu-mll/glue" and sources["caption"]["hub"] == "yerevann/coco-karpathy"
    assert sources["squad"]["hub"] == "rajpurkar/squad" and sources["hellaswag"]["hub"] == "Rowan/hellaswag"
    for task in ("vqa", "vqa-text"):  # a loading script on the hub: the release files
        assert Path(sources[task]["data_dir"]).parent.parent == cache / "testing"
    rows = [json.loads(line) for run in finished_runs(folder / "runs") if "-retrieval-" in run.name
            for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["task"] for r in rows if r.get("caveat")} == {"bucc"}  # BUCC from the hub: no distractors


@pytest.mark.parametrize("form", ["hub", "release"])
def test_the_compare_report_of_every_suite_is_complete(form, hub_study, release_study):
    folder, out = hub_study if form == "hub" else release_study
    suites = study_suites(folder / "runs")
    assert set(suites) >= {"xtreme", "xtreme-retrieval"}
    for suite in suites:
        assert f"mmxfer compare --suite {suite} " in out
        check_report(folder / "reports" / Path(suite).stem, suite, [a.name for a in STUDY.arms])


def test_the_release_form_reads_every_task_from_local_files(release_study, cache):
    folder, out = release_study
    assert "data: fixtures, release form" in out
    for key in (folder / "runs" / "rehearsal" / "_intermediate").glob("*/phase2.yaml"):
        data = yaml.safe_load(key.read_text(encoding="utf-8"))
        assert all(set(source) == {"data_dir"} for source in data["data"]), data
    runs = finished_runs(folder / "runs")
    assert runs and all("-s1-" in run.name for run in runs)
    rows = [json.loads(line) for run in runs if "-retrieval-" in run.name
            for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and not any(r.get("caveat") for r in rows)  # BUCC from its release files, with distractors
