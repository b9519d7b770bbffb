"""Score predictions files with the task's metrics; re-score a whole run.

A task scores each predictions file with its own metrics: its ``metric``, or every name in
``spec.metrics`` (translation: chrF++ and spBLEU). A metric that cannot be computed on this
machine (spBLEU without the FLORES-200 SentencePiece model) gets a row with ``score: null`` and a
``missing`` reason instead of a number, so the gap is visible and the other metrics still run.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from mmxfer import catalog
from mmxfer.errors import DataError, UnknownNameError
from mmxfer.metrics import generation
from mmxfer.runs.store import Run, read_predictions
from mmxfer.tasks.base import TaskSpec


def metric_params(metric: str, lang: str | None) -> dict[str, Any]:
    """Extra arguments a metric needs from the evaluation language (MLQA's normalisation)."""
    return {"lang": lang or "en"} if metric == "mlqa" else {}


def task_metrics(task: TaskSpec | str) -> tuple[str, ...]:
    """The metrics a task's predictions files are scored with (:attr:`TaskSpec.metrics`)."""
    catalog.load_plugins()
    spec = task if not isinstance(task, str) else catalog.TASKS.get(task)
    return spec.metrics


def score_predictions(
    task: TaskSpec | str,
    rows: list[dict[str, Any]],
    metric: str | None = None,
    lang: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Score predictions rows (``{"id", "pred", "gold"}``) with ``metric`` (default: the task's own).

    ``task``: a TaskSpec or a task name (an unregistered name is fine when ``metric`` is given);
    ``params``: extra metric arguments (spBLEU's ``spm_model``).
    """
    catalog.load_plugins()
    spec = (
        task
        if not isinstance(task, str)
        else (catalog.TASKS.get(task) if metric is None or task in catalog.TASKS else None)
    )
    scorer = catalog.METRICS.get(metric or spec.metric)
    if not rows:
        raise DataError(f"no predictions to score for {getattr(task, 'name', task)}")
    return scorer.score(
        [r["gold"] for r in rows],
        [r["pred"] for r in rows],
        **metric_params(scorer.name, lang),
        **(params or {}),
    )


def score_file_rows(
    task: str,
    split: str,
    lang: str,
    rows: list[dict[str, Any]],
    *,
    metric: str | None = None,
    settings: dict[str, Any] | None = None,
    category: str | None = None,
    task_version: str | None = None,
    caveat: str | None = None,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Metric rows (run store format) for one predictions file: the headline row plus one per direction.

    ``caveat``: a note every row carries wherever it is shown (BUCC from the hub: "upper bound, no distractors");
    ``params``: extra metric arguments (spBLEU's ``spm_model``).
    """
    catalog.load_plugins()
    spec = catalog.TASKS.get(task) if task in catalog.TASKS else None
    name = metric or (spec.metric if spec else None)
    if name is None:
        raise UnknownNameError(
            f"task {task!r} is not registered; pass the metric to score its predictions"
        )
    scorer = catalog.METRICS.get(name)
    base = {"task": task, "lang": lang, "split": split, "metric": scorer.name}
    if spec is not None:
        base["category"] = category or spec.category
        base["task_version"] = task_version or spec.version
    if settings:
        base["settings"] = settings
    if caveat:
        base["caveat"] = caveat
    scores = score_predictions(spec or task, rows, scorer.name, lang, params)
    out = [{**base, "score": float(scores[scorer.primary]), "scores": scores, "n": len(rows)}]
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("direction"):
            parts[r["direction"]].append(r)
    if len(parts) > 1:
        for direction, part in sorted(parts.items()):
            s = score_predictions(spec or task, part, scorer.name, lang, params)
            out.append(
                {
                    **base,
                    "score": float(s[scorer.primary]),
                    "scores": s,
                    "n": len(part),
                    "part": direction,
                }
            )
    return out


def missing_row(
    task: str, split: str, lang: str, metric: str, reason: str, n: int
) -> dict[str, Any]:
    """A metric row without a score: ``score`` is null and ``missing`` says why."""
    spec = catalog.find_task(task)
    row: dict[str, Any] = {
        "task": task,
        "lang": lang,
        "split": split,
        "metric": metric,
        "score": None,
        "missing": reason,
        "n": n,
    }
    if spec is not None:
        row.update(category=spec.category, task_version=spec.version)
    return row


def score_file_metrics(
    task: str,
    split: str,
    lang: str,
    rows: list[dict[str, Any]],
    *,
    metrics: tuple[str, ...] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    spm_model: str | None = None,
    caveats: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Metric rows of one predictions file for each of ``metrics`` (default: :func:`task_metrics`).

    ``settings``: per metric, settings to record with its rows (retrieval settings). spBLEU is scored with
    the FLORES-200 SentencePiece model (``spm_model``, else ``$MMXFER_FLORES200_SPM``, else sacrebleu's
    copy); without one its row says so (:func:`missing_row`).
    """
    catalog.load_plugins()
    names = metrics or task_metrics(task)
    out: list[dict[str, Any]] = []
    for name in names:
        setting = dict((settings or {}).get(name) or {})
        params = None
        if catalog.METRICS.canonical(name) == "spbleu":
            path, reason = generation.spm_model_or_reason(spm_model or setting.get("spm_model"))
            if path is None:
                out.append(missing_row(task, split, lang, "spbleu", str(reason), len(rows)))
                continue
            params = {"spm_model": str(path)}
            setting.update(spm_model=str(path), signature=generation.spbleu_signature())
        out.extend(
            score_file_rows(
                task,
                split,
                lang,
                rows,
                metric=name,
                settings=setting or None,
                params=params,
                caveat=(caveats or {}).get(name),
            )
        )
    return out


def rescore_run(run: Run | str | Path) -> list[dict[str, Any]]:
    """Recompute every metric row of a run from its predictions files; rewrite metrics.jsonl atomically.

    Each file is scored with its own task's metrics (:func:`task_metrics`) and the metrics its old rows had;
    settings and caveats stored with the old rows (retrieval settings, spBLEU's model, BUCC's hub caveat) are
    carried over; rows of files that no longer exist are dropped.
    """
    run = run if isinstance(run, Run) else Run(run)
    if not run.path.is_dir():
        raise DataError(f"run folder not found: {run.path}")
    old: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in run.metrics():
        if "part" not in r:
            old[(r.get("task"), r.get("split"), r.get("lang"))].append(r)
    rows: list[dict[str, Any]] = []
    files = list(run.prediction_files())
    if not files:
        raise DataError(
            f"{run.path}: no predictions files to re-score (predictions/<task>/<split>-<lang>.jsonl)"
        )
    for task, split, lang, path in files:
        previous = old.get((task, split, lang), [])
        spec = catalog.find_task(task)
        names = [r["metric"] for r in previous if r.get("metric")]
        if spec is not None and (not names or len(spec.metrics) > 1):
            names = [
                *task_metrics(spec),
                *names,
            ]  # a multi-metric task always gets all of its metrics
        names = tuple(dict.fromkeys(names))
        settings = {r["metric"]: r.get("settings") for r in previous if r.get("settings")}
        caveats = {r["metric"]: r["caveat"] for r in previous if r.get("caveat")}
        rows.extend(
            score_file_metrics(
                task,
                split,
                lang,
                read_predictions(path),
                metrics=names or None,
                settings=settings,
                caveats=caveats,
            )
        )
    run.write_metrics(rows)
    return rows
