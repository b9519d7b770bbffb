"""Metrics equal to the official scorers. Importing this package registers them in ``catalog.METRICS``.

Modules: :mod:`.classification` (accuracy), :mod:`.tagging` (seqeval span F1), :mod:`.qa` (SQuAD v1.1,
MLQA, TyDiQA-GoldP), :mod:`.retrieval` (xSIM, Tatoeba, BUCC), :mod:`.generation` (chrF++, spBLEU),
:mod:`.vqa` (VQA accuracy). Each registered metric offers ``score(golds, preds, **params)``.
"""

from mmxfer.metrics import classification, generation, qa, retrieval, tagging, vqa  # noqa: F401
from mmxfer.metrics.base import Metric

__all__ = ["Metric", "classification", "generation", "qa", "retrieval", "tagging", "vqa"]
