"""Captioning as masked language modelling over the caption (conditioned on the image, or not for the
text twin); statically masked with a per-example seed, so features are cacheable and repeatable.

A task whose captions come from a closed language (``spec.closed_vocabulary``: the starter world's
captions use 25 pieces of the trunk's 250k) predicts a masked piece among the pieces of its training captions
(``caption_vocabulary`` in the label space): a softmax over that vocabulary, not the trunk's whole one. That is a
different objective - the whole-vocabulary softmax also learns to rule out the pieces the language never uses -
and costs 25 instead of 250k decoder rows per masked token."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.catalog import KINDS
from mmxfer.errors import DataError
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

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def mask_tokens(
    ids: list[int],
    special: set[int],
    rng: np.random.Generator,
    vocab_size: int,
    mask_id: int,
    probability: float,
) -> tuple[list[int], list[int]]:
    """BERT masking of one row: each non-special token is chosen with ``probability`` (at least one);
    a chosen token becomes the mask (80%), a random token (10%) or stays (10%)."""
    ids = list(ids)
    labels = [IGNORE] * len(ids)
    candidates = [k for k, t in enumerate(ids) if t not in special]
    if not candidates:
        return ids, labels
    chosen = [k for k in candidates if rng.random() < probability] or [
        candidates[int(rng.integers(len(candidates)))]
    ]
    for k in chosen:
        labels[k] = ids[k]
        r = rng.random()
        if r < 0.8:
            ids[k] = mask_id
        elif r < 0.9:
            ids[k] = int(rng.integers(vocab_size))
    return ids, labels


def encode(
    rows: Rows, tokenizer: Any, max_length: int, seed: int, probability: float
) -> dict[str, list[Any]]:
    enc = tokenize(tokenizer, rows["caption"], truncation=True, max_length=max_length)
    special = set(tokenizer.all_special_ids)
    if tokenizer.mask_token_id is None:
        raise DataError("captioning (masked LM) needs a tokenizer with a mask token")
    ids, labels = [], []
    for ex_id, row in zip(rows["id"], enc["input_ids"]):
        rng = np.random.default_rng(
            int(hashlib.sha256(f"{seed}:{ex_id}".encode()).hexdigest()[:15], 16)
        )
        masked, lab = mask_tokens(
            row, special, rng, len(tokenizer), tokenizer.mask_token_id, probability
        )
        ids.append(masked)
        labels.append(lab)
    return {"input_ids": ids, "attention_mask": enc["attention_mask"], "mlm_labels": labels}


@KINDS.register("captioning")
class Captioning(TaskKind):
    name = "captioning"
    dev_metric = "neg_loss"  # no decoded predictions: model selection uses minus the dev loss

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"mlm": [options.mlm_probability, options.seed]}

    def space_from_features(self, features: Any, space: LabelSpace) -> dict[str, Any]:
        """With a closed vocabulary: every piece of the training captions as tokenised (before masking; the
        sentence start and end tokens included)."""
        if not self.spec.closed_vocabulary:
            return dict(space)
        pieces: set[int] = set()
        for ids, labels in zip(features["input_ids"], features["mlm_labels"]):
            pieces.update(lab if lab != IGNORE else tok for tok, lab in zip(ids, labels))
        return {**space, "caption_vocabulary": sorted(pieces)}

    def head_options(self, space: LabelSpace) -> dict[str, Any]:
        vocabulary = space.get("caption_vocabulary")
        return {"vocabulary": list(vocabulary)} if vocabulary else {}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(
            rows, tokenizer, options.max_length, options.seed, options.mlm_probability
        )

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {
            "mlm_labels": pad(
                [e["mlm_labels"] for e in examples], IGNORE, batch["input_ids"].shape[1]
            )
        }

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["caption"])
