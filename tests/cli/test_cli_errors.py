"""The top-level handler: environment errors are one line naming the file, on a line of their own after a
progress bar; --debug and MMXFER_DEBUG=1 show the traceback; a bug always does."""

from __future__ import annotations

import gzip

import pytest

from mmxfer.cli import main
from mmxfer.cli.failures import describe_error
from mmxfer.errors import DataError, TrainingError
from mmxfer.evaluation import retrieval
from mmxfer.train import loop

EVAL = ["evaluate", "--trunk", "tiny", "--task", "starter-bitext", "--languages", "de,fr"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMXFER_DEBUG", raising=False)


def _fail_in_second_language(monkeypatch, exc: BaseException) -> None:
    real = retrieval.pair_predictions
    calls = []

    def pair_predictions(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(retrieval, "pair_predictions", pair_predictions)


def test_error_after_a_progress_bar_starts_on_a_fresh_line(monkeypatch, capsys):
    real_step = loop._PhaseRun._optimizer_step

    def step(self):
        real_step(self)
        # the training bar is open: nothing closes it on the way out
        raise TrainingError("the loss broke")

    monkeypatch.setattr(loop._PhaseRun, "_optimizer_step", step)
    assert (
        main(
            [
                "train",
                "--target",
                "starter-names",
                "--set",
                "trunk.name=tiny",
                "--set",
                "target.max_train_examples=16",
                "--set",
                "target.batch_size=8",
                "--runs-dir",
                "runs",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "phase3:starter-names" in err  # the bar was drawn
    assert err.endswith("\nmmxfer train: error: the loss broke\n")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, monkeypatch):
    _fail_in_second_language(monkeypatch, DataError("the data broke"))
    if how == "env":
        monkeypatch.setenv("MMXFER_DEBUG", "1")
    with pytest.raises(DataError, match="the data broke"):
        main(["--debug", *EVAL, "--out-dir", "ev"] if how == "flag" else [*EVAL, "--out-dir", "ev"])


def test_a_bug_is_not_hidden(monkeypatch):
    _fail_in_second_language(monkeypatch, KeyError("a bug"))
    with pytest.raises(KeyError):
        main([*EVAL, "--out-dir", "ev"])


def test_damaged_gzip_is_named_from_the_traceback(tmp_path):
    path = tmp_path / "x.gz"
    good = gzip.compress(b"hello\n" * 100)
    path.write_bytes(good[:12] + b"\x00" * 40 + good[52:])
    with pytest.raises(Exception) as info:  # noqa: B017 - whichever error zlib raises for this damage
        with gzip.open(path, "rt") as handle:
            handle.read()
    assert str(path) in describe_error(info.value)


def test_os_error_names_its_file():
    with pytest.raises(OSError) as info:
        open("/proc/no-such-dir/x", "w")
    assert describe_error(info.value).startswith("/proc/no-such-dir/x: ")


def test_only_commands_that_fill_the_cache_need_it_writable(monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", "/proc/mmxfer-cache")
    assert main(["study", "starter", "--dry-run"]) == 0  # plans only
    assert main(["embed", "--input", "x.txt", "--output", "x.npy"]) == 2
    err = capsys.readouterr().err
    assert (
        "MMXFER_CACHE (/proc/mmxfer-cache): cannot write" in err
        and "set MMXFER_CACHE to a writable folder" in err
    )
