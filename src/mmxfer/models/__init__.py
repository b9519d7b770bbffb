"""Trunks, vision towers, fusion and heads. Importing this package registers them."""

from mmxfer.models import heads, starter, tiny, trunk, vision  # noqa: F401  (registrations)
from mmxfer.models.build import TaskModel, build_task_model
from mmxfer.models.tiny import tiny_bert_trunk, tiny_tokenizer, tiny_trunk
from mmxfer.models.trunk import LoadReport, load_state_partial, load_trunk, save_trunk

__all__ = ["LoadReport", "TaskModel", "build_task_model", "load_state_partial", "load_trunk", "save_trunk",
           "tiny_bert_trunk", "tiny_tokenizer", "tiny_trunk"]
