"""The local hub mirror (``MMXFER_HUB_MIRROR``): how a hub id resolves, revisions, gating, scripts, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from urllib.parse import quote

import datasets
import pyarrow.parquet as pq
import pytest

from mmxfer import assets, catalog
from mmxfer.errors import AssetError, DataError
from mmxfer.testing.hubrepo import HubRepo, write_script_repo


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MIRROR_ENV, str(tmp_path))
    return tmp_path


def _repo(mirror, repo_id="org/data", revision=None, pinned=False, rows=(("a", 0), ("b", 1))):
    feats = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])}
    )
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
    assert assets.load_hub_dataset(
        "org/data", "cfg", split="train", revision="refs/convert/parquet"
    )["text"] == ["pinned"]
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


@pytest.mark.parametrize(
    "task,revision",
    [("hellaswag", "049e80830aedaee63cd025622acf83822eb46553"), ("sib200", "refs/convert/parquet")],
)
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


# --- the mirror against the recorded contracts (mmxfer/resources/hub_contracts.json) -----------------


def _contracts() -> list[dict]:
    from importlib import resources

    path = resources.files("mmxfer") / "resources" / "hub_contracts.json"
    return json.loads(path.read_text(encoding="utf-8"))["contracts"]


def _expected_type(text: str):
    """The ``datasets`` feature a contract's type description names; None when the contract does not say."""
    from datasets import ClassLabel, Image, List, Value

    text = text.strip()
    if text.startswith("not confirmed"):
        return None
    if text.startswith("Sequence{") or text.startswith("{"):
        inner = text[text.index("{") + 1 : text.index("}")]
        return {k: List(_expected_type(v)) for k, v in (p.split(":") for p in inner.split(","))}
    if text.startswith("Sequence(ClassLabel) names "):
        return List(ClassLabel(names=text.split("names ", 1)[1].split()[0].split(",")))
    if text.startswith(("Sequence(string)", "list[string]")):
        return List(Value("string"))
    if text.startswith("list[int]"):
        return "list[int]"
    if text.startswith("ClassLabel("):
        return ClassLabel(names=text[len("ClassLabel(") : text.index(")")].split(","))
    if text.startswith("Translation(languages="):
        from datasets import Translation

        return Translation(languages=re.findall(r"'([^']+)'", text))
    if text.startswith("Image"):
        return Image()
    if text.startswith("string"):
        return Value("string")
    if text.startswith("bool"):
        return Value("bool")
    if text.startswith(("int32", "int64")):
        return Value(text[:5])
    if text.startswith("int"):
        return "int"
    raise AssertionError(f"unparsed contract type {text!r}")


def _matches(feature, expected) -> bool:
    if expected == "int":
        return getattr(feature, "dtype", "").startswith("int")
    if expected == "list[int]":
        return getattr(getattr(feature, "feature", None), "dtype", "").startswith("int")
    return feature == expected


def _columns_of(contract: dict, config: str) -> dict[str, str]:
    """``{column: type text}`` of ``config``; per-config entries (``"*_images": "id string, image Image"``) too."""
    columns = contract["columns"]
    if not all(key.startswith("*") for key in columns):
        return {k: v for k, v in columns.items() if not k.startswith("(")}
    for key, text in columns.items():
        if config.endswith(key.split()[0].lstrip("*")):
            return dict(part.strip().split(" ", 1) for part in text.split(","))
    raise AssertionError(f"no columns recorded for {config}")


def _mirror_repo(root, contract):
    base = root / contract["dataset"]
    revision = contract["revision"]
    pinned = base.with_name(f"{base.name}@{quote(revision, safe='')}") if revision else None
    return pinned if pinned is not None and pinned.is_dir() else base


@pytest.mark.parametrize("contract", _contracts(), ids=lambda c: f"{c['dataset']}-{c['config']}")
def test_mirror_matches_the_recorded_hub_contract(fixture_data, contract):
    """Every Parquet repository of the mirror has the recorded configs, splits, columns, types and revision;
    every repository recorded as a loading script is one in the mirror too."""
    import yaml

    repo = _mirror_repo(fixture_data.hub_mirror, contract)
    assert repo.is_dir(), repo
    if contract["loading_script"]:
        assert any(
            p.suffix == ".py" for p in (fixture_data.hub_mirror / contract["dataset"]).iterdir()
        )
        return
    if (repo / "REVISION").is_file() or contract["revision"]:
        assert (repo / "REVISION").read_text().strip() == contract["revision"]
    card = yaml.safe_load((repo / "README.md").read_text(encoding="utf-8").split("---")[1])
    # a repository read with data_dir=<folder> (Davlan/sib200's Parquet export) has one config per folder
    pattern = re.compile(
        "^"
        + re.escape(contract["config"] or contract.get("data_dir") or "default")
        .replace(r"\{lang\}", r"[^.]+")
        .replace(r"\{lang_name\}", r"[^.]+")
        + "$"
    )
    configs = [c for c in card["configs"] if pattern.match(c["config_name"])]
    assert configs, (contract["config"], [c["config_name"] for c in card["configs"]])
    allowed = {s.split()[0] for splits in contract["splits"].values() for s in splits}
    for config in configs:
        columns = _columns_of(contract, config["config_name"])
        assert {f["split"] for f in config["data_files"]} <= allowed, config["config_name"]
        for files in config["data_files"]:
            (path,) = repo.glob(files["path"] + ".parquet")
            features = datasets.Features.from_arrow_schema(pq.read_schema(path))
            if "(others)" in contract["columns"]:
                assert set(columns) <= set(features), path
            else:
                assert set(columns) == set(features), path
            for name, text in columns.items():
                expected = _expected_type(text)
                assert expected is None or _matches(features[name], expected), (
                    path.name,
                    name,
                    features[name],
                )
