"""Batches: featurised examples -> padded torch tensors (model inputs and labels only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mmxfer.kinds.base import kind_of
from mmxfer.kinds.images import default_image_preprocess, open_image
from mmxfer.tasks.base import TaskSpec

Collate = Callable[[list[dict[str, Any]]], dict[str, Any]]


def collate_fn(
    spec: TaskSpec,
    tokenizer: Any,
    *,
    image_preprocess: Callable[[Any], Any] | None = None,
    num_answers: int | None = None,
    image_features: Callable[[list[Any]], torch.Tensor] | None = None,
) -> Collate:
    """A collate function producing padded torch tensors; images of image-text tasks go through
    ``image_preprocess`` (default: :func:`~mmxfer.kinds.images.default_image_preprocess`) unless the
    features already hold ``pixel_values``, or, with ``image_features`` (a frozen tower's cached tokens of a
    list of images, :class:`mmxfer.models.image_features.FrozenImageFeatures`), become ``image_features``.
    ``num_answers``: the VQA answer vocabulary size."""
    kind = kind_of(spec)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    preprocess = image_preprocess
    kind.check_collate(num_answers)
    image_text = spec.has_image

    def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
        nonlocal preprocess
        batch: dict[str, Any] = kind.collate_inputs(examples, pad_id)
        batch.update(kind.collate_labels(examples, batch, num_answers))
        first = examples[0]
        if "pixel_values" in first:
            batch["pixel_values"] = torch.stack(
                [
                    torch.as_tensor(np.asarray(e["pixel_values"]), dtype=torch.float)
                    for e in examples
                ]
            )
        elif "image" in first and image_text and image_features is not None:
            batch["image_features"] = image_features([e["image"] for e in examples])
        elif "image" in first and image_text:
            if preprocess is None:
                preprocess = default_image_preprocess()
            batch["pixel_values"] = torch.stack(
                [preprocess(open_image(e["image"])) for e in examples]
            )
        return batch

    return collate
