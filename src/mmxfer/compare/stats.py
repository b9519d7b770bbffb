"""Small statistics used by the gap analysis: multiple-comparison corrections, bootstrap
resampling matrices, p-values and percentile intervals. Pure numpy, vectorised."""

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


def bootstrap_p(replicates: np.ndarray, estimate: float | np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value for H0 margin = 0 from the replicates shifted to the null.

    p = (1 + #{|m_b - m| >= |m|}) / (B + 1) (the centred-bootstrap test, Efron & Tibshirani 1993 §16).
    ``replicates`` has the resamples on the last axis.
    """
    reps = np.asarray(replicates, dtype=float)
    est = np.asarray(estimate, dtype=float)
    if reps.shape[-1] == 0:
        return np.full(est.shape, np.nan)
    extreme = np.abs(reps - est[..., None]) >= np.abs(est[..., None]) - 1e-12
    return (1.0 + extreme.sum(axis=-1)) / (reps.shape[-1] + 1.0)


def percentile_interval(replicates: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval (last axis = resamples)."""
    reps = np.asarray(replicates, dtype=float)
    if reps.shape[-1] == 0:
        nan = np.full(reps.shape[:-1], np.nan)
        return nan, nan
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=-1)
    return lo, hi


def paired_bootstrap(x_a: np.ndarray, x_b: np.ndarray, n_boot: int, rng: np.random.Generator,
                     resample_seeds: bool = True) -> np.ndarray:
    """Hierarchical paired bootstrap of mean(x_a) - mean(x_b) for per-example scores.

    ``x_a`` and ``x_b`` are (k seeds, n examples) arrays on the same example ids and seeds. One
    replicate draws k seeds with replacement (the seed spread) and n example ids with replacement,
    the same ids for both arms and for every seed (paired: the test set is shared). Returns the
    (n_boot,) replicate margins.
    """
    x_a, x_b = np.atleast_2d(x_a), np.atleast_2d(x_b)
    k, n = x_a.shape
    counts = resample_counts(rng, n, n_boot)
    per_seed = counts @ (x_a - x_b).T.astype(np.float32) / n  # (B, k)
    if resample_seeds and k > 1:
        sidx = rng.integers(0, k, size=(n_boot, k))
        return np.take_along_axis(per_seed, sidx, axis=1).mean(axis=1)
    return per_seed.mean(axis=1)
