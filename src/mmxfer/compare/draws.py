"""Bootstrap replicates of every run's score on one cell, drawn over the right units.

The unit of resampling is the *item*, not the predictions row:

* rows that share an example id are one unit (both retrieval directions of one sentence);
* a task whose items are the same in every language (``TaskSpec.example_alignment`` ``parallel``: XNLI,
  PAWS-X, XQuAD, FLORES-200, SIB-200; ``partial``: MLQA) draws each item once for all its languages, so that an
  average over languages carries the correlation between them; its ids are matched across languages once a
  leading ``<lang>-`` is stripped (:func:`unit_key`). Languages of an ``independent`` task (TyDiQA, PAN-X, UDPOS,
  BUCC, Tatoeba's pairs) are drawn apart.

A draw gives each unit a count (a multinomial resample of the units; for a parallel task, of the union of the
language's units); a row weighs its unit's count. A mean metric's replicate is the weighted mean of its
per-example scores, a corpus-level metric's is its formula on the weighted sums of its per-example statistics
(chunk counts, chrF++ n-gram statistics). A corpus-level metric without registered statistics is recomputed on
row draws of each cell alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmxfer import catalog
from mmxfer.compare import stats
from mmxfer.compare.example_scores import Scorer, example_scores

RunKey = tuple[str, int]  # (arm, seed)


def stable_int(*parts: Any) -> int:
    """A seed from the parts' text (the same on every machine and Python)."""
    return int.from_bytes(
        hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little"
    )


def alignment_of(task: str) -> str:
    spec = catalog.find_task(task)
    return getattr(spec, "example_alignment", "independent") if spec is not None else "independent"


def unit_key(example_id: Any, lang: str) -> str:
    """The item an example id names, the same in every language: the id without a leading ``<lang>-``."""
    text = str(example_id)
    prefix = f"{lang}-"
    return text[len(prefix) :] if text.startswith(prefix) else text


@dataclass
class CellExamples:
    """One cell's per-example data for every run: the rows' units and each run's scores or statistics."""

    lang: str
    units: list[str]  # one per row
    scorer: Scorer
    # (n,) scores or (n, d) statistics
    values: dict[RunKey, np.ndarray] = field(default_factory=dict)
    # golds, preds (recomputed metrics)
    pairs: dict[RunKey, tuple[list, list]] = field(default_factory=dict)

    @property
    def recomputed(self) -> bool:
        return self.scorer.corpus_level and self.scorer.stats is None


def cell_examples(
    lang: str,
    ids: Sequence[Any],
    scorer: Scorer,
    aligned: dict[RunKey, tuple[list, list]],
    alignment: str,
) -> CellExamples:
    """The per-example view of one cell's aligned predictions (``aligned[run] = (golds, preds)`` on ``ids``)."""
    units = [unit_key(i, lang) if alignment != "independent" else str(i) for i in ids]
    out = CellExamples(lang, units, scorer)
    for key, (golds, preds) in aligned.items():
        if out.recomputed:
            out.pairs[key] = (golds, preds)
        elif scorer.stats is not None:
            out.values[key] = np.asarray(scorer.stats(golds, preds), dtype=np.float64)
        else:
            out.values[key] = example_scores(scorer, golds, preds)
    return out


def _counts(seed_parts: Iterable[Any], units: Sequence[str], n_boot: int) -> np.ndarray:
    digest = hashlib.blake2b("\x1f".join(units).encode(), digest_size=8).hexdigest()
    rng = np.random.default_rng(stable_int(*seed_parts, len(units), digest))
    return stats.resample_counts(rng, len(units), n_boot)


def replicates(
    cells: dict[Any, CellExamples], alignment: str, n_boot: int, seed_parts: tuple[Any, ...]
) -> dict[Any, dict[RunKey, np.ndarray]]:
    """(B,) replicate scores of every run on every cell of one (task, split); ``cells`` maps a cell key to its
    examples. Parallel and partial tasks share one draw over the union of their units (module docstring)."""
    shared_units: list[str] = []
    shared = None
    if alignment != "independent":
        shared_units = sorted({u for c in cells.values() if not c.recomputed for u in c.units})
        if shared_units:
            shared = _counts(seed_parts, shared_units, n_boot)
    position = {u: j for j, u in enumerate(shared_units)}
    out: dict[Any, dict[RunKey, np.ndarray]] = {}
    for key, cell in cells.items():
        if cell.recomputed:
            out[key] = _recomputed(cell, n_boot, (*seed_parts, cell.lang))
            continue
        own = list(dict.fromkeys(cell.units))
        if shared is not None:
            counts = shared[:, [position[u] for u in own]]
        else:
            counts = _counts((*seed_parts, cell.lang), own, n_boot)
        index = {u: j for j, u in enumerate(own)}
        weights = counts[:, [index[u] for u in cell.units]].astype(np.float64)  # (B, rows)
        out[key] = _weighted(cell, weights)
    return out


def _weighted(cell: CellExamples, weights: np.ndarray) -> dict[RunKey, np.ndarray]:
    """Replicates from row weights; a replicate that drew none of the cell's rows (possible only when a partial
    task's language holds few of the shared units) keeps the full-sample value."""
    total = weights.sum(axis=1)
    empty = total == 0
    out: dict[RunKey, np.ndarray] = {}
    keys = list(cell.values)
    # one product for every run: (B, rows) @ (rows, runs x statistics)
    if cell.scorer.stats is not None:
        d = cell.values[keys[0]].shape[1]
        summed = (weights @ np.concatenate([cell.values[k] for k in keys], axis=1)).reshape(
            len(weights), len(keys), d
        )
        for j, k in enumerate(keys):
            rep = cell.scorer.from_stats(summed[:, j, :])
            if empty.any():
                rep = np.where(empty, cell.scorer.from_stats(cell.values[k].sum(axis=0)), rep)
            out[k] = np.asarray(rep, dtype=np.float32)
        return out
    X = np.stack([cell.values[k] for k in keys], axis=1).astype(np.float64)  # (rows, K)
    M = (weights @ X) / np.where(empty, 1.0, total)[:, None]
    if empty.any():
        M[empty] = X.mean(axis=0)
    for j, k in enumerate(keys):
        out[k] = M[:, j].astype(np.float32)
    return out


def _recomputed(
    cell: CellExamples, n_boot: int, seed_parts: tuple[Any, ...]
) -> dict[RunKey, np.ndarray]:
    """A corpus-level metric without statistics: recomputed on each resample of the cell's rows."""
    n = len(cell.units)
    idx = np.random.default_rng(stable_int(*seed_parts, n)).integers(0, n, size=(n_boot, n))
    out = {}
    for k, (
        golds,
        preds,
    ) in cell.pairs.items():  # lists, not object arrays: equal-length pairs would become 2-D
        out[k] = np.fromiter(
            (cell.scorer.fn([golds[j] for j in row], [preds[j] for j in row]) for row in idx),
            np.float32,
            n_boot,
        )
    return out
