import json

import pytest

from mmxfer import catalog, config
from mmxfer.errors import DataError, RunStoreError
from mmxfer.evaluation import suites
from mmxfer.evaluation.scoring import rescore_run, score_file_rows, score_predictions
from mmxfer.runs import store
from mmxfer.runs.store import Run


def test_predictions_round_trip_and_bad_rows(tmp_path):
    path = store.predictions_path(tmp_path, "xnli", "test", "de")
    store.write_predictions(
        path, [{"id": "a", "pred": 1, "gold": 1}, {"id": "b", "pred": 0, "gold": 1}]
    )
    assert store.read_predictions(path)[0] == {"id": "a", "pred": 1, "gold": 1}
    assert list(Run(tmp_path).prediction_files()) == [("xnli", "test", "de", path)]
    with pytest.raises(DataError):
        store.write_predictions(path, [{"id": 1, "pred": 2}])
    path.write_text('{"id": 1}\n')
    with pytest.raises(DataError, match="missing"):
        store.read_predictions(path)


def test_score_predictions_uses_the_task_metric():
    rows = [
        {"id": i, "pred": p, "gold": g} for i, (p, g) in enumerate([(1, 1), (0, 1), (2, 2), (1, 1)])
    ]
    assert score_predictions("xnli", rows)["accuracy"] == 75.0
    qa_rows = [{"id": "q", "pred": "北京大学", "gold": ["北京"]}]
    assert score_predictions("mlqa", qa_rows, lang="zh")["f1"] == pytest.approx(200 / 3)
    assert score_predictions("anything", rows, metric="accuracy")["accuracy"] == 75.0


def test_direction_parts_and_headline():
    rows = [
        {"id": 0, "pred": 0, "gold": 0, "direction": "xx-en"},
        {"id": 1, "pred": 0, "gold": 1, "direction": "xx-en"},
        {"id": 0, "pred": 0, "gold": 0, "direction": "en-xx"},
        {"id": 1, "pred": 1, "gold": 1, "direction": "en-xx"},
    ]
    out = score_file_rows("tatoeba", "test", "kaz", rows, settings={"margin": "absolute"})
    head = [r for r in out if "part" not in r][0]
    assert (
        head["score"] == 75.0
        and head["settings"] == {"margin": "absolute"}
        and head["category"] == "retrieval"
    )
    parts = {r["part"]: r["score"] for r in out if "part" in r}
    assert parts == {"en-xx": 100.0, "xx-en": 50.0}


def test_rescore_run_rewrites_metrics_and_keeps_settings(tmp_path):
    run = Run(tmp_path / "study" / "r1")
    run.path.mkdir(parents=True)
    run.write_predictions(
        "pawsx", "test", "de", [{"id": 0, "pred": 1, "gold": 1}, {"id": 1, "pred": 0, "gold": 1}]
    )
    run.write_predictions("tatoeba", "test", "kaz", [{"id": 0, "pred": 0, "gold": 0}])
    run.log_metric("pawsx", "de", "test", "accuracy", 99.0)  # stale
    run.log_metric("tatoeba", "kaz", "test", "tatoeba_accuracy", 1.0, settings={"layer": 7})
    rows = rescore_run(run)
    by_task = {r["task"]: r for r in rows}
    assert by_task["pawsx"]["score"] == 50.0
    assert by_task["tatoeba"]["settings"] == {"layer": 7}
    assert [json.loads(line)["score"] for line in run.metrics_path.read_text().splitlines()] == [
        50.0,
        100.0,
    ]
    with pytest.raises(DataError):
        rescore_run(tmp_path / "nope")


def test_every_metric_team_names_is_registered_with_the_interface():
    catalog.load_plugins()
    for name in (
        "accuracy",
        "span_f1",
        "token_f1",
        "squad",
        "mlqa",
        "tydiqa",
        "tatoeba_accuracy",
        "bucc_f1",
        "xsim",
        "vqa_accuracy",
        "chrf_pp",
        "spbleu",
    ):
        metric = catalog.METRICS.get(name)
        assert (
            metric.name == name
            and isinstance(metric.primary, str)
            and isinstance(metric.higher_is_better, bool)
        )


def test_suites_validate_and_declare_averaging():
    from mmxfer.cli.validate import check_suite

    for name in ("xtreme", "xtreme-classification", "xtreme-retrieval", "flores200", "starter"):
        check_suite(config.load_suite(name), name)
    xtreme = suites.suite_tasks("xtreme")
    assert [i.task for i in xtreme] == [
        "xnli",
        "pawsx",
        "udpos",
        "panx",
        "xquad",
        "mlqa",
        "tydiqa",
        "bucc",
        "tatoeba",
    ]
    flores = config.load_suite("flores200")
    assert not flores.include_english_in_average and not flores.overall
    xsim_item = suites.suite_tasks(flores)[0]
    assert len(xsim_item.languages) == 204 and xsim_item.params["direction"] == "both"


def test_suite_scores_follow_xtreme_averaging():
    def row(task, lang, metric, score, **scores):
        return {
            "task": task,
            "lang": lang,
            "split": "test",
            "metric": metric,
            "score": score,
            "scores": {**scores},
        }

    rows = [
        row("xnli", "en", "accuracy", 90.0),
        row("xnli", "de", "accuracy", 80.0),
        row("xquad", "de", "squad", 70.0, f1=70.0, exact_match=50.0, f1_em=60.0),
    ]
    suite = config.SuiteConfig(
        name="t",
        tasks=(
            config.SuiteTaskConfig(task="xnli", languages=("en", "de")),
            config.SuiteTaskConfig(
                task="xquad", metric="squad", score_key="f1_em", languages=("de", "zh")
            ),
        ),
    )
    agg = suites.suite_scores(rows, suite)
    assert agg["xnli"] == 85.0 and agg["xquad"] == 60.0
    assert agg["classification"] == 85.0 and agg["qa"] == 60.0
    assert agg["average"] == pytest.approx(72.5)
    assert agg["missing"] == ["xquad.zh"]
    no_en = config.SuiteConfig(name="t2", include_english_in_average=False, tasks=suite.tasks)
    assert suites.suite_scores(rows, no_en)["xnli"] == 80.0


def test_unfinished_run_is_refused(tmp_path):
    from mmxfer.cli import main

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text("name: x\n")
    assert (
        main(["evaluate", "--run", str(tmp_path / "r"), "--suite", "xtreme"])
        == RunStoreError.exit_code
    )
