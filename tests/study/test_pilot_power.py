"""`mmxfer study CONFIG --dry-run --pilot RUNS_DIR --detect X`: the seeds a study needs, from a pilot's variances."""

from __future__ import annotations

import pytest

from mmxfer.cli import main
from mmxfer.compare import power
from mmxfer.compare.gaps import compute_gaps
from mmxfer.compare.results import build_results
from mmxfer.compare.settings import GapSettings
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

ARMS = [
    SynthArm("baseline", (), "none"),
    SynthArm("vqa", ("starter-vqa",), "image-text"),
    SynthArm("vqa-text", ("starter-vqa-text",), "text"),
    SynthArm("caption", ("starter-caption",), "image-text"),
    SynthArm("caption-text", ("starter-caption-text",), "text"),
]
TASKS = [
    SynthTask("starter-sib200", "classification", ("fra_Latn", "swh_Latn"), 300),
    SynthTask("starter-flores", "retrieval", ("deu_Latn", "amh_Ethi"), 300),
]


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    root = tmp_path_factory.mktemp("pilot")
    make_study(root, ARMS, TASKS, [1, 2], exact=False, seed_sd=1.5, rng_seed=11)
    return root


def test_the_seeds_needed_are_the_fewest_that_reach_the_margin(pilot):
    result = compute_gaps(
        build_results([pilot]), GapSettings(n_boot=300, include_english=False, progress=False)
    )
    table = power.seeds_needed(result, detect=4.0)
    fam = result.confirmatory()
    fam = fam[fam["same_as"].fillna("") == ""].reset_index(drop=True)
    alpha = 0.05 / result.family_size
    assert len(table) == result.family_size and table["seeds_needed"].notna().any()
    for i, need in enumerate(table["seeds_needed"]):
        row = fam.iloc[i]
        # NaN: the test set alone keeps the margin above 4 points, or 100 seeds do not suffice
        if need != need:
            assert (
                table.at[i, "examples_floor"] >= 4.0
                or power.mde_with_seeds(row, power.MAX_SEEDS, int(row["pooled_arms"]), alpha) > 4.0
            )
            continue
        k = int(need)
        assert power.mde_with_seeds(row, k, int(row["pooled_arms"]), alpha) <= 4.0
        if k > 2:
            assert power.mde_with_seeds(row, k - 1, int(row["pooled_arms"]), alpha) > 4.0
    # with the pilot's own seeds, its own MDE comes back
    row = fam.iloc[0]
    assert power.mde_with_seeds(row, 2, int(row["pooled_arms"]), alpha) == pytest.approx(
        row["mde"], rel=1e-6
    )


def test_the_dry_run_prints_the_seeds_a_study_needs(pilot, capsys):
    assert main(["study", "starter", "--dry-run", "--pilot", str(pilot), "--detect", "4"]) == 0
    out = capsys.readouterr().out
    assert "seeds to detect a 4-point margin, from the pilot" in out
    assert "To detect a 4-point margin on every reachable confirmatory margin: " in out
    assert "With the study's 2 seed(s), " in out and "seeds_needed" in out


def test_pilot_errors_are_one_line(pilot, tmp_path, capsys):
    assert main(["study", "starter", "--pilot", str(pilot)]) == 2
    assert "--pilot plans a study: use it with --dry-run" in capsys.readouterr().err
    assert main(["study", "starter", "--dry-run", "--pilot", str(pilot), "--detect", "0"]) == 2
    assert "--detect: 0.0 is not allowed" in capsys.readouterr().err
    one = tmp_path / "one-seed"
    make_study(one, ARMS, TASKS, [1], exact=False)
    assert main(["study", "starter", "--dry-run", "--pilot", str(one)]) == 2
    err = capsys.readouterr().err
    assert "every arm has one seed" in err and "Traceback" not in err
