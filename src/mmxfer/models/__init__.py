"""Trunks, vision towers, fusion and heads. Importing this package registers them."""

from mmxfer.models import tiny, trunk  # noqa: F401  (registrations)
from mmxfer.models.tiny import tiny_bert_trunk, tiny_tokenizer, tiny_trunk
from mmxfer.models.trunk import LoadReport, load_state_partial, load_trunk, save_trunk

__all__ = ["LoadReport", "load_state_partial", "load_trunk", "save_trunk", "tiny_bert_trunk", "tiny_tokenizer",
           "tiny_trunk"]
