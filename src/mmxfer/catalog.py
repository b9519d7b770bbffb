"""The registries of everything that has a name, and the one place that fills them.

Modules register themselves on import (``@KINDS.register("classification")``,
``tasks.common.register(spec)``); :func:`load_plugins`
imports the packages that hold registrations, so ``mmxfer ls tasks`` and every lookup see
them all. Suites, profiles and studies are YAML files (see :mod:`mmxfer.config`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mmxfer.errors import UnknownNameError
from mmxfer.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from mmxfer.tasks.base import TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")
TRUNKS: Registry[Any] = Registry("trunk")
VISION_TOWERS: Registry[Any] = Registry("vision tower")
HEADS: Registry[Any] = Registry("head")
METRICS: Registry[Any] = Registry("metric")
# task kind -> its adapter class (mmxfer.kinds.base.TaskKind)
KINDS: Registry[Any] = Registry("kind")
# phase-3 recipe -> how it trains and evaluates a target (mmxfer.train.runners.Phase3Runner), named by the kinds
RUNNERS: Registry[Any] = Registry("phase-3 runner")
# local data a study can name (mmxfer.assets.DataSource)
DATA_SOURCES: Registry[Any] = Registry("data source")

_PLUGIN_PACKAGES = (
    "mmxfer.tasks",
    "mmxfer.models",
    "mmxfer.metrics",
    "mmxfer.kinds",
    "mmxfer.testing",
)
_loaded = False


def load_plugins() -> None:
    """Import every package that registers tasks, trunks, towers, heads, metrics and kinds (idempotent)."""
    global _loaded
    if _loaded:
        return
    for name in _PLUGIN_PACKAGES:
        importlib.import_module(name)
    _loaded = True


def task(name: str) -> TaskSpec:
    load_plugins()
    return TASKS.get(name)


def find_task(name: str) -> TaskSpec | None:
    """The registered task ``name`` (or alias); None when no task has that name (an old run's config)."""
    load_plugins()
    try:
        return TASKS.get(name)
    except UnknownNameError:
        return None


def is_control(tasks: Iterable[str]) -> bool:
    """Whether an arm's intermediate tasks are a positive control (:attr:`TaskSpec.control`: a task known to move
    the targets, there to show that the design detects an effect): compared with the baseline, never pooled
    with the arms whose modality is the question."""
    specs = [find_task(name) for name in tasks]
    return bool(specs) and all(spec is not None and spec.control for spec in specs)


def modality_of(tasks: Iterable[str]) -> str:
    """An arm's modality from its intermediate tasks' specs: ``none`` (no task), ``text``, ``image-text``,
    ``mixed`` (both), or ``unknown`` when one of the tasks is not registered."""
    specs = [find_task(name) for name in tasks]
    if not specs:
        return "none"
    if any(spec is None for spec in specs):
        return "unknown"
    kinds = {spec.modality for spec in specs}
    return kinds.pop() if len(kinds) == 1 else "mixed"
