import numpy as np
import pandas as pd
import pytest

from mmxfer.compare import stats
from mmxfer.compare.gaps import GapSettings, compute_gaps
from mmxfer.compare.results import COLUMNS, build_results, read_results, write_results
from mmxfer.errors import MmxferError
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study, write_run


def test_tidy_table_columns_and_done_only(study_dir, tmp_path):
    frame = build_results([study_dir])
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert len(frame) == 3 * 3 * 5  # arms x seeds x (task, lang) cells
    assert set(frame["modality"]) == {"none", "text", "image-text"}
    assert frame.loc[frame["arm"] == "vqa", "intermediate"].unique().tolist() == ["vqa"]
    # an unfinished run is ignored
    write_run(
        study_dir,
        "synthetic",
        SynthArm("cap", ("caption",), "image-text"),
        SynthTask("xnli", "classification", ("de",)),
        1,
        {"de": 90.0},
        done=False,
    )
    assert "cap" not in set(build_results([study_dir])["arm"])
    paths = write_results(frame, tmp_path)
    back = read_results(paths["parquet"])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert len(read_results(paths["csv"])) == len(frame)


def test_margins_equal_constructed_effects(study_dir):
    res = compute_gaps(build_results([study_dir]), GapSettings(n_boot=200, progress=False))
    lang = res.languages.set_index(["arm", "reference", "task", "lang"])["margin"]
    assert lang[("vqa", "mnli", "xnli", "de")] == pytest.approx(3.0)
    assert lang[("vqa", "baseline", "tatoeba", "kaz")] == pytest.approx(9.0)
    assert lang[("mnli", "baseline", "xnli", "sw")] == pytest.approx(2.0)
    task = res.tasks.set_index(["arm", "reference", "task"])["margin"]
    assert task[("vqa", "mnli", "tatoeba")] == pytest.approx(5.0)  # (3 + 7) / 2
    cat = res.categories.set_index(["arm", "reference", "category"])["margin"]
    assert cat[("vqa", "mnli", "retrieval")] == pytest.approx(5.0)
    suite = res.suite.set_index(["arm", "reference"])["margin"]
    assert suite[("vqa", "mnli")] == pytest.approx(4.0)  # mean of tasks 3 and 5
    assert suite[("vqa", "baseline")] == pytest.approx(6.0)
    # every interval contains its estimate; vqa-baseline on the suite is clearly positive
    for frame in (res.languages, res.tasks, res.suite):
        assert (frame["ci_low"] <= frame["margin"] + 1e-6).all() and (
            frame["margin"] <= frame["ci_high"] + 1e-6
        ).all()
    assert bool(res.suite.set_index(["arm", "reference"]).loc[("vqa", "baseline"), "significant"])


def test_english_left_out_of_average(study_dir):
    res = compute_gaps(
        build_results([study_dir]), GapSettings(n_boot=0, include_english=False, progress=False)
    )
    xnli = res.tasks[
        (res.tasks.task == "xnli") & (res.tasks.arm == "vqa") & (res.tasks.reference == "mnli")
    ]
    assert int(xnli["n_cells"].iloc[0]) == 2
    assert res.languages["ci_low"].isna().all()  # no bootstrap -> no intervals


def test_holm_and_bh_hand_example():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005,0.01,0.03,0.04 x (4,3,2,1) = 0.02,0.03,0.06,0.04 -> monotone 0.02,0.03,0.06,0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted x 4/rank = 0.02,0.02,0.04,0.04 -> step-up minimum
    assert stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.isnan(stats.holm(np.array([np.nan, 0.2]))[0])
    assert stats.holm(np.array([0.9, 0.8])).max() <= 1.0


def test_errors(tmp_path, study_dir):
    with pytest.raises(MmxferError, match="no finished runs"):
        build_results([tmp_path])
    # no baseline
    root = tmp_path / "nobase"
    make_study(
        root,
        [SynthArm("vqa", ("vqa",), "image-text"), SynthArm("mnli", ("mnli",), "text")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
    )
    with pytest.raises(MmxferError, match="no baseline arm"):
        compute_gaps(build_results([root]), GapSettings(n_boot=10, progress=False))
    # trunks mixed
    root2 = tmp_path / "mixed"
    make_study(
        root2,
        [SynthArm("baseline", (), "none")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
    )
    make_study(
        root2,
        [SynthArm("vqa", ("vqa",), "image-text")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
        trunk="xlm-roberta-base",
    )
    with pytest.raises(MmxferError, match="different trunks"):
        compute_gaps(build_results([root2]), GapSettings(n_boot=10, progress=False))
    root3 = tmp_path / "suites"
    make_study(
        root3,
        [SynthArm("baseline", (), "none")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
    )
    make_study(
        root3,
        [SynthArm("vqa", ("vqa",), "image-text")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
        suite="other",
    )
    with pytest.raises(MmxferError, match="different suites"):
        compute_gaps(build_results([root3]), GapSettings(n_boot=10, progress=False))
    # missing predictions
    root4 = tmp_path / "nopred"
    make_study(
        root4,
        [SynthArm("baseline", (), "none"), SynthArm("vqa", ("vqa",), "image-text")],
        [SynthTask("xnli", "classification", ("de",), 20)],
        [1],
        predictions=False,
    )
    with pytest.raises(MmxferError, match="missing predictions.*--bootstrap 0"):
        compute_gaps(build_results([root4]), GapSettings(n_boot=10, progress=False))
    assert (
        len(compute_gaps(build_results([root4]), GapSettings(n_boot=0, progress=False)).languages)
        == 1
    )


def test_bad_predictions_row_is_named(tmp_path):
    from mmxfer.compare.example_scores import prediction_columns

    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "pred": 0, "gold": 0}\n{"id": 2, "pred": 1}\n', encoding="utf-8")
    with pytest.raises(MmxferError, match="row 2"):
        prediction_columns(path)
    path.write_text(
        '{"id": 1, "pred": 0, "gold": 0}\n\n{"id": 2, "pred": 1, "gold": 1}\n', encoding="utf-8"
    )
    assert prediction_columns(path) == ([1, 2], [0, 1], [0, 1])
