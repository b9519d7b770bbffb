"""`mmxfer train` introduces its profile with the profile's own console text (``console.note``,
``console.data``), whatever the profile is called; the text is not part of the run's config or id."""

from __future__ import annotations

import pytest

from mmxfer.cli import main
from mmxfer.config import load_profile
from mmxfer.train import phases
from mmxfer.train.run import run_config

STARTER_NOTE = "  (starter profile: offline CPU demo; paper scale is --profile xlmr-large)\n"
STARTER_DATA = "data offline: generated shapes world, SIB-200 shipped with mmxfer | "


@pytest.fixture()
def train(tmp_path, monkeypatch, capsys):
    """``mmxfer train`` of the untrained trunk with the retrieval evaluation left out: its header and its folder."""
    monkeypatch.setattr(phases, "run_retrieval", lambda *args, **kwargs: [])

    def run(*argv: str) -> str:
        assert (
            main(["train", "--runs-dir", str(tmp_path / "runs"), "--set", "trunk.name=tiny", *argv])
            == 0
        )
        return capsys.readouterr().out

    return run


def test_the_starter_profile_says_what_it_is_from_its_config(train):
    out = train()
    assert STARTER_DATA in out and STARTER_NOTE in out
    # the text belongs to the profile's content, not to its name
    renamed = train("--set", "name=my-starter", "--seed", "2")
    assert "profile my-starter" in renamed and STARTER_DATA in renamed and STARTER_NOTE in renamed


def test_a_profile_without_console_text_names_the_hub_and_adds_no_note(train):
    out = train("--set", "console.note=", "--set", "console.data=")
    assert "data Hugging Face Hub" in out and "\n  (" not in out
    custom = train(
        "--set", "console.note=a note of my own", "--set", "console.data=my folder", "--seed", "3"
    )
    assert "  (a note of my own)\n" in custom and "data my folder | " in custom


def test_the_console_text_is_not_part_of_the_run(train):
    first = train()
    again = train("--set", "console.note=said otherwise")
    assert "already finished" in again and first.split("run folder ")[1].split()[0] in again
    starter = load_profile("starter")
    assert (
        starter.console.note
        and "console" not in run_config(starter, (), None, 1, "starter")["profile"]
    )
