"""The README's main command (`mmxfer study starter`) end to end, on tiny presets.

Same path as the embedded default - the shipped starter study, shapes-world phase 2 with the
vision tower, starter targets, retrieval, then the gap analysis - with the tiny trunk and small
example counts so it runs in CI in well under 3 minutes.
"""

from __future__ import annotations

import pandas as pd

from mmxfer.cli import main

TINY = ["trunk.name=tiny", "trunk.freeze_embeddings=false", "intermediate.max_train_examples=48",
        "intermediate.batch_size=16", "target.max_train_examples=32", "target.batch_size=16", "target.epochs=1",
        "target.max_eval_examples=24"]


def test_starter_study_end_to_end_on_tiny_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    overrides = "overrides=[" + ", ".join(TINY) + "]"
    assert main(["study", "starter", "--runs-dir", "runs", "--set", overrides]) == 0
    out = capsys.readouterr().out

    # the plan, every run, then the answer in a few lines
    assert "8 runs" in out
    assert "Best arm:" in out and "Multimodal vs text:" in out and "By category" in out

    report = tmp_path / "reports" / "starter"
    assert (report / "report.md").is_file()
    assert (report / "forest_categories.png").stat().st_size > 1000
    assert (report / "forest_categories.svg").is_file()

    results = pd.read_csv(report / "results.csv")
    assert set(results["arm"]) == {"baseline", "vqa", "vqa-text", "caption"}
    assert set(results["task"]) == {"starter-bitext", "starter-names"}
    assert results["lang"].nunique() >= 20
    assert set(results.loc[results["arm"] == "vqa", "modality"]) == {"image-text"}
    assert set(results.loc[results["arm"] == "vqa-text", "modality"]) == {"text"}

    # every multimodal arm against every text arm and against the baseline, with an interval
    suite = pd.read_csv(report / "gaps_suite.csv")
    pairs = set(zip(suite["arm"], suite["reference"], suite["kind"]))
    assert {("vqa", "vqa-text", "multimodal-vs-text"), ("caption", "vqa-text", "multimodal-vs-text"),
            ("vqa", "baseline", "multimodal-vs-baseline"), ("caption", "baseline", "multimodal-vs-baseline")} <= pairs
    assert (suite["ci_low"] <= suite["margin"]).all() and (suite["margin"] <= suite["ci_high"]).all()
