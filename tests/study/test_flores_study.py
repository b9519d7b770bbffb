"""A study with the flores200 suite runs all three tracks for every arm: xSIM on each arm's trunk, SIB-200 and
zero-shot translation as fine-tuned targets (whether or not `targets` lists them), with a language subset."""

from __future__ import annotations

import pytest
import yaml

from mmxfer.cli import main
from mmxfer.config import load_profile, load_study
from mmxfer.errors import ConfigError
from mmxfer.runs.store import Run
from mmxfer.study import launch
from mmxfer.study.grid import counts, plan, suite_targets
from mmxfer.testing.flores import write_all

LANGS = ["deu_Latn", "fra_Latn", "swh_Latn"]
TINY = [
    "trunk.name=tiny",
    "trunk.freeze_embeddings=false",
    "intermediate.max_train_examples=16",
    "intermediate.batch_size=8",
    "target.batch_size=8",
    "target.epochs=1",
    "target.max_train_examples=16",
    "translation.decoder_layers=1",
    "translation.num_beams=2",
    "translation.stage1.batch_size=8",
    "translation.stage1.max_steps=3",
    "translation.stage2.batch_size=8",
    "translation.stage2.max_steps=2",
    "translation.generate_batch_size=8",
    "translation.max_len_a=0.5",
    "translation.max_len_b=3",
    "translation.select_on=neg_loss",
    "retrieval.batch_size=16",
]


def _study(tmp_path, **extra) -> str:
    path = tmp_path / "fl.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "fl",
                "profile": "starter",
                "suite": "flores200",
                "targets": [],
                "seeds": [1],
                "languages": LANGS,
                "arms": [
                    {"name": "baseline", "intermediate": []},
                    {"name": "vqa-text", "intermediate": ["starter-vqa-text"]},
                ],
                "overrides": TINY,
                **extra,
            }
        )
    )
    return str(path)


def test_suite_tracks_become_targets_and_paper_covers_every_flores_track(tmp_path):
    study = load_study(_study(tmp_path))
    profile, runs = plan(study, tmp_path / "runs")
    assert [(r.arm, r.target) for r in runs] == [
        (arm, t)
        for arm in ("baseline", "vqa-text")
        for t in ("sib200", "flores200-translate", None)
    ]
    assert all(r.request.languages == tuple(LANGS) for r in runs)
    assert "--languages" in launch.train_argv(runs[0].request, "starter", [])
    assert suite_targets("flores200", profile) == (["sib200", "flores200-translate"], True)
    assert suite_targets("xtreme-retrieval", profile) == ([], True)
    paper = load_study("paper")
    _, paper_runs = plan(paper, tmp_path / "paper")
    planned = {r.target for r in paper_runs}
    assert {
        "sib200",
        "flores200-translate",
        None,
    } <= planned  # xSIM runs on each arm's trunk (target None)
    assert counts(paper_runs)["runs"] == len(paper.arms) * len(paper.seeds) * (
        len(paper.targets) + 1
    )


def test_translation_mode_on_a_retrieval_task_is_a_clear_error(tmp_path):
    suite = tmp_path / "old.yaml"
    suite.write_text(
        "name: old\ntasks:\n  - {task: flores200, metric: chrf_pp, mode: translation}\n"
    )
    with pytest.raises(ConfigError, match="name the translation task itself"):
        suite_targets(str(suite), load_profile("starter"))


def test_flores_study_gives_every_track_for_every_arm(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr("mmxfer.metrics.generation.default_spm_path", lambda: tmp_path / "no-spm")
    data = write_all(tmp_path / "data")
    runs_dir = tmp_path / "runs"
    assert (
        main(
            [
                "study",
                _study(tmp_path),
                "--runs-dir",
                str(runs_dir),
                "--data-dir",
                str(data),
                "--no-compare",
            ]
        )
        == 0
    )
    assert (
        "2 arms x 2 targets + retrieval (flores200) x 1 seeds | languages deu_Latn,fra_Latn,swh_Latn"
        in capsys.readouterr().out
    )
    _, runs = plan(load_study(_study(tmp_path)), runs_dir)
    assert all(r.done for r in runs)
    for arm in ("baseline", "vqa-text"):
        rows = [m for r in runs if r.arm == arm for m in Run(r.path).metrics() if not m.get("part")]
        got = {(m["task"], m["metric"], m["lang"]) for m in rows if m.get("score") is not None}
        for task, metric in (
            ("flores200", "xsim"),
            ("sib200", "accuracy"),
            ("flores200-translate", "chrf_pp"),
        ):
            assert {(task, metric, lang) for lang in LANGS} <= got, (arm, task)
        assert {m["lang"] for m in rows} == set(LANGS)  # the study's subset, nothing else
        spbleu = [m for m in rows if m["metric"] == "spbleu"]
        assert len(spbleu) == 3 and all(
            "needs the flores200 SPM model" in m["missing"] for m in spbleu
        )
    # the comparison: one section per track, the missing spBLEU named, no suite average
    out = tmp_path / "report"
    assert (
        main(
            [
                "compare",
                "--suite",
                "flores200",
                "--runs",
                str(runs_dir / "fl"),
                "--out",
                str(out),
                "--bootstrap",
                "100",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "No suite average" in printed and "Missing track flores200-translate (spbleu)" in printed
    report = (out / "report.md").read_text()
    for heading in (
        "## Track flores200 - xsim",
        "## Track sib200 - accuracy",
        "## Track flores200-translate - chrf_pp",
        "## Track flores200-translate - spbleu",
    ):
        assert heading in report, heading
    assert "## Suite average" not in report
