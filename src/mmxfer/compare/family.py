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
figure is conservative for the others).

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
    return {(t, m) for t, m, lang in zip(languages["task"], languages["metric"], languages["lang"])
            if "_" in str(lang)}


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
    masks["categories"] = cats["kind"].isin(summary).to_numpy() if overall and not cats.empty \
        else np.zeros(len(cats), bool)
    suite = result.suite
    masks["suite"] = suite["kind"].isin(TWIN_KINDS).to_numpy() if overall else np.zeros(len(suite), bool)
    con = result.contrasts
    if con.empty or "category" not in con:
        masks["contrasts"] = np.zeros(len(con), bool)
    else:
        masks["contrasts"] = (con["kind"].isin(TWIN_KINDS) & (con["category"] == FAMILY_CONTRAST[0])
                              & (con["other"] == FAMILY_CONTRAST[1])).to_numpy()
    return masks


def declare(result: GapResult) -> None:
    """Mark every row ``family`` = confirmatory or exploratory; correct the family's p-values together and give
    its margins their minimum detectable effect (``mde``)."""
    s = result.settings
    masks = _masks(result)
    names = ("languages", "tasks", "categories", "suite", "contrasts")
    p = np.concatenate([getattr(result, n)["p"].to_numpy(float)[masks[n]] if len(masks[n]) else np.zeros(0)
                        for n in names])
    size = int(p.size)
    adjusted = stats.adjust(p, s.correction) if size else p
    start = 0
    for n in names:
        frame = getattr(result, n)
        if frame.empty:
            continue
        mask = masks[n]
        frame["family"] = np.where(mask, CONFIRMATORY, EXPLORATORY)
        frame["mde"] = np.nan
        k = int(mask.sum())
        if k:
            idx = frame.index[mask]
            frame.loc[idx, "p_adj"] = adjusted[start:start + k]
            frame.loc[idx, "significant"] = frame.loc[idx, "p_adj"] < s.alpha
            frame.loc[idx, "correction"] = f"{s.correction}, family of {size}"
            frame.loc[idx, "mde"] = [variance.minimum_detectable(se, df, s.alpha / size)
                                     for se, df in zip(frame.loc[idx, "se"], frame.loc[idx, "df"])]
            start += k
    result.family_size = size


def describe(result: GapResult) -> str:
    """One line naming the family: its size, what it holds, its correction."""
    fam = result.confirmatory()
    if fam.empty:
        return "No confirmatory family: the runs have no twin pair and no arm vs baseline margin to test."
    s = result.settings
    parts = []
    for label, rows in (("twin-matched modality margins", fam[fam["kind"].isin(TWIN_KINDS)
                                                                & (fam["level"] != "contrast")]),
                        ("classification - retrieval contrasts", fam[fam["level"] == "contrast"]),
                        ("arms vs baseline", fam[fam["kind"].isin(VS_BASELINE)])):
        if not rows.empty:
            parts.append(f"{len(rows)} {label}")
    twin_pairs = fam[fam["kind"] == TWIN][["arm", "reference"]].drop_duplicates().shape[0]
    return (f"Confirmatory family: {len(fam)} margins ({', '.join(parts)}; {twin_pairs} twin pair(s)), "
            f"{s.correction}-corrected together at alpha {s.alpha:g}; MDE = the margin each could detect with "
            f"{int(variance.POWER * 100)}% power at alpha/{len(fam)}. Every other margin in the tables is "
            f"exploratory (corrected within its comparison).")
