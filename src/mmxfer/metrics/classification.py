"""Accuracy for sentence classification (XNLI, PAWS-X, SIB-200), as XTREME's ``evaluate.py`` computes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmxfer.metrics.base import check_lengths, register


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Percentage of positions where ``pred[i] == gold[i]`` (0-100).

    Labels are compared as given (ints or strings); ``None`` predictions count as wrong.
    """
    check_lengths(gold, pred, "accuracy")
    correct = sum(int(p == g) for p, g in zip(pred, gold))
    return 100.0 * correct / len(pred)


@register(
    "accuracy", primary="accuracy", description="classification accuracy (0-100)", aliases=("acc",)
)
def _accuracy_metric(golds: list, preds: list) -> dict[str, float]:
    return {"accuracy": accuracy(golds, preds), "n": float(len(golds))}
