"""``mmxfer study``: load the study config and run its grid (:func:`mmxfer.study.grid.run_study`); a dry run
prints the plan and its cost (:mod:`mmxfer.study.cost_report`)."""

from __future__ import annotations

import argparse
import functools

from mmxfer.config import ExperimentConfig, StudyConfig, load_study
from mmxfer.errors import ConfigError
from mmxfer.study import cost, cost_report, throughput
from mmxfer.study.grid import PlannedRun, run_study


def cost_section(study: StudyConfig, profile: ExperimentConfig, runs: list[PlannedRun], data_dir: str | None, *,
                 gpu: str, gpus: int | None, budget: float | None) -> None:
    """The dry run's cost of ``runs`` on ``gpu`` (with the wall time on ``gpus`` and what fits ``budget``)."""
    device = throughput.device(gpu, profile.precision)
    estimate = cost.estimate(profile, runs, device, languages=study.languages, data_dir=data_dir)
    cost_report.print_cost(estimate, runs, gpus=gpus, budget_hours=budget)


def run(args: argparse.Namespace) -> int:
    gpus, budget = getattr(args, "gpus", None), getattr(args, "budget_gpu_hours", None)
    if gpus is not None and gpus < 1:
        raise ConfigError(f"--gpus: {gpus} is not allowed; expected at least 1")
    if budget is not None and not budget > 0:
        raise ConfigError(f"--budget-gpu-hours: {budget} is not allowed; expected a number above 0")
    study = load_study(args.study, args.overrides)
    if args.dry_run:
        throughput.check_kind(getattr(args, "gpu", "H100"))  # an unknown kind fails before the plan is made
    section = functools.partial(cost_section, gpu=getattr(args, "gpu", "H100"), gpus=gpus, budget=budget)
    run_study(study, launcher=args.launcher, runs_dir=args.runs_dir, data_dir=args.data_dir, dry_run=args.dry_run,
              compare=not args.no_compare, dry_run_sections=(section,))
    return 0
