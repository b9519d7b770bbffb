"""A tiny ``mmxfer train`` end to end on the rehearsal's assets, from each data form: phase 2 on an image-text
task with the tiny open_clip checkpoint, phase 3 and prediction, on the saved XLM-R-architecture folder."""

from __future__ import annotations

import json

import pytest

from mmxfer.cli import main
from mmxfer.metrics.generation import SPM_ENV
from mmxfer.testing.rehearsal import RehearsalAssets
from mmxfer.testing.saved import tiny_spm_model

RECIPE = [
    'precision="no"',
    "trunk.max_length=64",
    "vision.num_tokens=4",
    "intermediate.max_length=64",
    "target.max_length=64",
    "intermediate.batch_size=8",
    "intermediate.grad_accum=1",
    "intermediate.epochs=1",
    "target.batch_size=8",
    "target.grad_accum=1",
    "target.epochs=1",
    "intermediate.checkpoint_every=1000",
    "target.checkpoint_every=1000",
]


@pytest.fixture(scope="module")
def assets(fixture_data, tiny_models, tmp_path_factory) -> RehearsalAssets:
    return RehearsalAssets(
        *tiny_models, fixture_data, tiny_spm_model(tmp_path_factory.mktemp("spm"))
    )


@pytest.mark.parametrize("form,arm", [("release", "vqa"), ("hub", "caption")])
def test_tiny_train_runs_from_either_form(assets, form, arm, tmp_path, monkeypatch, capsys):
    for key, value in assets.env(form).items():
        monkeypatch.setenv(key, value)
    sets = [x for item in [*RECIPE, *assets.overrides(form)] for x in ("--set", item)]
    code = main(
        [
            "train",
            "--profile",
            "xlmr-base",
            "--intermediate",
            arm,
            "--target",
            "pawsx",
            "--seed",
            "3",
            "--runs-dir",
            str(tmp_path),
            "--study",
            "rehearsal-smoke",
            *sets,
        ]
    )
    assert code == 0, capsys.readouterr().err
    (run,) = [p for p in (tmp_path / "rehearsal-smoke").iterdir() if p.name.startswith(arm)]
    assert (run / "DONE").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    langs = assets.fixtures.splits("pawsx", form)["test"]
    assert [(r["task"], r["lang"], r["split"], r["metric"]) for r in rows] == [
        ("pawsx", lang, "test", "accuracy") for lang in langs
    ]
    assert [r["n"] for r in rows] == [
        assets.fixtures.rows("pawsx", form, "test", lang) for lang in langs
    ]
    config = (run / "config.yaml").read_text()
    assert str(assets.trunk_dir) in config and str(assets.vision_checkpoint) in config
    assert ("data_dir: " + str(assets.fixtures.data_dir) in config) == (form == "release")


def test_overrides_name_the_saved_models_and_the_form(assets):
    release, hub = assets.overrides("release"), assets.overrides("hub")
    assert (
        f"trunk.name={assets.trunk_dir}" in release
        and f"vision.checkpoint={assets.vision_checkpoint}" in hub
    )
    assert f"data_dir={assets.fixtures.data_dir}" in release and not any(
        o.startswith("data_dir=") for o in hub
    )
    assert assets.env("hub")["MMXFER_HUB_MIRROR"] == str(assets.fixtures.hub_mirror)
    assert (
        assets.env("release")
        == {SPM_ENV: str(assets.spm_model)}
        == {SPM_ENV: assets.env("hub")[SPM_ENV]}
    )
    with pytest.raises(ValueError):
        assets.overrides("cloud")
