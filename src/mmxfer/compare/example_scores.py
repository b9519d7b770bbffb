"""Per-example scores from stored predictions, for the bootstrap.

A predictions file ``predictions/<task>/<split>-<lang>.jsonl`` has rows ``{id, pred, gold}``.
Metrics that are means over examples (accuracy, exact match, per-question F1) are split into
per-example scores once, so that every bootstrap resample is a matrix product. Corpus-level
metrics that register per-example sufficient statistics (chunk F1, BUCC pair F1, chrF++, spBLEU) are resampled
the same way on those statistics; any other corpus-level metric is recomputed on every resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mmxfer import catalog
from mmxfer.errors import DataError, UnknownNameError
from mmxfer.evaluation.scoring import metric_params
from mmxfer.runs.store import read_predictions

ACCURACY_NAMES = frozenset({"accuracy", "acc"})


@dataclass(frozen=True)
class Scorer:
    """How one (task, metric) is scored from predictions."""

    name: str
    corpus_level: bool
    fn: Callable[[Sequence[Any], Sequence[Any]], float]  # golds, preds -> score (0-100)
    stats: Callable[[Sequence[Any], Sequence[Any]], np.ndarray] | None = (
        None  # golds, preds -> (n, d)
    )
    from_stats: Callable[[np.ndarray], np.ndarray] | None = None  # summed (..., d) -> scores (...)


def task_attr(task: str, attr: str) -> Any:
    """An attribute of the registered task spec (``metric``, ``category``, ...), or None for an unknown task."""
    return getattr(catalog.find_task(task), attr, None)


def _accuracy(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    return 100.0 * float(np.mean([g == p for g, p in zip(golds, preds)])) if golds else float("nan")


def scorer_for(
    task: str,
    metric: str,
    names: Sequence[str] = (),
    lang: str | None = None,
    params: dict[str, Any] | None = None,
) -> Scorer:
    """The registered metric (``catalog.METRICS``) that produced ``metric`` for ``task`` in ``lang``.

    Tries the metric name itself, then the task spec's metric (reading the key ``metric`` from
    its result dict, else its primary key). Accuracy has a local implementation as a fallback.
    ``lang`` reaches metrics that score per language (MLQA's normalisation); ``params`` are further metric
    arguments the runs recorded (spBLEU's ``spm_model``).
    """
    candidates = [metric, *names, task_attr(task, "metric")]
    catalog.load_plugins()
    for name in candidates:
        if name in catalog.METRICS:
            obj = catalog.METRICS.get(name)
            params = {**metric_params(obj.name, lang), **(params or {})}

            def fn(
                golds: Sequence[Any], preds: Sequence[Any], _obj: Any = obj, _params: dict = params
            ) -> float:
                result = _obj.score(golds, preds, **_params)
                return float(result[metric] if metric in result else result[_obj.primary])

            stats = from_stats = None
            reads_primary = metric == obj.primary or (
                metric in catalog.METRICS and catalog.METRICS.get(metric) is obj
            )
            if obj.stats is not None and reads_primary:
                stats = partial(obj.stats, **params)
                from_stats = obj.from_stats
            return Scorer(name, obj.corpus_level, fn, stats, from_stats)
    if metric in ACCURACY_NAMES:
        return Scorer("accuracy", False, _accuracy)
    raise UnknownNameError(
        f"no registered metric can re-score {task} {metric!r} from predictions "
        f"(pass --bootstrap 0 to compare without intervals)"
    )


def prediction_columns(path: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """(ids, golds, preds) of one predictions file (:func:`mmxfer.runs.store.read_predictions`, by column)."""
    rows = read_predictions(path)
    if not rows:
        raise DataError(f"{path}: empty predictions file")
    return [r["id"] for r in rows], [r["gold"] for r in rows], [r["pred"] for r in rows]


def example_scores(scorer: Scorer, golds: Sequence[Any], preds: Sequence[Any]) -> np.ndarray:
    """Per-example scores whose mean is the metric (only for non-corpus-level metrics)."""
    if scorer.name in ACCURACY_NAMES:
        try:
            g, p = np.asarray(golds), np.asarray(preds)
            if g.ndim == 1 and p.ndim == 1 and g.dtype != object and p.dtype != object:
                return (g == p).astype(np.float32) * 100.0
        except ValueError:
            pass
        return np.fromiter((100.0 * (a == b) for a, b in zip(golds, preds)), np.float32, len(golds))
    return np.fromiter((scorer.fn([g], [p]) for g, p in zip(golds, preds)), np.float32, len(golds))
