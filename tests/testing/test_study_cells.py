"""The paper's studies plan, and every cell of them is rehearsed: ``paper.yaml`` and ``small.yaml`` plan in dry runs,
and each of their cells - an arm kind (which head kinds its intermediate tasks train, which modality, one task or
a mix) against a target (each fine-tuned target, each task a suite evaluates on the trunk, each FLORES-200 track)
- is a cell of the rehearsal's plan. The cells are read from the studies' plans, never listed here."""

from __future__ import annotations

import dataclasses

import pytest

from mmxfer import catalog
from mmxfer.cli import main
from mmxfer.config import load_study
from mmxfer.evaluation.suites import suite_tasks, uses_trunk
from mmxfer.study.grid import PlannedRun, plan

PAPER_STUDIES = ("paper", "small")


def arm_kind(tasks: tuple[str, ...]) -> tuple:
    """What an arm trains in phase 2, as a rehearsal must mirror it: nothing (the baseline), or its modality, the
    head kinds of its tasks and whether it mixes several tasks."""
    if not tasks:
        return ("baseline",)
    specs = [catalog.task(t) for t in tasks]
    return (
        catalog.modality_of(tasks),
        tuple(sorted({s.kind for s in specs})),
        "multi-task" if len(specs) > 1 else "single-task",
    )


def target_cells(run: PlannedRun, suite: str) -> list[tuple]:
    """A fine-tuned run's target (with its kind: translation targets train differently), or each task (and
    metric: the FLORES-200 tracks) its retrieval run evaluates on the trunk."""
    if run.target:
        return [("fine-tuned", run.target, catalog.task(run.target).kind)]
    return [
        ("trunk", item.task, item.metric or catalog.task(item.task).metric)
        for name in suite.split(",")
        if name.strip()
        for item in suite_tasks(name.strip())
        if uses_trunk(item)
    ]


def cells(study_name: str, tmp_path, **changes) -> set[tuple]:
    study = dataclasses.replace(load_study(study_name), **changes)
    profile, runs = plan(study, tmp_path / "runs")
    return {(arm_kind(r.tasks), target) for r in runs for target in target_cells(r, profile.suite)}


@pytest.mark.parametrize("name", [*PAPER_STUDIES, "rehearsal"])
def test_the_study_plans_in_a_dry_run(name, tmp_path, capsys, mmxfer_cache):
    assert main(["study", name, "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"study {name}:" in out and " 0 finished, " in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("DONE"))


@pytest.mark.parametrize("name", PAPER_STUDIES)
def test_every_cell_of_the_study_is_rehearsed(name, tmp_path):
    study_cells = cells(name, tmp_path)
    assert len(study_cells) >= 10  # the derivation sees the grid
    missing = study_cells - cells("rehearsal", tmp_path)
    assert not missing, f"cells of {name}.yaml the rehearsal does not run: {sorted(missing)}"


def test_the_rehearsal_covers_every_arm_kind_and_target_of_the_paper(tmp_path):
    paper, rehearsal = cells("paper", tmp_path), cells("rehearsal", tmp_path)
    assert {arm for arm, _ in paper} == {arm for arm, _ in rehearsal}
    assert {target for _, target in paper} <= {target for _, target in rehearsal}
    heads = {kind for arm, _ in paper if len(arm) > 1 for kind in arm[1]}
    assert {"classification", "span_qa", "multiple_choice", "tagging", "captioning", "vqa"} <= heads


def test_a_rehearsal_without_an_arm_kind_misses_its_cells(tmp_path):
    """The check can fail: the rehearsal without its tagging arm (and with a text mix that has no tagging task)
    leaves the paper's CCG cells and its full text mix unrehearsed."""
    study = load_study("rehearsal")
    arms = tuple(
        dataclasses.replace(a, intermediate=tuple(t for t in a.intermediate if t != "ccg"))
        for a in study.arms
        if a.name != "ccg"
    )
    missing = cells("paper", tmp_path) - cells("rehearsal", tmp_path, arms=arms)
    assert {arm for arm, _ in missing} == {
        ("text", ("tagging",), "single-task"),
        ("text", ("classification", "multiple_choice", "span_qa", "tagging"), "multi-task"),
    }


def test_a_rehearsal_without_a_target_misses_its_cells(tmp_path):
    study = load_study("rehearsal")
    missing = cells("paper", tmp_path) - cells(
        "rehearsal", tmp_path, targets=tuple(t for t in study.targets if t != "udpos")
    )
    assert {target for _, target in missing} == {("fine-tuned", "udpos", "tagging")}


FLORES_CELLS = {
    ("trunk", "flores200", "xsim"),
    ("fine-tuned", "sib200", "classification"),
    ("fine-tuned", "flores200-translate", "translation"),
}


def test_every_flores_track_of_the_paper_is_rehearsed_for_every_arm_kind(tmp_path):
    paper, rehearsal = cells("paper", tmp_path), cells("rehearsal", tmp_path)
    flores = {cell for cell in paper if cell[1] in FLORES_CELLS}
    assert {target for _, target in flores} == FLORES_CELLS
    assert {arm for arm, _ in flores} == {
        arm for arm, _ in paper
    }  # every arm kind meets every track
    assert flores <= rehearsal


@pytest.mark.parametrize(
    ("changes", "lost"),
    [
        (
            {"suite": "xtreme-retrieval"},
            {("trunk", "flores200", "xsim")},
        ),  # the suite's targets stay listed
        (
            {
                "suite": "xtreme-retrieval",
                "targets": ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa"),
            },
            FLORES_CELLS,
        ),
    ],
    ids=["without-the-flores200-suite", "without-any-flores-track"],
)
def test_a_rehearsal_without_the_flores_tracks_misses_their_cells(changes, lost, tmp_path):
    missing = cells("paper", tmp_path) - cells("rehearsal", tmp_path, **changes)
    assert {target for _, target in missing} == lost
