"""VQA accuracy (Antol et al. 2015, the official VQA evaluation's formula).

An answer is 100% correct if at least 3 of the 10 human answers match it; the official score averages
``min(1, matches / 3)`` over the 10 leave-one-annotator-out subsets of 9 answers. Answers are compared
after the evaluation's light normalisation (lower case, strip, drop punctuation except in numbers,
number words to digits, articles removed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmxfer.errors import DataError
from mmxfer.metrics.base import register

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_PUNCT = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~|:']")
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")


def normalize_answer(text: str) -> str:
    text = " ".join(str(text).replace("\n", " ").replace("\t", " ").strip().lower().split())
    text = _PERIOD.sub("", _PUNCT.sub("", text))
    words = [_NUMBERS.get(w, w) for w in text.split() if w not in _ARTICLES]
    return " ".join(words)


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy of one prediction (0-1) against the human answers."""
    if not answers:
        raise DataError("vqa_accuracy: a question has no human answers")
    pred = normalize_answer(prediction)
    gold = [normalize_answer(a) for a in answers]
    if len(gold) == 1:
        return float(pred == gold[0])
    total = 0.0
    for i in range(len(gold)):
        others = gold[:i] + gold[i + 1:]
        total += min(1.0, sum(a == pred for a in others) / 3)
    return total / len(gold)


@register("vqa_accuracy", primary="accuracy", description="VQA accuracy: min(1, #humans agreeing / 3), 0-100")
def _vqa_metric(golds: list, preds: list) -> dict[str, float]:
    if not golds:
        raise DataError("vqa_accuracy: nothing to score")
    total = sum(vqa_score("" if p is None else str(p), g if isinstance(g, list) else [g]) for g, p in zip(golds, preds))
    return {"accuracy": 100.0 * total / len(golds), "n": float(len(golds))}
