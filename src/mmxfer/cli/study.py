"""``mmxfer study``: load the study config and run its grid (:func:`mmxfer.study.grid.run_study`); a dry run
prints the plan, its cost and, from a finished pilot study, the seeds it needs (:mod:`mmxfer.study.dry_run`)."""

from __future__ import annotations

import argparse
import functools

from mmxfer.cli.common import Command, add_overrides
from mmxfer.errors import ConfigError

EPILOG = """examples:
  mmxfer study starter                          # the embedded default comparison (offline, CPU)
  mmxfer study configs/studies/paper.yaml --dry-run
  mmxfer study paper --dry-run --gpu H200 --gpus 64 --budget-gpu-hours 500
  mmxfer study paper --dry-run --pilot runs/small --detect 1.0   # seeds needed, from a pilot's variances
  mmxfer study paper --launcher slurm --set slurm.partition=gpu
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "study", nargs="?", default="starter", help="study name or YAML path [default: starter]"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan, the number of trainings and their cost (tokens, FLOPs, GPU-hours); run nothing",
    )
    p.add_argument(
        "--gpu",
        default="H100",
        metavar="KIND",
        help="dry run: the device the cost is given on: H100, H200, A100 or cpu [default: %(default)s]",
    )
    p.add_argument(
        "--gpus", type=int, default=None, metavar="N", help="dry run: the wall time on N GPUs"
    )
    p.add_argument(
        "--budget-gpu-hours",
        type=float,
        default=None,
        metavar="H",
        help="dry run: what fits H GPU-hours (seeds, then arms, then targets are dropped; see the output)",
    )
    p.add_argument(
        "--pilot",
        default=None,
        metavar="RUNS_DIR",
        help="dry run: a finished pilot study whose variances say how many seeds this study needs",
    )
    p.add_argument(
        "--detect",
        type=float,
        default=1.0,
        metavar="POINTS",
        help="dry run with --pilot: the margin (score points) to detect with 80%% power [default: 1]",
    )
    p.add_argument(
        "--launcher", choices=("local", "slurm"), default=None, help="override the study's launcher"
    )
    p.add_argument("--runs-dir", default=None, help="where run folders go")
    p.add_argument(
        "--data-dir", default=None, help="local copies of datasets in their release formats"
    )
    p.add_argument(
        "--no-compare", action="store_true", help="do not run `compare` when the grid is finished"
    )
    add_overrides(p)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.gpus is not None and args.gpus < 1:
        raise ConfigError(f"--gpus: {args.gpus} is not allowed; expected at least 1")
    if args.budget_gpu_hours is not None and not args.budget_gpu_hours > 0:
        raise ConfigError(
            f"--budget-gpu-hours: {args.budget_gpu_hours} is not allowed; expected a number above 0"
        )


def run(args: argparse.Namespace) -> int:
    from mmxfer.config import load_study
    from mmxfer.study import dry_run, throughput
    from mmxfer.study.grid import run_study

    _check_numbers(args)
    study = load_study(args.study, args.overrides)
    if args.dry_run:
        throughput.check_kind(args.gpu)  # an unknown kind fails before the plan is made
    if args.pilot is not None and not args.dry_run:
        raise ConfigError("--pilot plans a study: use it with --dry-run")
    if not args.detect > 0:
        raise ConfigError(
            f"--detect: {args.detect} is not allowed; expected a margin above 0 (score points)"
        )
    sections = [
        functools.partial(
            dry_run.cost_section, gpu=args.gpu, gpus=args.gpus, budget=args.budget_gpu_hours
        )
    ]
    if args.pilot is not None:
        sections.append(
            functools.partial(dry_run.power_section, pilot=args.pilot, detect=args.detect)
        )
    run_study(
        study,
        launcher=args.launcher,
        runs_dir=args.runs_dir,
        data_dir=args.data_dir,
        dry_run=args.dry_run,
        compare=not args.no_compare,
        dry_run_sections=tuple(sections),
    )
    return 0


COMMAND = Command(
    "study",
    help="run a grid of arms x targets x seeds, locally or on SLURM",
    description="Expands a study config into runs, skips finished ones (DONE), and runs the "
    "rest in sequence or submits them to SLURM.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    outputs=(("runs_dir", "--runs-dir", "dir"),),
    resume="run the same study again to resume",
    fills_cache=lambda args: not args.dry_run,
)  # a dry run computes nothing
