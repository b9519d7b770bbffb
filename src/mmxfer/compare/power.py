"""How many seeds a study needs to detect a margin of a given size, from a finished pilot's variances.

Each confirmatory margin of the pilot (:mod:`mmxfer.compare.family`) carries its two variance parts
(:mod:`mmxfer.compare.variance`): the test set's, ``V_ex``, which more seeds do not shrink, and the runs', whose
per-run variance ``sigma^2`` (pooled over the arms) is divided by the seeds: ``V(k) = V_ex + sigma^2 * sum_w2 / k``
with ``sum_w2 = sum_a w_a^2`` over the arms whose runs vary. With k seeds the run part has
``pooled_arms * (k - 1)`` degrees of freedom. The margin is detected with 80 % power at ``alpha / m`` (the family's
strictest Holm level) when ``(t(1 - alpha/2m) + t(0.8)) * sqrt(V(k)) <= detect``.

Assumed: the full study's test sets, arms and family are the pilot's (its arm count may differ: the pooled arms
scale with it); the pilot's variances are taken as the truth (with 2-3 pilot seeds they are themselves uncertain,
so round up).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mmxfer.compare import variance
from mmxfer.compare.gaps import GapResult

MAX_SEEDS = 100


def mde_with_seeds(row: pd.Series, k: int, pooled_arms: int, alpha: float) -> float:
    """The minimum detectable effect of a pilot's margin ``row`` with ``k`` seeds per arm."""
    v_run = float(row["run_variance"]) * float(row["sum_w2"]) / k
    v = float(row["var_examples"]) + v_run
    df_run = pooled_arms * (k - 1)
    if df_run <= 0:
        return (
            float("inf")
            if v_run > 0
            else variance.minimum_detectable(math.sqrt(v), float("inf"), alpha)
        )
    df = v * v / (v_run * v_run / df_run) if v_run > 0 else float("inf")
    return variance.minimum_detectable(math.sqrt(v), df, alpha)


def _where(row: pd.Series) -> str:
    if row["level"] == "contrast":
        return f"{row['category']} - {row['other']}"
    if row["level"] == "task":
        return str(row["task"])
    return str(row["category"]) if row["level"] == "category" else "suite"


def seeds_needed(result: GapResult, detect: float, n_arms: int | None = None) -> pd.DataFrame:
    """One row per tested confirmatory margin: the pilot's seeds and MDE, the examples' floor (the MDE with
    infinitely many seeds) and the seeds per arm that detect ``detect`` points (NaN, with a note, where no number
    of seeds up to :data:`MAX_SEEDS` can)."""
    fam = result.confirmatory()
    if "same_as" in fam:
        fam = fam[fam["same_as"].fillna("") == ""]
    m = max(result.family_size, 1)
    alpha = result.settings.alpha / m
    pilot_arms = len(result.arms)
    rows = []
    for _, row in fam.iterrows():
        pooled = int(row["pooled_arms"])
        if n_arms and pilot_arms:
            pooled = max(1, round(pooled * n_arms / pilot_arms)) if pooled else 0
        floor = variance.minimum_detectable(
            math.sqrt(max(float(row["var_examples"]), 0.0)), float("inf"), alpha
        )
        need, note = np.nan, "the test set alone is too small"
        if np.isfinite(row["run_variance"]) and floor < detect:
            note = f"more than {MAX_SEEDS} seeds"
            for k in range(2, MAX_SEEDS + 1):
                if mde_with_seeds(row, k, pooled, alpha) <= detect:
                    need, note = k, ""
                    break
        rows.append(
            {
                "level": row["level"],
                "where": _where(row),
                "comparison": f"{row['arm']} - {row['reference']}",
                "pilot_seeds": int(row["n_seeds"]),
                "pilot_mde": float(row["mde"]),
                "examples_floor": floor,
                "seeds_needed": need,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def plan_lines(table: pd.DataFrame, detect: float, study_seeds: int) -> list[str]:
    """The answer in words: seeds for every margin, the hardest one, and what the study's seeds reach."""
    if table.empty:
        return [
            "No confirmatory margin in the pilot: it has no twin pair and no arm vs baseline to plan for."
        ]
    reachable = table[table["seeds_needed"].notna()]
    lines = []
    if not reachable.empty:
        worst = reachable.loc[reachable["seeds_needed"].idxmax()]
        lines.append(
            f"To detect a {detect:g}-point margin on every reachable confirmatory margin: "
            f"{int(worst['seeds_needed'])} seeds per arm (the hardest: {worst['comparison']} on "
            f"{worst['where']}, {worst['level']} level)."
        )
    ok = int((table["seeds_needed"] <= study_seeds).sum())
    lines.append(
        f"With the study's {study_seeds} seed(s), {ok} of {len(table)} confirmatory margins can detect "
        f"{detect:g} points."
    )
    floor = table[table["examples_floor"] >= detect]
    if not floor.empty:
        lines.append(
            f"{len(floor)} margin(s) cannot reach {detect:g} points with any number of seeds (their test "
            f"sets alone allow no less than {floor['examples_floor'].min():.2f}); more examples or "
            f"languages would."
        )
    return lines
