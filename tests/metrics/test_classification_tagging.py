import random

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.metrics import classification, tagging


def test_accuracy_hand_computed():
    assert classification.accuracy([0, 1, 2, 1], [0, 2, 2, 1]) == 75.0
    assert classification.accuracy(["a"], [None]) == 0.0
    with pytest.raises(DataError):
        classification.accuracy([1, 2], [1])
    with pytest.raises(DataError):
        classification.accuracy([], [])


def test_span_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # 3 gold chunks, 3 predicted, 2 correct
    assert tagging.f1(gold, pred) == pytest.approx(100 * 2 / 3)
    # an I- tag after O starts a chunk (conlleval), so I-PER I-PER == B-PER I-PER
    assert tagging.f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]]) == 100.0
    assert tagging.f1([["O", "O"]], [["O", "O"]]) == 0.0  # no chunks at all: seqeval returns 0


def _random_tags(rng, names, n):
    return [[rng.choice(names) for _ in range(rng.randint(1, 12))] for _ in range(n)]


@pytest.mark.parametrize(
    "names",
    [
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
        [
            "ADJ",
            "ADP",
            "ADV",
            "AUX",
            "CCONJ",
            "DET",
            "INTJ",
            "NOUN",
            "NUM",
            "PART",
            "PRON",
            "PROPN",
            "PUNCT",
            "SCONJ",
            "SYM",
            "VERB",
            "X",
        ],
        ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "E-B", ".", "I-B"],
    ],
)
def test_equals_seqeval_on_random_sequences(names):
    import warnings

    rng = random.Random(len(names))
    for _ in range(30):
        gold = _random_tags(rng, names, rng.randint(1, 6))
        pred = [[rng.choice(names) if rng.random() < 0.4 else t for t in sent] for sent in gold]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = (
                100 * f1_score(gold, pred),
                100 * precision_score(gold, pred),
                100 * recall_score(gold, pred),
            )
        got = tagging.prf(gold, pred)
        assert got["f1"] == pytest.approx(expected[0], abs=1e-9)
        assert got["precision"] == pytest.approx(expected[1], abs=1e-9)
        assert got["recall"] == pytest.approx(expected[2], abs=1e-9)


def test_token_f1_metric_has_accuracy_and_registry_interface():
    metric = catalog.METRICS.get("token_f1")
    out = metric.score([["NOUN", "VERB", "NOUN"]], [["NOUN", "NOUN", "NOUN"]])
    assert out["accuracy"] == pytest.approx(200 / 3)
    assert metric.primary == "f1" and metric.higher_is_better
    with pytest.raises(DataError):
        tagging.f1([["O", "O"]], [["O"]])
