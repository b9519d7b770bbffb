"""The uniform metric interface registered in :data:`mmxfer.catalog.METRICS`.

Every metric is a :class:`Metric` with ``score(golds, preds, **params) -> dict[str, float]`` so that
any score can be recomputed from a predictions file (``gold``/``pred`` columns, see
:mod:`mmxfer.runs.store`) and bootstrapped by resampling its rows.
Scores are percentages (0-100) as XTREME reports them; counts (``n``, ``errors``) are plain numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmxfer.catalog import METRICS
from mmxfer.errors import DataError

ScoreFn = Callable[..., dict[str, float]]
# Per-example sufficient statistics of a corpus-level metric: (golds, preds, **params) -> (n, d) array whose
# column sums determine the primary score; ``FromStats`` maps summed statistics (..., d) to scores (...).
# With them a bootstrap resample costs one matrix product instead of re-running the metric.
StatsFn = Callable[..., np.ndarray]
FromStats = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    name: str
    primary: str  # key of the headline number in the dict ``score`` returns
    higher_is_better: bool
    fn: ScoreFn
    description: str = ""
    corpus_level: bool = False  # True: not a mean of per-row scores (F1 over chunks, BLEU, ...)
    stats: StatsFn | None = None  # corpus-level metrics whose primary score is a function of summed
    from_stats: FromStats | None = None  # per-example statistics (see StatsFn above)

    def score(self, golds: Sequence[Any], preds: Sequence[Any], **params: Any) -> dict[str, float]:
        golds, preds = list(golds), list(preds)
        if len(golds) != len(preds):
            raise DataError(
                f"metric {self.name}: {len(golds)} gold rows but {len(preds)} predictions"
            )
        return self.fn(golds, preds, **params)

    def headline(self, golds: Sequence[Any], preds: Sequence[Any], **params: Any) -> float:
        return float(self.score(golds, preds, **params)[self.primary])


def register(
    name: str,
    primary: str,
    higher_is_better: bool = True,
    description: str = "",
    corpus_level: bool = False,
    aliases: tuple[str, ...] = (),
    stats: StatsFn | None = None,
    from_stats: FromStats | None = None,
) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn(golds, preds, **params)`` as metric ``name`` (decorator)."""
    if (stats is None) != (from_stats is None):
        raise ValueError(f"metric {name}: stats and from_stats come together")

    def decorator(fn: ScoreFn) -> ScoreFn:
        doc = description or (fn.__doc__ or "").strip().splitlines()[0]
        METRICS.add(
            Metric(name, primary, higher_is_better, fn, doc, corpus_level, stats, from_stats),
            name,
            *aliases,
        )
        return fn

    return decorator


def check_lengths(golds: Sequence[Any], preds: Sequence[Any], what: str) -> None:
    if len(golds) != len(preds):
        raise DataError(f"{what}: {len(golds)} gold items but {len(preds)} predictions")
    if not golds:
        raise DataError(f"{what}: nothing to score (no examples)")
