"""Sealed folders (mmxfer.runs.sealed): every damage of a sealed folder is named; an intact one passes, once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmxfer.runs import sealed


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "entry"
    (folder / "sub").mkdir(parents=True)
    (folder / "data.arrow").write_bytes(bytes(range(256)) * 64)
    (folder / "state.json").write_text('{"a": 1}')
    (folder / "sub" / "more.bin").write_bytes(b"x" * 10)
    sealed.seal(folder, info={"rows": 3})
    return folder


def test_seal_records_every_file_and_the_info(tmp_path):
    folder = _folder(tmp_path)
    record = json.loads((folder / "DONE").read_text())
    assert record["rows"] == 3
    assert sorted(record["files"]) == ["data.arrow", "state.json", "sub/more.bin"]
    assert record["files"]["sub/more.bin"] == {
        "size": 10,
        "sha256": sealed.sha256_file(folder / "sub" / "more.bin"),
    }
    assert sealed.check(folder)["rows"] == 3


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda f: _flip(f / "data.arrow"), ("data.arrow", "content differs")),
        (
            lambda f: (f / "data.arrow").write_bytes((f / "data.arrow").read_bytes()[:100]),
            ("data.arrow", "100 bytes"),
        ),
        (lambda f: (f / "state.json").write_text('{"a": 2}'), ("state.json", "content differs")),
        (lambda f: (f / "sub" / "more.bin").unlink(), ("more.bin", "missing")),
        (lambda f: (f / "DONE").unlink(), ("no DONE",)),
        (lambda f: (f / "DONE").write_text("{"), ("DONE", "unreadable")),
        (lambda f: (f / "DONE").write_text('{"rows": 3}'), ("no checksums",)),
        (lambda f: (f / "DONE").write_text("[1, 2]"), ("not a seal record",)),
    ],
    ids=[
        "flipped",
        "truncated",
        "edited",
        "file-missing",
        "record-missing",
        "record-garbled",
        "record-legacy",
        "record-not-a-mapping",
    ],
)
def test_every_damage_is_named(tmp_path, damage, words):
    folder = _folder(tmp_path)
    damage(folder)
    with pytest.raises(sealed.Damaged) as err:
        sealed.check(folder)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_a_checked_folder_is_not_hashed_again_until_a_file_changes(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    calls = []
    real = sealed.sha256_file
    monkeypatch.setattr(sealed, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    sealed.check(folder)
    assert calls == []  # sealing it in this process counted as checking it
    moved = tmp_path / "moved"
    os.replace(folder, moved)  # renamed into place after sealing: still known
    sealed.check(moved)
    assert calls == []
    _flip(moved / "data.arrow")  # a changed file changes its modification time
    with pytest.raises(sealed.Damaged):
        sealed.check(moved)
    assert "data.arrow" in calls


def test_files_added_after_sealing_are_not_looked_at(tmp_path):
    folder = _folder(tmp_path)
    (folder / "cache-123.arrow").write_bytes(b"written by a later map()")
    sealed.check(folder)


def test_damaged_test_models_and_fixtures_are_made_again(tmp_path, caplog):
    """The tiny models and the fixture sets in the cache (mmxfer.testing) are sealed like every cache entry."""
    import logging

    from mmxfer.testing.saved import tiny_spm_model, tiny_trunk_dir

    folder = tiny_trunk_dir(tmp_path)
    weights = (folder / "model.safetensors").read_bytes()
    _flip(folder / "model.safetensors")
    with caplog.at_level(logging.WARNING):
        assert tiny_trunk_dir(tmp_path) == folder
    assert (
        "content differs" in caplog.text and (folder / "model.safetensors").read_bytes() == weights
    )
    spm = tiny_spm_model(tmp_path)
    model = spm.read_bytes()
    spm.write_bytes(model[:10])
    assert tiny_spm_model(tmp_path).read_bytes() == model
