"""The variance model behind every margin: test-set (example) variance plus run-to-run (seed) variance.

A margin is a linear contrast of arm means, ``m = sum_a w_a * mean_s z[a, s]``, where ``z[a, s]`` is the score of
arm ``a``'s run with seed ``s`` on one cell or on an average of cells (a task, category or suite average, or the
difference of two such averages). Two independent sources make ``m`` vary (``resources/statistics.md``):

* **examples**: the test set is a sample. Its part, ``V_ex``, is estimated by the paired bootstrap over example
  units (every arm and seed on the same draws). A bootstrap of seed-averaged scores also sees the seed x example
  noise of each run, which the run part below contains already; so each run's own bootstrap variance is replaced
  by the mean covariance between two seeds of the same arm (whose noise is independent), leaving the variance of
  the arms' expected per-example scores alone (:func:`example_variance`).
* **runs**: each arm's runs differ by their seed (initialisation, data order). Their variance ``sigma^2`` on this
  level is estimated from the spread of ``z[a, .]`` within each arm, pooled over every arm of the study that has the
  level's cells (each arm adds ``k_a - 1`` degrees of freedom; :func:`pooled_run_variance`), so the margin's run
  part is ``V_run = sigma^2 * sum_a w_a^2 / k_a``. An arm whose runs are identical copies (no seed enters it, e.g.
  the untrained trunk's retrieval) is fixed: it adds neither variance nor degrees of freedom.

The interval is ``m +/- t(df, 1 - alpha/2) * sqrt(V_ex + V_run)`` with Welch-Satterthwaite degrees of freedom
``df = (V_ex + V_run)^2 / (V_run^2 / df_run)`` (the example part, estimated from thousands of units, counts as
known); p-values are two-sided from the same t. Without two seeds of any arm the run part is not estimated: the
interval is the examples' alone (normal) and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

#: interval labels: both sources of variance, or the examples' alone (no arm has two seeds on this level)
EXAMPLES_AND_RUNS, EXAMPLES_ONLY = "examples+runs", "examples only"
#: the power a minimum detectable effect is computed for
POWER = 0.8


@dataclass(frozen=True)
class RunVariance:
    """The pooled run-to-run variance of one level (score points squared) and its degrees of freedom."""

    variance: float
    df: int
    fixed: frozenset[str] = frozenset()  # arms whose runs are identical copies (no run variance)

    @property
    def estimated(self) -> bool:
        return self.df > 0


def _fixed(points: np.ndarray, reps: np.ndarray | None) -> bool:
    """Every seed of the arm gave the same score and (where there are replicates) the same per-example results."""
    if points.size < 2 or not np.allclose(points, points[0], rtol=0, atol=1e-9):
        return False
    return (
        reps is None
        or reps.shape[-1] == 0
        or bool(np.array_equal(reps, np.broadcast_to(reps[:1], reps.shape)))
    )


def pooled_run_variance(
    points: Mapping[str, np.ndarray], reps: Mapping[str, np.ndarray] | None = None
) -> RunVariance:
    """Within-arm variance of the per-seed scores ``points[arm]`` (k_a,), pooled over arms with k_a >= 2.

    ``reps[arm]`` (k_a, B) are the same runs' bootstrap replicates: an arm whose seeds agree on every replicate
    too is fixed (its runs are copies), and is left out of the pool.
    """
    ss, df, fixed = 0.0, 0, set()
    for arm, z in points.items():
        z = np.asarray(z, dtype=float)
        if z.size < 2:
            continue
        if _fixed(z, None if reps is None else reps.get(arm)):
            fixed.add(arm)
            continue
        ss += float(((z - z.mean()) ** 2).sum())
        df += z.size - 1
    return RunVariance(ss / df if df else float("nan"), df, frozenset(fixed))


def example_variance(
    reps: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> tuple[float, float]:
    """(V_ex, raw bootstrap variance) of ``sum_a w_a * mean_s reps[a][s]``; ``reps[a]`` is (k_a, B).

    ``V_ex`` replaces each run's own bootstrap variance by the mean covariance of two different seeds of its arm
    (module docstring); it is floored at 0. Arms with one seed keep their own variance (no pair to take from).
    """
    total = None
    correction = 0.0
    for arm, w in weights.items():
        r = np.asarray(reps[arm], dtype=np.float64)
        k = r.shape[0]
        part = (w / k) * r.sum(axis=0)
        total = part if total is None else total + part
        if k >= 2:
            centred = r - r.mean(axis=1, keepdims=True)
            cov = centred @ centred.T / max(r.shape[1] - 1, 1)
            own = float(np.trace(cov))
            cross = (float(cov.sum()) - own) / (k * (k - 1))
            correction += (w / k) ** 2 * (own - k * cross)
    raw = float(np.var(total, ddof=1)) if total is not None and total.size > 1 else float("nan")
    return max(raw - correction, 0.0), raw


@dataclass(frozen=True)
class Estimate:
    """A margin with its standard error, degrees of freedom, interval and p-value."""

    margin: float
    se: float
    df: float
    var_examples: float
    var_runs: float
    df_runs: int
    ci_low: float
    ci_high: float
    p: float
    interval: str

    def mde(self, alpha: float, power: float = POWER) -> float:
        """The smallest true margin this design detects with ``power`` in a two-sided test at ``alpha``."""
        return minimum_detectable(self.se, self.df, alpha, power)


def t_quantile(q: float, df: float) -> float:
    """Student's t quantile (normal for infinite df); scipy's ufuncs, which are 100x faster than scipy.stats'."""
    return float(special.ndtri(q)) if not np.isfinite(df) else float(special.stdtrit(df, q))


def _two_sided_p(tstat: float, df: float) -> float:
    return float(2 * (special.ndtr(-tstat) if not np.isfinite(df) else special.stdtr(df, -tstat)))


def minimum_detectable(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """``(t(1 - alpha/2) + t(power)) * se``: the normal-approximation MDE of a two-sided t test."""
    if not np.isfinite(se):
        return float("nan")
    return (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se


def estimate(
    margin: float, var_examples: float, run_weight: float, runs: RunVariance | None, alpha: float
) -> Estimate:
    """Interval and p-value of ``margin`` from its example variance and ``run_weight = sum_a w_a^2 / k_a`` (over
    the arms that are not fixed) times the level's pooled run variance."""
    if runs is not None and runs.estimated:
        v_run = runs.variance * run_weight
        df_run = runs.df
    else:
        v_run, df_run = 0.0, 0
    v = var_examples + v_run
    if not np.isfinite(v):
        nan = float("nan")
        return Estimate(
            margin,
            nan,
            nan,
            var_examples,
            v_run,
            df_run,
            nan,
            nan,
            nan,
            EXAMPLES_AND_RUNS if df_run else EXAMPLES_ONLY,
        )
    df = v * v / (v_run * v_run / df_run) if df_run and v_run > 0 else float("inf")
    se = float(np.sqrt(v))
    half = t_quantile(1 - alpha / 2, df) * se
    if se > 0:
        tstat = abs(margin) / se
        p = _two_sided_p(tstat, df)
    else:
        p = 1.0 if margin == 0 else 0.0
    return Estimate(
        margin,
        se,
        df,
        var_examples,
        v_run,
        df_run,
        margin - half,
        margin + half,
        p,
        EXAMPLES_AND_RUNS if df_run else EXAMPLES_ONLY,
    )
