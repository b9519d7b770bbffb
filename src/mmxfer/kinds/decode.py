"""Decoding shared by the kinds that predict one label per example: ids of feature rows, argmax, and the
label handling those kinds have in common (:class:`OneLabelPerExample`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mmxfer.errors import MmxferError
from mmxfer.kinds.base import LabelSpace, TaskKind
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def feature_ids(spec: TaskSpec, features: Any, raw: datasets.Dataset) -> list[str]:
    """The example id of every feature row (features can be fewer than raw rows: bad images are dropped)."""
    cols = getattr(features, "column_names", None) or []
    for col in ("example_id", "id"):
        if col in cols:
            return [str(i) for i in features[col]]
    if len(features) == len(raw):  # no id column, nothing dropped: positions are the ids
        return [str(i) for i in raw["id"]]
    raise MmxferError(
        f"{spec.name}: the features carry no example id and {len(raw) - len(features)}"
        f" example(s) were dropped, so predictions cannot be matched to examples; re-featurise "
        f"(clear $MMXFER_CACHE/features)"
    )


def best_by_id(
    spec: TaskSpec, features: Any, raw: datasets.Dataset, logits: torch.Tensor
) -> dict[str, int]:
    """The argmax class per example id; keyed by the id each feature carries, never by position, so
    examples dropped during featurisation are simply absent and nothing shifts onto the wrong example."""
    ids = feature_ids(spec, features, raw)
    best = logits.argmax(-1).tolist()
    if len(best) != len(ids):
        raise MmxferError(f"{spec.name}: {len(best)} model outputs for {len(ids)} features")
    return dict(zip(ids, best))


class OneLabelPerExample(TaskKind):
    """A kind whose gold is one label index per example (``label``), predicted as the best logit of its id."""

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {"labels": torch.as_tensor([e["labels"] for e in examples], dtype=torch.long)}

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        return best_by_id(self.spec, features, raw, outputs["logits"])

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return list(raw["label"])
