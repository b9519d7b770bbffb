"""`mmxfer compare --suite flores200`: one section per track (xSIM, SIB-200, chrF++, spBLEU) with margins and
intervals, no suite average (overall: false), and every missing track named, never dropped in silence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmxfer.cli import main
from mmxfer.compare.analysis import compare
from mmxfer.evaluation.scoring import score_file_metrics, score_file_rows
from mmxfer.runs.store import Run, run_id_for

LANGS = ("deu_Latn", "fra_Latn", "swh_Latn")
ARMS = {
    "baseline": ((), "none", 0.0),
    "mnli": (("mnli",), "text", 0.1),
    "vqa": (("vqa",), "image-text", 0.25),
}
WORDS = "the red cat sat on a small mat near the blue house by the beach in the snow".split()


def _config(arm: str, target: str | None, seed: int, languages: list[str] | None) -> dict:
    tasks, modality, _ = ARMS[arm]
    config = {
        "study": "fl",
        "target": target,
        "seed": seed,
        "arm": {"name": arm, "intermediate": list(tasks), "modality": modality},
        "profile": {
            "name": "synthetic",
            "trunk": {"name": "tiny"},
            "suite": "flores200",
            "study": "fl",
        },
    }
    if languages:
        config["languages"] = languages
    return config


def _run(root, arm, target, seed, languages=None) -> Run:
    config = _config(arm, target, seed, languages)
    run = Run(root / "fl" / run_id_for(config, f"{arm}-{target or 'retrieval'}-s{seed}"))
    run.path.mkdir(parents=True)
    run.write_config(config)
    return run


def write_flores_study(
    root, *, tracks=("xsim", "sib", "translate"), seeds=(1, 2), languages=None
) -> None:
    rng = np.random.default_rng(0)
    n = 40
    for arm, (_, _, skill) in ARMS.items():
        for seed in seeds:
            if "xsim" in tracks:
                run, rows = _run(root, arm, None, seed, languages), []
                for lang in languages or LANGS:
                    preds = [
                        {
                            "id": str(i),
                            "pred": i if rng.random() < 0.5 + skill else (i + 1) % n,
                            "gold": i,
                            "direction": d,
                        }
                        for d in ("xx-en", "en-xx")
                        for i in range(n)
                    ]
                    run.write_predictions("flores200", "devtest", lang, preds)
                    rows += score_file_rows("flores200", "devtest", lang, preds, metric="xsim")
                run.write_metrics(rows)
                run.mark_done()
            if "sib" in tracks:
                run, rows = _run(root, arm, "sib200", seed, languages), []
                for lang in languages or LANGS:
                    preds = [
                        {
                            "id": str(i),
                            "pred": i % 7 if rng.random() < 0.4 + skill else 0,
                            "gold": i % 7,
                        }
                        for i in range(n)
                    ]
                    run.write_predictions("sib200", "test", lang, preds)
                    rows += score_file_rows("sib200", "test", lang, preds)
                run.write_metrics(rows)
                run.mark_done()
            if "translate" in tracks:
                run, rows = _run(root, arm, "flores200-translate", seed, languages), []
                for lang in languages or LANGS:
                    preds = []
                    for i in range(n):
                        ref = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(8)) + "."
                        keep = [w for w in ref.split() if rng.random() < 0.45 + skill]
                        preds.append({"id": str(i), "pred": " ".join(keep), "gold": ref})
                    run.write_predictions("flores200-translate", "devtest", lang, preds)
                    rows += score_file_metrics("flores200-translate", "devtest", lang, preds)
                run.write_metrics(rows)
                run.mark_done()


@pytest.fixture()
def no_spm(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr("mmxfer.metrics.generation.default_spm_path", lambda: tmp_path / "no-spm")


def test_every_track_has_its_section_and_the_missing_one_says_why(tmp_path, no_spm, capsys):
    write_flores_study(tmp_path / "runs", languages=None)
    out = tmp_path / "report"
    assert (
        main(
            [
                "compare",
                "--suite",
                "flores200",
                "--runs",
                str(tmp_path / "runs"),
                "--out",
                str(out),
                "--bootstrap",
                "200",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "No suite average" in printed
        and "Best arm" not in printed
        and "Modality effect, suite" not in printed
    )
    assert (
        "Missing track flores200-translate (spbleu): spBLEU needs the flores200 SPM model"
        in printed
    )
    # no text twin among the arms: vqa - mnli compares tasks too, so no modality line names it (tables only)
    assert (
        "Modality effect on" not in printed
        and "(2) FLORES-200 tasks" not in printed
        and "vqa - mnli" not in printed
    )
    assert (
        "No multimodal arm has its text twin among the arms, so the modality effect is not isolated"
        in printed
    )
    # the effect of intermediate training is given per track (the family's level when there is no suite average)
    effect = next(
        line for line in printed.splitlines() if line.startswith("Intermediate training itself")
    )
    assert all(
        f"{track}" in effect
        for track in ("flores200 (xsim) (trunk as it is", "sib200 (accuracy): ")
    )
    assert "Confirmatory family: " in printed
    report = (out / "report.md").read_text()
    for heading in (
        "## Track flores200 - xsim",
        "## Track sib200 - accuracy",
        "## Track flores200-translate - chrf_pp",
        "## Track flores200-translate - spbleu",
    ):
        assert heading in report, heading
    assert "## Suite average" not in report and "## Per category" not in report
    spbleu_section = report.split("## Track flores200-translate - spbleu")[1]
    assert spbleu_section.lstrip().startswith("missing: spBLEU needs the flores200 SPM model")
    assert (
        "lower is better: margins are sign-flipped" in report.split("## Track flores200 - xsim")[1]
    )
    tasks = pd.read_csv(out / "table_tasks.csv")
    assert list(tasks.columns[2:]) == [
        "flores200 (xsim)",
        "sib200 (accuracy)",
        "flores200-translate (chrf_pp)",
        "flores200-translate (spbleu)",
    ]
    assert (
        tasks["flores200-translate (spbleu)"]
        .str.startswith("missing: spBLEU needs the flores200 SPM model")
        .all()
    )
    assert pd.read_csv(out / "gaps_suite.csv").empty  # overall: false - no suite number anywhere
    langs = pd.read_csv(out / "gaps_language.csv")
    chrf = langs[(langs["metric"] == "chrf_pp") & (langs["kind"] == "multimodal-vs-baseline")]
    assert (
        len(chrf) == 3
        and (chrf["ci_low"] < chrf["margin"]).all()
        and (chrf["margin"] < chrf["ci_high"]).all()
    )
    assert (chrf["margin"] > 0).all()  # vqa keeps more of every reference than the baseline
    tracks = pd.read_csv(out / "table_tracks.csv").set_index("track")
    assert tracks.loc["flores200 (xsim)", "better"].startswith("lower")
    assert tracks.loc["flores200-translate (spbleu)", "status"].startswith("missing: spBLEU needs")


def test_a_track_without_runs_and_subset_runs_are_reported(tmp_path, no_spm):
    write_flores_study(
        tmp_path / "runs",
        tracks=("xsim", "translate"),
        seeds=(1,),
        languages=["deu_Latn", "swh_Latn"],
    )
    lines, paths = compare(
        "flores200", [str(tmp_path / "runs")], tmp_path / "out", n_boot=50, progress=False
    )
    assert any(
        line.startswith("Missing track sib200 (accuracy): no finished run has sib200 scores")
        for line in lines
    )
    report = paths["report"].read_text()
    assert "## Track sib200 - no scores" in report
    tracks = pd.read_csv(paths["table_tracks_csv"]).set_index("track")
    assert tracks.loc["flores200 (xsim)", "languages"] == "2 (runs limited to deu_Latn, swh_Latn)"
    assert (
        "runs limited to deu_Latn, swh_Latn"
        in report.split("## Track flores200-translate - chrf_pp")[1]
    )


def test_a_track_one_arm_lacks_names_the_arm(tmp_path, no_spm):
    write_flores_study(tmp_path / "runs", tracks=("xsim", "sib"), seeds=(1,))
    for run_dir in (tmp_path / "runs" / "fl").iterdir():
        if run_dir.name.startswith("mnli-sib200"):
            (run_dir / "DONE").unlink()  # unfinished: never a result
    lines, paths = compare(
        "flores200", [str(tmp_path / "runs")], tmp_path / "out", n_boot=0, progress=False
    )
    assert "Track sib200 (accuracy) lacks arm(s) mnli (no scored run)." in lines
    tasks = pd.read_csv(paths["table_tasks_csv"]).set_index("comparison")
    assert (
        tasks.loc["vqa - mnli", "sib200 (accuracy)"]
        == "missing: no scored sib200 (accuracy) run of mnli"
    )
    assert tasks.loc["vqa - baseline", "sib200 (accuracy)"].startswith("+")


def test_spbleu_intervals_use_the_model_the_runs_were_scored_with(
    tmp_path, no_spm, monkeypatch, capsys
):
    """Runs scored with a SentencePiece model given at the time (a study's MMXFER_FLORES200_SPM) are compared
    later in a shell without it: the bootstrap re-scores with the recorded model, not with whatever this
    machine would resolve (which here is nothing: the old code gave spBLEU margins without intervals)."""
    from mmxfer.testing.saved import tiny_spm_model

    model = tiny_spm_model(tmp_path / "spm")
    monkeypatch.setenv("MMXFER_FLORES200_SPM", str(model))
    write_flores_study(tmp_path / "runs", tracks=("translate",))
    monkeypatch.delenv("MMXFER_FLORES200_SPM")
    out = tmp_path / "report"
    assert (
        main(
            [
                "compare",
                "--suite",
                "flores200",
                "--runs",
                str(tmp_path / "runs"),
                "--out",
                str(out),
                "--bootstrap",
                "200",
            ]
        )
        == 0
    )
    assert "Missing track flores200-translate (spbleu)" not in capsys.readouterr().out
    langs = pd.read_csv(out / "gaps_language.csv")
    spbleu = langs[(langs["metric"] == "spbleu") & (langs["kind"] == "multimodal-vs-baseline")]
    assert len(spbleu) == 3 and spbleu["ci_low"].notna().all() and spbleu["ci_high"].notna().all()
    assert (spbleu["ci_low"] <= spbleu["margin"]).all() and (
        spbleu["margin"] <= spbleu["ci_high"]
    ).all()
