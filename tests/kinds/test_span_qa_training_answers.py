"""Span-QA training leaves out the questions XTREME's run_squad.py leaves out ("Could not find answer").

The table's expected values follow XTREME's third_party/processors/squad.py by hand: the context is split into
words at " \\t\\r\\n" and U+202F (``_is_whitespace``); the answer's start and last character pick the first and last
word (``char_to_word_offset``); the training example is kept when those words, joined by spaces, contain the
answer's whitespace-split words joined by spaces (``squad_convert_example_to_features``).
"""

from __future__ import annotations

import logging

import pytest

from mmxfer import catalog
from mmxfer.kinds import kind_of
from mmxfer.kinds.span_qa import answer_found
from mmxfer.tasks.common import dataset_from_rows
from mmxfer.testing.tiny import tiny_trunk
from mmxfer.train import data as train_data

CASES = [
    # context, answer, answer_start, kept by XTREME
    ("The cat sat.", "cat", 4, True),
    ("The cat sat.", "cat", 0, False),  # the offset points at "The"
    (
        "The cat sat.",
        "sat",
        8,
        True,
    ),  # inside the word "sat." (words, not characters, are compared)
    ("The cat sat.", "cat sat", 4, True),
    ("The  cat sat.", "The cat", 0, True),  # spaces collapse on both sides
    ("The cat sat.", "The  cat", 0, True),
    (
        "The cat sat.",
        "cat",
        40,
        False,
    ),  # past the context: XTREME's reader stops with an IndexError
    ("The cat sat.", "cat", 12, False),
    ("10\u202fkm long", "km", 3, True),  # U+202F splits words
    ("10\u00a0km long", "km", 3, True),  # U+00A0 does not: one word "10\u00a0km", which holds "km"
    ("The cat sat.", "dog", 4, False),
    ("The cat sat.", "", 0, True),  # an empty answer is found anywhere
    ("The cat sat.", "cat sat. And more", 4, False),  # longer than the rest of the context
]


@pytest.mark.parametrize("context, text, start, kept", CASES)
def test_answer_found_follows_xtreme(context, text, start, kept):
    assert answer_found(context, text, start) is kept


def test_training_leaves_them_out_and_counts_them(caplog):
    spec = catalog.task("squad")
    rows = [
        {
            "id": f"q{i}",
            "context": "The cat sat on the mat.",
            "question": "Who sat?",
            "answers": {"text": ["cat"], "answer_start": [4 if i % 3 else 40]},
        }
        for i in range(9)
    ]
    ds = dataset_from_rows(spec, rows, split="train", lang="en")
    kept, reason = kind_of(spec).trainable(ds)
    assert kept["id"] == [f"q{i}" for i in range(9) if i % 3] and "Could not find answer" in reason
    _, tokenizer = tiny_trunk()
    with caplog.at_level(logging.WARNING):
        train = train_data.task_data(spec, ds, tokenizer, 64, split="train", lang="en")
        dev = train_data.task_data(
            spec, ds, tokenizer, 64, split="validation", lang="en", space=train.label_space
        )
    assert (train.skipped, len(train.raw)) == (3, 6)
    assert (dev.skipped, len(dev.raw)) == (
        0,
        9,
    )  # evaluation reads the answer texts only: every question stays
    assert [r.getMessage() for r in caplog.records] == [
        "squad train: 3 of 9 example(s) left out: the first answer is not at its answer_start in the context "
        '(XTREME\'s "Could not find answer")'
    ]
