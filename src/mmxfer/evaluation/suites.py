"""Suites: which tasks, languages and averaging a benchmark number means (declared, never implied).

:func:`suite_scores` gives the point scores of one evaluation's metric rows and follows XTREME's
``evaluate.py``: a task's score is the mean over its languages of the metric's headline (QA tasks:
(F1 + EM) / 2 via ``score_key: f1_em``), a category's score is the mean of its tasks, and the overall
score is the mean of task scores (or of categories, if declared). English is dropped from the averages
when the suite says ``include_english_in_average: false``. (The gap analysis averages margins and their
bootstrap replicates over the same levels: :func:`mmxfer.compare.gaps.compute_gaps`.)
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from mmxfer import catalog, config
from mmxfer.config import SuiteConfig, SuiteTaskConfig
from mmxfer.kinds import kind_of
from mmxfer.languages import is_english


def load(suite: str | SuiteConfig) -> SuiteConfig:
    return suite if isinstance(suite, SuiteConfig) else config.load_suite(suite)


def suite_tasks(suite: str | SuiteConfig) -> list[SuiteTaskConfig]:
    """The suite's task entries, with task names made canonical and languages filled in when known."""
    suite = load(suite)
    catalog.load_plugins()
    out = []
    for item in suite.tasks:
        name, langs = item.task, item.languages or suite.languages
        if item.task in catalog.TASKS:
            spec = catalog.TASKS.get(item.task)
            name = spec.name
            langs = langs or spec.languages
        out.append(
            dataclasses.replace(
                item, task=name, languages=tuple(langs) if langs else None, params=dict(item.params)
            )
        )
    return out


def metric_of(item: SuiteTaskConfig) -> str:
    if item.metric:
        return item.metric
    return catalog.TASKS.get(item.task).metric


def category_of(item: SuiteTaskConfig) -> str:
    if item.category:
        return item.category
    return catalog.TASKS.get(item.task).category if item.task in catalog.TASKS else "other"


def uses_trunk(item: SuiteTaskConfig) -> bool:
    """True when the task is evaluated on the trunk directly (retrieval), without fine-tuning."""
    if item.mode != "auto":
        return item.mode == "trunk"
    return item.task in catalog.TASKS and kind_of(catalog.TASKS.get(item.task)).trunk_only


def _value(row: dict[str, Any], key: str | None) -> float | None:
    if row.get("score") is None:  # a metric that could not be computed here (the row says why)
        return None
    if key is None:
        return float(row["score"])
    scores = row.get("scores") or {}
    return float(scores[key]) if key in scores else None


def suite_scores(metric_rows: list[dict[str, Any]], suite: str | SuiteConfig) -> dict[str, Any]:
    """Point scores: ``{task: score, category: score, "average": score, "languages": {task: {lang: score}}}``.

    Only tasks with at least one scored language enter the averages; ``missing`` lists the suite
    tasks (and languages) without a score, so a partial result is never mistaken for a full one;
    ``caveats`` maps tasks whose rows carry a caveat (BUCC from the hub) to it.
    """
    suite = load(suite)
    catalog.load_plugins()
    per_lang: dict[str, dict[str, float]] = {}
    caveats: dict[str, str] = {}
    missing: list[str] = []
    categories: dict[str, list[str]] = defaultdict(list)
    for item in suite_tasks(suite):
        metric = metric_of(item)
        wanted = set(item.languages) if item.languages else None
        scores: dict[str, float] = {}
        for row in metric_rows:
            if row.get("part") or row.get("task") != item.task or row.get("metric") != metric:
                continue
            if row.get("split", item.split) != item.split:
                continue
            lang = row.get("lang")
            if wanted is not None and lang not in wanted:
                continue
            value = _value(row, item.score_key)
            if value is not None:
                scores[lang] = value
                if row.get("caveat"):
                    caveats[item.label or item.task] = row["caveat"]
        if wanted is not None:
            missing.extend(
                f"{item.label or item.task}.{lang}" for lang in sorted(wanted - set(scores))
            )
        key = item.label or item.task
        per_lang[key] = scores
        categories[category_of(item)].append(key)

    result: dict[str, Any] = {}
    task_scores: dict[str, float] = {}
    for task, scores in per_lang.items():
        used = {
            k: v for k, v in scores.items() if suite.include_english_in_average or not is_english(k)
        }
        if used:
            task_scores[task] = sum(used.values()) / len(used)
            result[task] = task_scores[task]
    cat_scores: dict[str, float] = {}
    for cat, tasks in categories.items():
        vals = [task_scores[t] for t in tasks if t in task_scores]
        if vals and len(vals) == len(tasks):
            cat_scores[cat] = sum(vals) / len(vals)
            result[cat] = cat_scores[cat]
    if suite.overall and task_scores:
        complete = len(task_scores) == len(per_lang)
        pool = (
            list(cat_scores.values())
            if suite.average == "mean-of-categories"
            else list(task_scores.values())
        )
        if complete and pool:
            result["average"] = sum(pool) / len(pool)
    result["languages"] = per_lang
    result["caveats"] = caveats  # task -> note to show with its score and every average it enters
    result["missing"] = missing + [t for t in per_lang if t not in task_scores]
    return result
