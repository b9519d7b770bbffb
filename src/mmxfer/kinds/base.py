"""The task-kind adapter interface, the featurisation options, and the one lookup by ``spec.kind``.

A :class:`TaskKind` is bound to one :class:`~mmxfer.tasks.base.TaskSpec` and owns everything that
differs between kinds: the label space derived from training data, the encoder that turns a batch
of canonical rows into model inputs, the label tensors of a collated batch, the decoding of model
outputs into per-example predictions keyed by example id, the golds, the dev metric that
model selection uses, and the name of the phase-3 runner that trains a target of the kind
(:data:`mmxfer.catalog.RUNNERS`). Kinds register in :data:`mmxfer.catalog.KINDS` under the kind's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from mmxfer import catalog
from mmxfer.errors import MmxferError
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets

IGNORE = -100  # label value the losses skip

Rows = dict[
    str, list[Any]
]  # a batch of canonical rows: column -> values (``datasets`` batched map)
Encoder = Callable[[Rows], dict[str, list[Any]]]
LabelSpace = Mapping[
    str, Any
]  # "answer_vocab" (VQA) or "label_names" (tagging), derived from training data
DevMetric = Literal["decoded", "neg_loss"]


@dataclass(frozen=True)
class FeatureOptions:
    """How :func:`mmxfer.kinds.featurize.featurize` turns a canonical dataset into model inputs.

    Every field that changes the features is part of the cache key; ``cache_dir``, ``use_cache``
    and ``batch_size`` only change where and how fast they are made.
    """

    max_length: int
    split: str = "train"
    lang: str | None = None
    doc_stride: int = 128  # span QA: context tokens between the starts of consecutive windows (XTREME --doc_stride)
    on_bad_image: str = "skip"  # or "fail"
    mlm_probability: float = 0.15  # captioning: share of tokens masked
    seed: int = 0  # captioning: masking seed
    image_preprocess: Callable[[Any], Any] | None = (
        None  # given: pixel_values are stored in the features
    )
    cache_dir: str | os.PathLike | None = None  # default $MMXFER_CACHE/features
    use_cache: bool = True
    batch_size: int = 1000  # rows per encoder call


def tokenize(tokenizer: Any, *args: Any, **kwargs: Any) -> Any:
    """The tokenizer's encoding without token type ids (XLM-R has none)."""
    return tokenizer(*args, return_token_type_ids=False, **kwargs)


def pad(rows: list[list[int]], value: int, length: int | None = None) -> torch.Tensor:
    """``rows`` as one [N, length] long tensor, right-padded with ``value`` (length: the longest row)."""
    length = length or max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


class TaskKind:
    """What one kind of task does between canonical rows and per-example predictions (see the module doc)."""

    name: ClassVar[str] = ""
    dev_metric: ClassVar[DevMetric] = (
        "decoded"  # "neg_loss": minus the mean dev loss (no decoded predictions)
    )
    windowed: ClassVar[bool] = (
        False  # one example -> several feature rows (span QA's doc-stride windows)
    )
    per_choice: ClassVar[bool] = (
        False  # one example -> one sequence per answer choice (multiple choice)
    )
    trunk_only: ClassVar[bool] = (
        False  # evaluated on the trunk's representations directly: no head, no phase 3
    )
    # the phase-3 recipe that trains and evaluates a target of this kind: a name in catalog.RUNNERS
    # (mmxfer.train.runners; "finetune": the trunk with the kind's head, then zero-shot prediction)
    runner: ClassVar[str] = "finetune"
    generates: ClassVar[bool] = (
        False  # predictions are generated token sequences; labels: the target's ids
    )

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r})"

    # --- model ------------------------------------------------------------------------------------

    @property
    def head(self) -> str:
        """The head built for the task: its declared head, else the head named like the kind."""
        return self.spec.head or self.name

    # --- label space --------------------------------------------------------------------------------

    def label_space(self, train_raw: datasets.Dataset) -> dict[str, Any]:
        """The label vocabulary of the task's head, derived once from its training data."""
        return {}

    def num_labels(self, space: LabelSpace) -> int | None:
        """The head's output size, or None when the head has no label dimension."""
        return None

    def space_from_features(self, features: Any, space: LabelSpace) -> dict[str, Any]:
        """The label space completed from the featurised training data (what only token ids show)."""
        return dict(space)

    def head_options(self, space: LabelSpace) -> dict[str, Any]:
        """Arguments of the task's head that come from its label space."""
        return {}

    def trainable(self, raw: datasets.Dataset) -> tuple[datasets.Dataset, str]:
        """The training examples the kind can learn from, and why any others were left out ("" when none were)."""
        return raw, ""

    # --- encode -------------------------------------------------------------------------------------

    def check(self, space: LabelSpace) -> None:
        """Fail before featurising when the label space lacks what the encoder needs."""

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        """Kind-specific entries of the cache key's ``extra`` (``labels``, ``mlm``)."""
        return {}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        raise NotImplementedError(f"{type(self).__name__}.encoder")

    def kept_columns(self, columns: Sequence[str]) -> list[str]:
        """Raw columns kept next to the features (none for windowed kinds: rows are windows, not examples)."""
        return [] if self.windowed else [c for c in ("id", "image") if c in columns]

    # --- collate ------------------------------------------------------------------------------------

    def check_collate(self, num_answers: int | None) -> None:
        """Fail when building a collate function that could not make the kind's labels."""

    def collate_inputs(
        self, examples: list[dict[str, Any]], pad_id: int
    ) -> dict[str, torch.Tensor]:
        return {
            "input_ids": pad([e["input_ids"] for e in examples], pad_id),
            "attention_mask": pad([e["attention_mask"] for e in examples], 0),
        }

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {}

    # --- decode -------------------------------------------------------------------------------------

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        """Per-example predictions keyed by example id, from gathered model outputs in feature order."""
        raise MmxferError(f"no prediction decoding for task kind {self.name!r}")

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        """The gold values the task's metric compares predictions against, per example."""
        raise MmxferError(f"{self.spec.name}: task kind {self.name!r} has no per-example golds")

    def dev_metric_name(self) -> str:
        """The name model selection records for this task's dev metric."""
        if self.dev_metric == "neg_loss":
            return f"{self.spec.name}:neg_loss"
        return (
            f"{self.spec.name}:{self.spec.metric}.{catalog.METRICS.get(self.spec.metric).primary}"
        )


def kind_of(spec: TaskSpec) -> TaskKind:
    """The adapter of ``spec``'s kind (the one place that looks a kind up by ``spec.kind``)."""
    return catalog.KINDS.get(spec.kind)(spec)
