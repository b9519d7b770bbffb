"""metrics.tagging equals seqeval 1.2.2 exactly - thousands of random cases with every UPOS tag (X included,
also at sentence starts, where seqeval carries chunks across sentences) and every PAN-X tag."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from mmxfer.metrics import tagging
from mmxfer.tasks.xtreme import PANX_TAGS, UPOS

TAG_SETS = {"upos": list(UPOS), "panx": list(PANX_TAGS), "mixed": list(UPOS) + list(PANX_TAGS)}


def _case(rng: random.Random, names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    gold = [
        [rng.choice(names) for _ in range(rng.randint(0 if rng.random() < 0.05 else 1, 7))]
        for _ in range(rng.randint(1, 5))
    ]
    # X at sentence starts and ends is what an independent per-sentence chunker gets wrong
    for sent in gold:
        if sent and rng.random() < 0.3:
            sent[0 if rng.random() < 0.5 else -1] = "X" if "X" in names else sent[0]
    pred = [[rng.choice(names) if rng.random() < 0.35 else t for t in sent] for sent in gold]
    return gold, pred


def _seqeval(gold, pred) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            100 * f1_score(gold, pred),
            100 * precision_score(gold, pred),
            100 * recall_score(gold, pred),
        )


@pytest.mark.parametrize("tag_set", sorted(TAG_SETS))
def test_prf_equals_seqeval_on_thousands_of_random_cases(tag_set):
    names = TAG_SETS[tag_set]
    rng = random.Random(12)
    differences = 0
    for _ in range(1500):
        gold, pred = _case(rng, names)
        f1, precision, recall = _seqeval(gold, pred)
        got = tagging.prf(gold, pred)
        differences += not (
            got["f1"] == pytest.approx(f1, abs=1e-9)
            and got["precision"] == pytest.approx(precision, abs=1e-9)
            and got["recall"] == pytest.approx(recall, abs=1e-9)
        )
    assert differences == 0


def test_documented_cross_sentence_cases():
    # seqeval: get_entities([['NOUN', 'X'], ['X', 'VERB']]) = [('OUN', 0, 0), ('_', 1, 3), ('ERB', 4, 4)]
    gold = [["NOUN", "X"], ["X", "VERB"]]
    assert sorted(tagging.chunks(tagging._flat(gold))) == sorted(get_entities(gold))
    pred = [["NOUN", "X"], ["NOUN", "VERB"]]
    assert tagging.prf(gold, pred)["f1"] == pytest.approx(_seqeval(gold, pred)[0])


@pytest.mark.parametrize("tag_set", sorted(TAG_SETS))
def test_sentence_counts_sum_to_the_exact_score(tag_set):
    rng = random.Random(7)
    for _ in range(300):
        gold, pred = _case(rng, TAG_SETS[tag_set])
        counts = tagging.sentence_counts(gold, pred)
        assert counts.shape == (len(gold), 3)
        assert float(tagging.f1_from_counts(counts.sum(0))) == pytest.approx(
            tagging.prf(gold, pred)["f1"]
        )
        assert np.all(counts >= 0)
