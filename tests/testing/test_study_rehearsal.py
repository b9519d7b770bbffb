"""``mmxfer study rehearsal``: the paper study in miniature, end to end, as a user runs it from a fresh clone.

One command in a fresh process with an empty ``$MMXFER_CACHE`` (the tiny models, spBLEU's SentencePiece model
and the fixtures are made on first use): the whole study - both seeds - on the fixtures' hub form (the Parquet
mirror read through ``datasets``; the tasks the hub cannot serve, FLORES-200 and VQAv2 among them, read their
release files), then seed 1 again on the release form (``--set data_form=release``: every task in local-file
mode), into its own runs and reports folders. Why this split: the study as a user types it is what must pass,
so it runs whole; the release form then needs one seed only - a second seed there would add a minute of CI and
exercise no loader the first does not (seed 2 in hub form already checks that phase-2 trunks and runs are kept
apart per seed). Each ends with the compare report of every suite of the study (xtreme, xtreme-retrieval,
flores200), in which every track - the nine XTREME tasks and the FLORES-200 xSIM, SIB-200, chrF++ and spBLEU
tracks - every category and, where the suite has one, the overall score must be present for every comparison.
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

from mmxfer import catalog
from mmxfer.config import load_study
from mmxfer.evaluation.suites import category_of, load, suite_tasks
from mmxfer.metrics.generation import SPM_MISSING
from mmxfer.study.grid import plan
from mmxfer.study.reports import comparison_suites
from mmxfer.tasks.common import hub_serves

pytestmark = pytest.mark.slow

STUDY = load_study("rehearsal")
TIMEOUT_S = 1200  # a hang, not a budget: the study takes about two minutes on 2 busy cores


def run_study(folder: Path, cache: Path, *extra: str) -> str:
    """``mmxfer study rehearsal`` in a fresh process, in ``folder`` (its reports/ go there); its output."""
    env = {
        **os.environ,
        "MMXFER_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key in (
        "MMXFER_HUB_MIRROR",
        "MMXFER_COCO_IMAGES",
        "MMXFER_LOCAL_DATA",
        "MMXFER_FLORES200_SPM",
    ):
        # only what the study sets
        env.pop(key, None)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmxfer",
            "study",
            "rehearsal",
            "--runs-dir",
            str(folder / "runs"),
            *extra,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    # empty: everything the rehearsal needs is made on first use
    return tmp_path_factory.mktemp("cache")


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
    return comparison_suites(
        STUDY,
        profile,
        list(dict.fromkeys(r.target for r in runs if r.target)),
        runs_dir / "rehearsal",
    )


def check_report(report: Path, suite: str, arms: list[str]) -> None:
    """Every track of ``suite`` (each declared task and metric) scored, every category and, where the suite has
    one, the overall score, with a margin for every comparison; nothing anywhere says "missing"."""
    comparisons = {f"{arm} - baseline" for arm in arms if arm != "baseline"}
    entries = suite_tasks(suite)
    tracks = pd.read_csv(report / "table_tracks.csv")
    assert len(tracks) == len(entries) and set(tracks["task"]) == {e.task for e in entries}, tracks
    assert (tracks["status"] == "ok").all(), tracks[tracks["status"] != "ok"]
    tables = [("tasks", set(tracks["track"]))]
    if load(suite).overall:
        tables.append(("categories", {category_of(e) for e in entries}))
    else:  # no overall number by design (the FLORES tracks): each track is answered on its own
        text = (report / "report.md").read_text(encoding="utf-8")
        assert "No suite average" in text and not (report / "table_suite.csv").exists()
        for track in tracks.itertuples():
            assert (
                f"Modality effect on {track.track} (each multimodal arm vs its text twin" in text
            ), track.track
            assert f"## Track {track.task} - {track.metric}" in text, track.track
    for table, columns in tables:
        frame = pd.read_csv(report / f"table_{table}.csv").set_index("comparison")
        assert columns <= set(frame.columns), (table, sorted(columns - set(frame.columns)))
        assert comparisons <= set(frame.index), (table, sorted(comparisons - set(frame.index)))
        cells = frame[sorted(columns)].astype(str)
        assert not cells.isin(["nan", ""]).any().any(), (
            table,
            cells[cells.isin(["nan", ""]).any(axis=1)],
        )
        assert not cells.apply(lambda c: c.str.contains("missing")).any().any(), table
    if load(suite).overall:
        overall = pd.read_csv(report / "table_suite.csv").set_index("comparison")
        assert comparisons <= set(overall.index)
        assert overall["margin [CI]"].notna().all()
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "missing" not in text.lower()


def metric_rows(runs: list[Path], label: str) -> list[dict]:
    return [
        json.loads(line)
        for run in runs
        if f"-{label}-" in run.name
        for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_the_hub_form_study_finishes_every_run(hub_study, cache):
    folder, out = hub_study
    assert "data: fixtures, hub form" in out
    _, runs = plan(STUDY, folder / "runs")
    assert len(finished_runs(folder / "runs")) == len(runs) > 150
    assert (cache / "testing").is_dir()  # the models and the fixtures were made on first use


def test_the_hub_form_reads_the_mirror_and_local_releases_only_where_the_hub_cannot_serve(
    hub_study, cache
):
    folder, _ = hub_study
    sources = {}
    for key in (folder / "runs" / "rehearsal" / "_intermediate").glob("*/phase2.yaml"):
        data = yaml.safe_load(key.read_text(encoding="utf-8"))
        sources.update(zip(data["tasks"], data["data"]))
    assert (
        sources["mnli"]["hub"] == "nyu-mll/glue"
        and sources["caption"]["hub"] == "yerevann/coco-karpathy"
    )
    assert (
        sources["squad"]["hub"] == "rajpurkar/squad"
        and sources["hellaswag"]["hub"] == "Rowan/hellaswag"
    )
    for task in ("vqa", "vqa-text"):  # a loading script on the hub: the release files
        assert Path(sources[task]["data_dir"]).parent.parent == cache / "testing"
    rows = metric_rows(finished_runs(folder / "runs"), "retrieval")
    assert {r["task"] for r in rows if r.get("caveat")} == {
        "bucc"
    }  # BUCC from the hub: no distractors
    assert {r["task"] for r in rows} == {
        "bucc",
        "tatoeba",
        "flores200",
    }  # FLORES-200: its release files


def test_every_flores_track_is_scored_for_every_arm_and_seed(hub_study):
    """xSIM on each arm's trunk, SIB-200 fine-tuned, and translation trained on the WMT pair then generated with
    beam search, scored with chrF++ and with spBLEU (the rehearsal's SentencePiece model: no row says it needs
    the FLORES-200 one)."""
    folder, _ = hub_study
    runs = finished_runs(folder / "runs")
    arms_seeds = {(a.name, s) for a in STUDY.arms for s in STUDY.seeds}
    langs = {"deu_Latn", "zho_Hans", "arb_Arab"}
    for target, metrics, expected in (
        ("retrieval", {"xsim"}, langs | {"eng_Latn"}),
        ("sib200", {"accuracy"}, langs | {"eng_Latn"}),
        ("flores200-translate", {"chrf_pp", "spbleu"}, langs),
    ):
        rows = [
            r
            for r in metric_rows(runs, target)
            if r["task"] != "bucc"
            and r["task"] != "tatoeba"
            and not r.get("part")
            and r.get("split") != "validation"
        ]
        assert {r["metric"] for r in rows} == metrics, target
        for metric in metrics:
            scored = [r for r in rows if r["metric"] == metric]
            assert {r["lang"] for r in scored} == expected, (target, metric)
            assert all(
                r["score"] is not None and SPM_MISSING not in str(r.get("missing", ""))
                for r in scored
            )
            assert len(scored) == len(expected) * len(arms_seeds), (target, metric)
    # in hub form SIB-200 and the WMT14 pair are read from the mirror, FLORES-200 (a loading script) from its release
    assert hub_serves(catalog.task("sib200")) and hub_serves(catalog.task("wmt14-de-en"))
    assert not hub_serves(catalog.task("flores200")) and not hub_serves(
        catalog.task("flores200-translate")
    )
    translation_runs = [run for run in runs if "-flores200-translate-" in run.name]
    assert len(translation_runs) == len(arms_seeds)
    for run in translation_runs:
        recipe = json.loads((run / "translation.json").read_text(encoding="utf-8"))
        assert recipe["train_task"] == "wmt14-de-en" and set(recipe["stages"]) == {"1", "2"}
        assert recipe["generation"]["num_beams"] == 2
        assert all(
            (run / "predictions" / "flores200-translate" / f"devtest-{lang}.jsonl").is_file()
            for lang in langs
        )


@pytest.mark.parametrize("form", ["hub", "release"])
def test_the_compare_report_of_every_suite_is_complete(form, hub_study, release_study):
    folder, out = hub_study if form == "hub" else release_study
    suites = study_suites(folder / "runs")
    assert set(suites) == {"xtreme", "xtreme-retrieval", "flores200"}
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
    rows = metric_rows(runs, "retrieval")
    # BUCC from its release files, with distractors
    assert rows and not any(r.get("caveat") for r in rows)
    assert {r["task"] for r in rows} == {"bucc", "tatoeba", "flores200"}
    assert len([run for run in runs if "-flores200-translate-" in run.name]) == len(STUDY.arms)
