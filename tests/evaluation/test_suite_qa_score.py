"""The XTREME suite averages what its runs record: every task (TyDiQA included) enters the averages, and QA
tasks are scored - in suite averages and in `compare` - by XTREME's task score (EM + F1) / 2."""

from __future__ import annotations

import pytest

from mmxfer import catalog
from mmxfer.compare.analysis import suite_entries
from mmxfer.compare.gaps import compute_gaps
from mmxfer.compare.results import build_results
from mmxfer.compare.settings import GapSettings
from mmxfer.config import load_suite
from mmxfer.evaluation.scoring import score_file_rows
from mmxfer.evaluation.suites import metric_of, suite_scores, suite_tasks, uses_trunk
from mmxfer.runs.store import Run, run_id_for

QA_GOLD, QA_PRED = [["red cat sat"], ["a dog"]], ["red cat", "a dog"]  # EM 50, F1 90 -> f1_em 70
PREDS = {  # (golds, preds) per task kind: small, valid predictions files
    "classification": ([0, 1, 2], [0, 1, 1]),
    "tagging": (None, None),
    "span_qa": (QA_GOLD, QA_PRED),
    "retrieval": ([0, 1], [0, 1]),
}


def _rows_for(task: str) -> tuple[list, list]:
    spec = catalog.task(task)
    if spec.kind == "tagging":
        tags = list(spec.label_names[:3])
        return [tags], [tags[:2] + tags[:1]]
    if spec.mining:
        return [["de-1", "en-1"], ["de-2", "en-2"]], [["de-1", "en-1"], None]
    return PREDS[spec.kind]


def test_every_xtreme_task_enters_the_averages_with_the_metric_its_runs_record():
    catalog.load_plugins()
    rows = []
    for item in suite_tasks("xtreme"):
        golds, preds = _rows_for(item.task)
        for lang in item.languages:
            pred_rows = [
                {"id": str(i), "gold": g, "pred": p} for i, (g, p) in enumerate(zip(golds, preds))
            ]
            # retrieval rows are scored with the suite's metric (evaluation runner), fine-tuned targets with
            # their task's own metric (phase 3): exactly what the runs write
            metric = metric_of(item) if uses_trunk(item) else None
            rows += score_file_rows(item.task, item.split, lang, pred_rows, metric=metric)
    agg = suite_scores(rows, "xtreme")
    assert agg["missing"] == []
    assert {"tydiqa", "qa", "structured", "classification", "retrieval", "average"} <= set(agg)
    for task in ("xquad", "mlqa", "tydiqa"):
        assert agg[task] == pytest.approx(70.0)  # (EM 50 + F1 90) / 2, not F1
    assert agg["qa"] == pytest.approx(70.0)


def _qa_run(root, arm: str, modality: str, preds: list[str]) -> dict:
    config = {
        "study": "s",
        "target": "xquad",
        "seed": 1,
        "arm": {
            "name": arm,
            "intermediate": [] if modality == "none" else [arm],
            "modality": modality,
        },
        "profile": {"name": "p", "trunk": {"name": "t"}, "suite": "xtreme", "study": "s"},
    }
    run = Run(root / "s" / run_id_for(config, f"{arm}-xquad"))
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.write_env(seed=1)
    golds = [["red cat sat"], ["big dog"], ["two birds"], ["blue sky"]]
    rows = [{"id": str(i), "gold": g, "pred": p} for i, (g, p) in enumerate(zip(golds, preds))]
    run.write_predictions("xquad", "test", "de", rows)
    (metric_row,) = score_file_rows("xquad", "test", "de", rows)
    run.write_metrics([metric_row])
    run.mark_done()
    return metric_row["scores"]


def test_compare_uses_the_xtreme_qa_score_f1_em(tmp_path):
    catalog.load_plugins()
    base = _qa_run(tmp_path, "baseline", "none", ["red cat", "dog", "birds", "sky"])
    better = _qa_run(tmp_path, "caption", "image-text", ["red cat sat", "big dog", "birds", "sky"])
    expected = better["f1_em"] - base["f1_em"]
    assert expected != pytest.approx(better["f1"] - base["f1"])
    result = compute_gaps(
        build_results([tmp_path]),
        GapSettings(n_boot=50, progress=False),
        suite_entries(load_suite("xtreme")),
    )
    row = result.tasks.set_index(["arm", "reference"]).loc[("caption", "baseline")]
    assert row["metric"] == "f1_em"
    assert row["margin"] == pytest.approx(expected)
    assert row["ci_low"] <= row["margin"] <= row["ci_high"]
    (track,) = [
        t for t in result.tracks if t.task == "xquad"
    ]  # the track is there, valued by its score key
    assert (track.status, track.metric, track.reason) == ("ok", "f1_em", "")
