"""Translation pairs (``source`` -> ``target``, English): encoded for an encoder-decoder
(:mod:`mmxfer.models.seq2seq`), decoded from the token ids ``generate`` returns.

Features: ``input_ids``/``attention_mask`` of the source; ``labels`` = the target's token ids without its
leading start token (the decoder is fed the start token and predicts the rest, end token included). A
batch's ``labels`` are right-padded with -100. Predictions are hypothesis strings keyed by example id; golds
are the English references.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from mmxfer.catalog import KINDS
from mmxfer.errors import MmxferError
from mmxfer.kinds.base import (
    IGNORE,
    Encoder,
    FeatureOptions,
    LabelSpace,
    Rows,
    TaskKind,
    pad,
    tokenize,
)
from mmxfer.kinds.decode import feature_ids

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def encode(rows: Rows, tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    src = tokenize(tokenizer, rows["source"], truncation=True, max_length=max_length)
    trg = tokenize(tokenizer, rows["target"], truncation=True, max_length=max_length + 1)
    return {
        "input_ids": src["input_ids"],
        "attention_mask": src["attention_mask"],
        "labels": [ids[1:] for ids in trg["input_ids"]],
    }


@KINDS.register("translation")
class Translation(TaskKind):
    name = "translation"
    trunk_only = False
    runner = (
        "translation"  # an encoder-decoder on one pair, in two stages (mmxfer.train.translation)
    )
    generates = True

    @property
    def head(self) -> str:
        return "seq2seq"  # not a head on the trunk: the trunk becomes the encoder of an encoder-decoder

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"labels": "target-after-start"}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length)

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {"labels": pad([e["labels"] for e in examples], IGNORE)}

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        raise MmxferError(
            f"{self.spec.name}: translations are decoded from generated token ids "
            f"(Translation.hypotheses), not from a forward pass"
        )

    def hypotheses(
        self, features: Any, raw: datasets.Dataset, texts: Sequence[str]
    ) -> dict[str, str]:
        """Hypotheses keyed by example id; ``texts`` are the decoded generations in feature order."""
        ids = feature_ids(self.spec, features, raw)
        if len(ids) != len(texts):
            raise MmxferError(
                f"{self.spec.name}: {len(texts)} generated sequences for {len(ids)} features"
            )
        return {i: t.strip() for i, t in zip(ids, texts)}

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["target"])
