"""``mmxfer validate``: parse a profile, suite or study file (and its overrides) and check it without running it.

Beyond types (:mod:`mmxfer.config`), every name a config uses must exist: its tasks, its suite, its profile.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from mmxfer import catalog, config
from mmxfer.cli.common import Command, add_overrides
from mmxfer.errors import ConfigError, MmxferError

EPILOG = """examples:
  mmxfer validate configs/profiles/xlmr-large.yaml
  mmxfer validate configs/studies/paper.yaml --set seeds=[1,2]
"""

#: --kind -> the folder name of that kind of config
KINDS = {"profile": "profiles", "suite": "suites", "study": "studies"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML file or shipped config name")
    p.add_argument(
        "--kind",
        choices=tuple(KINDS),
        default=None,
        help="what the file is [default: guessed from its folder and keys]",
    )
    add_overrides(p)


def _check_task(name: str, where: str) -> None:
    catalog.load_plugins()
    try:
        catalog.TASKS.canonical(name)
    except MmxferError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_profile(profile: config.ExperimentConfig, where: str = "profile") -> None:
    if profile.suite not in config.named_configs("suites") and not Path(profile.suite).is_file():
        raise ConfigError(
            f"{where}: suite: unknown suite {profile.suite!r}"
            f"{config.suggest(profile.suite, config.named_configs('suites'))}"
        )
    try:
        profile.check_phase_settings()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for target in profile.target_overrides:
        _check_task(target, f"{where}: target_overrides")
        profile.phase_for_target(target)  # validates the override keys and types
    if profile.translation.train_task:
        _check_task(profile.translation.train_task, f"{where}: translation.train_task")


def check_suite(suite: config.SuiteConfig, where: str = "suite") -> None:
    if not suite.tasks:
        raise ConfigError(f"{where}: tasks: a suite needs at least one task")
    for item in suite.tasks:
        _check_task(item.task, f"{where}: tasks")


def check_study(study: config.StudyConfig, where: str = "study") -> None:
    profile = config.load_profile(study.profile, study.overrides)
    check_profile(profile, f"{where}: profile {study.profile}")
    if not study.arms:
        raise ConfigError(f"{where}: arms: a study needs at least one arm")
    names = [arm.name for arm in study.arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: arms: arm names must be unique, got {names}")
    for arm in study.arms:
        for task in arm.intermediate:
            _check_task(task, f"{where}: arm {arm.name}")
    for target in study.targets:
        _check_task(target, f"{where}: targets")
    if not study.seeds:
        raise ConfigError(f"{where}: seeds: at least one seed is needed")
    # a comma list of suites (paper: xtreme-retrieval,flores200)
    for name in (study.suite or "").split(","):
        if name.strip():
            config.load_suite(name.strip())


def validate_file(path: str | Path, kind: str, overrides: Iterable[str] = ()) -> str:
    """Validate one YAML file of ``kind`` (profiles | suites | studies); return a one-line summary."""
    path = Path(path)
    overrides = list(overrides)
    if kind == "profiles":
        profile = config.load(config.ExperimentConfig, path, overrides)
        check_profile(profile, str(path))
        return f"trunk {profile.trunk.name}, suite {profile.suite}, precision {profile.precision}"
    if kind == "suites":
        data = config.apply_overrides(config.read_yaml(path), overrides)
        data.setdefault("name", path.stem)
        suite = config.from_dict(config.SuiteConfig, data)
        check_suite(suite, str(path))
        return f"{len(suite.tasks)} tasks"
    if kind == "studies":
        data = config.apply_overrides(config.read_yaml(path), overrides)
        data.setdefault("name", path.stem)
        study = config.from_dict(config.StudyConfig, data)
        check_study(study, str(path))
        return (
            f"{len(study.arms)} arms x {max(1, len(study.targets))} targets x {len(study.seeds)} seeds "
            f"on profile {study.profile}"
        )
    raise ConfigError(f"unknown config kind {kind!r}")


def _resolve(name: str, kind: str | None) -> tuple[Path, str]:
    """The file and kind (profiles | suites | studies) of ``name``: a path, or a shipped config's name."""
    if kind:
        return config.resolve_config_path(kind, name), kind
    candidate = Path(name)
    if candidate.exists() or candidate.suffix in (".yaml", ".yml"):
        path = config.resolve_config_path("profiles", name)
        return path, config.detect_kind(path)
    for k in ("profiles", "studies", "suites"):
        if name in config.named_configs(k):
            return config.named_configs(k)[name], k
    raise ConfigError(f"no config file or shipped config named {name!r}")


def run(args: argparse.Namespace) -> int:
    """Validate a config file; also checks that the names it uses are registered."""
    path, kind = _resolve(args.config, KINDS.get(args.kind or ""))
    summary = validate_file(path, kind, args.overrides)
    print(f"{path}: valid {kind[:-1]} ({summary})")
    return 0


COMMAND = Command(
    "validate",
    help="check a profile, suite or study YAML file",
    description="Parses and validates a config file (and its overrides) without running it.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
)
