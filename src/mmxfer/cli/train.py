"""``mmxfer train``: one arm - intermediate training, target fine-tuning, zero-shot evaluation - in one run folder.

The arguments become a :class:`~mmxfer.train.run.RunRequest` that :func:`mmxfer.train.run.execute` runs. A bare
``mmxfer train`` uses the **starter** profile (offline, CPU, minutes); the paper-scale recipe is
``--profile xlmr-large`` (XLM-R Large, ViT-L-14, X-STILTs recipe), ``xlmr-base`` the smaller middle ground.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmxfer.cli.common import Command, add_overrides, always

if TYPE_CHECKING:
    from mmxfer.train.run import RunRequest

EPILOG = """examples:
  mmxfer train --intermediate vqa                      # starter profile, offline, CPU
  mmxfer train --intermediate vqa --target xnli --profile xlmr-large --seed 1
  mmxfer train --intermediate mnli,squad,hellaswag --target pawsx --profile xlmr-base
  mmxfer train --intermediate none --target udpos     # the no-intermediate baseline arm
  mmxfer train --intermediate vqa --target flores200-translate --data-dir DIR --languages deu_Latn,swh_Latn
  accelerate launch -m mmxfer train --intermediate caption --target xquad --profile xlmr-large
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--intermediate",
        default="none",
        help="intermediate task(s): a name, a comma list for multi-task, or 'none' (baseline)",
    )
    p.add_argument(
        "--target",
        default=None,
        help="target task; without it the run stops after phase 2 and evaluates retrieval",
    )
    p.add_argument(
        "--profile",
        default="starter",
        help="profile name (starter, xlmr-base, xlmr-large) or YAML path [default: starter]",
    )
    p.add_argument("--config", default=None, help="a profile YAML file (same as --profile PATH)")
    p.add_argument(
        "--seed", type=int, default=None, help="seed for data order, new heads and dropout"
    )
    p.add_argument("--study", default=None, help="study folder name under the runs dir")
    p.add_argument(
        "--arm",
        default=None,
        help="arm name recorded in the run config [default: from --intermediate]",
    )
    p.add_argument(
        "--runs-dir", default=None, help="where run folders go [default: the profile's runs_dir]"
    )
    p.add_argument(
        "--data-dir", default=None, help="local copies of datasets in their release formats"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument("--force", action="store_true", help="re-run even if the run folder is finished")
    p.add_argument(
        "--languages",
        default=None,
        help="comma list: evaluate zero-shot on these languages only (recorded in the run)",
    )
    add_overrides(p)


def request_from_args(args: argparse.Namespace) -> RunRequest:
    from mmxfer.config import load_profile
    from mmxfer.train.run import resolve_request

    # the run's study is part of its profile (profile.study), as `mmxfer study` resolves it
    profile = load_profile(
        args.config or args.profile,
        list(args.overrides) + ([f"study={args.study}"] if args.study else []),
    )
    return resolve_request(
        profile,
        args.intermediate,
        args.target,
        seed=args.seed,
        study=args.study,
        arm=args.arm,
        runs_dir=args.runs_dir,
        data_dir=args.data_dir,
        resume=args.resume,
        force=args.force,
        languages=args.languages,
    )


def run(args: argparse.Namespace) -> int:
    from mmxfer.train.run import execute

    execute(request_from_args(args))
    return 0


COMMAND = Command(
    "train",
    help="run one arm: intermediate training, target fine-tuning, zero-shot eval",
    description="Phase 2 (intermediate task, English) -> phase 3 (target task, English) -> "
    "zero-shot evaluation on every target language, all in one run folder.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    outputs=(("runs_dir", "--runs-dir", "dir"),),
    resume="resume with --resume (the same command plus --resume)",
    fills_cache=always,
)
