from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mmxfer.cli import main
from mmxfer.compare.cli import compare
from mmxfer.compare.report import beside_published, load_published
from mmxfer.compare.results import build_results, write_results
from mmxfer.compare.synthetic import SynthArm, SynthTask, make_study
from mmxfer.languages import flores200_codes

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis"


def test_compare_writes_tables_plots_and_headline(study_dir, suite_file, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "--suite", str(suite_file), "--runs", str(study_dir), "--out", str(out),
                 "--bootstrap", "200"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Best arm: vqa" in printed and "Multimodal vs text: best pair vqa beats mnli" in printed
    for name in ("report.md", "results.parquet", "results.csv", "gaps_language.csv", "table_suite.tex",
                 "table_categories.csv", "forest_categories.png", "forest_categories.svg", "heatmap_arms_tasks.png",
                 "margin_vs_resource.svg"):
        assert (out / name).stat().st_size > 0, name
    assert r"\begin{tabular}" in (out / "table_tasks.tex").read_text()


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


def test_published_numbers_have_sources(study_dir):
    pub = load_published()
    assert pub["source"].notna().all() and pub["source_table"].notna().all()
    assert pub.set_index(["task", "metric"]).loc[("xnli", "accuracy"), "score"] == pytest.approx(79.2)
    side = beside_published(build_results([study_dir]), "baseline")
    row = side.set_index("task").loc["xnli"]
    assert row["ours"] == pytest.approx(60.0) and row["difference"] == pytest.approx(60.0 - 79.2)


@pytest.mark.parametrize("name", ["margins.ipynb", "classification_vs_retrieval.ipynb", "flores200.ipynb"])
def test_notebooks_execute(name, study_dir, tmp_path):
    table = write_results(build_results([study_dir]), tmp_path)["parquet"]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(f"results_path = {str(table)!r}\nout_dir = {str(tmp_path / 'fig')!r}")
    nb.cells.insert(idx + 1, injected)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert any((tmp_path / "fig").glob("*.png"))
