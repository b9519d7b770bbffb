"""Each user-caused data error is one clear MmxferError."""

from __future__ import annotations

import pytest

from mmxfer.errors import AssetError, DataError, MmxferError, UnknownNameError


def test_unknown_language_suggests(catalog):
    with pytest.raises(UnknownNameError, match="did you mean"):
        catalog.task("xnli").load("test", "dee", "/nonexistent")


def test_unknown_split(catalog):
    with pytest.raises(DataError, match="no split 'train'"):
        catalog.task("xquad").load("train", "de")


def test_missing_file_names_the_expected_format(catalog, tmp_path):
    with pytest.raises(DataError, match=r"xquad\.de\.json"):
        catalog.task("xquad").load("test", "de", str(tmp_path))


def test_empty_split(catalog, tmp_path):
    (tmp_path / "tatoeba.fra-eng.fra").write_text("")
    (tmp_path / "tatoeba.fra-eng.eng").write_text("")
    with pytest.raises(DataError, match="empty"):
        catalog.task("tatoeba").load("test", "fra", str(tmp_path))


def test_missing_column(catalog, tmp_path):
    (tmp_path / "x-final/de").mkdir(parents=True)
    (tmp_path / "x-final/de/test_2k.tsv").write_text("id\tsentence1\tlabel\n1\ta\t0\n")
    with pytest.raises(DataError, match="missing column.*sentence2"):
        catalog.task("pawsx").load("test", "de", str(tmp_path))
    import datasets

    from mmxfer.tasks.common import rename_to_canonical

    spec = catalog.task("mnli")
    with pytest.raises(DataError, match="missing column.*hypothesis"):
        rename_to_canonical(
            spec,
            datasets.Dataset.from_dict({"idx": [1], "premise": ["a"], "label": [0]}),
            split="train",
            lang="en",
        )


def test_gated_without_token(catalog, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(AssetError, match="gated.*HF_TOKEN"):
        catalog.task("flores_plus").load("devtest", "deu_Latn")


def test_offline_hub_names_dataset_and_data_dir(catalog, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    with pytest.raises(AssetError, match=r"google/xtreme.*PAN-X\.de.*offline.*--data-dir"):
        catalog.task("panx").load("test", "de")


def test_ccg_asks_for_a_local_copy(catalog):
    with pytest.raises(DataError, match="no public source.*--data-dir.*stagged"):
        catalog.task("ccg").load("train")


def test_errors_are_mmxfer_errors(catalog, tmp_path):
    (tmp_path / "xquad.de.json").write_text("{not json")
    with pytest.raises(MmxferError, match="not valid JSON"):
        catalog.task("xquad").load("test", "de", str(tmp_path))
