"""The local hub mirror (``MMXFER_HUB_MIRROR``): how a hub id resolves, revisions, gating, scripts, errors."""

from __future__ import annotations

import dataclasses
import os

import datasets
import pytest

from mmxfer import assets, catalog
from mmxfer.errors import AssetError, DataError
from mmxfer.testing.hubrepo import HubRepo, write_script_repo


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MIRROR_ENV, str(tmp_path))
    return tmp_path


def _repo(mirror, repo_id="org/data", revision=None, pinned=False, rows=(("a", 0), ("b", 1))):
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])})
    repo = HubRepo(mirror, repo_id, revision=revision, pinned=pinned)
    repo.add("cfg", "train", [{"text": t, "label": y} for t, y in rows], feats)
    return repo.finish()


def test_no_mirror_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(assets.MIRROR_ENV, raising=False)
    assert assets.hub_mirror_dir("org/data") is None


def test_mirror_is_read_through_datasets_with_its_features(mirror):
    _repo(mirror)
    ds = assets.load_hub_dataset("org/data", "cfg", split="train")
    assert ds["text"] == ["a", "b"] and ds.features["label"].names == ["no", "yes"]


def test_several_mirror_folders_and_a_missing_repo(tmp_path, monkeypatch):
    first, second = tmp_path / "one", tmp_path / "two"
    _repo(second, "org/only-in-two")
    monkeypatch.setenv(assets.MIRROR_ENV, os.pathsep.join([str(first), str(second)]))
    assert assets.hub_mirror_dir("org/only-in-two") == second / "org" / "only-in-two"
    assert assets.hub_mirror_dir("org/nowhere") is None


def test_a_pinned_revision_folder_wins_and_a_revision_file_must_match(mirror):
    main = _repo(mirror, revision="aaa")
    pinned = _repo(mirror, revision="refs/convert/parquet", pinned=True, rows=(("pinned", 1),))
    assert pinned.name == "data@refs%2Fconvert%2Fparquet"
    assert assets.hub_mirror_dir("org/data", "refs/convert/parquet") == pinned
    assert assets.load_hub_dataset("org/data", "cfg", split="train", revision="refs/convert/parquet")["text"] == [
        "pinned"]
    assert assets.hub_mirror_dir("org/data", "aaa") == main
    assert assets.hub_mirror_dir("org/data") == main  # no pin: the main copy
    with pytest.raises(AssetError, match="holds org/data@aaa.*bbb"):
        assets.hub_mirror_dir("org/data", "bbb")


def test_without_a_revision_file_pins_are_ignored(mirror):
    path = _repo(mirror)
    assert assets.hub_mirror_dir("org/data", "0123abc") == path


def test_gated_dataset_in_the_mirror_needs_no_token(mirror, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    _repo(mirror)
    assert len(assets.load_hub_dataset("org/data", "cfg", split="train", gated=True)) == 2


def test_a_loading_script_is_one_data_error(mirror):
    write_script_repo(mirror, "org/scripted", "scripted.py")
    with pytest.raises(DataError, match="loading script") as info:
        assets.load_hub_dataset("org/scripted", split="train")
    assert "--data-dir" in str(info.value) and "\n" not in str(info.value)


def test_mirror_errors_name_the_mirror_and_are_not_called_offline(mirror):
    _repo(mirror)
    with pytest.raises(AssetError, match="mirror") as info:
        assets.load_hub_dataset("org/data", "no-such-config", split="train")
    assert "offline" not in str(info.value)
    with pytest.raises(DataError, match="no split 'test'"):
        assets.load_hub_dataset("org/data", "cfg", split="test")


def test_a_gated_task_reads_the_mirror_without_a_token(hub_mirror, monkeypatch):
    """flores_plus is gated on the Hub; a mirror copy needs no HF_TOKEN."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    ds = catalog.task("flores_plus").load("devtest", "zho_Hans")  # FLORES+ calls it cmn_Hans
    assert len(ds) == hub_mirror.rows("flores_plus", "hub", "devtest", "zho_Hans")


@pytest.mark.parametrize("task,revision", [("hellaswag", "049e80830aedaee63cd025622acf83822eb46553"),
                                           ("sib200", "refs/convert/parquet")])
def test_the_parquet_revision_a_task_should_pin_is_in_the_mirror(hub_mirror, task, revision):
    """The script-on-main datasets have their Parquet copy in the mirror: pinned, the task loads it and
    agrees with the release form (what the strict xfails in test_fixture_forms wait for)."""
    spec = catalog.task(task)
    pinned = dataclasses.replace(spec, source=dataclasses.replace(spec.source, revision=revision))
    lang = spec.train_language
    hub = pinned.load("validation", lang)
    release = spec.load("validation", lang, str(hub_mirror.data_dir))
    assert len(hub) == hub_mirror.rows(task, "hub", "validation", lang)
    assert hub.to_list() == release.to_list()


def test_coco_train_with_restval_is_what_the_fixture_encodes(hub_mirror):
    """Mapped to ``train+restval``, the hub captions equal the local train split (Karpathy train + restval)."""
    spec = catalog.task("caption-text")
    both = dataclasses.replace(spec, source=dataclasses.replace(spec.source, splits={"train": "train+restval"}))
    assert both.load("train").to_list() == spec.load("train", None, str(hub_mirror.data_dir)).to_list()
