"""``target.text_prefix``: a classification target reads every sentence with the trunk's prefix (e5: "query: "),
so with the retrieval prefix its test sentences are the retrieval's token ids and share their frozen-layer states;
other kinds and the intermediate phase refuse it with one clear error."""

from __future__ import annotations

import pytest

from mmxfer import config
from mmxfer.cli import main
from mmxfer.cli.validate import check_profile
from mmxfer.errors import ConfigError
from mmxfer.models import frozen
from mmxfer.train.run import resolve_request

COMMON = [
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.train_top_layers=1",
    "--set",
    "retrieval.prefix='query: '",
    "--set",
    "target.max_train_examples=16",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=1",
    "--languages",
    "deu_Latn",
    "--profile",
    "starter",
]


def _lower_lookups(tmp_path, prefix: str) -> tuple[int, int]:
    """Misses and hits of the frozen-state cache in the retrieval run that follows a SIB-200 run (one process)."""
    frozen.STATES.clear()
    runs = str(tmp_path / (prefix.strip(": ") or "none"))
    sets = [
        "--set",
        f"target_overrides.starter-sib200.text_prefix='{prefix}'",
    ]  # the starter profile sets it there
    assert main(["train", "--target", "starter-sib200", "--runs-dir", runs, *COMMON, *sets]) == 0
    misses, hits = frozen.STATES.misses, frozen.STATES.hits
    # no target: the trunk's retrieval suite
    assert main(["train", "--runs-dir", runs, *COMMON, *sets]) == 0
    return frozen.STATES.misses - misses, frozen.STATES.hits - hits


def test_the_prefixed_target_shares_the_retrievals_frozen_states(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # 204 German test sentences among all 1,004 English sentences: with the same prefix the German ones were
    # computed by SIB-200's prediction and the 16 English sentences it trained on by its training; the other
    # 988 English sentences were not (SIB-200 here trains on 16 and predicts German only)
    assert _lower_lookups(tmp_path, "query: ") == (988, 220)
    assert _lower_lookups(tmp_path, "") == (1208, 0)


def test_the_starter_prefix_reaches_training_and_prediction(tmp_path, monkeypatch):
    from mmxfer.train import data as train_data

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    seen: dict[str, list[str]] = {}
    real = train_data.task_data

    def spy(spec, ds, *args, **kwargs):
        seen[f"{kwargs['split']}-{kwargs['lang']}"] = list(ds["text_a"])
        return real(spec, ds, *args, **kwargs)

    monkeypatch.setattr(train_data, "task_data", spy)
    assert (
        main(["train", "--target", "starter-sib200", "--runs-dir", str(tmp_path / "runs"), *COMMON])
        == 0
    )
    assert set(seen) == {"train-eng_Latn", "test-deu_Latn"}
    assert all(
        t.startswith("query: ") and not t.startswith("query: query: ")
        for texts in seen.values()
        for t in texts
    )


def test_only_classification_targets_take_a_prefix(capsys):
    profile = config.load_profile("starter", ["trunk.name=tiny", "target.text_prefix='query: '"])
    assert resolve_request(profile, None, "starter-sib200").target == "starter-sib200"
    with pytest.raises(
        ConfigError, match="panx is a tagging task: only classification targets take a text prefix"
    ):
        resolve_request(profile, None, "panx")
    assert (
        main(
            [
                "train",
                "--target",
                "panx",
                "--profile",
                "starter",
                "--set",
                "target.text_prefix='query: '",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "only classification targets take a text prefix" in err and "Traceback" not in err


def test_the_intermediate_phase_takes_no_prefix():
    profile = config.load_profile("starter", ["intermediate.text_prefix='query: '"])
    with pytest.raises(ConfigError, match="only the target phase takes a text prefix"):
        check_profile(profile)
    # mmxfer train's path
    with pytest.raises(ConfigError, match="only the target phase takes a text prefix"):
        resolve_request(profile, "starter-vqa-text", None)
