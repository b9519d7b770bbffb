"""The seam between task datasets and the loop: a task's featurised data, batches and predictions.

Featurisation, collation, decoding, golds and label spaces belong to the task's kind
(:mod:`mmxfer.kinds`); this module holds what the loop adds: lengths for length grouping,
prediction rows in example order, and a multi-task view of several featurised datasets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.kinds import FeatureOptions, LabelSpace, TaskKind, collate_fn, featurize, kind_of
from mmxfer.kinds.progress import progress_bars
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets

log = logging.getLogger(__name__)

#: splits smaller than this are featurised in memory every time: writing and re-reading the feature cache
#: costs more than tokenising them (about 20 ms a split against 10 ms for 100 rows on one CPU core)
MIN_CACHED_ROWS = 200


@dataclass
class TaskData:
    spec: TaskSpec
    raw: datasets.Dataset  # the canonical-schema dataset
    features: Any  # indexable featurised examples
    collate: Callable[[list[Any]], dict[str, Any]]
    lengths: list[int] | None
    num_labels: int | None
    # answer_vocab / label_names to reuse on dev, test
    label_space: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0  # training examples the kind left out (TaskKind.trainable), told in the run's log and metrics

    @property
    def kind(self) -> TaskKind:
        return kind_of(self.spec)


def subset(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    """A training cap: ``limit`` examples drawn with a fixed seed, in their original order: every arm and seed
    sees the same subset, and it is not just the head of a file sorted by label."""
    if limit is None or len(ds) <= limit:
        return ds
    return ds.select(sorted(np.random.default_rng(0).permutation(len(ds))[:limit].tolist()))


def dev_subset(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    """A dev cap: the first ``limit`` examples, as jiant's ``eval_subset_num`` takes them for model selection
    (nyu-mll/jiant jiant/proj/main/runner.py:195,213 and jiant/shared/caching.py:271-272: ``indices[:subset_num]``
    of the unshuffled validation cache)."""
    if limit is None or len(ds) <= limit:
        return ds
    return ds.select(range(limit))


def capped(ds: datasets.Dataset, split: str, limit: int | None) -> datasets.Dataset:
    """``ds`` under its cap: the training split by :func:`subset`, any other split by :func:`dev_subset`."""
    return (subset if split == "train" else dev_subset)(ds, limit)


def _lengths(features: Any) -> list[int] | None:
    cols = getattr(features, "column_names", None)
    if not cols or "input_ids" not in cols:
        return None
    return [
        len(x) if not (x and isinstance(x[0], list)) else sum(len(y) for y in x)
        for x in features["input_ids"]
    ]


def _collate(
    spec: TaskSpec,
    tokenizer: Any,
    space: LabelSpace,
    image_preprocess: Any,
    image_features: Any = None,
) -> Callable[[list[Any]], dict[str, Any]]:
    vocab = space.get("answer_vocab")
    return collate_fn(
        spec,
        tokenizer,
        image_preprocess=image_preprocess,
        num_answers=len(vocab) if vocab else None,
        image_features=image_features,
    )


def with_text_prefix(ds: datasets.Dataset, prefix: str) -> datasets.Dataset:
    """``ds`` with ``prefix`` put before its input sentences (``text_a`` and, where given, ``text_b``)."""
    if not prefix:
        return ds

    def add(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {
            k: [t if t is None else prefix + t for t in batch[k]]
            for k in ("text_a", "text_b")
            if k in batch
        }

    with progress_bars(False):
        return ds.map(add, batched=True, keep_in_memory=True, load_from_cache_file=False)


def task_data(
    spec: TaskSpec,
    ds: datasets.Dataset,
    tokenizer: Any,
    max_length: int,
    *,
    split: str,
    lang: str,
    space: dict[str, Any] | None = None,
    image_preprocess: Any = None,
    on_bad_image: str = "skip",
    seed: int = 0,
) -> TaskData:
    """Featurise ``ds`` for ``spec`` with its kind (cached by content hash from :data:`MIN_CACHED_ROWS` rows).

    ``space``: the label space of the training data (answer vocabulary, tag set); None = derive it
    from ``ds`` (do that for the training split only). On the ``train`` split, the examples the kind cannot
    learn from are left out (:meth:`~mmxfer.kinds.base.TaskKind.trainable`), logged in one line and counted in
    ``skipped``.
    """
    kind = kind_of(spec)
    skipped = 0
    if split == "train":
        kept, reason = kind.trainable(ds)
        skipped = len(ds) - len(kept)
        if skipped:
            log.warning(
                "%s train: %d of %d example(s) left out: %s", spec.name, skipped, len(ds), reason
            )
        ds = kept
    derive = space is None
    space = kind.label_space(ds) if derive else space
    options = FeatureOptions(
        max_length=max_length,
        split=split,
        lang=lang,
        on_bad_image=on_bad_image,
        seed=seed,
        use_cache=len(ds) >= MIN_CACHED_ROWS,
    )
    features = featurize(spec, ds, tokenizer, options, space=space)
    if derive:
        space = kind.space_from_features(features, space)
    return TaskData(
        spec,
        ds,
        features,
        _collate(spec, tokenizer, space, image_preprocess),
        _lengths(features),
        kind.num_labels(space),
        space,
        skipped,
    )


def with_images(data: TaskData, transform: Any, tokenizer: Any, features: Any = None) -> TaskData:
    """Rebuild ``data``'s collate so images go through the vision tower's own preprocessing; with ``features``
    (:class:`mmxfer.models.image_features.FrozenImageFeatures` of a frozen tower) the batches carry the tower's
    tokens of each image instead, all computed here, once per distinct image."""
    if features is not None and "image" in getattr(data.features, "column_names", ()):
        features.prepare(data.features["image"])
    data.collate = _collate(data.spec, tokenizer, data.label_space, transform, features)
    return data


def decode(data: TaskData, outputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Per-example predictions keyed by example id, from gathered model outputs (in feature order).

    Keyed by the id each feature carries, never by position: examples dropped during featurisation
    (corrupt or missing images) are simply absent, and nothing shifts onto the wrong example.
    """
    return data.kind.decode(data.features, data.raw, outputs, data.label_space)


def prediction_rows(
    data: TaskData, preds: dict[str, Any], gold: list[Any] | None = None, *, warn: bool = True
) -> list[dict[str, Any]]:
    """``{"id", "pred", "gold"}`` rows in ``data.raw`` order for every example that has a prediction;
    examples dropped during featurisation (bad images, ``on_bad_image: skip``) are left out, with a warning
    (unless ``warn`` is False). ``gold``: :func:`golds` of ``data``, when the caller already has it."""
    gold = golds(data) if gold is None else gold
    rows = [
        {"id": i, "pred": preds[str(i)], "gold": g}
        for i, g in zip(data.raw["id"], gold)
        if str(i) in preds
    ]
    if warn and len(rows) < len(data.raw):
        log.warning(
            "%s: %d of %d example(s) have no prediction (dropped during featurisation, e.g. bad images); "
            "scored without them",
            data.spec.name,
            len(data.raw) - len(rows),
            len(data.raw),
        )
    return rows


def golds(data: TaskData) -> list[Any]:
    """The gold values the task's metric compares predictions against, per example."""
    return data.kind.golds(data.raw)


class MultiTaskDataset(torch.utils.data.Dataset):
    """Several featurised datasets behind one index space; ``(task, i)`` items keep their task."""

    def __init__(self, parts: Sequence[TaskData]) -> None:
        self.parts = list(parts)
        self.offsets = [0]
        for p in self.parts:
            self.offsets.append(self.offsets[-1] + len(p.features))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> tuple[int, Any]:
        for t in range(len(self.parts)):
            if index < self.offsets[t + 1]:
                return t, self.parts[t].features[index - self.offsets[t]]
        raise IndexError(index)

    def collate(self, items: list[tuple[int, Any]]) -> dict[str, Any]:
        task = items[0][0]
        if any(t != task for t, _ in items):  # the sampler never mixes tasks in a batch
            raise ValueError("a multi-task batch mixes tasks")
        batch = self.parts[task].collate([x for _, x in items])
        batch["task"] = self.parts[task].spec.name
        return batch


class MultiTaskModel(torch.nn.Module):
    """One shared trunk, one head per task: ``forward(task=..., **batch)`` routes to that task's model."""

    def __init__(self, models: dict[str, torch.nn.Module]) -> None:
        super().__init__()
        self.models = torch.nn.ModuleDict({k.replace(".", "_"): v for k, v in models.items()})

    def forward(self, task: str, **batch: Any) -> dict[str, torch.Tensor]:
        return self.models[task.replace(".", "_")](**batch)
