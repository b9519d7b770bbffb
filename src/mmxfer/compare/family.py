"""One declared family of confirmatory claims, corrected together; everything else is exploratory.

The family is fixed by the design, before any number is seen - it is what the headline states:

* the twin-matched modality margins (each multimodal arm minus its own text twin, and their mean, the pooled twin
  margin) on the suite average, per task category and on every FLORES-200 track;
* the classification - retrieval contrast of each of those margins;
* each arm minus the baseline, per category (the effect of intermediate training itself).

Where the suite declares no overall number (``overall: false``, FLORES-200: its tracks mix error rates and
scores), its tracks take the categories' place. The family's p-values are corrected together (Holm's step-down
by default, ``--correction``), so a ``*`` in the headline always means the same thing; each of its margins also
reports its minimum detectable effect (80 % power at ``alpha / m``, the level of Holm's first step, so the
figure is conservative for the others). A FLORES-200 track that is the only task of its category is the same margin
as that category's: it is tested once.

Exploratory, with their own correction (the same method within each group): per-language margins (across the
languages of one comparison and task), task-level margins outside the FLORES-200 tracks (across the tasks of one
comparison), contrasts between other categories (across the category pairs of one comparison), and the confounded
comparisons - a multimodal arm against a text task that is not its twin, all multimodal arms against all text arms
(across the categories, tasks or comparisons of their level).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmxfer.compare import stats, variance
from mmxfer.compare.arms import TWIN, TWIN_KINDS, VS_BASELINE

if TYPE_CHECKING:  # pragma: no cover
    from mmxfer.compare.gaps import GapResult

CONFIRMATORY, EXPLORATORY = "confirmatory", "exploratory"
#: the contrast between categories that the family holds
FAMILY_CONTRAST = ("classification", "retrieval")


def flores_tasks(languages: pd.DataFrame) -> set[tuple[str, str]]:
    """(task, metric) of the tracks whose languages are FLORES-200 codes (``lang_Script``)."""
    if languages.empty:
        return set()
    return {
        (t, m)
        for t, m, lang in zip(languages["task"], languages["metric"], languages["lang"])
        if "_" in str(lang)
    }


def _masks(result: GapResult) -> dict[str, np.ndarray]:
    """Per level, which rows belong to the family."""
    overall = result.settings.overall and not result.suite.empty
    flores = flores_tasks(result.languages)
    masks = {"languages": np.zeros(len(result.languages), bool)}
    summary = TWIN_KINDS + VS_BASELINE
    tasks = result.tasks
    if tasks.empty:
        masks["tasks"] = np.zeros(0, bool)
    else:
        on_flores = np.array([(t, m) in flores for t, m in zip(tasks["task"], tasks["metric"])])
        if overall:
            masks["tasks"] = on_flores & tasks["kind"].isin(TWIN_KINDS).to_numpy()
        else:
            masks["tasks"] = tasks["kind"].isin(summary).to_numpy()
    cats = result.categories
    masks["categories"] = (
        cats["kind"].isin(summary).to_numpy()
        if overall and not cats.empty
        else np.zeros(len(cats), bool)
    )
    suite = result.suite
    masks["suite"] = (
        suite["kind"].isin(TWIN_KINDS).to_numpy() if overall else np.zeros(len(suite), bool)
    )
    con = result.contrasts
    if con.empty or "category" not in con:
        masks["contrasts"] = np.zeros(len(con), bool)
    else:
        masks["contrasts"] = (
            con["kind"].isin(TWIN_KINDS)
            & (con["category"] == FAMILY_CONTRAST[0])
            & (con["other"] == FAMILY_CONTRAST[1])
        ).to_numpy()
    return masks


def _same_as_category(result: GapResult, mask: np.ndarray) -> dict[int, int]:
    """Family task rows (FLORES-200 tracks) that are the only task of their category for their comparison: the
    category row is the same margin, so the task row is tested once, as that row (task index -> category index)."""
    tasks, cats = result.tasks, result.categories
    if tasks.empty or cats.empty or not mask.any():
        return {}
    n_tasks = tasks.groupby(["arm", "reference", "category"]).size()
    where = {(r.arm, r.reference, r.category): i for i, r in zip(cats.index, cats.itertuples())}
    out = {}
    for i in tasks.index[mask]:
        key = (tasks.at[i, "arm"], tasks.at[i, "reference"], tasks.at[i, "category"])
        if n_tasks.get(key, 0) == 1 and key in where:
            out[i] = where[key]
    return out


def declare(result: GapResult) -> None:
    """Mark every row ``family`` = confirmatory or exploratory; correct the family's p-values together and give
    its margins their minimum detectable effect (``mde``)."""
    s = result.settings
    masks = _masks(result)
    overall = result.settings.overall and not result.suite.empty
    linked = _same_as_category(result, masks["tasks"]) if overall else {}
    counted = dict(masks)
    if linked:
        counted["tasks"] = masks["tasks"] & ~result.tasks.index.isin(list(linked))
    names = ("languages", "tasks", "categories", "suite", "contrasts")
    p = np.concatenate(
        [
            getattr(result, n)["p"].to_numpy(float)[counted[n]] if len(counted[n]) else np.zeros(0)
            for n in names
        ]
    )
    size = int(p.size)
    adjusted = stats.adjust(p, s.correction) if size else p
    start = 0
    for n in names:
        frame = getattr(result, n)
        if frame.empty:
            continue
        mask = counted[n]
        frame["family"] = np.where(masks[n], CONFIRMATORY, EXPLORATORY)
        frame["mde"] = np.nan
        frame["same_as"] = (
            ""  # "category": the same margin as its category's row, tested once as that row
        )
        k = int(mask.sum())
        if k:
            idx = frame.index[mask]
            frame.loc[idx, "p_adj"] = adjusted[start : start + k]
            frame.loc[idx, "significant"] = frame.loc[idx, "p_adj"] < s.alpha
            frame.loc[idx, "correction"] = f"{s.correction}, family of {size}"
            frame.loc[idx, "mde"] = [
                variance.minimum_detectable(se, df, s.alpha / size)
                for se, df in zip(frame.loc[idx, "se"], frame.loc[idx, "df"])
            ]
            start += k
    for task_row, cat_row in linked.items():
        for col in ("p_adj", "significant", "correction", "mde"):
            result.tasks.at[task_row, col] = result.categories.at[cat_row, col]
        result.tasks.at[task_row, "same_as"] = "category"
    result.family_size = size


def describe(result: GapResult) -> str:
    """One line naming the family: its size, what it holds, its correction."""
    fam = result.confirmatory()
    if "same_as" in fam:
        fam = fam[fam["same_as"].fillna("") == ""]
    if fam.empty:
        return "No confirmatory family: the runs have no twin pair and no arm vs baseline margin to test."
    s = result.settings
    parts = []
    for label, rows in (
        (
            "twin-matched modality margins",
            fam[fam["kind"].isin(TWIN_KINDS) & (fam["level"] != "contrast")],
        ),
        ("classification - retrieval contrasts", fam[fam["level"] == "contrast"]),
        ("arms vs baseline", fam[fam["kind"].isin(VS_BASELINE)]),
    ):
        if not rows.empty:
            parts.append(f"{len(rows)} {label}")
    twin_pairs = fam[fam["kind"] == TWIN][["arm", "reference"]].drop_duplicates().shape[0]
    return (
        f"Confirmatory family: {len(fam)} margins ({', '.join(parts)}; {twin_pairs} twin pair(s)), "
        f"{s.correction}-corrected together at alpha {s.alpha:g}; MDE = the margin each could detect with "
        f"{int(variance.POWER * 100)}% power at alpha/{len(fam)}. Every other margin in the tables is "
        f"exploratory (corrected within its comparison)."
    )
