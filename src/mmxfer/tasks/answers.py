"""VQA answers: normalisation, the answer vocabulary and VQAv2 soft scores.

Soft scores follow the official VQA evaluation: with ``n`` human answers, a candidate given by
``c`` of them scores ``min(1, matches/3)`` against every leave-one-out subset of ``n-1``
answers, averaged over the ``n`` subsets: ``(c*min(1,(c-1)/3) + (n-c)*min(1,c/3)) / n``
(for ``n=10``: 1 answer -> 0.3, 2 -> 0.6, 3 -> 0.9, >=4 -> 1.0; the common ``min(1, 0.3*c)``
approximation differs only at c=3). A single reference answer scores exact match.
Normalisation is a reduced form of the official one: lower case, punctuation stripped (except
inside numbers), number words to digits, articles dropped, a few contractions restored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

VQAV2_VOCAB_SIZE = 3129

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                 "wont": "won't", "im": "i'm", "ive": "i've", "youre": "you're", "thats": "that's"}
_PUNCT = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$|~:]")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def normalize_answer(answer: str) -> str:
    text = answer.replace("\n", " ").replace("\t", " ").strip().lower()
    text = _PUNCT.sub(" ", text)
    text = _PERIOD.sub("", text)
    words = []
    for word in text.split():
        word = _NUMBERS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def soft_scores(answers: Sequence[str]) -> dict[str, float]:
    """VQAv2 soft score of every distinct (normalised) answer among the human ``answers``."""
    norm = [normalize_answer(a) for a in answers]
    n = len(norm)
    if n == 0:
        return {}
    counts = Counter(norm)
    if n == 1:
        return {norm[0]: 1.0}
    return {a: (c * min(1.0, (c - 1) / 3) + (n - c) * min(1.0, c / 3)) / n for a, c in counts.items()}


def build_answer_vocab(answer_lists: Iterable[Sequence[str]], size: int = VQAV2_VOCAB_SIZE) -> list[str]:
    """The ``size`` most frequent normalised answers (counted once per question; ties broken alphabetically).

    With VQAv2 train+val this is the usual 3129-answer vocabulary convention.
    """
    counts: Counter[str] = Counter()
    for answers in answer_lists:
        counts.update({normalize_answer(a) for a in answers if a.strip()})
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
