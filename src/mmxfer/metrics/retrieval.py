"""Bitext retrieval scores: xSIM (LASER), Tatoeba accuracy and BUCC mining F1 (XTREME/LASER recipes).

All similarities are cosines of L2-normalised embeddings, computed in float32 with torch in chunks
(``chunk_size`` source rows at a time), so memory is bounded by ``chunk_size x n_target`` whatever the
corpus size; on GPU when one is present. Each similarity is computed once: a chunk yields the top-k of its
rows (source -> target) and updates a running top-k of every column (target -> source), which gives both
directions and both sides of the margin from one pass (``knn_both``, ``retrieve_both``, ``mine``).

Ties: among equal scores the lower database index wins (what a flat exhaustive index does), so
the order never depends on chunking or device (the float32 cosines themselves can differ in the last bit
between devices, or for very small chunks, where the matmul uses other kernels). When ``k`` exceeds the database size it is reduced to
it (as XTREME's ``mine_bitext`` does), which lets languages with fewer sentences be scored.

Margins (Artetxe & Schwenk 2019), for candidate y of query x with ``mean_k`` the mean cosine of the
k nearest neighbours: ``absolute`` = cos(x, y); ``distance`` = cos - (mean_k(x) + mean_k(y)) / 2;
``ratio`` = cos / ((mean_k(x) + mean_k(y)) / 2). As in LASER's xsim.py, the margin re-scores only the
k nearest candidates of each query (by cosine) and the best-scoring one is retrieved.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Literal

import numpy as np

from mmxfer.errors import DataError
from mmxfer.metrics.base import register

# torch is imported by the functions that use it: registering the metrics (`mmxfer ls`) stays fast

Margin = Literal["ratio", "distance", "absolute"]
MARGINS = ("ratio", "distance", "absolute")


def _device(device: str | None) -> Any:
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _as_tensor(x: Any, device: Any, normalize: bool, what: str) -> Any:
    import torch

    t = (
        x
        if isinstance(x, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    )
    if t.ndim != 2:
        raise DataError(f"{what}: expected a 2-d embedding matrix, got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise DataError(f"{what}: no embeddings")
    t = t.to(device=device, dtype=torch.float32)
    if normalize:
        t = torch.nn.functional.normalize(t, p=2, dim=1)
    return t


def _pair(src: Any, tgt: Any, normalize: bool, device: str | None) -> tuple[Any, Any]:
    dev = _device(device)
    q = _as_tensor(src, dev, normalize, "queries")
    d = _as_tensor(tgt, dev, normalize, "database")
    if q.shape[1] != d.shape[1]:
        raise DataError(f"embedding sizes differ: queries {q.shape[1]}, database {d.shape[1]}")
    return q, d


def _topk_rows(block: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (capped at the row length) of each row of ``block``: float32 values and int64 column indices,
    by decreasing value, ties to the lower index."""
    import torch

    n = block.shape[1]
    k = min(k, n)
    # a few extra candidates so that ties at the k-th place can be ordered by index
    extra = min(n, k + 4)
    vals, inds = torch.topk(block, extra, dim=1, largest=True, sorted=True)
    vals_np, inds_np = vals.cpu().numpy(), inds.cpu().numpy()
    order = np.lexsort((inds_np, -vals_np), axis=1)
    top_v = np.take_along_axis(vals_np, order, 1)[:, :k]
    top_i = np.take_along_axis(inds_np, order, 1)[:, :k]
    if extra < n:
        # the k-th value ties with the last candidate taken: more ties may lie outside it; order those rows fully
        for r in np.flatnonzero(vals_np[:, -1] == top_v[:, -1]):
            row = block[r].cpu().numpy()
            best = np.argsort(-row, kind="stable")[:k]
            top_v[r], top_i[r] = row[best], best
    return top_v, top_i


def _merge_sorted(
    vals: np.ndarray, inds: np.ndarray, new_vals: np.ndarray, new_inds: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    vals, inds = np.concatenate([vals, new_vals], 1), np.concatenate([inds, new_inds], 1)
    order = np.argsort(-vals, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(vals, order, 1), np.take_along_axis(inds, order, 1)


def _merge(
    vals: np.ndarray, inds: np.ndarray, new_vals: np.ndarray, new_inds: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Running top-k lists (one per row) merged with those of a later chunk.

    Both inputs are sorted (value down, index up) and every new index exceeds every running one, so a
    stable sort on the value alone keeps ties in index order. Once the lists are full, only rows whose best
    new value beats their k-th value can change (an equal value loses the tie: its index is higher).
    """
    if vals.shape[1] < k:
        return _merge_sorted(vals, inds, new_vals, new_inds, k)
    rows = np.flatnonzero(new_vals[:, 0] > vals[:, -1])
    if len(rows):
        vals[rows], inds[rows] = _merge_sorted(
            vals[rows], inds[rows], new_vals[rows], new_inds[rows], k
        )
    return vals, inds


def _scan(q: Any, d: Any, k: int, chunk_size: int, columns: bool) -> tuple[np.ndarray, ...]:
    """One pass over the cosine matrix ``q @ d.T``, ``chunk_size`` rows of it at a time.

    Returns the k nearest ``d`` rows of each ``q`` row (sims, indices) and, when ``columns``, the k nearest
    ``q`` rows of each ``d`` row, kept incrementally across chunks (else two Nones). Each similarity is
    computed once; memory is ``chunk_size x len(d)`` plus the running top-k lists.
    """
    import torch

    n_q, n_d = q.shape[0], d.shape[0]
    k_row, k_col = max(1, min(int(k), n_d)), max(1, min(int(k), n_q))
    chunk_size = max(1, int(chunk_size))
    row_s = np.empty((n_q, k_row), dtype=np.float32)
    row_i = np.empty((n_q, k_row), dtype=np.int64)
    col_s = col_i = None
    with torch.no_grad():
        for start in range(0, n_q, chunk_size):
            block = q[start : start + chunk_size] @ d.T
            vals, inds = _topk_rows(block, k_row)
            row_s[start : start + len(vals)], row_i[start : start + len(vals)] = vals, inds
            if columns:
                vals, inds = _topk_rows(block.T, k_col)
                inds += start
                if col_s is None:
                    col_s, col_i = vals, inds
                else:
                    col_s, col_i = _merge(col_s, col_i, vals, inds, k_col)
    return row_s, row_i, col_s, col_i


def knn(
    queries: Any,
    database: Any,
    k: int,
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k nearest neighbours of each query row in ``database``: (sims, indices), both (n_q, k).

    Sorted by decreasing similarity, ties broken by the lower index; ``k`` is capped at the database size.
    """
    q, d = _pair(queries, database, normalize, device)
    sims, inds, _, _ = _scan(q, d, k, chunk_size, columns=False)
    return sims, inds


def knn_both(
    src: Any,
    tgt: Any,
    k: int,
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``knn(src, tgt, k) + knn(tgt, src, k)`` from one pass over the similarity matrix:
    (src->tgt sims, indices, tgt->src sims, indices)."""
    q, d = _pair(src, tgt, normalize, device)
    return _scan(q, d, k, chunk_size, columns=True)


def _check_margin(margin: str | None) -> str:
    margin = margin or "absolute"
    if margin not in MARGINS:
        raise DataError(f"unknown margin {margin!r}; choose one of {', '.join(MARGINS)}")
    return margin


def _margin_scores(
    cos: np.ndarray, cand: np.ndarray, mean_q: np.ndarray, mean_d: np.ndarray, margin: str
) -> np.ndarray:
    # float32 throughout, as LASER's numpy code on faiss float32 output computes it
    if margin == "absolute":
        return cos.astype(np.float32)
    b = (mean_q[:, None].astype(np.float32) + mean_d[cand].astype(np.float32)) / np.float32(2)
    return cos / b if margin == "ratio" else cos - b


def _best(
    sims: np.ndarray, inds: np.ndarray, mean_q: np.ndarray, mean_d: np.ndarray, margin: str
) -> tuple[np.ndarray, np.ndarray]:
    scores = _margin_scores(sims, inds, mean_q, mean_d, margin)
    best = scores.argmax(axis=1)  # first maximum = the nearer candidate on ties
    rows = np.arange(len(best))
    return inds[rows, best], scores[rows, best]


def retrieve(
    src: Any,
    tgt: Any,
    margin: str | None = "ratio",
    k: int = 4,
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``src``, the index of the best ``tgt`` row and its (margin) score."""
    margin = _check_margin(margin)
    if margin == "absolute":
        sims, inds = knn(src, tgt, 1, normalize=normalize, chunk_size=chunk_size, device=device)
        return inds[:, 0], sims[:, 0].astype(np.float64)
    fs, fi, bs, _ = knn_both(src, tgt, k, normalize=normalize, chunk_size=chunk_size, device=device)
    return _best(fs, fi, fs.mean(axis=1), bs.mean(axis=1), margin)


def retrieve_both(
    src: Any,
    tgt: Any,
    margin: str | None = "ratio",
    k: int = 4,
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(retrieve(src, tgt, ...), retrieve(tgt, src, ...))`` from one pass over the similarity matrix."""
    margin = _check_margin(margin)
    fs, fi, bs, bi = knn_both(
        src,
        tgt,
        1 if margin == "absolute" else k,
        normalize=normalize,
        chunk_size=chunk_size,
        device=device,
    )
    if margin == "absolute":
        return (fi[:, 0], fs[:, 0].astype(np.float64)), (bi[:, 0], bs[:, 0].astype(np.float64))
    f_mean, b_mean = fs.mean(axis=1), bs.mean(axis=1)
    return _best(fs, fi, f_mean, b_mean, margin), _best(bs, bi, b_mean, f_mean, margin)


def xsim(
    src: Any,
    tgt: Any,
    margin: str = "ratio",
    k: int = 4,
    *,
    gold: Sequence[int] | None = None,
    texts: Sequence[str] | None = None,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> dict[str, float]:
    """LASER's xSIM: how many ``src`` rows do not retrieve their translation in ``tgt``.

    Row i of ``src`` is aligned with row ``gold[i]`` of ``tgt`` (default: row i). With ``texts`` (the sentences
    of ``tgt``), a retrieval is an error only when the retrieved sentence's text differs from the gold one's, as
    LASER's ``source/eval.py`` scores by default (``xsim.py`` ``calculate_error``: a duplicate line is as good
    as its twin); without, when the index differs (``--index-comparison``). Returns ``{"errors", "n",
    "error_rate"}`` with ``error_rate`` in percent.
    """
    pred, _ = retrieve(
        src, tgt, margin, k, normalize=normalize, chunk_size=chunk_size, device=device
    )
    ref = np.arange(len(pred)) if gold is None else np.asarray(gold)
    if len(ref) != len(pred):
        raise DataError(f"xsim: {len(pred)} source rows but {len(ref)} gold indices")
    if texts is None:
        errors = int((pred != ref).sum())
    else:
        if len(texts) != len(tgt):
            raise DataError(f"xsim: {len(tgt)} target rows but {len(texts)} target texts")
        errors = sum(texts[int(p)] != texts[int(r)] for p, r in zip(pred, ref))
    return {"errors": errors, "n": len(pred), "error_rate": 100.0 * errors / len(pred)}


def equal_text_rows(texts: Sequence[str]) -> list[int | list[int]]:
    """For each row, the gold a text comparison accepts: the row index itself when its text is unique in
    ``texts``, else the sorted list of every row holding that text."""
    rows: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        rows.setdefault(t, []).append(i)
    return [i if len(rows[t]) == 1 else rows[t] for i, t in enumerate(texts)]


def tatoeba_accuracy(
    src: Any,
    tgt: Any,
    margin: str | None = None,
    *,
    direction: str = "en-xx",
    k: int = 4,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> float:
    """Tatoeba accuracy (0-100): nearest neighbour by cosine, XTREME's convention.

    ``src`` holds the non-English sentences, ``tgt`` their English translations (row-aligned). XTREME's
    ``run_retrieval.py`` indexes ``src`` and queries it with each English sentence (``direction='en-xx'``);
    ``'xx-en'`` queries the other way. ``margin`` (ratio | distance | absolute) switches to margin retrieval.
    """
    if len(src) != len(tgt):
        raise DataError(f"tatoeba: {len(src)} source sentences but {len(tgt)} English sentences")
    queries, database = (tgt, src) if direction == "en-xx" else (src, tgt)
    if direction not in ("en-xx", "xx-en"):
        raise DataError(f"tatoeba: direction must be en-xx or xx-en, got {direction!r}")
    pred, _ = retrieve(
        queries, database, margin, k, normalize=normalize, chunk_size=chunk_size, device=device
    )
    return 100.0 * float((pred == np.arange(len(pred))).mean())


# --------------------------------------------------------------------------- BUCC


def mine(
    src: Any,
    tgt: Any,
    k: int = 4,
    margin: str = "ratio",
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> list[tuple[int, int, float]]:
    """LASER/XTREME bitext mining, ``retrieval='max'``: (src index, tgt index, margin score) candidates.

    Best candidate of every source (forward) and every target (backward) sentence, sorted by score,
    each sentence used at most once (greedy by decreasing score).
    """
    (fwd_best, fwd_score), (bwd_best, bwd_score) = retrieve_both(
        src, tgt, margin, k, normalize=normalize, chunk_size=chunk_size, device=device
    )
    pairs = np.concatenate(
        [
            np.stack([np.arange(len(fwd_best)), fwd_best], 1),
            np.stack([bwd_best, np.arange(len(bwd_best))], 1),
        ]
    )
    scores = np.concatenate([fwd_score, bwd_score])
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    out = []
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(pairs[i, 0]), int(pairs[i, 1])
        if s not in seen_src and t not in seen_tgt:
            seen_src.add(s)
            seen_tgt.add(t)
            out.append((s, t, float(scores[i])))
    return out


def optimize_threshold(
    candidates: Iterable[tuple[Hashable, Hashable, float]],
    gold: Iterable[tuple[Hashable, Hashable]],
) -> float:
    """XTREME's ``bucc_optimize``: the score threshold that maximises F1 on ``gold``.

    Candidates are ranked by decreasing score; the threshold is halfway between the best-F1 cut and the
    next candidate's score (the last candidate's own score when the cut is at the end).
    """
    items = sorted(((s, t, float(sc)) for s, t, sc in candidates), key=lambda c: -c[2])
    gold_set = {tuple(g) for g in gold}
    if not gold_set:
        raise DataError("BUCC: the gold alignments used to choose the threshold are empty")
    threshold, best_f1 = 0.0, 0.0
    extracted = correct = 0
    for i, (s, t, sc) in enumerate(items):
        extracted += 1
        correct += int((s, t) in gold_set)
        if correct:
            precision, recall = correct / extracted, correct / len(gold_set)
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (sc + items[i + 1][2]) / 2 if i + 1 < len(items) else sc
    return threshold


def pair_f1(
    gold: Iterable[tuple[Hashable, Hashable]], pred: Iterable[tuple[Hashable, Hashable]]
) -> dict[str, float]:
    """Set F1 of predicted vs gold pairs (0-100), XTREME's ``bucc_f1``."""
    gold_set, pred_set = {tuple(g) for g in gold}, {tuple(p) for p in pred}
    correct = len(gold_set & pred_set)
    if correct:
        precision, recall = correct / len(pred_set), correct / len(gold_set)
        f1 = 2 * precision * recall / (precision + recall)
    else:
        precision = recall = f1 = 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}


def bucc_f1(
    dev_src: Any,
    dev_tgt: Any,
    dev_gold: Iterable[tuple[int, int]],
    test_src: Any,
    test_tgt: Any,
    test_gold: Iterable[tuple[int, int]] | None = None,
    *,
    k: int = 4,
    margin: str = "ratio",
    threshold: float | None = None,
    normalize: bool = True,
    chunk_size: int = 1024,
    device: str | None = None,
) -> dict[str, Any]:
    """BUCC 2018 recipe: mine dev and test with the ``margin`` (k-NN), pick the F1-optimal threshold on
    the dev gold pairs (row indices), keep test candidates scoring >= it, score them against the test gold.

    Returns ``{"f1", "precision", "recall", "threshold", "pairs"}`` (``pairs``: the extracted test pairs;
    F1 keys absent when ``test_gold`` is None). Pass ``threshold`` to skip the dev step.
    """
    opts = dict(normalize=normalize, chunk_size=chunk_size, device=device)
    if threshold is None:
        threshold = optimize_threshold(mine(dev_src, dev_tgt, k, margin, **opts), dev_gold)
    test_cands = mine(test_src, test_tgt, k, margin, **opts)
    pairs = [(s, t) for s, t, sc in test_cands if sc >= threshold]
    result: dict[str, Any] = {"threshold": float(threshold), "pairs": pairs}
    if test_gold is not None:
        result.update(pair_f1(test_gold, pairs))
    return result


# --------------------------------------------------------------------------- registered metrics


def _indices(values: list, what: str) -> np.ndarray:
    try:
        return np.asarray([-1 if v is None else int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{what}: predictions must be row indices (integers)") from None


def _hits(golds: list, preds: list, what: str) -> np.ndarray:
    """Whether each retrieved row is right: its index equals the gold index, or is among the gold's rows when the
    gold is the list of rows that hold the true translation's text (:func:`equal_text_rows`)."""
    p = _indices(preds, what)
    try:
        accepted = [{int(x) for x in g} if isinstance(g, list) else {int(g)} for g in golds]
    except (TypeError, ValueError):
        raise DataError(
            f"{what}: golds must be row indices (an integer, or a list of them)"
        ) from None
    return np.fromiter((int(x) in a for x, a in zip(p, accepted)), dtype=bool, count=len(p))


@register(
    "tatoeba_accuracy",
    primary="accuracy",
    description="bitext retrieval accuracy from retrieved vs true indices (Tatoeba)",
)
def _tatoeba_metric(golds: list, preds: list) -> dict[str, float]:
    if not golds:
        raise DataError("tatoeba_accuracy: nothing to score")
    accuracy = 100.0 * float(_hits(golds, preds, "tatoeba_accuracy").mean())
    return {
        "accuracy": accuracy,
        "error_rate": 100.0 - accuracy,
        "n": float(len(golds)),
    }  # error_rate: xSIM's


@register(
    "xsim",
    primary="error_rate",
    higher_is_better=False,
    description="xSIM error rate (%) from retrieved vs true rows (LASER)",
)
def _xsim_metric(golds: list, preds: list) -> dict[str, float]:
    if not golds:
        raise DataError("xsim: nothing to score")
    errors = int((~_hits(golds, preds, "xsim")).sum())
    return {
        "error_rate": 100.0 * errors / len(golds),
        "errors": float(errors),
        "n": float(len(golds)),
    }


def pair_counts(golds: list, preds: list) -> np.ndarray:
    """(n, 3) per-row statistics of :func:`pair_f1`: correct, predicted and gold pairs, each distinct pair counted
    in the first row holding it, so the column sums are exactly |pred & gold|, |pred| and |gold| of the file."""
    gold_set = {tuple(g) for g in golds if g}
    out = np.zeros((len(golds), 3))
    seen_pred: set = set()
    seen_gold: set = set()
    for i, (g, p) in enumerate(zip(golds, preds)):
        if p and tuple(p) not in seen_pred:
            seen_pred.add(tuple(p))
            out[i, 0], out[i, 1] = float(tuple(p) in gold_set), 1.0
        if g and tuple(g) not in seen_gold:
            seen_gold.add(tuple(g))
            out[i, 2] = 1.0
    return out


def pair_f1_from_counts(summed: np.ndarray) -> np.ndarray:
    """F1 (0-100) from summed ``(correct, predicted, gold)`` pair counts (last axis); a bootstrap resample that
    draws neither a predicted nor a gold pair scores 0 (the whole file must have gold: :func:`_bucc_metric`)."""
    correct, n_pred, n_gold = summed[..., 0], summed[..., 1], summed[..., 2]
    return 200.0 * correct / np.maximum(n_pred + n_gold, 1)


@register(
    "bucc_f1",
    primary="f1",
    corpus_level=True,
    description="BUCC mining F1: predicted vs gold [src_id, tgt_id] pairs (null = none)",
    stats=pair_counts,
    from_stats=pair_f1_from_counts,
)
def _bucc_metric(golds: list, preds: list) -> dict[str, float]:
    gold = [tuple(g) for g in golds if g]
    if not gold:
        raise DataError(
            f"bucc_f1: none of the {len(golds)} rows has a gold pair; BUCC F1 is undefined without gold "
            f"(the official BUCC 2018 test gold is not public: score the training files, as XTREME)"
        )
    pred = [tuple(p) for p in preds if p]
    return {**pair_f1(gold, pred), "n": float(len(gold))}
