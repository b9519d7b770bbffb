"""The seam between task datasets and the loop: featurise, collate, count labels, decode outputs.

Featurisation and post-processing belong to :mod:`mmxfer.tasks.featurize` (the tasks package);
this module only calls it and adds what the loop needs (lengths for length grouping, a
multi-task view of several featurised datasets).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmxfer.errors import MmxferError


def featurizer() -> Any:
    try:
        return importlib.import_module("mmxfer.tasks.featurize")
    except ModuleNotFoundError as exc:
        if exc.name == "mmxfer.tasks.featurize":
            raise MmxferError("training needs mmxfer.tasks.featurize, which this version does not have") from None
        raise


@dataclass
class TaskData:
    spec: Any
    raw: Any  # the canonical-schema dataset
    features: Any  # indexable featurised examples
    collate: Callable[[list[Any]], dict[str, Any]]
    lengths: list[int] | None
    num_labels: int | None


def subset(ds: Any, limit: int | None) -> Any:
    """The first ``limit`` examples (deterministic, so every arm and seed sees the same subset)."""
    if limit is None or len(ds) <= limit:
        return ds
    return ds.select(range(limit))


def _lengths(features: Any) -> list[int] | None:
    try:
        cols = features.column_names
    except AttributeError:
        return None
    if "length" in cols:
        return list(features["length"])
    if "input_ids" in cols:
        return [len(x) if not isinstance(x[0], list) else sum(len(y) for y in x) for x in features["input_ids"]]
    return None


def task_data(spec: Any, ds: Any, tokenizer: Any, max_length: int, **kwargs: Any) -> TaskData:
    """Featurise ``ds`` for ``spec`` with the tasks package's featuriser."""
    fz = featurizer()
    features = fz.featurize(spec, ds, tokenizer, max_length=max_length, **kwargs)
    collate = fz.collate_fn(spec, tokenizer)
    if hasattr(fz, "num_labels"):
        num_labels = fz.num_labels(spec, features)
    else:
        num_labels = len(spec.label_names) or None
    return TaskData(spec, ds, features, collate, _lengths(features), num_labels)


def decode(data: TaskData, outputs: dict[str, torch.Tensor]) -> list[Any]:
    """Per-example predictions from gathered model outputs (in dataset order)."""
    fz = featurizer()
    if hasattr(fz, "postprocess"):
        return list(fz.postprocess(data.spec, data.raw, data.features, outputs))
    if data.spec.kind in ("classification", "multiple_choice"):
        return outputs["logits"].argmax(-1).tolist()
    raise MmxferError(f"no post-processing for task kind {data.spec.kind!r} (mmxfer.tasks.featurize.postprocess)")


def golds(data: TaskData) -> list[Any]:
    """The gold values metrics compare predictions against, per example."""
    fz = featurizer()
    if hasattr(fz, "golds"):
        return list(fz.golds(data.spec, data.raw))
    col = {"classification": "label", "multiple_choice": "label", "span_qa": "answers", "tagging": "tags",
           "vqa": "answers", "captioning": "caption"}[data.spec.kind]
    return list(data.raw[col])


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
