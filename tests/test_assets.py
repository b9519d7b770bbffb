import pytest

from mmxfer import assets
from mmxfer.errors import AssetError


def test_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "c"))
    path = assets.cache_dir("features", "x")
    assert path == tmp_path / "c" / "features" / "x" and path.is_dir()


def test_offline_flag(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert not assets.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert assets.is_offline()


def test_local_dir_is_returned_as_is(tmp_path):
    assert assets.resolve_model_dir(str(tmp_path)) == tmp_path


def test_missing_local_path_is_clear(tmp_path):
    with pytest.raises(AssetError, match="model folder not found"):
        assets.resolve_model_dir(str(tmp_path / "nope"))


def test_hub_model_offline_names_asset_and_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(AssetError) as info:
        assets.resolve_model_dir("mmxfer-test/definitely-not-cached")
    msg = str(info.value)
    assert (
        "mmxfer-test/definitely-not-cached" in msg and "offline" in msg and "pass its folder" in msg
    )


def test_gated_dataset_without_token(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(AssetError, match="gated.*HF_TOKEN"):
        assets.load_hub_dataset("openlanguagedata/flores_plus", gated=True)


def test_hub_dataset_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(AssetError, match="--data-dir"):
        assets.load_hub_dataset("mmxfer-test/not-a-dataset", split="train")
