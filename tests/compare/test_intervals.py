"""Honest intervals: run variance modelled, parallel languages drawn together, retrieval directions one unit,
one declared family with its MDEs, every key of the tidy table kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mmxfer.cli import main
from mmxfer.compare import variance
from mmxfer.compare.gaps import compute_gaps
from mmxfer.compare.report import headline, method_line
from mmxfer.compare.results import KEY, build_results, write_results
from mmxfer.compare.settings import GapSettings
from mmxfer.compare.stats import holm
from mmxfer.languages import flores200_codes
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study, write_rows_run

TWIN_ARMS = [
    SynthArm("baseline", (), "none"),
    SynthArm("vqa", ("starter-vqa",), "image-text"),
    SynthArm("vqa-text", ("starter-vqa-text",), "text"),
    SynthArm("caption", ("starter-caption",), "image-text"),
    SynthArm("caption-text", ("starter-caption-text",), "text"),
]


def test_a_study_without_effects_is_covered_through_mmxfer_compare(tmp_path, capsys):
    """A corner of benchmarks/interval_calibration.py through the command: 5 arms, 3 seeds, 20 parallel languages x
    1,000 examples, arms that err on the same items (each run gets the first p x n items of one order right), seed
    s.d. 2 points per run and language, no effect anywhere. Resampling the 3 seeds cannot see the run variance: the
    old intervals covered 0 in 78 % of these per-language cells (this one: 95.5 %)."""
    langs = tuple(flores200_codes()[1:21])
    make_study(
        tmp_path / "runs",
        TWIN_ARMS,
        [SynthTask("sib200", "classification", langs, 1000)],
        [1, 2, 3],
        exact=True,
        seed_sd=2.0,
        rng_seed=7,
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: corner\ntasks:\n  - task: sib200\n", encoding="utf-8")
    out = tmp_path / "report"
    assert (
        main(
            [
                "compare",
                "--suite",
                str(suite),
                "--runs",
                str(tmp_path / "runs"),
                "--out",
                str(out),
                "--bootstrap",
                "300",
            ]
        )
        == 0
    )
    langs_df = pd.read_csv(out / "gaps_language.csv")
    assert len(langs_df) == 20 * 10  # 10 comparisons, every one with a true margin of 0
    coverage = float(((langs_df["ci_low"] <= 0) & (langs_df["ci_high"] >= 0)).mean())
    assert coverage >= 0.91, coverage
    assert (langs_df["interval"] == "examples+runs").all() and (
        langs_df["df_runs"] == 10
    ).all()  # 5 arms x (3-1)
    capsys.readouterr()


def _identical_languages(root, langs, n=300, k=3):
    """XNLI runs whose predictions are the same in every language (perfectly correlated languages); seeds differ."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, n)
    for arm, skill in (("baseline", 0.6), ("vqa", 0.6)):
        spec = SynthArm(
            arm,
            () if arm == "baseline" else ("vqa",),
            "none" if arm == "baseline" else "image-text",
        )
        for seed in range(1, k + 1):
            right = rng.random(n) < skill + rng.normal(0, 0.03)
            pred = np.where(right, gold, (gold + 1) % 3)
            rows = {
                lang: [
                    {"id": f"{lang}-{i}", "pred": int(p), "gold": int(g)}
                    for i, (p, g) in enumerate(zip(pred, gold))
                ]
                for lang in langs
            }
            write_rows_run(root, "corr", spec, "xnli", seed, rows)


def test_perfectly_correlated_parallel_languages_give_the_task_the_interval_of_one_language(
    tmp_path,
):
    """XNLI is parallel: its languages share one draw of items, so a task average over identical languages is as
    uncertain as one language (independent draws per language shrank it by sqrt(3))."""
    _identical_languages(tmp_path, ("de", "fr", "sw"))
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=400, progress=False))
    langs = result.languages
    task = result.tasks.iloc[0]
    for _, row in langs.iterrows():
        assert row["ci_low"] == pytest.approx(task["ci_low"], abs=1e-6)
        assert row["ci_high"] == pytest.approx(task["ci_high"], abs=1e-6)
    assert task["var_examples"] == pytest.approx(langs["var_examples"].iloc[0], rel=1e-6)


def _retrieval_rows(n, right, both):
    rows = []
    for i in range(n):
        for direction in ("xx-en", "en-xx") if both else ("xx-en",):
            rows.append(
                {
                    "id": str(i),
                    "pred": i if right[i] else (i + 1) % n,
                    "gold": i,
                    "direction": direction,
                }
            )
    return rows


def test_both_retrieval_directions_of_a_sentence_are_one_unit(tmp_path):
    """Two rows per sentence (xx-en and en-xx, here the same outcome) are one item: the example variance is that of
    one direction alone, not half of it (rows resampled as if independent)."""
    rng = np.random.default_rng(3)
    n = 200
    outcomes = {(arm, s): rng.random(n) < 0.7 for arm in ("baseline", "vqa") for s in (1, 2)}
    var = {}
    for both in (False, True):
        root = tmp_path / ("both" if both else "one")
        for (arm, seed), right in outcomes.items():
            spec = SynthArm(
                arm,
                () if arm == "baseline" else ("vqa",),
                "none" if arm == "baseline" else "image-text",
            )
            write_rows_run(
                root, "ret", spec, "tatoeba", seed, {"deu": _retrieval_rows(n, right, both)}
            )
        result = compute_gaps(build_results([root]), GapSettings(n_boot=500, progress=False))
        var[both] = float(result.languages["var_examples"].iloc[0])
    assert var[True] == pytest.approx(var[False], rel=1e-6) and var[True] > 0


def test_the_tidy_table_keeps_each_direction_and_no_two_rows_share_a_key(tmp_path):
    rng = np.random.default_rng(4)
    right = rng.random(50) < 0.7
    write_rows_run(
        tmp_path,
        "ret",
        SynthArm("baseline", (), "none"),
        "tatoeba",
        1,
        {"deu": _retrieval_rows(50, right, True), "kaz": _retrieval_rows(50, ~right, True)},
    )
    table = build_results([tmp_path])
    assert sorted(table["part"]) == sorted(["", "xx-en", "en-xx"] * 2)
    assert not table.duplicated(list(KEY)).any()
    csv = pd.read_csv(write_results(table, tmp_path / "out")["csv"], keep_default_na=False)
    assert not csv.duplicated(list(KEY)).any() and set(csv["part"]) == {"", "xx-en", "en-xx"}


@pytest.fixture(scope="module")
def twin_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    tasks = [
        SynthTask("starter-sib200", "classification", ("fra_Latn", "swh_Latn", "hin_Deva"), 300),
        SynthTask("starter-flores", "retrieval", ("deu_Latn", "amh_Ethi"), 300),
    ]
    make_study(root, TWIN_ARMS, tasks, [1, 2], exact=False, seed_sd=1.0, rng_seed=2)
    return build_results([root])


def test_one_family_of_confirmatory_margins_is_corrected_together(twin_study):
    result = compute_gaps(
        twin_study, GapSettings(n_boot=300, include_english=False, progress=False)
    )
    fam = result.confirmatory()
    tested = fam[fam["same_as"].fillna("") == ""]
    # suite: 2 twins + pooled; categories (2): (2 twins + pooled + 4 arms vs baseline) each; 3 contrasts
    assert result.family_size == len(tested) == 3 + 2 * 7 + 3
    assert np.allclose(tested["p_adj"].to_numpy(), holm(tested["p"].to_numpy()))
    # the FLORES tracks' twin margins are their categories' (one task each): tested once, same corrected p
    linked = fam[fam["same_as"] == "category"]
    cats = result.categories.set_index(["arm", "reference", "category"])
    for row in linked.itertuples():
        assert row.p_adj == cats.loc[(row.arm, row.reference, row.category), "p_adj"]
    # exploratory: per-language cells and the confounded comparisons
    assert (result.languages["family"] == "exploratory").all()
    confounded = result.categories[
        result.categories["kind"].isin(("multimodal-vs-text", "all-multimodal-vs-all-text"))
    ]
    assert not confounded.empty and (confounded["family"] == "exploratory").all()
    lines = headline(result)
    assert any(
        line.startswith(f"Confirmatory family: {result.family_size} margins") for line in lines
    )


def test_every_confirmatory_margin_reports_its_minimum_detectable_effect(twin_study):
    result = compute_gaps(
        twin_study, GapSettings(n_boot=300, include_english=False, progress=False)
    )
    fam = result.confirmatory()
    m = result.family_size
    for row in fam[fam["same_as"].fillna("") == ""].itertuples():
        expected = (
            variance.t_quantile(1 - 0.05 / m / 2, row.df) + variance.t_quantile(0.8, row.df)
        ) * row.se
        assert row.mde == pytest.approx(expected) and row.mde > abs(row.ci_high - row.margin)
    gap = next(line for line in headline(result) if line.startswith("(1) Gap by task category"))
    assert "(not significant; could have detected >= " in gap or "(significant)" in gap
    assert "(MDE " in gap


def test_with_one_seed_the_intervals_say_examples_only(tmp_path):
    make_study(
        tmp_path,
        TWIN_ARMS[:3],
        [SynthTask("starter-sib200", "classification", ("fra_Latn",), 200)],
        [1],
        exact=False,
    )
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=200, progress=False))
    assert (result.languages["interval"] == "examples only").all() and (
        result.languages["df_runs"] == 0
    ).all()
    assert "run-to-run variance NOT estimated" in method_line(result)


def test_an_arm_whose_runs_are_copies_adds_no_run_variance(tmp_path):
    """The untrained trunk's retrieval reads no seed: its two seeds are the same predictions. It must not pass for
    an arm with zero run variance and 1 degree of freedom."""
    rng = np.random.default_rng(5)
    n = 200
    base = rng.random(n) < 0.7
    for seed in (1, 2):
        write_rows_run(
            tmp_path,
            "ret",
            SynthArm("baseline", (), "none"),
            "tatoeba",
            seed,
            {"deu": _retrieval_rows(n, base, False)},
        )
        for arm in ("vqa", "caption"):
            write_rows_run(
                tmp_path,
                "ret",
                SynthArm(arm, (arm,), "image-text"),
                "tatoeba",
                seed,
                {"deu": _retrieval_rows(n, rng.random(n) < 0.7, False)},
            )
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=200, progress=False))
    row = result.languages[
        (result.languages["arm"] == "vqa") & (result.languages["reference"] == "baseline")
    ].iloc[0]
    # vqa and caption; the baseline's copies add none
    assert row["df_runs"] == 2 and row["pooled_arms"] == 2
    assert row["sum_w2"] == pytest.approx(1.0)  # only vqa's own mean moves from run to run


def test_example_variance_leaves_the_seed_noise_to_the_run_term():
    """reps = item part (shared by the seeds) + each run's own noise: the corrected variance is the item part's."""
    rng = np.random.default_rng(6)
    B = 20000
    item_a, item_b = rng.normal(0, 2.0, B), rng.normal(0, 1.0, B)
    reps = {"a": item_a + rng.normal(0, 1.5, (3, B)), "b": item_b + rng.normal(0, 1.5, (3, B))}
    corrected, raw = variance.example_variance(reps, {"a": 1.0, "b": -1.0})
    assert corrected == pytest.approx(4.0 + 1.0, rel=0.05)
    assert raw == pytest.approx(5.0 + 2 * 1.5**2 / 3, rel=0.05)


def test_the_interval_is_a_t_interval_with_satterthwaite_degrees_of_freedom():
    runs = variance.RunVariance(variance=4.0, df=6)
    est = variance.estimate(1.0, var_examples=1.0, run_weight=0.5, runs=runs, alpha=0.05)
    v_run = 2.0
    df = (1.0 + v_run) ** 2 / (v_run**2 / 6)
    assert est.df == pytest.approx(df) and est.se == pytest.approx(np.sqrt(3.0))
    assert est.ci_high - 1.0 == pytest.approx(sps.t.ppf(0.975, df) * np.sqrt(3.0))
    assert est.p == pytest.approx(2 * sps.t.sf(1.0 / np.sqrt(3.0), df))
    only = variance.estimate(1.0, 1.0, 0.5, variance.RunVariance(float("nan"), 0), 0.05)
    assert only.interval == "examples only" and only.ci_high - 1.0 == pytest.approx(
        sps.norm.ppf(0.975)
    )
