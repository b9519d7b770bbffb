"""`mmxfer train` with more visual + text tokens than the trunk has positions: exit 2, one line, no traceback,
before any data is featurised."""

from __future__ import annotations

from mmxfer.cli import main


def test_train_cli_reports_too_long_fused_sequence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            "train",
            "--intermediate",
            "vqa",
            "--target",
            "starter-names",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--set",
            "trunk.name=tiny",
            "--set",
            "trunk.max_length=126",
        ]
    )  # the starter tower: 9 tokens
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert (
        len(lines) == 1 and "9 visual + 126 text tokens" in lines[0] and "at most 119" in lines[0]
    )
    assert not (tmp_path / "cache" / "features").exists()  # failed before featurising anything
