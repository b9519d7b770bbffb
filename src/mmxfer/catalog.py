"""The registries of everything that has a name, and the one place that fills them.

Modules register themselves on import (``@TASKS.register("mnli")``); :func:`load_plugins`
imports the packages that hold registrations, so ``mmxfer ls tasks`` and every lookup see
them all. Suites, profiles and studies are YAML files (see :mod:`mmxfer.config`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mmxfer.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from mmxfer.tasks.base import TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")
TRUNKS: Registry[Any] = Registry("trunk")
VISION_TOWERS: Registry[Any] = Registry("vision tower")
HEADS: Registry[Any] = Registry("head")
METRICS: Registry[Any] = Registry("metric")
KINDS: Registry[Any] = Registry("kind")  # task kind -> its adapter class (mmxfer.kinds.base.TaskKind)

_PLUGIN_PACKAGES = ("mmxfer.tasks", "mmxfer.models", "mmxfer.metrics", "mmxfer.kinds")
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
