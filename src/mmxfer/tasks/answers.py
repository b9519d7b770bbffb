"""The VQA answer vocabulary and its sparse training targets.

Answers are counted and scored in the form the official evaluation compares them (:mod:`mmxfer.metrics.vqa`:
normalised when the human answers of a question differ, as given when they are all identical), so a predicted
vocabulary entry scores what its training target says; the targets are :func:`mmxfer.metrics.vqa.soft_scores`
(with ten answers: given by 1 human -> 0.3, 2 -> 0.6, 3 -> 0.9, 4 or more -> 1.0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from mmxfer.metrics.vqa import compared_forms, soft_scores

VQAV2_VOCAB_SIZE = 3129


def build_answer_vocab(
    answer_lists: Iterable[Sequence[str]], size: int = VQAV2_VOCAB_SIZE
) -> list[str]:
    """The ``size`` most frequent compared answer forms (counted once per question; ties broken alphabetically).

    With VQAv2 train+val this is the usual 3129-answer vocabulary convention.
    """
    counts: Counter[str] = Counter()
    for answers in answer_lists:
        counts.update({a for a in compared_forms(answers)[0] if a})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [a for a, _ in ranked[:size]]


def sparse_targets(answers: Sequence[str], index: dict[str, int]) -> tuple[list[int], list[float]]:
    """(answer ids, soft scores) for the answers that are in the vocabulary."""
    ids, scores = [], []
    for answer, score in sorted(soft_scores(answers).items()):
        if answer in index and score > 0:
            ids.append(index[answer])
            scores.append(float(score))
    return ids, scores
