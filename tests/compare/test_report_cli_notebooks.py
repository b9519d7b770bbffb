from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from mmxfer import catalog
from mmxfer.cli import main
from mmxfer.compare.cli import compare
from mmxfer.compare.report import beside_published, load_published
from mmxfer.compare.results import build_results, write_results
from mmxfer.languages import flores200_codes
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis"


def test_compare_writes_tables_plots_and_headline(study_dir, suite_file, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "--suite", str(suite_file), "--runs", str(study_dir), "--out", str(out),
                 "--bootstrap", "200"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Best arm" not in printed and "best pair" not in printed  # no best-of claims
    # vqa has no text twin here: vqa - mnli compares tasks too, so it stays in the tables (labelled confounded)
    assert "Modality effect" not in printed and "(1) Gap by task category" not in printed
    assert "the modality effect is not isolated" in printed
    effect = next(line for line in printed.splitlines() if line.startswith("Intermediate training itself"))
    assert "mnli +" in effect and "vqa +" in effect and "Note: the intermediate tasks" not in printed
    for name in ("report.md", "results.parquet", "results.csv", "gaps_language.csv", "table_suite.tex",
                 "table_categories.csv", "forest_categories.png", "forest_categories.svg", "heatmap_arms_tasks.png",
                 "margin_vs_resource.svg"):
        assert (out / name).stat().st_size > 0, name
    assert r"\begin{tabular}" in (out / "table_tasks.tex").read_text()
    report = (out / "report.md").read_text()
    assert "## Ours beside published numbers" in report and "X-STILTs (XLM-R Large): Phang et al. 2020" in report
    assert "RemBERT Table 7" not in report  # category-level rows are not in this table, so not cited
    assert (out / "table_published.csv").read_text().startswith("arm,task,score,ours,")
    assert "## Multimodal arms vs other text tasks (confounded with the task; exploratory)" in report
    assert pd.read_csv(out / "table_confounded.csv")["comparison"].tolist() == ["vqa - mnli"]


def test_compare_cli_errors_are_one_line(tmp_path, suite_file, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["compare", "--suite", str(suite_file), "--runs", str(tmp_path / "empty"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no finished runs" in err and "Traceback" not in err


def test_flores_family_plot(tmp_path):
    langs = flores200_codes()
    arms = [SynthArm("baseline", (), "none"), SynthArm("caption", ("caption",), "image-text", 2.0)]
    make_study(tmp_path / "runs", arms, [SynthTask("flores200", "retrieval", langs, 5)], [1])
    suite = tmp_path / "flores.yaml"
    suite.write_text("name: flores\ntasks:\n  - task: flores200\n", encoding="utf-8")
    lines, paths = compare(str(suite), [str(tmp_path / "runs")], tmp_path / "out", n_boot=50, progress=False)
    fam = [p for p in paths.values() if p.name.startswith("families_caption_vs_baseline")]
    assert {p.suffix for p in fam} == {".png", ".svg"} and all(p.stat().st_size > 0 for p in fam)
    gaps = (tmp_path / "out" / "gaps_language.csv").read_text()
    assert gaps.count("\n") == 205  # header + 204 languages


def test_published_numbers_have_sources_and_name_real_tasks():
    pub = load_published()
    assert pub[["source", "source_table", "model"]].notna().all().all()
    by = pub.set_index(["model", "task", "metric"])["score"]
    assert by[("XLM-R Large", "xnli", "accuracy")] == pytest.approx(79.2)
    assert by[("X-STILTs (XLM-R Large)", "xnli", "accuracy")] == pytest.approx(80.4)
    assert by[("X-STILTs (XLM-R Large)", "tydiqa", "f1")] == pytest.approx(76.0)
    assert not pub.duplicated(["model", "task", "lang", "metric"]).any()
    catalog.load_plugins()
    for row in pub[~pub["task"].str.startswith("category:")].itertuples():
        spec = catalog.task(row.task)  # raises on a typo in a task name
        keys = {catalog.METRICS.get(spec.metric).primary} | ({"exact_match"} if spec.kind == "span_qa" else set())
        assert row.metric in keys, (row.task, row.metric, keys)
    categories = {t.split(":", 1)[1] for t in pub["task"] if t.startswith("category:")}
    assert categories <= {spec.category for _, spec in catalog.TASKS.items()}


def test_beside_published_matches_on_the_headline_key(study_dir):
    side = beside_published(build_results([study_dir])).set_index(["arm", "task"])
    assert set(side.index.get_level_values("arm")) == {"baseline", "mnli", "vqa"}
    row = side.loc[("baseline", "xnli")]
    assert row["ours"] == pytest.approx(60.0) and row["XLM-R Large"] == pytest.approx(79.2)
    assert row["X-STILTs (XLM-R Large)"] == pytest.approx(80.4)
    # tatoeba has a published XLM-R number but none for X-STILTs
    assert side.loc[("baseline", "tatoeba"), "XLM-R Large"] == pytest.approx(57.3)
    assert pd.isna(side.loc[("baseline", "tatoeba"), "X-STILTs (XLM-R Large)"])
    # results rows carry the metric's registered name; its headline key (squad -> f1) is what matches
    ours = pd.DataFrame({"arm": "a", "task": ["xquad", "panx", "udpos"], "metric": ["squad", "span_f1", "token_f1"],
                         "seed": 1, "score": [70.0, 60.0, 50.0]})
    qa = beside_published(ours).set_index("task")
    assert qa.loc["xquad", "score"] == "f1" and qa.loc["xquad", "XLM-R Large"] == pytest.approx(76.6)
    assert qa.loc["xquad", "X-STILTs (XLM-R Large)"] == pytest.approx(77.2)
    assert qa.loc["panx", "X-STILTs (XLM-R Large)"] == pytest.approx(64.7)
    assert qa.loc["udpos", "XLM-R Large"] == pytest.approx(72.6)


@pytest.mark.parametrize("name", ["margins.ipynb", "classification_vs_retrieval.ipynb", "flores200.ipynb"])
def test_notebooks_execute(name, study_dir, tmp_path):
    table = write_results(build_results([study_dir]), tmp_path)["parquet"]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(f"results_path = {str(table)!r}\nout_dir = {str(tmp_path / 'fig')!r}")
    nb.cells.insert(idx + 1, injected)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert any((tmp_path / "fig").glob("*.png"))
