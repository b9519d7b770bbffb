"""``mmxfer compare``: the gap analysis of finished runs (:func:`mmxfer.compare.analysis.compare`)."""

from __future__ import annotations

import argparse

from mmxfer.cli.common import Command
from mmxfer.compare.settings import GapSettings

EPILOG = """examples:
  mmxfer compare --suite starter
  mmxfer compare --suite flores200 --runs runs/paper --out reports/flores200
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, help="suite whose tasks are compared")
    p.add_argument(
        "--runs", nargs="+", default=None, help="run folders or study folders [default: runs/]"
    )
    p.add_argument(
        "--out", default=None, help="output folder for tables and plots [default: reports/<suite>]"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=GapSettings.n_boot,
        help="bootstrap resamples [default: %(default)s]",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=GapSettings.alpha,
        help="significance level [default: %(default)s]",
    )
    p.add_argument("--seed", type=int, default=GapSettings.seed, help="seed of the bootstrap")


def run(args: argparse.Namespace) -> int:
    from mmxfer.compare.analysis import compare_and_print

    compare_and_print(
        args.suite, args.runs, args.out, n_boot=args.bootstrap, alpha=args.alpha, seed=args.seed
    )
    return 0


COMMAND = Command(
    "compare",
    help="gap analysis: multimodal vs text arms vs baseline, with intervals",
    description="Builds the tidy results table from finished runs and reports margins with "
    "bootstrap confidence intervals, tests, tables and plots.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    outputs=(("out", "--out", "dir"),),
)
