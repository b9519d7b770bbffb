"""Sequence-labelling F1 exactly as ``seqeval`` 1.2.2's default (conlleval-compatible) mode computes it.

XTREME scores both PAN-X (BIO entity tags) and UDPOS (bare POS tags) with
``seqeval.metrics.f1_score(labels, predictions)`` (google-research/xtreme ``evaluate.py``).
For bare POS tags that means seqeval's chunker reads the first character of a tag as its
B/I/O prefix and the rest as its type, so runs of equal tags merge into one chunk; we reproduce
that on purpose so UDPOS numbers are comparable with the XTREME leaderboard, and also report the
plain token ``accuracy`` (a true per-token score) next to it.

seqeval does not chunk sentences one by one: it concatenates them, each followed by an ``O``
separator, and runs one chunker over the whole sequence (``get_entities``). The separator leaves
the chunker's state behind (type ``_``, the last chunk start), so a sentence that starts with
``X`` (type ``_``, like ``O``) continues a chunk begun in an earlier sentence. :func:`prf` does
the same, so it equals seqeval on every input (tested against seqeval on random sequences of
every UPOS and BIO tag). seqeval is a test dependency only; the rules are written out here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from mmxfer.errors import DataError
from mmxfer.metrics.base import register

Chunk = tuple[str, int, int]


def _split(tag: str) -> tuple[str, str]:
    return tag[0], (tag[1:].split("-", maxsplit=1)[-1] or "_")


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def chunks(tags: Sequence[str], offset: int = 0) -> list[Chunk]:
    """(type, start, end) chunks of one tag sequence, conlleval-style (IOB1/IOB2/IOBES tolerant)."""
    prev_tag, prev_type, begin = "O", "", 0
    found: list[Chunk] = []
    for i, full in enumerate([*tags, "O"]):
        if not isinstance(full, str) or not full:
            raise DataError(f"tagging: invalid tag {full!r} at position {i}")
        tag, type_ = _split(full)
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            found.append((prev_type, offset + begin, offset + i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return found


def _flat(tags: Sequence[Sequence[str]]) -> list[str]:
    """seqeval's concatenation: every sentence followed by an ``O`` separator."""
    return [t for sentence in tags for t in (*sentence, "O")]


def _check(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> None:
    if len(gold_tags) != len(pred_tags):
        raise DataError(f"tagging: {len(gold_tags)} gold sentences but {len(pred_tags)} predicted")
    for i, (g, p) in enumerate(zip(gold_tags, pred_tags)):
        if len(g) != len(p):
            raise DataError(
                f"tagging: sentence {i} has {len(g)} gold tags but {len(p)} predicted tags"
            )


def prf(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over chunks (0-100), as seqeval's ``average='micro'``."""
    _check(gold_tags, pred_tags)
    true_by_type, pred_by_type = (
        _by_type(chunks(_flat(gold_tags))),
        _by_type(chunks(_flat(pred_tags))),
    )
    types = set(true_by_type) | set(pred_by_type)
    tp = sum(len(true_by_type[t] & pred_by_type[t]) for t in types)
    n_pred = sum(len(pred_by_type[t]) for t in types)
    n_true = sum(len(true_by_type[t]) for t in types)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}


def _by_type(found: list[Chunk]) -> dict[str, set[tuple[int, int]]]:
    out: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for type_, s, e in found:
        out[type_].add((s, e))
    return out


def f1(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Span F1 (0-100) over BIO/IOB2 chunks, equal to ``100 * seqeval.metrics.f1_score``."""
    return prf(gold_tags, pred_tags)["f1"]


def token_accuracy(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Percentage of tokens whose predicted tag equals the gold tag."""
    _check(gold_tags, pred_tags)
    total = sum(len(g) for g in gold_tags)
    if not total:
        raise DataError("tagging: no tokens to score")
    correct = sum(int(a == b) for g, p in zip(gold_tags, pred_tags) for a, b in zip(g, p))
    return 100.0 * correct / total


def sentence_counts(
    gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> np.ndarray:
    """(n, 3) per-sentence chunk counts: true positives, predicted chunks, gold chunks.

    The chunks are those of :func:`prf` (one seqeval pass over the concatenated sentences), each counted
    in the sentence holding its last token, so the column sums give :func:`prf`'s micro F1 exactly. A
    chunk that seqeval carries across a sentence boundary (UDPOS ``X`` at a sentence start) belongs to
    the sentence where it ends when a bootstrap resamples sentences.
    """
    _check(gold_tags, pred_tags)
    starts = np.cumsum([0] + [len(g) + 1 for g in gold_tags])[:-1]
    true = {(t, s, e) for t, s, e in chunks(_flat(gold_tags))}
    pred = {(t, s, e) for t, s, e in chunks(_flat(pred_tags))}
    out = np.zeros((len(gold_tags), 3))
    for col, found in ((0, true & pred), (1, pred), (2, true)):
        for _, _, end in found:
            out[np.searchsorted(starts, end, side="right") - 1, col] += 1
    return out


def f1_from_counts(summed: np.ndarray) -> np.ndarray:
    """Micro F1 (0-100) from summed ``(tp, n_pred, n_true)`` counts (last axis)."""
    tp, n_pred, n_true = summed[..., 0], summed[..., 1], summed[..., 2]
    return (
        200.0 * tp / np.maximum(n_pred + n_true, 1)
    )  # counts are whole numbers; no chunks -> tp = 0 -> 0


@register(
    "span_f1",
    primary="f1",
    corpus_level=True,
    description="entity-span F1 over BIO chunks, seqeval default mode (PAN-X)",
    aliases=("seqeval",),
    stats=sentence_counts,
    from_stats=f1_from_counts,
)
def _span_f1_metric(golds: list, preds: list) -> dict[str, float]:
    return {**prf(golds, preds), "n": float(len(golds))}


@register(
    "token_f1",
    primary="f1",
    corpus_level=True,
    description="UDPOS as XTREME reports it: seqeval F1 on POS tags, plus token accuracy",
    stats=sentence_counts,
    from_stats=f1_from_counts,
)
def _token_f1_metric(golds: list, preds: list) -> dict[str, float]:
    return {**prf(golds, preds), "accuracy": token_accuracy(golds, preds), "n": float(len(golds))}
