"""Bitext alignment as an intermediate task: each sentence and its translation, encoded apart by the trunk and
pulled together against the other pairs of the batch (:class:`mmxfer.models.heads.BitextContrastiveHead`). A
spec's ``text_prefix`` goes before both sides (e5's ``query: ``, as the starter's retrieval reads them)."""

from __future__ import annotations

from typing import Any

import torch

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, TaskKind, pad, tokenize


def encode(rows: Rows, tokenizer: Any, max_length: int, prefix: str = "") -> dict[str, list[Any]]:
    """``source`` as the inputs, ``target`` as ``target_*``."""
    src = tokenize(
        tokenizer, [prefix + t for t in rows["source"]], truncation=True, max_length=max_length
    )
    trg = tokenize(
        tokenizer, [prefix + t for t in rows["target"]], truncation=True, max_length=max_length
    )
    return {
        "input_ids": src["input_ids"],
        "attention_mask": src["attention_mask"],
        "target_input_ids": trg["input_ids"],
        "target_attention_mask": trg["attention_mask"],
    }


@KINDS.register("bitext")
class Bitext(TaskKind):
    name = "bitext"
    dev_metric = "neg_loss"  # no decoded predictions: the contrastive loss on dev

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"prefix": self.spec.text_prefix}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        prefix = self.spec.text_prefix
        return lambda rows: encode(rows, tokenizer, options.max_length, prefix)

    def collate_inputs(
        self, examples: list[dict[str, Any]], pad_id: int
    ) -> dict[str, torch.Tensor]:
        batch = super().collate_inputs(examples, pad_id)
        batch["target_input_ids"] = pad([e["target_input_ids"] for e in examples], pad_id)
        batch["target_attention_mask"] = pad([e["target_attention_mask"] for e in examples], 0)
        return batch
