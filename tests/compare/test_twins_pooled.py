"""Twin-matched and pooled modality margins, category contrasts and a headline without best-of claims."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmxfer.compare.arms import (
    ALL_MULTIMODAL,
    ALL_TEXT,
    POOLED_MULTIMODAL,
    POOLED_TWIN_SIDE,
    arm_table,
    comparisons,
    twins,
)
from mmxfer.compare.gaps import compute_gaps
from mmxfer.compare.report import headline, write_report
from mmxfer.compare.results import build_results
from mmxfer.compare.settings import GapSettings
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis"

# effects (accuracy points over the baseline): vqa +6, vqa-text +2 (twin margin 4), caption +1, caption-text +3
# (twin margin -2); the `boosted` study adds +4 to vqa on the retrieval languages only
ARMS = [
    SynthArm("baseline", (), "none"),
    SynthArm("vqa", ("starter-vqa",), "image-text", 6.0),
    SynthArm("vqa-text", ("starter-vqa-text",), "text", 2.0),
    SynthArm("caption", ("starter-caption",), "image-text", 1.0),
    SynthArm("caption-text", ("starter-caption-text",), "text", 3.0),
]
TASKS = [
    SynthTask("starter-sib200", "classification", ("eng_Latn", "fra_Latn", "swh_Latn"), 300),
    SynthTask("starter-flores", "retrieval", ("deu_Latn", "amh_Ethi"), 300),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    make_study(root, ARMS, TASKS, [1, 2])
    return build_results([root])


@pytest.fixture(scope="module")
def boosted(tmp_path_factory):
    """The same study with vqa 4 points higher on the retrieval languages only."""
    root = tmp_path_factory.mktemp("boosted")
    make_study(root, ARMS, TASKS, [1, 2], lang_effects={"vqa": {"deu_Latn": 4.0, "amh_Ethi": 4.0}})
    return build_results([root])


def test_each_multimodal_arm_is_paired_with_its_text_twin_from_the_task_specs(results):
    frame = results
    arms = arm_table(frame)
    assert twins(arms) == {"vqa": "vqa-text", "caption": "caption-text"}
    pairs = [(c.arm, c.reference, c.kind) for c in comparisons(arms)]
    assert pairs[:4] == [
        ("caption", "caption-text", "multimodal-vs-twin"),
        ("vqa", "vqa-text", "multimodal-vs-twin"),
        (POOLED_MULTIMODAL, POOLED_TWIN_SIDE, "pooled-twins"),  # fixed order: by name
        (ALL_MULTIMODAL, ALL_TEXT, "all-multimodal-vs-all-text"),
    ]
    cross = {(a, r) for a, r, k in pairs if k == "multimodal-vs-text"}
    assert cross == {
        ("vqa", "caption-text"),
        ("caption", "vqa-text"),
    }  # unlike tasks: kept apart from the twins
    assert {(a, r) for a, r, k in pairs if k.endswith("vs-baseline")} == {
        (a, "baseline") for a in ("vqa", "vqa-text", "caption", "caption-text")
    }


def test_no_pooled_margin_with_one_arm_a_side_and_no_twin_without_a_twin_task():
    arms = pd.DataFrame(
        {
            "arm": ["baseline", "vqa", "mnli"],
            "modality": ["none", "image-text", "text"],
            "intermediate": ["", "vqa", "mnli"],
        }
    )
    pairs = comparisons(arms)
    assert twins(arms) == {}
    assert [c.kind for c in pairs] == [
        "multimodal-vs-text",
        "multimodal-vs-baseline",
        "text-vs-baseline",
    ]


def test_a_positive_control_meets_the_baseline_alone_and_stays_out_of_the_family(tmp_path):
    arms = [*ARMS[:3], SynthArm("control", ("starter-pivot-bitext",), "text", 8.0)]
    make_study(tmp_path, arms, TASKS, [1, 2])
    frame = build_results([tmp_path])
    pairs = [(c.arm, c.reference, c.kind) for c in comparisons(arm_table(frame))]
    assert [p for p in pairs if "control" in p[:2]] == [
        ("control", "baseline", "control-vs-baseline")
    ]
    result = compute_gaps(frame, GapSettings(n_boot=200, include_english=False, progress=False))
    assert "control" not in set(result.confirmatory()["arm"])
    lines = headline(result)
    control = [line for line in lines if line.startswith("Positive control")]
    assert len(control) == 1 and "control - baseline +8" in control[0]
    assert not any(
        "control" in line for line in lines if line.startswith("Intermediate training itself")
    )


def test_pooled_twin_margin_is_the_mean_of_the_twin_margins(results):
    frame = results
    result = compute_gaps(frame, GapSettings(n_boot=200, include_english=False, progress=False))
    suite = result.suite.set_index(["arm", "reference"])
    assert suite.loc[("vqa", "vqa-text"), "margin"] == pytest.approx(4.0, abs=0.5)
    assert suite.loc[("caption", "caption-text"), "margin"] == pytest.approx(-2.0, abs=0.5)
    pooled = suite.loc[(POOLED_MULTIMODAL, POOLED_TWIN_SIDE)]
    assert pooled["kind"] == "pooled-twins"
    means = (
        frame[frame["lang"] != "eng_Latn"]
        .groupby(["arm", "task"])["score"]
        .mean()
        .groupby("arm")
        .mean()
    )
    expected = ((means["vqa"] - means["vqa-text"]) + (means["caption"] - means["caption-text"])) / 2
    assert pooled["margin"] == pytest.approx(expected, abs=1e-9)
    assert pooled["family"] == "confirmatory"
    # confounded with the task
    assert suite.loc[(ALL_MULTIMODAL, ALL_TEXT), "family"] == "exploratory"
    assert pooled["ci_low"] < pooled["margin"] < pooled["ci_high"]
    # the pooled interval is narrower than either twin's (it averages two pairs' noise)
    width = suite["ci_high"] - suite["ci_low"]
    assert width[(POOLED_MULTIMODAL, POOLED_TWIN_SIDE)] < width[("vqa", "vqa-text")]


def test_category_contrast_has_the_difference_of_the_margins_and_its_own_interval(boosted):
    result = compute_gaps(boosted, GapSettings(n_boot=300, include_english=False, progress=False))
    con = result.contrasts.set_index(["arm", "reference"])
    row = con.loc[("vqa", "vqa-text")]
    assert (row["category"], row["other"]) == ("classification", "retrieval")
    cats = result.categories.set_index(["arm", "reference", "category"])["margin"]
    assert row["margin"] == pytest.approx(
        cats[("vqa", "vqa-text", "classification")] - cats[("vqa", "vqa-text", "retrieval")],
        abs=1e-9,
    )
    assert (
        row["margin"] == pytest.approx(-4.0, abs=1.0) and row["ci_high"] < 0 and row["significant"]
    )
    assert row["ci_low"] < row["margin"] < row["ci_high"]
    # no constructed difference there
    assert abs(con.loc[("caption", "caption-text"), "margin"]) < 1.0
    assert not con.loc[("caption", "caption-text"), "significant"]


def test_headline_names_twins_and_pooled_never_a_best_arm_and_says_the_tasks_are_synthetic(
    results, tmp_path
):
    frame = results
    result = compute_gaps(frame, GapSettings(n_boot=200, include_english=False, progress=False))
    lines = headline(result)
    text = "\n".join(lines)
    assert "best" not in text.lower()
    modality = next(line for line in lines if line.startswith("Modality effect, suite average"))
    assert (
        modality.index("caption - caption-text")
        < modality.index("vqa - vqa-text")
        < modality.index("pooled-multimodal - pooled-twins")
    )
    # cross pairs stay in the tables
    assert "caption - vqa-text" not in text and "vqa - caption-text" not in text
    gap = next(
        line
        for line in lines
        if line.startswith("(1) Gap by task category (pooled-multimodal - pooled-twins")
    )
    assert (
        gap.index("classification") < gap.index("retrieval")
        and "difference classification - retrieval" in gap
    )
    flores = next(line for line in lines if line.startswith("(2) FLORES-200 tasks"))
    assert (
        "starter-sib200 (accuracy): caption - caption-text -2.00 [" in flores
        and ", vqa - vqa-text +4.00 [" in flores
    )
    assert "pooled" not in flores  # (1) has the pooled margin; (2) is about each arm and its twin
    effect = next(
        line
        for line in lines
        if line.startswith("Intermediate training itself (each arm - baseline")
    )
    assert "retrieval (trunk as it is: negative = forgetting)" in effect
    assert (
        lines[-1].startswith(
            "Note: the intermediate tasks here (starter-caption, starter-caption-text, "
            "starter-vqa, starter-vqa-text) are synthetic"
        )
        and "`mmxfer study paper`" in lines[-1]
    )
    paths = write_report(result, frame, tmp_path, "starter")
    report = paths["report"].read_text()
    assert "## Modality effect: each multimodal arm vs its text twin, and pooled" in report
    assert "## Effect of intermediate training on the trunk: each arm vs the baseline" in report
    assert pd.read_csv(paths["gaps_contrast"]).shape[0] >= 3


@pytest.mark.parametrize(
    "name", ["classification_vs_retrieval.ipynb", "flores200.ipynb", "margins.ipynb"]
)
def test_notebooks_work_on_a_study_with_twins(name, boosted, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from mmxfer.compare.results import write_results

    table = write_results(boosted, tmp_path)["parquet"]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(
        idx + 1,
        nbformat.v4.new_code_cell(f"results_path = {str(table)!r}\nout_dir = {str(tmp_path)!r}"),
    )
    check = {
        "classification_vs_retrieval.ipynb": "assert set(gap.index) == {'caption - caption-text', 'vqa - vqa-text', 'pooled twin margin'}\n"
        "assert abs(gap.loc['vqa - vqa-text', 'classification - retrieval'] + 4) < 1",
        "flores200.ipynb": "assert list(twin_table.columns) == ['caption - caption-text', 'vqa - vqa-text']",
        "margins.ipynb": "assert set(grid.index) == {'vqa', 'vqa-text', 'caption', 'caption-text'}",
    }[name]
    nb.cells.append(nbformat.v4.new_code_cell(check))
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()


def test_with_many_arms_the_baseline_line_counts_instead_of_listing(tmp_path):
    arms = (
        [SynthArm("baseline", (), "none")]
        + [SynthArm(f"t{i}", ("mnli",), "text", float(i)) for i in range(7)]
        + [SynthArm("vqa", ("vqa",), "image-text", 3.0)]
    )
    make_study(tmp_path, arms, TASKS[:1], [1])
    result = compute_gaps(
        build_results([tmp_path]), GapSettings(n_boot=100, include_english=False, progress=False)
    )
    effect = next(
        line for line in headline(result) if line.startswith("Intermediate training itself")
    )
    assert (
        "classification: " in effect
        and " of 8 arms significantly above, " in effect
        and "t3 +" not in effect
    )
    assert "(margins +0.00 to +6.00)" in effect
