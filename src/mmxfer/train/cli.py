"""``mmxfer train``: parse the arguments into a :class:`~mmxfer.train.run.RunRequest` and execute it.

A bare ``mmxfer train`` uses the **starter** profile (offline, CPU, minutes). The paper-scale
recipe is ``--profile xlmr-large`` (XLM-R Large, ViT-L-14, X-STILTs recipe); ``xlmr-base`` is the
smaller middle ground.
"""

from __future__ import annotations

import argparse

from mmxfer.config import load_profile
from mmxfer.train.run import RunRequest, execute, resolve_request


def request_from_args(args: argparse.Namespace) -> RunRequest:
    # the run's study is part of its profile (profile.study), as `mmxfer study` resolves it
    profile = load_profile(args.config or args.profile,
                           list(args.overrides) + ([f"study={args.study}"] if args.study else []))
    return resolve_request(profile, args.intermediate, args.target, seed=args.seed, study=args.study,
                           arm=args.arm, runs_dir=args.runs_dir, data_dir=args.data_dir, resume=args.resume,
                           force=args.force, languages=getattr(args, "languages", None))


def run(args: argparse.Namespace) -> int:
    execute(request_from_args(args))
    return 0
