"""Visual question answering (and its text twin): a question [+ image or scene text] -> an answer from
a fixed answer vocabulary, trained on VQAv2 soft scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mmxfer.catalog import KINDS
from mmxfer.errors import DataError
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, TaskKind, tokenize
from mmxfer.kinds.decode import best_by_id
from mmxfer.tasks.answers import build_answer_vocab, sparse_targets

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def encode(
    rows: Rows, tokenizer: Any, max_length: int, answer_index: dict[str, int]
) -> dict[str, list[Any]]:
    if "context" in rows:  # text twin: question first, so truncation cuts the captions
        enc = tokenize(
            tokenizer,
            rows["question"],
            rows["context"],
            truncation="only_second",
            max_length=max_length,
        )
    else:
        enc = tokenize(tokenizer, rows["question"], truncation=True, max_length=max_length)
    ids, scores = (
        zip(*(sparse_targets(a, answer_index) for a in rows["answers"]))
        if rows["answers"]
        else ((), ())
    )
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "answer_ids": list(ids),
        "answer_scores": list(scores),
    }


@KINDS.register("vqa")
class VQA(TaskKind):
    name = "vqa"

    def label_space(self, train_raw: datasets.Dataset) -> dict[str, Any]:
        return {"answer_vocab": build_answer_vocab(train_raw["answers"])}

    def num_labels(self, space: LabelSpace) -> int | None:
        vocab = space.get("answer_vocab")
        return len(vocab) if vocab else None

    def check(self, space: LabelSpace) -> None:
        if not space.get("answer_vocab"):
            raise DataError(
                f"task {self.spec.name!r}: featurize needs answer_vocab (build it from the training "
                f"answers with mmxfer.tasks.answers.build_answer_vocab)"
            )

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        index = {a: i for i, a in enumerate(space["answer_vocab"])}
        return lambda rows: encode(rows, tokenizer, options.max_length, index)

    def check_collate(self, num_answers: int | None) -> None:
        if not num_answers:
            raise DataError(
                f"task {self.spec.name!r}: collate_fn needs num_answers (the answer vocabulary size)"
            )

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        """The dense soft-score vector over the answer vocabulary."""
        labels = torch.zeros((len(examples), num_answers), dtype=torch.float)
        for i, e in enumerate(examples):
            if e["answer_ids"]:
                labels[i, torch.as_tensor(e["answer_ids"])] = torch.as_tensor(e["answer_scores"])
        return {"labels": labels}

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        vocab = space["answer_vocab"]
        return {
            i: vocab[k] for i, k in best_by_id(self.spec, features, raw, outputs["logits"]).items()
        }

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["answers"])
