"""A suite's tracks: which (task, metric) rows of the tidy table each declared entry scores, and why a declared
track has no margins (missing from the runs, unscored, limited to some languages)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from mmxfer import catalog
from mmxfer.compare.example_scores import task_attr
from mmxfer.runs.store import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteEntry:
    """One scored (task, metric) of a suite: metric names to look for in the runs (first found wins),
    the split, and a category override. A task may appear in several entries (FLORES-200: xSIM, chrF++)."""

    task: str
    metrics: tuple[str, ...] = ()
    split: str | None = None
    category: str | None = None
    score_key: str | None = (
        None  # compare this key of the runs' ``scores`` (QA: f1_em, XTREME's task score)
    )


def _with_score_key(sub: pd.DataFrame, key: str) -> pd.DataFrame:
    """``sub`` valued by ``scores[key]`` of each run's metric row, under the metric name ``key``; unchanged (with a
    warning) when a run did not record it."""
    recorded: dict[str, dict[tuple, dict]] = {}
    values = []
    for row in sub.itertuples():
        if row.path not in recorded:
            recorded[row.path] = {
                (m.get("task"), str(m.get("lang")), m.get("split", "test"), m.get("metric")): m.get(
                    "scores"
                )
                or {}
                for m in Run(row.path).metrics()
                if not m.get("part")
            }
        values.append(
            recorded[row.path].get((row.task, row.lang, row.split, row.metric), {}).get(key)
        )
    if any(v is None for v in values):
        log.warning(
            "task %s: not every run recorded %r; comparing its headline %s",
            sub["task"].iloc[0],
            key,
            sub["metric"].iloc[0],
        )
        return sub
    return sub.assign(score=[float(v) for v in values], metric=key)


@dataclass(frozen=True)
class Track:
    """One declared (task, metric) of a suite and what the runs hold for it."""

    task: str
    # the metric the runs' rows carry (None when the runs have no rows for the task)
    metric: str | None
    category: str | None
    status: str  # "ok" or "missing"
    reason: str = ""  # why it is missing
    n_languages: int = 0
    languages_subset: tuple[
        str, ...
    ] = ()  # the runs were limited to these languages (--languages); () = all
    arms_missing: tuple[str, ...] = ()  # arms with no scored run for this track
    label: str = ""  # how tables and the printed answer name it: "task (metric)"
    note: str = ""  # e.g. why its margins have no intervals

    @property
    def name(self) -> str:
        return self.label or self.task


def _chosen_metric(task_rows: pd.DataFrame, entry: SuiteEntry, several: bool) -> str | None:
    """The metric :func:`select_metrics` keeps for ``entry`` (None: the runs have none it accepts)."""
    metrics = sorted(set(task_rows["metric"]))
    chosen = next((c for c in entry.metrics if c in metrics), None)
    if chosen is None and metrics and not (entry.metrics and several):
        spec = task_attr(entry.task, "metric")
        chosen = spec if spec in metrics else metrics[0]
    return chosen


def _run_reasons(rows: pd.DataFrame, task: str, metric: str) -> list[str]:
    """The ``missing`` reasons the runs' metric rows give for (task, metric) rows without a score."""
    reasons: list[str] = []
    for path in dict.fromkeys(rows["path"]):
        for m in Run(path).metrics():
            if (
                m.get("task") == task
                and m.get("metric") == metric
                and m.get("score") is None
                and m.get("missing")
            ):
                reasons.append(str(m["missing"]))
    return list(dict.fromkeys(reasons))


def _how_to_run(task: str) -> str:
    spec = catalog.find_task(task)
    if spec is None:
        return f"no finished run has {task} scores"
    from mmxfer.kinds import kind_of

    if kind_of(spec).trunk_only:
        return (
            f"no finished run has {task} scores: evaluate each arm's trunk (a study with this suite adds one "
            f"retrieval run per arm and seed, or `mmxfer train --intermediate ARM` without --target)"
        )
    return (
        f"no finished run has {task} scores: train it (`mmxfer train --intermediate ARM --target {task}`, or a "
        f"study with this suite, which runs every track)"
    )


def _subset(rows: pd.DataFrame) -> tuple[str, ...]:
    """The union of the runs' ``--languages`` subsets; () when any run covers every language."""
    union: list[str] = []
    for path in dict.fromkeys(rows["path"]):
        langs = Run(path).config().get("languages")
        if not langs:
            return ()
        union += [str(x) for x in langs]
    return tuple(dict.fromkeys(union))


def describe_tracks(
    results: pd.DataFrame, scored: pd.DataFrame, entries: list[SuiteEntry] | None
) -> list[Track]:
    """One :class:`Track` per declared entry (without entries: per task and metric of ``scored``): its metric,
    status and, when missing, why; ``scored`` = the selected rows that carry a score."""
    if entries is None:
        pairs = scored[["task", "metric"]].drop_duplicates()
        entries = [SuiteEntry(r.task, (r.metric,)) for r in pairs.itertuples()]
    per_task: dict[str, int] = defaultdict(int)
    for e in entries:
        per_task[e.task] += 1
    arms = sorted(set(results["arm"]))
    tracks: list[Track] = []
    for e in entries:
        several = per_task[e.task] > 1
        task_rows = results[results["task"] == e.task]
        metric = _chosen_metric(task_rows, e, several) if not task_rows.empty else None
        label = f"{e.task} ({metric or '/'.join(e.metrics) or 'no scores'})"
        common = {"task": e.task, "metric": metric, "category": e.category, "label": label}
        if task_rows.empty:
            tracks.append(Track(status="missing", reason=_how_to_run(e.task), **common))
            continue
        if metric is None:
            tracks.append(
                Track(
                    status="missing",
                    reason=f"the runs have {e.task} scores for "
                    f"{', '.join(sorted(set(task_rows['metric'])))} but none for {'/'.join(e.metrics)}",
                    **common,
                )
            )
            continue
        rows = scored[(scored["task"] == e.task) & (scored["metric"] == metric)]
        # valued by scores[score_key] (select_metrics renames the metric to it)
        if rows.empty and e.score_key:
            rows = scored[(scored["task"] == e.task) & (scored["metric"] == e.score_key)]
            if not rows.empty:
                common.update(metric=e.score_key, label=f"{e.task} ({e.score_key})")
        if rows.empty:
            unscored = task_rows[task_rows["metric"] == metric]
            reasons = _run_reasons(unscored, e.task, metric) or [
                f"the runs' {e.task} {metric} rows have no score"
            ]
            tracks.append(Track(status="missing", reason="; ".join(reasons), **common))
            continue
        tracks.append(
            Track(
                status="ok",
                n_languages=int(rows["lang"].nunique()),
                languages_subset=_subset(rows),
                arms_missing=tuple(a for a in arms if a not in set(rows["arm"])),
                **common,
            )
        )
    return tracks


def select_metrics(results: pd.DataFrame, entries: list[SuiteEntry] | None = None) -> pd.DataFrame:
    """Keep the rows each entry asks for: its first metric the runs have (without any: the task
    spec's metric, else the first in name order), its split (else ``test`` when present)."""
    # a run's per-direction rows (xSIM's xx-en, en-xx) are parts of its headline row
    if "part" in results:
        results = results[results["part"].fillna("") == ""]
    if entries is None:
        entries = [SuiteEntry(t) for t in dict.fromkeys(results["task"])]
    per_task = defaultdict(int)
    for e in entries:
        per_task[e.task] += 1
    keep = []
    for e in entries:
        grp = results[results["task"] == e.task]
        if grp.empty:
            continue
        metrics = sorted(set(grp["metric"]))
        metric = next((c for c in e.metrics if c in metrics), None)
        if metric is None:
            if e.metrics and per_task[e.task] > 1:
                log.warning(
                    "task %s: no %s scores in the runs; entry skipped", e.task, "/".join(e.metrics)
                )
                continue
            if e.metrics:
                log.warning(
                    "task %s: no %s scores in the runs; using %s",
                    e.task,
                    "/".join(e.metrics),
                    metrics,
                )
            spec = task_attr(e.task, "metric")
            metric = spec if spec in metrics else metrics[0]
        sub = grp[grp["metric"] == metric]
        have = set(sub["split"])
        split = e.split if e.split in have else ("test" if "test" in have else sorted(have)[0])
        sub = sub[sub["split"] == split]
        if e.score_key and not sub.empty:
            sub = _with_score_key(sub, e.score_key)
        if e.category:
            sub = sub.assign(category=e.category)
        keep.append(sub)
    if not keep:
        return results.iloc[0:0]
    return pd.concat(keep, ignore_index=True).drop_duplicates(
        ["run_id", "task", "lang", "split", "metric"]
    )


def registered_metrics(task: str, metric: str, entries: list[SuiteEntry] | None) -> list[str]:
    """Registry metric names that may score (task, metric): the metric itself, the entry's names, the spec's."""
    names = [metric]
    for e in entries or []:
        if e.task == task and (metric in e.metrics or metric == e.score_key):
            names += list(e.metrics)
    spec = task_attr(task, "metric")
    return [*dict.fromkeys(names + ([spec] if spec else []))]


def higher_is_better(names: list[str]) -> bool:
    """The first registered metric's direction; True when none of ``names`` is registered."""
    catalog.load_plugins()
    for name in names:
        if name in catalog.METRICS:
            return catalog.METRICS.get(name).higher_is_better
    return True
