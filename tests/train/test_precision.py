"""``precision: auto``: bf16 autocast where the hardware computes bf16 natively, fp32 elsewhere; what it became is
printed and recorded in the run's env.json."""

from __future__ import annotations

import json

import pytest

from mmxfer.cli import main
from mmxfer.errors import ConfigError
from mmxfer.runs import env
from mmxfer.train.loop import make_accelerator


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "no")])
def test_auto_follows_the_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(env, "cpu_bf16_native", lambda: native)
    assert env.resolve_precision("auto", "cpu") == expected
    assert (
        env.resolve_precision("bf16", "cpu") == "bf16"
        and env.resolve_precision("no", "cpu") == "no"
    )
    assert make_accelerator("auto", cpu=True).mixed_precision == expected
    assert env.precision_record("auto") == {"configured": "auto", "resolved": expected}


def test_an_unknown_precision_is_one_clear_error():
    with pytest.raises(ConfigError, match="allowed values: 'no', 'fp16', 'bf16', 'auto'"):
        make_accelerator("int8")


def test_a_run_records_what_auto_became(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(env, "cpu_bf16_native", lambda: False)
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    assert (
        main(
            [
                "train",
                "--intermediate",
                "none",
                "--target",
                "starter-names",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--set",
                "trunk.name=tiny",
                "--set",
                "target.max_train_examples=16",
                "--set",
                "target.epochs=1",
                "--set",
                "target.max_eval_examples=8",
            ]
        )
        == 0
    )
    assert "precision auto -> no" in capsys.readouterr().out
    (env_file,) = (tmp_path / "runs").rglob("env.json")
    assert json.loads(env_file.read_text())["precision"] == {"configured": "auto", "resolved": "no"}
