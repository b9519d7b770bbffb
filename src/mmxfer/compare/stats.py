"""Small statistics used by the gap analysis: multiple-comparison corrections and bootstrap resampling matrices
(the intervals and p-values: :mod:`mmxfer.compare.variance`). Pure numpy, vectorised."""

from __future__ import annotations

import numpy as np

CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")


def _adjust_non_nan(p: np.ndarray, adjust_sorted) -> np.ndarray:
    """Apply ``adjust_sorted`` (ascending p-values -> adjusted, same order) to the non-NaN entries."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    if q.size == 0:
        return out
    order = np.argsort(q, kind="stable")
    res = np.empty(q.size)
    res[order] = adjust_sorted(q[order])
    out[ok] = res
    return out


def _holm_sorted(q: np.ndarray) -> np.ndarray:
    m = q.size
    return np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q))


def _bh_sorted(q: np.ndarray) -> np.ndarray:
    m = q.size
    scaled = q * m / np.arange(1, m + 1)
    return np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate). NaNs stay NaN."""
    return _adjust_non_nan(p, _holm_sorted)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values; controls the false discovery rate). NaNs stay NaN."""
    return _adjust_non_nan(p, _bh_sorted)


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    if method == "none":
        return np.asarray(p, dtype=float)
    raise ValueError(f"unknown correction {method!r}; choose from {CORRECTIONS}")


def resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) float32 matrix: how often each example is drawn in each resample of size n."""
    idx = rng.integers(0, n, size=(n_boot, n))
    offsets = idx + (np.arange(n_boot) * n)[:, None]
    return np.bincount(offsets.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)
