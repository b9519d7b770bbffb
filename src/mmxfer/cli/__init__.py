"""The one entry point: ``mmxfer train|evaluate|compare|study|embed|ls|validate``.

Each command is a module of this package that owns its arguments and its ``run`` (:class:`~.common.Command`);
it imports the modules that do the work (torch, pandas, matplotlib) only when it runs, so ``mmxfer --help``
stays fast. Here the commands are assembled, and :func:`main` ends every one the same way:

- a usage error: one line and a hint to ``--help`` (exit 2);
- every :class:`MmxferError` (exit 2), and what the environment causes (:mod:`.failures`: a file that cannot be
  read or written, text that is not UTF-8, broken JSON or YAML, damaged gzip data) naming the file (exit 2);
- SIGTERM (SLURM's time limit): training checkpoints first; exit 143 with how to resume;
- Ctrl-C: exit 130 with how to resume.

``--debug`` (or ``-v``, or ``MMXFER_DEBUG=1``) shows the traceback instead; any other exception is a bug and
always shows its traceback. The paths a command writes (``--runs-dir``, ``--out``, ``--out-dir``, ``--output``)
are checked before its work starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from mmxfer import __version__
from mmxfer.cli import compare, embed, evaluate, ls, study, train, validate
from mmxfer.cli.common import Command, CommandParser, Parser
from mmxfer.cli.failures import ENVIRONMENT_ERRORS, describe_error, end_progress_bars, print_error
from mmxfer.errors import MmxferError
from mmxfer.runs import interrupt

COMMANDS: dict[str, Command] = {
    m.COMMAND.name: m.COMMAND for m in (train, evaluate, compare, study, embed, ls, validate)
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mmxfer",
        description="Multimodal vs text intermediate-task training for zero-shot cross-lingual transfer.",
        epilog="Run `mmxfer COMMAND --help` for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"mmxfer {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log more, and show tracebacks on errors"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error instead of its one line (also MMXFER_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for command in COMMANDS.values():
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    command = COMMANDS[args.command]
    debug = args.debug or args.verbose or os.environ.get("MMXFER_DEBUG", "") not in ("", "0")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    with interrupt.handling_sigterm():
        try:
            command.check_outputs(args)
            return int(command.run(args) or 0)
        except MmxferError as exc:
            if debug:
                raise
            print_error(command.name, str(exc))
            return exc.exit_code
        except interrupt.Stopped as exc:
            end_progress_bars()
            kept = f" ({exc.detail})" if exc.detail else ""
            print(
                f"\nmmxfer {command.name}: stopped by {exc.signal_name}{kept}; finished work and checkpoints are "
                f"kept: {command.resume}",
                file=sys.stderr,
            )
            return exc.exit_code
        except KeyboardInterrupt:
            end_progress_bars()
            print(
                f"\nmmxfer {command.name}: interrupted; finished work is kept, rerun with --resume to continue",
                file=sys.stderr,
            )
            return 130
        except ENVIRONMENT_ERRORS as exc:
            if debug:
                raise
            print_error(command.name, describe_error(exc) + " (--debug shows the traceback)")
            return 2
