"""What every command module shares: the :class:`Command` it declares, the one-line usage error and ``--set``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from mmxfer.runs import atomic

#: (attribute, option, "dir" | "file") of an argument that names something a command writes
Output = tuple[str, str, str]


def never(args: argparse.Namespace) -> bool:
    return False


def always(args: argparse.Namespace) -> bool:
    return True


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help texts, its arguments and its handler.

    ``outputs``: the arguments naming what the command writes; they are checked writable before ``run`` starts.
    ``resume``: what to do after the command was stopped (SIGTERM) with its finished work kept.
    ``fills_cache``: whether this invocation may write derived files (features, the converted starter trunk) into
    ``$MMXFER_CACHE``, which must then be writable before the work starts.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    epilog: str | None = None
    outputs: tuple[Output, ...] = ()
    resume: str = "run it again"
    fills_cache: Callable[[argparse.Namespace], bool] = never

    def check_outputs(self, args: argparse.Namespace) -> None:
        """Output paths given on the command line, and the cache of a command that fills it, must be writable
        before any work starts."""
        for attr, option, kind in self.outputs:
            value = getattr(args, attr, None)
            if value:
                (atomic.check_output_dir if kind == "dir" else atomic.check_output_file)(
                    value, option
                )
        if self.fills_cache(args):
            from mmxfer import assets

            assets.check_cache_writable()


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage error is one line and a hint, not the usage block (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n"
        )


class CommandParser(Parser):
    """A command's parser: an argument it does not know is its usage error, named after the command (argparse
    would leave it to the top-level parser, which names no command)."""

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE``: one config override, repeatable."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set target.lr=2e-5 (repeatable)",
    )
