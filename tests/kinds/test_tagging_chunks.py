"""Tagging predicts every word, as XTREME: long sentences are cut greedily at word boundaries into chunks of
at most max_length minus the special tokens, and the chunks' predictions are joined back per sentence."""

from __future__ import annotations

import numpy as np
import pytest

from mmxfer import catalog
from mmxfer.kinds import FeatureOptions, featurize
from mmxfer.kinds.base import IGNORE
from mmxfer.kinds.tagging import tag_predictions
from mmxfer.tasks.common import dataset_from_rows
from mmxfer.tasks.xtreme import UPOS


@pytest.fixture(scope="module")
def tok():
    from mmxfer.testing.tiny import tiny_tokenizer

    return tiny_tokenizer()


def _perfect(feats) -> list[np.ndarray]:
    return [np.array([max(x, 0) for x in f["labels"]]) for f in feats]


def test_long_sentence_every_word_is_predicted(tok, mmxfer_cache):
    catalog.load_plugins()
    spec = catalog.task("udpos")
    rng = np.random.default_rng(0)
    vocab = [
        "The",
        "cat",
        "sat",
        "on",
        "the",
        "mat",
        "Katze",
        "Strand",
        "猫はマット",
        "ufukweni",
        "mpira",
    ]
    words = [str(rng.choice(vocab)) for _ in range(60)]
    tags = [UPOS[i % len(UPOS)] for i in range(60)]  # the last words are not ADJ (label_names[0])
    rows = [
        {"id": "long", "tokens": words, "tags": tags},
        {"id": "short", "tokens": ["The", "cat"], "tags": ["DET", "NOUN"]},
    ]
    ds = dataset_from_rows(spec, rows, split="test", lang="en")
    max_length = 16
    feats = featurize(spec, ds, tok, FeatureOptions(max_length=max_length, split="test", lang="en"))
    preds = tag_predictions(feats, _perfect(feats), spec.label_names)
    assert preds == {
        "long": tags,
        "short": ["DET", "NOUN"],
    }  # every word predicted, none filled with ADJ
    from mmxfer.kinds.tagging import special_frame, word_pieces

    long_rows = [f for f in feats if f["example_id"] == "long"]
    assert len(long_rows) > 3 and max(len(f["input_ids"]) for f in feats) <= max_length
    # greedy: every chunk but the last would overflow with the next chunk's first word
    prefix, suffix = special_frame(tok)
    budget = max_length - len(prefix) - len(suffix)
    pieces = [len(p) for p in word_pieces(tok, words, budget)]
    firsts = [f["word_ids"][len(prefix)] for f in long_rows]
    for a, b in zip(firsts, firsts[1:]):
        assert sum(pieces[a:b]) <= budget < sum(pieces[a : b + 1])
    assert sorted({w for f in long_rows for w in f["word_ids"] if w >= 0}) == list(range(60))


def test_unknown_and_empty_words_take_the_unknown_token(tok):
    from mmxfer.kinds.tagging import chunk_words, special_frame, word_pieces

    prefix, suffix = special_frame(tok)
    assert prefix == [0] and suffix == [2]
    long_word = "Strandufukwenimpira"
    assert len(tok(long_word, add_special_tokens=False)["input_ids"]) > 3
    pieces = word_pieces(tok, ["cat", "", long_word], budget=3)
    assert pieces[0] == tok("cat", add_special_tokens=False)["input_ids"]
    assert pieces[1] == [tok.unk_token_id] and pieces[2] == [tok.unk_token_id]
    assert chunk_words([2, 3, 1, 5, 1], 5) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert chunk_words([], 5) == [(0, 0)]


def test_chunk_predictions_are_joined_and_first_subtoken_labelled(tok, mmxfer_cache):
    catalog.load_plugins()
    spec = catalog.task("panx")
    words = ["Angela", "Merkel", "spricht", "in", "Berlin"] * 6
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC"] * 6
    ds = dataset_from_rows(
        spec, [{"id": "s", "tokens": words, "tags": tags}], split="test", lang="de"
    )
    feats = featurize(spec, ds, tok, FeatureOptions(max_length=12, split="test", lang="de"))
    assert len(feats) > 1
    for f in feats:
        firsts = [
            k
            for k, w in enumerate(f["word_ids"])
            if w >= 0 and (k == 0 or f["word_ids"][k - 1] != w)
        ]
        assert [f["labels"][k] for k in firsts] == [
            spec.label_names.index(tags[f["word_ids"][k]]) for k in firsts
        ]
        assert all(f["labels"][k] == IGNORE for k in range(len(f["labels"])) if k not in firsts)
    assert tag_predictions(feats, _perfect(feats), spec.label_names) == {"s": tags}
