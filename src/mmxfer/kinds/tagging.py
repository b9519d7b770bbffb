"""Token tagging (POS, NER, CCG): one tag per input word, predicted on its first sub-token.

Every word is predicted, as XTREME does (``utils_preprocess.py``, ``udpos_tokenize_preprocess`` /
``panx_tokenize_preprocess``, and the re-join in ``third_party/run_tag.py``'s ``save_predictions``): each
word is tokenised on its own; a word with no piece, or with more pieces than fit, becomes the unknown token;
a sentence longer than ``max_length`` minus the tokenizer's special tokens is cut greedily at word boundaries
into chunks (a new chunk starts at the word that would overflow; no overlap), each chunk is one feature row,
and the chunks' predictions are joined back into one tag per word of the original sentence before scoring.

Feature columns: ``input_ids``, ``attention_mask``, ``labels`` (the word's tag on its FIRST sub-token, -100
elsewhere), ``word_ids`` (index of the word in the ORIGINAL sentence, -1 for special tokens), ``n_words``
(words of the original sentence) and ``example_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.catalog import KINDS
from mmxfer.errors import DataError, MmxferError
from mmxfer.kinds.base import IGNORE, Encoder, FeatureOptions, LabelSpace, Rows, TaskKind, pad
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets

CHUNKING = "xtreme-greedy-word-chunks"  # recorded in the feature cache key


def special_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's single-sequence template puts before and after the text (``<s>`` / ``</s>``)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise DataError("tagging: cannot tell the tokenizer's special tokens from the text it encodes")


def word_pieces(tokenizer: Any, words: list[str], budget: int) -> list[list[int]]:
    """Each word's sub-word ids, tokenised on its own; a word with no piece, or with more than ``budget``,
    becomes the unknown token (XTREME's rule)."""
    unk = (
        tokenizer.unk_token_id
        if tokenizer.unk_token_id is not None
        else tokenizer.convert_tokens_to_ids("<unk>")
    )
    if unk is None:
        raise DataError("tagging: the tokenizer has no unknown token for words it cannot encode")
    ids = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    return [p if 0 < len(p) <= budget else [unk] for p in ids]


def chunk_words(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Greedy word-boundary chunks ``(first word, end)`` of at most ``budget`` pieces (every word fits alone)."""
    chunks, start, used = [], 0, 0
    for i, n in enumerate(lengths):
        if used + n > budget and i > start:
            chunks.append((start, i))
            start, used = i, 0
        used += n
    chunks.append((start, len(lengths)))
    return chunks


def encode(
    rows: Rows, tokenizer: Any, max_length: int, spec: TaskSpec, tag_index: dict[str, int]
) -> dict[str, list[Any]]:
    prefix, suffix = special_frame(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise DataError(f"task {spec.name!r}: max_length {max_length} leaves no room for words")
    out: dict[str, list[Any]] = {
        "input_ids": [],
        "attention_mask": [],
        "labels": [],
        "word_ids": [],
        "n_words": [],
        "example_id": [],
    }
    flat = [w for words in rows["tokens"] for w in words]
    pieces_flat = word_pieces(tokenizer, flat, budget)
    offset = 0
    for ex_id, words, tags in zip(rows["id"], rows["tokens"], rows["tags"]):
        pieces = pieces_flat[offset : offset + len(words)]
        offset += len(words)
        labels_of = []
        for tag in tags:
            if tag not in tag_index:
                raise DataError(
                    f"task {spec.name!r}: tag {tag!r} is not one of its labels "
                    f"({', '.join(list(tag_index)[:10])}...)"
                )
            labels_of.append(tag_index[tag])
        for first, end in chunk_words([len(p) for p in pieces], budget):
            ids, labels, wids = list(prefix), [IGNORE] * len(prefix), [-1] * len(prefix)
            for w in range(first, end):
                ids += pieces[w]
                labels += [labels_of[w]] + [IGNORE] * (len(pieces[w]) - 1)
                wids += [w] * len(pieces[w])
            ids += suffix
            labels += [IGNORE] * len(suffix)
            wids += [-1] * len(suffix)
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["labels"].append(labels)
            out["word_ids"].append(wids)
            out["n_words"].append(len(words))
            out["example_id"].append(ex_id)
    return out


def tag_predictions(
    features: datasets.Dataset, predictions: Any, label_names: Sequence[str]
) -> dict[str, list[str]]:
    """Word-level tags per example id from token-level predictions (ids [N, L] or logits [N, L, C]) of its
    chunks: each word takes the prediction at its FIRST sub-token; the chunks of one sentence are joined."""
    preds = np.asarray(predictions) if not isinstance(predictions, list) else predictions
    if isinstance(preds, np.ndarray) and preds.ndim == 3:
        preds = preds.argmax(-1)
    ids = features["example_id"] if "example_id" in features.column_names else features["id"]
    tags_of: dict[str, list[str | None]] = {}
    for i, (ex_id, wids, n_words) in enumerate(zip(ids, features["word_ids"], features["n_words"])):
        tags = tags_of.setdefault(str(ex_id), [None] * n_words)
        row, prev = preds[i], None
        for k, w in enumerate(wids):
            if w >= 0 and w != prev and k < len(row):
                tags[w] = label_names[int(row[k])]
            prev = w
    out: dict[str, list[str]] = {}
    for ex_id, tags in tags_of.items():
        if any(t is None for t in tags):
            missing = sum(t is None for t in tags)
            raise MmxferError(
                f"tagging: {missing} word(s) of example {ex_id!r} got no prediction; re-featurise "
                f"(clear $MMXFER_CACHE/features)"
            )
        out[ex_id] = tags  # type: ignore[assignment]
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
            raise DataError(
                f"task {self.spec.name!r}: no tag set; pass label_names (e.g. from the training file)"
            )

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"labels": list(self.tags(space)), "chunking": CHUNKING}

    def kept_columns(self, columns: Sequence[str]) -> list[str]:
        return []  # rows are chunks of sentences; each carries its ``example_id``

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        index = {t: i for i, t in enumerate(self.tags(space))}
        return lambda rows: encode(rows, tokenizer, options.max_length, self.spec, index)

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {"labels": pad([e["labels"] for e in examples], IGNORE, batch["input_ids"].shape[1])}

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        return tag_predictions(features, outputs["logits"].float().numpy(), self.tags(space))

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["tags"])
