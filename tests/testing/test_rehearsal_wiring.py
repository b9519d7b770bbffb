"""What ``mmxfer study rehearsal`` is built from: the registered saved models, the ``fixtures`` data source a study
names with ``data:``, the release files of hub-less tasks in a hub run, one torch thread, and mirror reads kept
per process."""

from __future__ import annotations

import dataclasses
import os

import datasets
import pytest
import torch

from mmxfer import assets, catalog
from mmxfer.config import ExperimentConfig, VisionConfig, load_profile, load_study
from mmxfer.errors import AssetError, ConfigError, DataError, MmxferError
from mmxfer.models.trunk import load_trunk
from mmxfer.models.vision import build_vision_tower
from mmxfer.study.data import study_data
from mmxfer.tasks.common import LOCAL_DATA_ENV, hub_serves, local_data_dir
from mmxfer.testing.hubrepo import HubRepo
from mmxfer.train import phases

# --- the saved models, by name ----------------------------------------------------------------------


def test_the_rehearsal_trunk_is_the_saved_folder_read_through_transformers(mmxfer_cache):
    from mmxfer.testing.saved import tiny_trunk_dir
    from mmxfer.testing.tiny import tiny_trunk

    model, tokenizer = load_trunk("rehearsal-xlmr")
    folder = tiny_trunk_dir()
    # made on first use
    assert folder.parent == mmxfer_cache / "testing" and (folder / "config.json").is_file()
    assert model.mmxfer_source_dir == str(folder) and type(model).__name__ == "XLMRobertaModel"
    assert model.pooler is None and tokenizer.is_fast
    reference, _ = tiny_trunk()
    state = reference.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_the_rehearsal_tower_reads_its_saved_checkpoint(mmxfer_cache):
    from safetensors.torch import load_file

    from mmxfer.testing.saved import tiny_vision_checkpoint

    tower = build_vision_tower(
        VisionConfig(model="rehearsal-vit", pretrained="rehearsal", checkpoint=None)
    )
    saved = load_file(str(tiny_vision_checkpoint()))
    assert saved and all(
        torch.equal(tower.visual.state_dict()[k.removeprefix("visual.")], v)
        for k, v in saved.items()
    )
    assert tower(torch.zeros(1, 3, 32, 32)).shape[-1] == tower.width


@pytest.mark.parametrize(
    "model,tag,words",
    [
        ("rehearsal-vit", "laion", "it has: rehearsal"),
        ("tiny-vit", "rehearsal", "has no pretrained weights 'rehearsal';"),
    ],
)
def test_an_unknown_checkpoint_of_a_shipped_tower_is_one_line(model, tag, words):
    with pytest.raises(AssetError, match=words) as info:
        build_vision_tower(VisionConfig(model=model, pretrained=tag))
    assert "\n" not in str(info.value)


def test_the_rehearsal_profile_names_no_path_and_loads_one_torch_thread():
    profile = load_profile("rehearsal")
    assert (profile.trunk.name, profile.vision.model, profile.vision.pretrained) == (
        "rehearsal-xlmr",
        "rehearsal-vit",
        "rehearsal",
    )
    assert profile.data_dir is None and profile.cpu_threads == 1
    assert ExperimentConfig().cpu_threads is None  # other profiles keep torch's default


def test_a_run_on_cpu_uses_the_profiles_threads(monkeypatch, tmp_path):
    from mmxfer.runs.store import Run
    from mmxfer.train.run import execute, resolve_request

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(Run, "is_done", lambda self: True)  # stop before any work
    # of this format (no DONE file is read)
    monkeypatch.setattr(Run, "done_info", lambda self: {"run_format": 1})
    profile = load_profile("rehearsal", [f"runs_dir={tmp_path}"])
    execute(resolve_request(profile, "none", "pawsx"))
    execute(resolve_request(dataclasses.replace(profile, cpu_threads=None), "none", "pawsx"))
    assert calls == [1]


# --- the study's data -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["hub", "release"])
def test_a_study_with_data_fixtures_reads_them_in_its_form(form, mmxfer_cache, monkeypatch):
    for key in (assets.MIRROR_ENV, LOCAL_DATA_ENV, "MMXFER_COCO_IMAGES"):
        monkeypatch.delenv(key, raising=False)
    study = load_study("rehearsal", [f"data_form={form}"])
    with study_data(study, None) as data_dir:
        mirror, local = os.environ.get(assets.MIRROR_ENV), os.environ.get(LOCAL_DATA_ENV)
        if form == "hub":
            assert (
                data_dir is None
                and mirror
                and local
                and os.path.isdir(mirror)
                and os.path.isdir(local)
            )
            assert len(catalog.task("xnli").load("test", "de")) > 0  # through the mirror
        else:
            assert data_dir and os.path.isdir(data_dir) and mirror is None
            assert len(catalog.task("xnli").load("test", "de", data_dir)) > 0
    # restored
    assert os.environ.get(assets.MIRROR_ENV) is None and os.environ.get(LOCAL_DATA_ENV) is None


def test_a_data_dir_wins_over_the_study_data(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.MIRROR_ENV, raising=False)
    with study_data(load_study("rehearsal"), str(tmp_path)) as data_dir:
        assert data_dir == str(tmp_path) and os.environ.get(assets.MIRROR_ENV) is None


def test_an_unknown_data_source_is_one_line_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown data source 'fixture'.*fixtures") as info:
        with study_data(load_study("rehearsal", ["data=fixture"]), None):
            pass
    assert "\n" not in str(info.value)


def test_a_bad_data_form_is_a_config_error():
    with pytest.raises(ConfigError, match="data_form"):
        load_study("rehearsal", ["data_form=parquet"])


# --- tasks the hub cannot serve, in a hub run -------------------------------------------------------


def test_only_tasks_the_hub_cannot_serve_read_the_local_release_folder(hub_mirror, monkeypatch):
    assert not hub_serves(catalog.task("vqa")) and not hub_serves(catalog.task("ccg"))
    assert hub_serves(catalog.task("mnli")) and hub_serves(catalog.task("caption"))
    with pytest.raises(MmxferError, match="loading script"):  # as before without the variable
        catalog.task("vqa").load("train")
    monkeypatch.setenv(LOCAL_DATA_ENV, str(hub_mirror.data_dir))
    assert local_data_dir(catalog.task("vqa"), None) == str(hub_mirror.data_dir)
    assert local_data_dir(catalog.task("mnli"), None) is None  # the mirror, not the release files
    assert local_data_dir(catalog.task("vqa"), "/elsewhere") == "/elsewhere"  # --data-dir wins
    vqa = catalog.task("vqa").load("train")
    assert len(vqa) == hub_mirror.rows("vqa", "release", "train", "en")
    assert len(catalog.task("ccg").load("train")) == hub_mirror.rows(
        "ccg", "release", "train", "en"
    )
    assert phases.data_source(catalog.task("vqa"), None) == {
        "data_dir": str(hub_mirror.data_dir.resolve())
    }
    assert phases.data_source(catalog.task("mnli"), None)["hub"] == "nyu-mll/glue"
    # a task without any hub source reads (and its trunk records) the release folder too
    assert phases.data_source(catalog.task("ccg"), None) == {
        "data_dir": str(hub_mirror.data_dir.resolve())
    }
    assert phases.data_source(catalog.task("ccg"), "/elsewhere") == {"data_dir": "/elsewhere"}
    assert phases.data_source(catalog.task("starter-vqa"), "/elsewhere") == {"generated": "1.0"}
    monkeypatch.delenv(LOCAL_DATA_ENV)
    assert phases.data_source(catalog.task("ccg"), None) == {
        "data_dir": None
    }  # planned; its loader will say why


def test_a_hub_task_without_the_release_folder_still_fails_in_one_line(hub_mirror, monkeypatch):
    monkeypatch.delenv(LOCAL_DATA_ENV, raising=False)
    with pytest.raises(DataError, match="--data-dir") as info:
        catalog.task("ccg").load("train")
    assert "\n" not in str(info.value)


# --- mirror reads, kept per process ------------------------------------------------------------------


def test_a_mirror_read_is_kept_until_the_mirror_changes(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MIRROR_ENV, str(tmp_path))
    feats = datasets.Features({"text": datasets.Value("string")})

    def write(rows: list[str]) -> None:
        repo = HubRepo(tmp_path, "org/kept")
        repo.add("cfg", "train", [{"text": t} for t in rows], feats)
        repo.finish()

    write(["a", "b"])
    calls = []
    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = assets.load_hub_dataset("org/kept", "cfg", split="train")
    again = assets.load_hub_dataset("org/kept", "cfg", split="train")
    assert again is first and len(calls) == 1
    write(["a", "b", "c"])  # the mirror is copied again: read through datasets again
    changed = assets.load_hub_dataset("org/kept", "cfg", split="train")
    assert changed is not first and len(calls) == 2
    assert assets.load_hub_dataset("org/kept", "cfg", split="train") is changed and len(calls) == 2
