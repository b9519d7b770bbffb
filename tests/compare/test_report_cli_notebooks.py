from importlib import resources
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from mmxfer import catalog
from mmxfer.cli import main
from mmxfer.compare.analysis import compare
from mmxfer.compare.report import beside_published, check_published, load_published
from mmxfer.compare.results import build_results, write_results
from mmxfer.errors import DataError
from mmxfer.languages import flores200_codes
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis"


def test_compare_writes_tables_plots_and_headline(study_dir, suite_file, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "compare",
            "--suite",
            str(suite_file),
            "--runs",
            str(study_dir),
            "--out",
            str(out),
            "--bootstrap",
            "200",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Best arm" not in printed and "best pair" not in printed  # no best-of claims
    # vqa has no text twin here: vqa - mnli compares tasks too, so it stays in the tables (labelled confounded)
    assert "Modality effect" not in printed and "(1) Gap by task category" not in printed
    assert "the modality effect is not isolated" in printed
    effect = next(
        line for line in printed.splitlines() if line.startswith("Intermediate training itself")
    )
    assert (
        "mnli +" in effect and "vqa +" in effect and "Note: the intermediate tasks" not in printed
    )
    for name in (
        "report.md",
        "results.parquet",
        "results.csv",
        "gaps_language.csv",
        "table_suite.tex",
        "table_categories.csv",
        "forest_categories.png",
        "forest_categories.svg",
        "heatmap_arms_tasks.png",
        "margin_vs_resource.svg",
    ):
        assert (out / name).stat().st_size > 0, name
    assert r"\begin{tabular}" in (out / "table_tasks.tex").read_text()
    report = (out / "report.md").read_text()
    assert "## Ours beside published numbers" in report
    assert (
        "X-STILTs (XLM-R Large, best intermediate task per target): Phang et al. 2020" in report
        and "(best intermediate task per target; checked against google-research/multilingual-t5"
        in report
    )
    assert (
        (out / "table_published.csv")
        .read_text()
        .startswith("task,score,ours: baseline,ours: mnli,ours: vqa,")
    )
    assert (
        "## Multimodal arms vs other text tasks (confounded with the task; exploratory)" in report
    )
    assert pd.read_csv(out / "table_confounded.csv")["comparison"].tolist() == ["vqa - mnli"]


def test_compare_cli_errors_are_one_line(tmp_path, suite_file, capsys):
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "compare",
            "--suite",
            str(suite_file),
            "--runs",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no finished runs" in err and "Traceback" not in err


def test_flores_family_plot(tmp_path):
    langs = flores200_codes()
    arms = [SynthArm("baseline", (), "none"), SynthArm("caption", ("caption",), "image-text", 2.0)]
    make_study(tmp_path / "runs", arms, [SynthTask("flores200", "retrieval", langs, 5)], [1])
    suite = tmp_path / "flores.yaml"
    suite.write_text("name: flores\ntasks:\n  - task: flores200\n", encoding="utf-8")
    lines, paths = compare(
        str(suite), [str(tmp_path / "runs")], tmp_path / "out", n_boot=50, progress=False
    )
    fam = [p for p in paths.values() if p.name.startswith("families_caption_vs_baseline")]
    assert {p.suffix for p in fam} == {".png", ".svg"} and all(p.stat().st_size > 0 for p in fam)
    gaps = (tmp_path / "out" / "gaps_language.csv").read_text()
    assert gaps.count("\n") == 205  # header + 204 languages


XSTILTS = "X-STILTs (XLM-R Large, best intermediate task per target)"


def test_published_numbers_have_checked_sources_and_name_real_tasks():
    pub = load_published()
    assert (
        pub[["source", "source_table", "model", "selection", "checked_against"]].notna().all().all()
    )
    by = pub.set_index(["model", "task", "metric"])["score"]
    # google-research/multilingual-t5 README.md (319bb80), results table, rows XLM-R and X-STILTs
    assert by[("XLM-R Large", "xnli", "accuracy")] == pytest.approx(79.2)
    assert by[(XSTILTS, "xnli", "accuracy")] == pytest.approx(80.4)
    assert by[(XSTILTS, "tydiqa", "f1")] == pytest.approx(76.0)
    assert set(pub.loc[pub["model"] == XSTILTS, "selection"]) == {
        "best intermediate task per target"
    }
    assert set(pub.loc[pub["model"] == "XLM-R Large", "selection"]) == {"one model"}
    # unchecked numbers are not shipped (UDPOS 72.6 and TyDiQA EM 45.0 among them)
    assert ("XLM-R Large", "udpos", "f1") not in by.index and (
        "XLM-R Large",
        "tydiqa",
        "exact_match",
    ) not in by.index
    assert not pub.duplicated(["model", "task", "lang", "metric"]).any()
    catalog.load_plugins()
    for row in pub[~pub["task"].str.startswith("category:")].itertuples():
        spec = catalog.task(row.task)  # raises on a typo in a task name
        keys = {catalog.METRICS.get(spec.metric).primary} | (
            {"exact_match"} if spec.kind == "span_qa" else set()
        )
        assert row.metric in keys, (row.task, row.metric, keys)
    text = (resources.files("mmxfer") / "resources/published/README.md").read_text(encoding="utf-8")
    assert "not shipped" not in text.lower() and "best intermediate task per target" in text


def _row(model, task, metric, score):
    return {
        "source": "s",
        "source_table": "t",
        "model": model,
        "selection": "one model",
        "task": task,
        "lang": "avg",
        "metric": metric,
        "score": score,
        "checked_against": "c",
        "note": "",
    }


def test_a_category_row_must_be_the_mean_of_its_per_task_rows():
    ok = pd.DataFrame(
        [
            _row("XLM-R Large", "xnli", "accuracy", 79.2),
            _row("XLM-R Large", "pawsx", "accuracy", 86.4),
            _row("XLM-R Large", "category:classification", "accuracy", 82.8),
        ]
    )
    check_published(ok)  # (79.2 + 86.4) / 2 = 82.8
    leaderboard = pd.DataFrame(
        [
            _row("X", "xnli", "accuracy", 80.4),
            _row("X", "pawsx", "accuracy", 87.7),
            _row("X", "category:classification", "accuracy", 83.9),
        ]
    )
    with pytest.raises(
        DataError, match=r"83.9 is not the mean of its per-task rows \(80.4 \+ 87.7 -> 84.05\)"
    ):
        check_published(leaderboard)
    unchecked = pd.DataFrame([{**_row("X", "xnli", "accuracy", 80.4), "checked_against": None}])
    with pytest.raises(DataError, match="leaves a column empty"):
        check_published(unchecked)


def test_published_numbers_are_shown_once_per_task_beside_every_arm(study_dir):
    side = beside_published(build_results([study_dir])).set_index("task")
    assert list(side.columns[:4]) == ["score", "ours: baseline", "ours: mnli", "ours: vqa"]
    row = side.loc["xnli"]
    assert row["ours: baseline"] == pytest.approx(60.0) and row["XLM-R Large"] == pytest.approx(
        79.2
    )
    assert row[XSTILTS] == pytest.approx(80.4)
    assert "tatoeba" not in side.index  # no checked published number for it
    # results rows carry the metric's registered name; its headline key (squad -> f1) is what matches
    ours = pd.DataFrame(
        {
            "arm": "a",
            "task": ["xquad", "panx", "udpos"],
            "metric": ["squad", "span_f1", "token_f1"],
            "seed": 1,
            "score": [70.0, 60.0, 50.0],
        }
    )
    qa = beside_published(ours).set_index("task")
    assert qa.loc["xquad", "score"] == "f1" and qa.loc["xquad", "XLM-R Large"] == pytest.approx(
        76.6
    )
    assert qa.loc["xquad", XSTILTS] == pytest.approx(77.2) and qa.loc[
        "xquad", "ours: a"
    ] == pytest.approx(70.0)
    assert qa.loc["panx", XSTILTS] == pytest.approx(64.7)
    assert "udpos" not in qa.index


@pytest.mark.parametrize(
    "name", ["margins.ipynb", "classification_vs_retrieval.ipynb", "flores200.ipynb"]
)
def test_notebooks_execute(name, study_dir, tmp_path):
    table = write_results(build_results([study_dir]), tmp_path)["parquet"]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(
        f"results_path = {str(table)!r}\nout_dir = {str(tmp_path / 'fig')!r}"
    )
    nb.cells.insert(idx + 1, injected)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert any((tmp_path / "fig").glob("*.png"))
