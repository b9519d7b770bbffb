"""Tables (Markdown, CSV, LaTeX), published reference numbers and the headline answer.

The report has one section per track (a suite's (task, metric): FLORES-200 xSIM, SIB-200, translation chrF++
and spBLEU each get their own heading, margins and intervals). A track the suite declares but the runs lack is
shown as a "missing: <why>" cell and named in the printed answer. A suite with ``overall: false`` gets no
suite-average heading or number, and no category table (its categories are its tracks).
"""

from __future__ import annotations

from importlib import resources
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmxfer import catalog
from mmxfer.compare import family
from mmxfer.compare.arms import (
    CONFOUNDED_KINDS,
    CONTROL_VS_BASELINE,
    MODALITY_KINDS,
    POOLED_TWINS,
    TWIN,
    TWIN_KINDS,
    VS_BASELINE,
    pooled_members,
)
from mmxfer.compare.gaps import GapResult, category_order, write_gaps
from mmxfer.errors import DataError
from mmxfer.runs import atomic

#: up to this many arms, the headline lists each arm's margin over the baseline; beyond, it counts them
MAX_LISTED_ARMS = 6


#: what every published row must say (``note`` may be empty)
PUBLISHED_COLUMNS = (
    "source",
    "source_table",
    "model",
    "selection",
    "task",
    "lang",
    "metric",
    "score",
    "checked_against",
)


def load_published() -> pd.DataFrame:
    """Every published reference row (columns: :data:`PUBLISHED_COLUMNS` and ``note``), checked by
    :func:`check_published`."""
    folder = resources.files("mmxfer").joinpath("resources/published")
    frames = [
        pd.read_csv(StringIO(f.read_text(encoding="utf-8")))
        for f in folder.iterdir()
        if f.name.endswith(".csv")
    ]
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*PUBLISHED_COLUMNS, "note"])
    )
    check_published(frame)
    return frame


def check_published(frame: pd.DataFrame) -> None:
    """Every row names its source, what kind of number it is and what it was checked against; a category row
    (``task: category:<name>``) equals the mean of the same model's per-task rows of that category and metric
    (to the 0.05 of one-decimal rounding) - else one :class:`~mmxfer.errors.DataError` naming the row."""
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"published numbers: missing column(s) {', '.join(missing)}")
    blank = frame[list(PUBLISHED_COLUMNS)].isna().any(axis=1)
    if blank.any():
        row = frame[blank].iloc[0]
        raise DataError(
            f"published numbers: {row['model']} {row['task']} {row['metric']} leaves a column empty "
            f"(each needs {', '.join(PUBLISHED_COLUMNS)})"
        )
    catalog.load_plugins()
    tasks = frame[~frame["task"].str.startswith("category:")]
    task_category = tasks["task"].map(lambda name: catalog.task(name).category)
    for row in frame[frame["task"].str.startswith("category:")].itertuples():
        category = row.task.split(":", 1)[1]
        metrics = {"em/f1": ("exact_match", "f1")}.get(row.metric, (row.metric,))
        same = tasks[
            (tasks["model"] == row.model)
            & (tasks["lang"] == row.lang)
            & tasks["metric"].isin(metrics)
            & (task_category == category)
        ]
        mean = float(same["score"].mean()) if len(same) else float("nan")
        if not abs(mean - float(row.score)) <= 0.05 + 1e-9:
            parts = " + ".join(f"{s:g}" for s in same["score"])
            raise DataError(
                f"published numbers: {row.model} {row.task} = {row.score:g} is not the mean of its "
                f"per-task rows ({parts or 'none'} -> {mean:.2f}); label it as its own number or "
                f"leave it out"
            )


def _headline_key(metric: str) -> str:
    """The score key a results row carries: the registered metric's primary key (``squad`` -> ``f1``)."""
    catalog.load_plugins()
    return catalog.METRICS.get(metric).primary if metric in catalog.METRICS else metric


def beside_published(results: pd.DataFrame, arms: list[str] | None = None) -> pd.DataFrame:
    """Each task's published numbers once, beside our task averages (mean over languages, then seeds) per arm.

    One row per task x score key that some published source reports; a column ``ours: <arm>`` per arm, then one
    column per published model, named as it is (X-STILTs': the best intermediate task *per target*, so it is one
    number per task, not a model beside each arm). Matched on the task and the score key (``accuracy``, ``f1``).
    """
    pub = load_published()
    if pub.empty or results.empty:
        return pd.DataFrame()
    pub = pub[pub["lang"] == "avg"]
    frame = results if arms is None else results[results["arm"].isin(arms)]
    ours = (
        frame.groupby(["arm", "task", "metric", "seed"], as_index=False)["score"]
        .mean()
        .groupby(["arm", "task", "metric"], as_index=False)["score"]
        .mean()
    )
    ours["key"] = ours["metric"].map(_headline_key)
    order = list(dict.fromkeys(ours["arm"]))
    ours_wide = ours.pivot_table(
        index=["task", "key"], columns="arm", values="score", aggfunc="first"
    )
    ours_wide = ours_wide[order].rename(columns=lambda a: f"ours: {a}").reset_index()
    models = list(dict.fromkeys(pub["model"]))
    wide = pub.pivot_table(
        index=["task", "metric"], columns="model", values="score", aggfunc="first"
    )
    wide = wide.reset_index().rename(columns={"metric": "key"})
    merged = ours_wide.merge(wide, on=["task", "key"], how="inner")
    models = [m for m in models if m in merged.columns]
    ours_cols = [c for c in merged.columns if str(c).startswith("ours: ")]
    return merged[["task", "key", *ours_cols, *models]].rename(columns={"key": "score"})


def published_sources(table: pd.DataFrame) -> list[str]:
    """One line per published model behind the numbers in a :func:`beside_published` table: its source, what kind
    of number it is and what it was checked against."""
    pub = load_published()
    shown = pub[pub["model"].isin(table.columns) & pub["task"].isin(table["task"])]
    rows = shown.drop_duplicates(["model", "source", "source_table"])
    return [
        f"{r.model}: {r.source}, {r.source_table} ({r.selection}; checked against {r.checked_against})"
        for r in rows.itertuples()
    ]


def _fmt(m: float, lo: float, hi: float, sig: bool, mde: float = float("nan")) -> str:
    if pd.isna(lo):
        return f"{m:+.2f}"
    power = f" (MDE {mde:.2f})" if pd.notna(mde) else ""
    return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]{'*' if sig else ''}{power}"


def _cells(df: pd.DataFrame) -> list[str]:
    """'m [lo, hi]*' per row, with ' (MDE x)' where the row is in the confirmatory family."""
    mde = df["mde"] if "mde" in df else pd.Series(np.nan, index=df.index)
    return [
        _fmt(*v) for v in zip(df["margin"], df["ci_low"], df["ci_high"], df["significant"], mde)
    ]


def summary_table(frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """Comparisons as rows, ``column`` values (category / task) as columns, cells 'm [lo, hi]*'."""
    df = frame.copy()
    df["comparison"] = df["arm"] + " - " + df["reference"]
    df["cell"] = _cells(df)
    if column is None:
        return df[["comparison", "kind", "cell", "p", "p_adj"]].rename(
            columns={"cell": "margin [CI]"}
        )
    return df.pivot_table(
        index=["comparison", "kind"], columns=column, values="cell", aggfunc="first"
    ).reset_index()


def _track_names(result: GapResult) -> dict[tuple[str, str], str]:
    """(task, metric) -> the track's name in tables; tasks outside the declared tracks keep their own name."""
    names = {(t.task, t.metric): t.name for t in result.tracks if t.metric}
    for row in result.tasks[["task", "metric"]].drop_duplicates().itertuples():
        names.setdefault((row.task, row.metric), row.task)
    return names


def _comparisons(result: GapResult) -> pd.DataFrame:
    frames = [result.tasks, result.categories, result.suite]
    pairs = pd.concat(
        [f[["arm", "reference", "kind"]] for f in frames if not f.empty], ignore_index=True
    )
    return pairs.drop_duplicates(["arm", "reference"]).reset_index(drop=True)


def tasks_table(result: GapResult) -> pd.DataFrame:
    """Comparisons x tracks: 'm [lo, hi]*' cells, and 'missing: <why>' where a declared track has no margin
    (the track is missing from the runs, or one of the two arms has no scored run of it)."""
    names = _track_names(result)
    frame = result.tasks.assign(
        track=[names[(t, m)] for t, m in zip(result.tasks["task"], result.tasks["metric"])]
    )
    table = (
        summary_table(frame, "track")
        if not frame.empty
        else pd.DataFrame(columns=["comparison", "kind"])
    )
    comps = _comparisons(result)
    comps["comparison"] = comps["arm"] + " - " + comps["reference"]
    table = comps[["comparison", "kind"]].merge(table, on=["comparison", "kind"], how="left")
    declared = [t.name for t in result.tracks] or [
        c for c in table.columns if c not in ("comparison", "kind")
    ]
    extra = [c for c in table.columns if c not in ("comparison", "kind", *declared)]
    by_name = {t.name: t for t in result.tracks}
    for name in declared:
        track = by_name.get(name)
        if name not in table.columns:
            table[name] = None
        for i, row in comps.iterrows():
            if pd.notna(table.at[i, name]):
                continue
            if track is not None and track.status == "missing":
                table.at[i, name] = (
                    f"missing: {track.reason.split(': ')[0]}"  # the Tracks table has the rest
                )
            else:
                lacking = [
                    a for a in (row["arm"], row["reference"]) if track and a in track.arms_missing
                ]
                table.at[i, name] = (
                    f"missing: no scored {name} run of {' and '.join(lacking)}"
                    if lacking
                    else "missing: no language with runs of both arms"
                )
    return table[["comparison", "kind", *declared, *extra]]


def contrast_table(contrasts: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison and pair of categories: each margin and their difference 'm [lo, hi]*'."""
    df = contrasts.copy()
    df["comparison"] = df["arm"] + " - " + df["reference"]
    df["difference [CI]"] = _cells(df)
    df["categories"] = df["category"] + " - " + df["other"]
    return df[
        [
            "comparison",
            "kind",
            "categories",
            "margin_category",
            "margin_other",
            "difference [CI]",
            "p",
            "p_adj",
        ]
    ]


def tracks_table(result: GapResult) -> pd.DataFrame:
    """One row per declared track: metric, direction, languages covered (and the runs' subset), or why missing."""
    catalog.load_plugins()
    rows = []
    for t in result.tracks:
        hib = (
            catalog.METRICS.get(t.metric).higher_is_better if t.metric in catalog.METRICS else True
        )
        langs = (
            ""
            if t.status != "ok"
            else str(t.n_languages)
            + (f" (runs limited to {', '.join(t.languages_subset)})" if t.languages_subset else "")
        )
        status = "ok" if t.status == "ok" else f"missing: {t.reason}"
        if t.status == "ok" and t.arms_missing:
            status = f"ok; missing for arm(s) {', '.join(t.arms_missing)}"
        if t.note:
            status += f"; {t.note}"
        rows.append(
            {
                "track": t.name,
                "task": t.task,
                "metric": t.metric or "",
                "category": t.category or "",
                "better": "higher" if hib else "lower (margins sign-flipped)",
                "languages": langs,
                "status": status,
            }
        )
    return pd.DataFrame(
        rows, columns=["track", "task", "metric", "category", "better", "languages", "status"]
    )


def _track_lines(result: GapResult, track: Any, names: dict[tuple[str, str], str]) -> list[str]:
    """The report section of one track: task-level margins, and per-language margins with intervals."""
    lines = [f"## Track {track.task} - {track.metric or 'no scores'}", ""]
    if track.status == "missing":
        return lines + [f"missing: {track.reason}", ""]
    if track.note:
        lines += [f"Note: {track.note}", ""]
    task = result.tasks[
        (result.tasks["task"] == track.task) & (result.tasks["metric"] == track.metric)
    ]
    if task.empty:
        return lines + ["missing: no language has finished runs of both arms of any comparison", ""]
    hib = (
        catalog.METRICS.get(track.metric).higher_is_better
        if track.metric in catalog.METRICS
        else True
    )
    table = task.assign(comparison=task["arm"] + " - " + task["reference"], cell=_cells(task))
    table = table[
        ["comparison", "kind", "score_arm", "score_reference", "cell", "p_adj", "n_cells"]
    ].rename(columns={"cell": "margin [CI]", "n_cells": "languages"})
    lines += [
        f"Mean over {track.n_languages} language(s){' (English left out)' if not result.settings.include_english else ''}; "
        f"{'higher is better' if hib else 'lower is better: margins are sign-flipped, positive = the arm is better'}"
        + (
            f"; runs limited to {', '.join(track.languages_subset)}"
            if track.languages_subset
            else ""
        )
        + ".",
        "",
        to_markdown(table),
    ]
    langs = result.languages[
        (result.languages["task"] == track.task) & (result.languages["metric"] == track.metric)
    ]
    if not langs.empty:
        langs = langs.assign(
            comparison=langs["arm"] + " - " + langs["reference"], cell=_cells(langs)
        )
        comps = list(dict.fromkeys(langs["comparison"]))
        if len(comps) <= 4:
            grid = langs.pivot_table(
                index="lang", columns="comparison", values="cell", aggfunc="first"
            ).reset_index()
            lines += [
                "Per language (margin [CI], * = significant after the exploratory correction within each comparison):",
                "",
                to_markdown(grid[["lang", *comps]]),
            ]
        else:
            flags = langs.assign(
                better=langs["significant"] & (langs["margin"] > 0),
                worse=langs["significant"] & (langs["margin"] < 0),
            )
            counts = (
                flags.groupby("comparison", sort=False)
                .agg(
                    languages=("lang", "nunique"),
                    significantly_better=("better", "sum"),
                    significantly_worse=("worse", "sum"),
                )
                .reset_index()
            )
            lines += [
                "Per language: significant margins per comparison (every margin is in gaps_language.csv):",
                "",
                to_markdown(counts),
            ]
    return lines


def to_markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def to_latex(df: pd.DataFrame, caption: str = "") -> str:
    def esc(text: object) -> str:
        s = _cell(text)
        for a, b in (
            ("\\", r"\textbackslash{}"),
            ("_", r"\_"),
            ("%", r"\%"),
            ("&", r"\&"),
            ("#", r"\#"),
        ):
            s = s.replace(a, b)
        return s

    cols = list(df.columns)
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{" + "l" * len(cols) + "}",
        r"\toprule",
        " & ".join(esc(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    out += [" & ".join(esc(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    out += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        out.append(r"\caption{" + esc(caption) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def _cell_of(row: Any) -> str:
    return _fmt(
        row["margin"],
        row["ci_low"],
        row["ci_high"],
        row["significant"],
        row.get("mde", float("nan")),
    )


def _name(row: Any) -> str:
    return f"{row['arm']} - {row['reference']}"


def headline_comparisons(frame: pd.DataFrame) -> pd.DataFrame:
    """The modality comparisons a headline names, in a fixed order (never chosen by their result): each
    multimodal arm vs its text twin, then the pooled twin margin. Comparisons with other text tasks are confounded
    with the task and never headline."""
    twin = frame[frame["kind"].isin(TWIN_KINDS)]
    order = {k: i for i, k in enumerate(MODALITY_KINDS)}
    return (
        twin.assign(_o=twin["kind"].map(order)).sort_values("_o", kind="stable").drop(columns="_o")
    )


def _summary_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """The one modality comparison that summarises a category split: the pooled twin margin, else the only twin
    pair; empty when there is no single one."""
    for kind in TWIN_KINDS:
        rows = frame[frame["kind"] == kind]
        if rows[["arm", "reference"]].drop_duplicates().shape[0] == 1:
            return rows
    return frame.iloc[0:0]


def _modality_line(frame: pd.DataFrame, where: str, level: str) -> list[str]:
    comps = headline_comparisons(frame)
    if comps.empty:
        return []
    cells = "; ".join(f"{_name(r)} {_cell_of(r)}" for _, r in comps.iterrows())
    return [f"Modality effect{where} (each multimodal arm vs its text twin; {level}): {cells}."]


def _verdict(row: Any) -> str:
    """'significant', or what the design could have seen: 'not significant; could have detected >= X'."""
    if row["significant"]:
        return "significant"
    mde = row.get("mde", float("nan"))
    return (
        f"not significant; could have detected >= {mde:.2f}" if pd.notna(mde) else "not significant"
    )


def _category_lines(result: GapResult, level: str) -> list[str]:
    """(1): the modality margin per category and its difference between categories (with an interval)."""
    cats = result.categories
    summary = _summary_comparison(cats[cats["kind"].isin(TWIN_KINDS)])
    if summary.empty or summary["category"].nunique() < 2:
        return []
    arm, ref = summary["arm"].iloc[0], summary["reference"].iloc[0]
    order = sorted(summary.index, key=lambda i: category_order(summary.at[i, "category"]))
    parts = ", ".join(f"{r['category']} {_cell_of(r)}" for _, r in summary.loc[order].iterrows())
    line = f"(1) Gap by task category ({arm} - {ref}; {level}): {parts}"
    con = result.contrasts
    if not con.empty:
        con = con[
            (con["arm"] == arm) & (con["reference"] == ref) & (con["family"] == family.CONFIRMATORY)
        ]
        diffs = [
            f"{r['category']} - {r['other']} {_fmt(r['margin'], r['ci_low'], r['ci_high'], r['significant'])}"
            f" ({_verdict(r)})"
            for _, r in con.iterrows()
        ]
        if diffs:
            line += "; difference " + ", ".join(diffs)
    return [line + "."]


def _flores_lines(result: GapResult, level: str) -> list[str]:
    """(2): on the FLORES-200 tracks (languages in FLORES-200 codes), each multimodal arm vs its text twin."""
    tasks = result.tasks[result.tasks["kind"].isin(MODALITY_KINDS)]
    flores = family.flores_tasks(result.languages)
    names = _track_names(result)
    parts = []
    for (task, metric), frame in tasks.groupby(["task", "metric"], sort=False):
        if (task, metric) not in flores:
            continue
        comps = frame[frame["kind"] == TWIN]
        if not comps.empty:
            parts.append(
                f"{names[(task, metric)]}: "
                + ", ".join(f"{_name(r)} {_cell_of(r)}" for _, r in comps.iterrows())
            )
    if not parts:
        return []
    twin = tasks[tasks["kind"] == TWIN]
    twin = twin[[(t, m) in flores for t, m in zip(twin["task"], twin["metric"])]]
    verdict = ""
    if not twin.empty:
        ahead = int((twin["significant"] & (twin["margin"] > 0)).sum())
        behind = int((twin["significant"] & (twin["margin"] < 0)).sum())
        verdict = (
            f" Multimodal arms significantly ahead of their twins in {ahead}, behind in {behind}, "
            f"of {len(twin)} arm x task margins."
        )
    return [
        f"(2) FLORES-200 tasks, multimodal arm - its text twin ({level}): "
        + "; ".join(parts)
        + "."
        + verdict
    ]


def _vs_baseline_groups(
    result: GapResult, kinds: tuple[str, ...]
) -> list[tuple[str, str, pd.DataFrame]]:
    """(name, category, rows) of the margins of ``kinds`` (against the baseline) at the level the confirmatory
    family holds: per category, or per track where the suite has no overall number."""
    if result.settings.overall and not result.suite.empty:
        vs = result.categories[result.categories["kind"].isin(kinds)]
        return [(c, c, f) for c, f in vs.groupby("category", sort=False)]
    names = _track_names(result)
    vs = result.tasks[result.tasks["kind"].isin(kinds)]
    return [
        (names[key], f["category"].iloc[0], f)
        for key, f in vs.groupby(["task", "metric"], sort=False)
    ]


def _control_lines(result: GapResult, level: str) -> list[str]:
    """The positive control against the baseline: whether the design detects an effect known to exist."""
    parts = [
        f"{name}: {r['arm']} - {r['reference']} {_cell_of(r)}"
        for name, _, frame in _vs_baseline_groups(result, (CONTROL_VS_BASELINE,))
        for _, r in frame.iterrows()
    ]
    if not parts:
        return []
    return [
        f"Positive control (an intermediate task known to move cross-lingual retrieval; {level}): "
        + "; ".join(parts)
        + "."
    ]


def _baseline_lines(result: GapResult, level: str) -> list[str]:
    """The effect of intermediate training on the trunk: every arm vs the baseline, per category - per track where
    the suite has no overall number (the level the confirmatory family holds); no best-of. A positive control
    has its own line."""
    groups = _vs_baseline_groups(result, VS_BASELINE)
    if not groups:
        return []
    parts = []
    for name, category, frame in groups:
        label = (
            f"{name} (trunk as it is: negative = forgetting)" if category == "retrieval" else name
        )
        if len(frame) <= MAX_LISTED_ARMS:
            parts.append(
                f"{label}: " + ", ".join(f"{r['arm']} {_cell_of(r)}" for _, r in frame.iterrows())
            )
        else:  # many arms (the paper grid): counts, every margin is in the tables
            up = int((frame["significant"] & (frame["margin"] > 0)).sum())
            down = int((frame["significant"] & (frame["margin"] < 0)).sum())
            parts.append(
                f"{label}: {up} of {len(frame)} arms significantly above, {down} below "
                f"(margins {frame['margin'].min():+.2f} to {frame['margin'].max():+.2f})"
            )
    ref = ", ".join(dict.fromkeys(r for _, _, frame in groups for r in frame["reference"]))
    return [
        f"Intermediate training itself (each arm - {ref}, not the modality effect; {level}): "
        + "; ".join(parts)
        + "."
    ]


def method_line(result: GapResult) -> str:
    """How every interval and p-value in the report is made (the model and its assumptions; the full text and
    its calibration are in ``mmxfer/resources/statistics.md``)."""
    s = result.settings
    frames = [
        f for f in (result.languages, result.tasks, result.categories, result.suite) if not f.empty
    ]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if s.n_boot == 0:
        return "Method: margins only (--bootstrap 0: no intervals or tests)."
    runs = "examples only" not in set(rows.get("interval", pd.Series(dtype=str)))
    pooled = int(rows["pooled_arms"].max()) if "pooled_arms" in rows and len(rows) else 0
    run_part = (
        f"plus run-to-run (seed) variance: the within-arm spread of the per-seed scores at the margin's "
        f"own level, pooled over up to {pooled} arms (k-1 degrees of freedom each; assumes one run variance "
        f"for every arm, runs independent across arms; arms whose runs are identical copies add none)"
        if runs
        else "run-to-run variance NOT estimated (no arm has two seeds on some levels): those "
        "intervals are labelled 'examples only' and cover the test-set sample alone"
    )
    return (
        f"Method: each margin is a contrast of arm means (each arm's mean over its seeds). Its variance is the "
        f"test-set variance (paired bootstrap, {s.n_boot} resamples of example units: a parallel test set's "
        f"items drawn once for all its languages, both retrieval directions of a sentence one unit; each run's "
        f"seed x example noise is left to the run term) {run_part}. {int((1 - s.alpha) * 100)}% t intervals "
        f"with Satterthwaite degrees of freedom; two-sided p-values from the same t; {s.correction} correction "
        f"over the confirmatory family (below), exploratory margins corrected within their comparison. "
        f"Sources and calibration: mmxfer/resources/statistics.md."
    )


def family_table(fam: pd.DataFrame) -> pd.DataFrame:
    """The confirmatory margins, one row each: level, where, comparison, margin [CI], p, corrected p, MDE."""
    where = [
        r.category
        if r.level in ("category",)
        else (
            f"{r.category} - {r.other}"
            if r.level == "contrast"
            else (r.task if r.level == "task" else "suite")
        )
        for r in fam.itertuples()
    ]
    return pd.DataFrame(
        {
            "level": fam["level"],
            "where": where,
            "comparison": fam["arm"] + " - " + fam["reference"],
            "kind": fam["kind"],
            "margin [CI]": _cells(fam.assign(mde=np.nan)),
            "interval": fam["interval"],
            "p": fam["p"],
            "p_adj": fam["p_adj"],
            "mde": fam["mde"],
        }
    )


def pooled_table(result: GapResult) -> pd.DataFrame:
    """Each pooled side of a comparison and the arms behind it."""
    members = pooled_members(result.comparisons)
    rows = [{"pooled side": name, "arms": ", ".join(arms)} for name, arms in members.items()]
    return pd.DataFrame(rows)


def _twin_pairs(result: GapResult) -> list[tuple[str, str]]:
    return [(c.arm, c.reference) for c in result.comparisons if c.kind == TWIN]


def synthetic_tasks(result: GapResult) -> list[str]:
    """The arms' intermediate tasks whose data are generated rather than a benchmark (:attr:`TaskSpec.synthetic`)."""
    out = []
    for names in result.arms.get("intermediate", pd.Series(dtype=str)):
        for name in str(names or "").split(","):
            spec = catalog.find_task(name) if name else None
            if spec is not None and spec.synthetic and spec.name not in out:
                out.append(spec.name)
    return out


def headline(result: GapResult) -> list[str]:
    """A few lines: the modality effect (each multimodal arm vs its text twin, and pooled), (1) how it differs
    between task categories, (2) on the FLORES-200 tracks, and the effect of intermediate training itself (each
    arm vs the baseline). Every comparison is named before its result is known; nothing is picked as the best.
    Then every declared track the runs lack, and a note when the intermediate tasks are synthetic."""
    s = result.settings
    level = f"{int((1 - s.alpha) * 100)}% CI, * = significant in the confirmatory family ({s.correction})"
    lines: list[str] = []
    if s.overall and not result.suite.empty:
        partial = (
            f" over {len(result.tracks) - len(result.missing)} of {len(result.tracks)} tracks"
            if result.missing
            else ""
        )
        lines += _modality_line(result.suite, f", suite average{partial}", level)
    else:
        lines.append(
            "No suite average: the suite declares overall: false (its tracks mix error rates and scores); "
            "each track on its own:"
        )
        names = _track_names(result)
        for (task, metric), frame in result.tasks.groupby(["task", "metric"], sort=False):
            lines += [
                f"  {line}" for line in _modality_line(frame, f" on {names[(task, metric)]}", level)
            ]
    lines += _category_lines(result, level)
    lines += _flores_lines(result, level)
    lines += _baseline_lines(result, level)
    lines += _control_lines(result, level)
    if not result.tasks["kind"].isin(MODALITY_KINDS).any():
        lines.append(
            "No multimodal arm among the finished runs: only text arms vs the baseline are compared."
        )
    elif not result.tasks["kind"].isin(TWIN_KINDS).any():
        lines.append(
            "No multimodal arm has its text twin among the arms, so the modality effect is not isolated: "
            "the multimodal - text margins in the tables compare different tasks too (confounded, "
            "exploratory)."
        )
    lines.append(family.describe(result))
    members = pooled_members(result.comparisons)
    pooled = [c for c in result.comparisons if c.kind == POOLED_TWINS]
    if pooled:
        c = pooled[0]
        lines.append(
            f"Pooled twin margin {c.name} = mean of "
            + ", ".join(f"{a} - {t}" for a, t in _twin_pairs(result))
            + f" ({c.arm}: {', '.join(members[c.arm])})."
        )
    for t in result.missing:
        lines.append(f"Missing track {t.name}: {t.reason}")
    for t in result.tracks:
        if t.status == "ok" and t.arms_missing:
            lines.append(
                f"Track {t.name} lacks arm(s) {', '.join(t.arms_missing)} (no scored run)."
            )
    langs = result.languages
    n_sig = int(langs["significant"].sum())
    lines.append(
        f"{n_sig} of {len(langs)} per-language margins are significant (exploratory: {s.correction} across "
        f"the languages of each comparison and task)."
    )
    synthetic = synthetic_tasks(result)
    if synthetic:
        lines.append(
            f"Note: the intermediate tasks here ({', '.join(synthetic)}) are synthetic (generated, not "
            f"benchmark data): these margins demonstrate the method; the paper-scale study is "
            f"`mmxfer study paper`."
        )
    return lines


def setup_lines(results: pd.DataFrame) -> list[str]:
    """What the runs were made with: the trunk, and the vision tower of the image-text arms with its provenance
    (the registered tower's description: weights, their source and licence)."""
    lines = []
    trunks = sorted({t for t in results.get("trunk", pd.Series(dtype=str)).dropna() if t})
    if trunks:
        lines.append(f"Trunk: {', '.join(trunks)}.")
    image = (
        results[results["modality"].isin(("image-text", "mixed"))]
        if "modality" in results
        else results.iloc[:0]
    )
    for name in sorted({v for v in image.get("vision", pd.Series(dtype=str)).dropna() if v}):
        catalog.load_plugins()
        entry = catalog.VISION_TOWERS.get(name) if name in catalog.VISION_TOWERS else None
        about = f" - {entry.description}" if entry is not None else " (an open_clip model config)"
        lines.append(f"Vision tower of the image-text arms: {name}{about}.")
    return lines


def write_report(
    result: GapResult,
    results: pd.DataFrame,
    out_dir: str | Path,
    suite_name: str,
    plots: list[Path] | None = None,
) -> dict[str, Path]:
    """Markdown report + CSV and LaTeX tables in ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    paths = {f"gaps_{k}": v for k, v in write_gaps(result, out_dir).items()}
    tables = _report_tables(result, results)
    paths.update(_write_tables(tables, out_dir, suite_name))
    paths["report"] = out_dir / "report.md"
    md = _report_lines(result, results, tables, suite_name, plots)
    atomic.write_text(paths["report"], "\n".join(md) + "\n")
    return paths


def _report_tables(result: GapResult, results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The report's tables by name; a table with no rows is left out (and so is its section)."""
    overall = result.settings.overall and not result.suite.empty
    tables: dict[str, pd.DataFrame] = {"tracks": tracks_table(result)}
    if overall:
        tables["suite"] = summary_table(result.suite, None)
        tables["categories"] = summary_table(result.categories, "category")
    tables["tasks"] = tasks_table(result)
    cats = result.categories
    modality = headline_comparisons(cats)
    if not modality.empty:
        tables["modality"] = summary_table(modality, "category")
    if not result.contrasts.empty:
        tables["contrasts"] = contrast_table(result.contrasts)
    confounded = cats[cats["kind"].isin(CONFOUNDED_KINDS)]
    if not confounded.empty:
        tables["confounded"] = summary_table(confounded, "category")
    fam = result.confirmatory()
    fam = fam[fam["same_as"].fillna("") == ""] if "same_as" in fam else fam
    if not fam.empty:
        tables["family"] = family_table(fam)
    pooled = pooled_table(result)
    if not pooled.empty:
        tables["pooled"] = pooled
    vs_base = cats[cats["kind"].isin((*VS_BASELINE, CONTROL_VS_BASELINE))]
    if not vs_base.empty:
        tables["intermediate"] = summary_table(vs_base, "category")
    published = beside_published(results)
    if not published.empty:
        tables["published"] = published
    return tables


def _write_tables(
    tables: dict[str, pd.DataFrame], out_dir: Path, suite_name: str
) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        for ext, text in (
            ("csv", table.to_csv(index=False)),
            ("tex", to_latex(table, f"{suite_name}: {name}")),
        ):
            path = out_dir / f"table_{name}.{ext}"
            atomic.write_text(path, text)
            paths[f"table_{name}_{ext}"] = path
    return paths


def _report_lines(
    result: GapResult,
    results: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    suite_name: str,
    plots: list[Path] | None,
) -> list[str]:
    bullets = [
        f"  - {line.strip()}" if line.startswith("  ") else f"- {line}" for line in headline(result)
    ]
    md = [
        f"# Gap analysis: {suite_name}",
        "",
        *bullets,
        "",
        method_line(result),
        "",
        "## Setup",
        "",
        *[f"- {line}" for line in setup_lines(results)],
        "",
        "## Arms",
        "",
        to_markdown(result.arms),
        "## Tracks",
        "",
        to_markdown(tables["tracks"]),
    ]
    if "family" in tables:
        md += [
            "## Confirmatory family",
            "",
            family.describe(result),
            "",
            to_markdown(tables["family"]),
        ]
    if "pooled" in tables:
        md += ["## Arms behind every pooled value", "", to_markdown(tables["pooled"])]
    if "modality" in tables:
        md += [
            "## Modality effect: each multimodal arm vs its text twin, and pooled",
            "",
            "Per category (mean of its tasks). The twin pairs differ only in the image; the pooled twin margin is "
            "the mean of the twin margins (each multimodal arm minus its own twin).",
            "",
            to_markdown(tables["modality"]),
        ]
        if "contrasts" in tables:
            md += [
                "How the modality margin differs between categories (category - other, one linear combination "
                "of the same runs and draws):",
                "",
                to_markdown(tables["contrasts"]),
            ]
    if "confounded" in tables:
        md += [
            "## Multimodal arms vs other text tasks (confounded with the task; exploratory)",
            "",
            "These compare an image task with a different text task, so the margin mixes the modality with the "
            "task; never a headline.",
            "",
            to_markdown(tables["confounded"]),
        ]
    if "intermediate" in tables:
        md += [
            "## Effect of intermediate training on the trunk: each arm vs the baseline",
            "",
            "Not the modality effect: this is what phase 2 does to the trunk at all. Retrieval uses the trunk "
            "as it is, so a negative margin there is forgetting.",
            "",
            to_markdown(tables["intermediate"]),
        ]
    if "suite" in tables:
        md += [
            "## Suite average",
            "",
            to_markdown(tables["suite"]),
            "## Per category",
            "",
            to_markdown(tables["categories"]),
        ]
    md += ["## Per task", "", to_markdown(tables["tasks"])]
    names = _track_names(result)
    for track in result.tracks:
        md += _track_lines(result, track, names)
    if "published" in tables:
        md += [
            "## Ours beside published numbers",
            "",
            to_markdown(tables["published"]),
            "Sources:",
            "",
            *[f"- {line}" for line in published_sources(tables["published"])],
            "",
        ]
    if plots:
        md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots if p.suffix == ".png"]
    return md
