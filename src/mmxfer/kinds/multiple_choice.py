"""Multiple choice: a context/question with C candidate endings -> the index of the right one."""

from __future__ import annotations

from typing import Any

import torch

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, tokenize
from mmxfer.kinds.decode import OneLabelPerExample


def encode(rows: Rows, tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    firsts, seconds, sizes = [], [], []
    for ctx, q, choices in zip(rows["context"], rows["question"], rows["choices"]):
        for ch in choices:
            if ctx:
                firsts.append(ctx)
                seconds.append(f"{q} {ch}".strip())
            else:
                firsts.append(q)
                seconds.append(ch)
        sizes.append(len(choices))
    enc = tokenize(tokenizer, firsts, seconds, truncation=True, max_length=max_length)
    ids, mask, k = [], [], 0
    for n in sizes:
        ids.append(enc["input_ids"][k : k + n])
        mask.append(enc["attention_mask"][k : k + n])
        k += n
    return {"input_ids": ids, "attention_mask": mask, "labels": rows["label"]}


@KINDS.register("multiple_choice")
class MultipleChoice(OneLabelPerExample):
    name = "multiple_choice"
    per_choice = True

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length)

    def collate_inputs(
        self, examples: list[dict[str, Any]], pad_id: int
    ) -> dict[str, torch.Tensor]:
        """[N, C, L] ids and mask (C: the most choices of the batch, L: the longest choice)."""
        n_choices = max(len(e["input_ids"]) for e in examples)
        length = max(len(c) for e in examples for c in e["input_ids"])
        ids = torch.full((len(examples), n_choices, length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), n_choices, length), dtype=torch.long)
        for i, e in enumerate(examples):
            for j, c in enumerate(e["input_ids"]):
                ids[i, j, : len(c)] = torch.as_tensor(c)
                mask[i, j, : len(c)] = 1
        return {"input_ids": ids, "attention_mask": mask}
