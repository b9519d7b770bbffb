"""Score predictions files with the task's metric; re-score a whole run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from mmxfer import catalog
from mmxfer.errors import DataError, UnknownNameError
from mmxfer.runs.store import Run, read_predictions
from mmxfer.tasks.base import TaskSpec


def metric_params(metric: str, lang: str | None) -> dict[str, Any]:
    """Extra arguments a metric needs from the evaluation language (MLQA's normalisation)."""
    return {"lang": lang or "en"} if metric == "mlqa" else {}


def score_predictions(task: TaskSpec | str, rows: list[dict[str, Any]], metric: str | None = None,
                      lang: str | None = None) -> dict[str, float]:
    """Score predictions rows (``{"id", "pred", "gold"}``) with ``metric`` (default: the task's own).

    ``task``: a TaskSpec or a task name (an unregistered name is fine when ``metric`` is given).
    """
    catalog.load_plugins()
    spec = task if not isinstance(task, str) else (
        catalog.TASKS.get(task) if metric is None or task in catalog.TASKS else None)
    scorer = catalog.METRICS.get(metric or spec.metric)
    if not rows:
        raise DataError(f"no predictions to score for {getattr(task, 'name', task)}")
    return scorer.score([r["gold"] for r in rows], [r["pred"] for r in rows],
                        **metric_params(scorer.name, lang))


def score_file_rows(task: str, split: str, lang: str, rows: list[dict[str, Any]], *, metric: str | None = None,
                    settings: dict[str, Any] | None = None, category: str | None = None,
                    task_version: str | None = None, caveat: str | None = None) -> list[dict[str, Any]]:
    """Metric rows (run store format) for one predictions file: the headline row plus one per direction.

    ``caveat``: a note every row carries wherever it is shown (BUCC from the hub: "upper bound, no distractors").
    """
    catalog.load_plugins()
    spec = catalog.TASKS.get(task) if task in catalog.TASKS else None
    name = metric or (spec.metric if spec else None)
    if name is None:
        raise UnknownNameError(f"task {task!r} is not registered; pass the metric to score its predictions")
    scorer = catalog.METRICS.get(name)
    base = {"task": task, "lang": lang, "split": split, "metric": scorer.name}
    if spec is not None:
        base["category"] = category or spec.category
        base["task_version"] = task_version or spec.version
    if settings:
        base["settings"] = settings
    if caveat:
        base["caveat"] = caveat
    scores = score_predictions(spec or task, rows, scorer.name, lang)
    out = [{**base, "score": float(scores[scorer.primary]), "scores": scores, "n": len(rows)}]
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("direction"):
            parts[r["direction"]].append(r)
    if len(parts) > 1:
        for direction, part in sorted(parts.items()):
            s = score_predictions(spec or task, part, scorer.name, lang)
            out.append({**base, "score": float(s[scorer.primary]), "scores": s, "n": len(part), "part": direction})
    return out


def rescore_run(run: Run | str | Path) -> list[dict[str, Any]]:
    """Recompute every metric row of a run from its predictions files; rewrite metrics.jsonl atomically.

    Settings and caveats stored with the old rows (retrieval settings, BUCC's hub caveat) are carried over; rows of files that no longer
    exist are dropped.
    """
    run = run if isinstance(run, Run) else Run(run)
    if not run.path.is_dir():
        raise DataError(f"run folder not found: {run.path}")
    old = {(r.get("task"), r.get("split"), r.get("lang")): r for r in run.metrics() if "part" not in r}
    rows: list[dict[str, Any]] = []
    files = list(run.prediction_files())
    if not files:
        raise DataError(f"{run.path}: no predictions files to re-score (predictions/<task>/<split>-<lang>.jsonl)")
    for task, split, lang, path in files:
        previous = old.get((task, split, lang), {})
        rows.extend(score_file_rows(task, split, lang, read_predictions(path), metric=previous.get("metric"),
                                    settings=previous.get("settings"), caveat=previous.get("caveat")))
    run.write_metrics(rows)
    return rows
