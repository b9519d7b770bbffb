"""Token tagging (POS, NER, CCG): one tag per input word, predicted on its first sub-token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.catalog import KINDS
from mmxfer.errors import DataError
from mmxfer.kinds.base import IGNORE, Encoder, FeatureOptions, LabelSpace, Rows, TaskKind, pad
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def encode(rows: Rows, tokenizer: Any, max_length: int, spec: TaskSpec, tag_index: dict[str, int]
           ) -> dict[str, list[Any]]:
    enc = tokenizer(rows["tokens"], is_split_into_words=True, truncation=True, max_length=max_length,
                    return_token_type_ids=False)
    labels, word_ids = [], []
    for i, tags in enumerate(rows["tags"]):
        wids = enc.word_ids(i)
        row, prev = [], None
        for w in wids:
            if w is None or w == prev:
                row.append(IGNORE)
            else:
                tag = tags[w]
                if tag not in tag_index:
                    raise DataError(f"task {spec.name!r}: tag {tag!r} is not one of its labels "
                                    f"({', '.join(list(tag_index)[:10])}...)")
                row.append(tag_index[tag])
            prev = w
        labels.append(row)
        word_ids.append([-1 if w is None else w for w in wids])
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
            "word_ids": word_ids, "n_words": [len(t) for t in rows["tokens"]]}


def tag_predictions(features: datasets.Dataset, predictions: Any, label_names: Sequence[str], *,
                    default: str | None = None) -> dict[str, list[str]]:
    """Word-level tags per example id from token-level predictions (ids [N, L] or logits [N, L, C]).

    Each word takes the prediction at its FIRST sub-token; words cut off by truncation get ``default``
    (``label_names[0]``, "O" for PAN-X), so every example has one tag per input word.
    """
    preds = np.asarray(predictions) if not isinstance(predictions, list) else predictions
    if isinstance(preds, np.ndarray) and preds.ndim == 3:
        preds = preds.argmax(-1)
    default = label_names[0] if default is None else default
    out: dict[str, list[str]] = {}
    for i, (ex_id, wids, n_words) in enumerate(zip(features["id"], features["word_ids"], features["n_words"])):
        tags = [default] * n_words
        row, prev = preds[i], None
        for k, w in enumerate(wids):
            if w >= 0 and w != prev and k < len(row):
                tags[w] = label_names[int(row[k])]
            prev = w
        out[ex_id] = tags
    return out


@KINDS.register("tagging")
class Tagging(TaskKind):
    name = "tagging"

    def tags(self, space: LabelSpace) -> tuple[str, ...]:
        """The tag set: the training data's (``label_names`` in ``space``) or the spec's."""
        return tuple(space.get("label_names") or self.spec.label_names)

    def label_space(self, train_raw: datasets.Dataset) -> dict[str, Any]:
        if self.spec.label_names:
            return {}
        return {"label_names": sorted({t for tags in train_raw["tags"] for t in tags})}

    def num_labels(self, space: LabelSpace) -> int | None:
        return len(self.tags(space)) or None

    def check(self, space: LabelSpace) -> None:
        if not self.tags(space):
            raise DataError(f"task {self.spec.name!r}: no tag set; pass label_names (e.g. from the training file)")

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"labels": list(self.tags(space))}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        index = {t: i for i, t in enumerate(self.tags(space))}
        return lambda rows: encode(rows, tokenizer, options.max_length, self.spec, index)

    def collate_labels(self, examples: list[dict[str, Any]], batch: dict[str, Any],
                       num_answers: int | None) -> dict[str, torch.Tensor]:
        return {"labels": pad([e["labels"] for e in examples], IGNORE, batch["input_ids"].shape[1])}

    def decode(self, features: Any, raw: datasets.Dataset, outputs: dict[str, torch.Tensor],
               space: LabelSpace) -> dict[str, Any]:
        return tag_predictions(features, outputs["logits"].float().numpy(), self.tags(space))

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["tags"])
