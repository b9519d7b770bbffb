"""Semantic validation of configs: beyond types, every name a config uses must exist."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mmxfer import catalog, config
from mmxfer.errors import ConfigError, MmxferError


def _check_task(name: str, where: str) -> None:
    catalog.load_plugins()
    try:
        catalog.TASKS.canonical(name)
    except MmxferError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_profile(profile: config.ExperimentConfig, where: str = "profile") -> None:
    if profile.suite not in config.named_configs("suites") and not Path(profile.suite).is_file():
        raise ConfigError(f"{where}: suite: unknown suite {profile.suite!r}"
                          f"{config.suggest(profile.suite, config.named_configs('suites'))}")
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
    for name in (study.suite or "").split(","):  # a comma list of suites (paper: xtreme-retrieval,flores200)
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
        return (f"{len(study.arms)} arms x {max(1, len(study.targets))} targets x {len(study.seeds)} seeds "
                f"on profile {study.profile}")
    raise ConfigError(f"unknown config kind {kind!r}")
