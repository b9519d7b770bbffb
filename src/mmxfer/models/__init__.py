"""Trunks, vision towers, fusion and heads. Importing this package registers them."""

from mmxfer.models import heads, starter, trunk, vision  # noqa: F401  (registrations)
from mmxfer.models.build import TaskModel, build_task_model
from mmxfer.models.trunk import LoadReport, load_state_partial, load_trunk, save_trunk

__all__ = [
    "LoadReport",
    "TaskModel",
    "build_task_model",
    "load_state_partial",
    "load_trunk",
    "save_trunk",
]
