"""Sentence(-pair) classification: ``text_a`` [+ ``text_b``] -> one label per example."""

from __future__ import annotations

from typing import Any

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, tokenize
from mmxfer.kinds.decode import OneLabelPerExample


def encode(rows: Rows, tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    a, b = rows["text_a"], rows["text_b"]
    if all(x is None for x in b):
        enc = tokenize(tokenizer, a, truncation=True, max_length=max_length)
    elif all(x is not None for x in b):
        enc = tokenize(tokenizer, a, b, truncation=True, max_length=max_length)
    else:
        encs = [
            tokenize(tokenizer, x, y, truncation=True, max_length=max_length)
            if y is not None
            else tokenize(tokenizer, x, truncation=True, max_length=max_length)
            for x, y in zip(a, b)
        ]
        enc = {
            "input_ids": [e["input_ids"] for e in encs],
            "attention_mask": [e["attention_mask"] for e in encs],
        }
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "labels": rows["label"],
    }


@KINDS.register("classification")
class Classification(OneLabelPerExample):
    name = "classification"

    def num_labels(self, space: LabelSpace) -> int | None:
        return len(space.get("label_names") or self.spec.label_names) or None

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length)
