import subprocess
import sys

import pytest

from mmxfer.cli import COMMANDS, build_parser, main

SUBCOMMANDS = ["train", "evaluate", "compare", "study", "embed", "ls", "validate"]


def test_every_subcommand_is_wired():
    assert sorted(COMMANDS) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_explains_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: mmxfer {command}" in out
    assert "examples:" in out and f"mmxfer {command}" in out.split("examples:")[1]


def test_top_level_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out


def test_ls_profiles(capsys):
    assert main(["ls", "profiles"]) == 0
    out = capsys.readouterr().out
    assert "xlmr-large" in out and "starter" in out and "xlmr-base" in out


def test_broken_config_is_one_line_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trunk:\n  nmae: xlm-roberta-large\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mmxfer", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "trunk.nmae" in lines[0] and "did you mean name" in lines[0]


def test_unknown_config_name_suggests(capsys):
    assert main(["validate", "xlmr-lage", "--kind", "profile"]) == 2
    err = capsys.readouterr().err
    assert "did you mean xlmr-large" in err


def test_bad_override_in_validate(capsys):
    assert (
        main(["validate", "configs/profiles/xlmr-large.yaml", "--set", "target.epochs=lots"]) == 2
    )
    assert "target.epochs: expected a number, got 'lots'" in capsys.readouterr().err


def test_parser_rejects_unknown_ls_target():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["ls", "gizmos"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "prog", "message"),
    [
        (["train", "--seed", "x"], "mmxfer train", "argument --seed: invalid int value: 'x'"),
        (
            ["train", "--no-such-flag", "1"],
            "mmxfer train",
            "unrecognized arguments: --no-such-flag 1",
        ),
        (["compare"], "mmxfer compare", "the following arguments are required: --suite"),
        (
            ["evaluate", "--trunk", "a", "--run", "b"],
            "mmxfer evaluate",
            "argument --run: not allowed with argument --trunk",
        ),
        (["--no-such-flag"], "mmxfer", "unrecognized arguments: --no-such-flag"),
    ],
)
def test_a_usage_error_is_one_line_and_a_hint(argv, prog, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{prog}: error: {message} (see `{prog} --help`)\n"


def test_a_usage_error_of_the_console_script_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "mmxfer", "ls", "gizmos"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "usage:" not in proc.stderr
    assert proc.stderr.startswith("mmxfer ls: error: argument what: invalid choice: 'gizmos'")
    assert proc.stderr.rstrip().endswith("(see `mmxfer ls --help`)")


def test_every_command_module_owns_its_arguments_and_handler():
    for name, command in COMMANDS.items():
        assert command.name == name
        assert command.add_arguments.__module__ == command.run.__module__ == f"mmxfer.cli.{name}"
