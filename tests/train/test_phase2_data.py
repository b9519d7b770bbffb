"""The phase-2 trunk cache covers what the trunk was trained on: the data source is in the folder key, and
a content fingerprint of the training examples in its DONE; a trunk is never reused on other data."""

from __future__ import annotations

import json

import yaml

from mmxfer.cli import main
from mmxfer.config import load_profile
from mmxfer.train import phases

TINY = [
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "intermediate.batch_size=8",
    "--set",
    "intermediate.epochs=1",
    "--set",
    "target.max_train_examples=16",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=1",
    "--set",
    "target.max_eval_examples=8",
]


def _sst2(folder, flip: bool = False):
    rows = ["sentence\tlabel"] + [
        f"{'a fine' if i % 2 else 'a dull'} film number {i}\t{(i % 2) ^ flip}" for i in range(16)
    ]
    (folder / "SST-2").mkdir(parents=True, exist_ok=True)
    (folder / "SST-2" / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_key_names_the_data_source_and_bad_image_policy(tmp_path):
    profile = load_profile("starter")
    a = phases.phase2_dir(profile, ["sst2"], 1, "r", "s", str(tmp_path / "A"))
    assert a != phases.phase2_dir(profile, ["sst2"], 1, "r", "s", str(tmp_path / "B"))
    assert a != phases.phase2_dir(profile, ["sst2"], 1, "r", "s", None)  # the hub
    # resolved
    assert a == phases.phase2_dir(profile, ["sst2"], 1, "r", "s", str(tmp_path / "x" / ".." / "A"))
    fail = load_profile("starter", ["on_bad_image=fail"])
    assert phases.phase2_dir(profile, ["starter-vqa"], 1, "r", "s") != phases.phase2_dir(
        fail, ["starter-vqa"], 1, "r", "s"
    )
    assert phases.phase2_dir(profile, ["sst2"], 1, "r", "s") == phases.phase2_dir(
        fail, ["sst2"], 1, "r", "s"
    )
    key = phases.phase2_key(profile, ["sst2", "starter-vqa-text"], 1, str(tmp_path))
    assert key["format"] == phases.PHASE2_FORMAT == 2
    assert key["data"] == [{"data_dir": str(tmp_path.resolve())}, {"generated": "1.0"}]


def test_trunk_is_not_reused_on_other_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    a, b, runs = tmp_path / "A", tmp_path / "B", str(tmp_path / "runs")
    _sst2(a)
    b.mkdir()
    argv = [
        "train",
        "--intermediate",
        "sst2",
        "--target",
        "starter-names",
        "--seed",
        "1",
        *TINY,
        "--runs-dir",
        runs,
    ]
    assert main([*argv, "--data-dir", str(a)]) == 0
    (done,) = (tmp_path / "runs" / "starter" / "_intermediate").glob("*/DONE")
    assert json.loads(done.read_text())["data_fingerprint"]["sst2"]
    capsys.readouterr()

    # another --data-dir (without the task): another phase-2 folder, so no reuse - it fails on its own data
    suite = tmp_path / "one.yaml"
    suite.write_text(
        "name: one\ntasks:\n  - {task: starter-bitext, languages: [de], category: retrieval}\n"
    )
    retrieval = [
        "train",
        "--intermediate",
        "sst2",
        "--seed",
        "1",
        *TINY,
        "--set",
        f"suite={suite}",
        "--runs-dir",
        runs,
        "--resume",
    ]
    assert main([*retrieval, "--data-dir", str(b)]) == 2
    out, err = capsys.readouterr()
    assert "reusing" not in out and "sst2" in err and str(b) in err

    # the same --data-dir with other content: the trunk trained on the old content is refused
    _sst2(a, flip=True)
    assert main([*retrieval, "--data-dir", str(a)]) == 2
    out, err = capsys.readouterr()
    assert (
        "reusing" not in out
        and "trained on other sst2 training data" in err
        and str(done.parent) in err
    )
    _sst2(a)  # the data it was trained on again: reused
    assert main([*retrieval, "--data-dir", str(a)]) == 0
    assert "phase 2: reusing" in capsys.readouterr().out


def test_a_study_fingerprints_a_shared_trunks_data_once(tmp_path, monkeypatch):
    """Three target runs (three seeds, one fixed phase-2 seed) share one phase-2 trunk: its training data is
    fingerprinted when the trunk is trained, and the two runs that reuse it compare with that."""
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    calls = []
    real = phases.data_fingerprint
    monkeypatch.setattr(phases, "data_fingerprint", lambda ds: calls.append(len(ds)) or real(ds))
    study, spec = (
        tmp_path / "shared.yaml",
        {
            "name": "shared",
            "profile": "starter",
            "arms": [{"name": "vqa-text", "intermediate": ["starter-vqa-text"]}],
            "targets": ["starter-names"],
            "seeds": [1, 2, 3],
            "languages": ["de"],
            "overrides": ["intermediate.seed=7", "intermediate.max_train_examples=16", *TINY[1::2]],
        },
    )
    study.write_text(yaml.safe_dump(spec))
    assert main(["study", str(study), "--runs-dir", str(tmp_path / "runs"), "--no-compare"]) == 0
    assert len(list((tmp_path / "runs" / "shared").glob("*/DONE"))) == 3
    assert len(list((tmp_path / "runs" / "shared" / "_intermediate").glob("*/DONE"))) == 1
    assert calls == [16]  # one fingerprint of the 16 training examples, not one per run

    # a later command is another sitting: a run added to the study reuses the trunk and checks its data again
    study.write_text(yaml.safe_dump({**spec, "seeds": [1, 2, 3, 4]}))
    calls.clear()
    assert main(["study", str(study), "--runs-dir", str(tmp_path / "runs"), "--no-compare"]) == 0
    assert len(list((tmp_path / "runs" / "shared").glob("*/DONE"))) == 4
    assert calls == [16]
