"""Bitext retrieval (Tatoeba, FLORES xSIM, the starter bitext) and BUCC-style mining: sentences are
embedded by the trunk; there is no head, no label and no decoded prediction."""

from __future__ import annotations

from typing import Any

import torch

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, TaskKind, pad, tokenize


def encode(rows: Rows, tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    """Pairs: ``source`` as the inputs, ``target`` (English) as ``target_*``; mining rows: ``text``."""
    if "text" in rows:
        enc = tokenize(tokenizer, rows["text"], truncation=True, max_length=max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    src = tokenize(tokenizer, rows["source"], truncation=True, max_length=max_length)
    trg = tokenize(tokenizer, rows["target"], truncation=True, max_length=max_length)
    return {
        "input_ids": src["input_ids"],
        "attention_mask": src["attention_mask"],
        "target_input_ids": trg["input_ids"],
        "target_attention_mask": trg["attention_mask"],
    }


@KINDS.register("retrieval")
class Retrieval(TaskKind):
    name = "retrieval"
    dev_metric = "neg_loss"
    trunk_only = True

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length)

    def collate_inputs(
        self, examples: list[dict[str, Any]], pad_id: int
    ) -> dict[str, torch.Tensor]:
        batch = super().collate_inputs(examples, pad_id)
        if "target_input_ids" in examples[0]:
            batch["target_input_ids"] = pad([e["target_input_ids"] for e in examples], pad_id)
            batch["target_attention_mask"] = pad([e["target_attention_mask"] for e in examples], 0)
        return batch
