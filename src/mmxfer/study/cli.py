"""``mmxfer study``: load the study config and run its grid (:func:`mmxfer.study.grid.run_study`)."""

from __future__ import annotations

import argparse

from mmxfer.config import load_study
from mmxfer.study.grid import run_study


def run(args: argparse.Namespace) -> int:
    run_study(load_study(args.study, args.overrides), launcher=args.launcher, runs_dir=args.runs_dir,
              data_dir=args.data_dir, dry_run=args.dry_run, compare=not args.no_compare)
    return 0
