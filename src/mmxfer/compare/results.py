"""The tidy results table: one row per run x task x language x metric, from finished runs only.

Where each column comes from:

- ``config.yaml`` of the run (written by the training phase): ``arm`` ({name, intermediate,
  modality}, or a bare name), ``target``, ``seed``, ``study``, ``profile`` (the profile dict:
  ``trunk.name``, ``vision.model``, ``suite``);
- ``metrics.jsonl``: ``task, lang, split, metric, score`` and optional ``n``, ``category``, ``caveat`` (a note that
  must be shown with the number: BUCC scored from the hub is an "upper bound, no distractors"), ``part`` (one
  direction of a retrieval score, ``xx-en`` / ``en-xx``; "" for the headline row, so no two rows share a key);
- ``env.json``: ``mmxfer_version``.

Every finished run is read through :meth:`~mmxfer.runs.store.Run.verified_metrics`: files that do not
match the run's DONE record, torn lines, duplicate rows and scores that are not numbers stop the table
with one line naming the run, instead of dropping or doubling cells. The bootstrap checks that each
predictions file re-scores to the score its run recorded (:func:`check_recorded_score`), so a margin and
its interval always come from the same numbers.

Missing ``modality`` is derived from the intermediate tasks' specs (all text -> ``text``, all
image-text -> ``image-text``, both -> ``mixed``, none -> ``none``; :func:`mmxfer.catalog.modality_of`). Missing ``category`` comes
from the task spec (``catalog.task(name).category``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mmxfer.catalog import modality_of
from mmxfer.compare.example_scores import task_attr
from mmxfer.errors import DataError, RunStoreError
from mmxfer.runs import atomic
from mmxfer.runs.store import Run, iter_runs

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "study",
    "run_id",
    "arm",
    "intermediate",
    "modality",
    "target",
    "task",
    "category",
    "lang",
    "split",
    "metric",
    "part",
    "score",
    "seed",
    "n_examples",
    "trunk",
    "vision",
    "mmxfer_version",
)
MODALITIES: tuple[str, ...] = ("none", "text", "image-text", "mixed")
#: the columns that name one row: no two rows of the table share them
KEY: tuple[str, ...] = ("study", "run_id", "task", "lang", "split", "metric", "part")


def _intermediate_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip() and str(v).strip() != "none"]


def _get(d: dict[str, Any], dotted: str) -> Any:
    node: Any = d
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def run_meta(run: Run) -> dict[str, Any]:
    """The per-run columns of the tidy table, read from config.yaml and env.json."""
    cfg = run.config()
    arm = cfg.get("arm")
    if isinstance(arm, dict):
        arm_name = arm.get("name")
        intermediate = _intermediate_list(arm.get("intermediate"))
        modality = arm.get("modality")
    else:
        intermediate = _intermediate_list(cfg.get("intermediate"))
        arm_name = arm if isinstance(arm, str) else None
        modality = None
    arm_name = arm_name or ("+".join(intermediate) if intermediate else "baseline")
    modality = modality or modality_of(intermediate)
    profile = cfg.get("profile") if isinstance(cfg.get("profile"), dict) else cfg
    env = run.env()
    return {
        "study": cfg.get("study") or _get(profile, "study") or run.study,
        "run_id": run.run_id,
        "arm": str(arm_name),
        "intermediate": ",".join(intermediate),
        "modality": modality,
        "target": cfg.get("target") or "",
        "seed": cfg.get("seed", _get(profile, "seed")),
        "trunk": _get(profile, "trunk.name") or "",
        "vision": _get(profile, "vision.model") or "",
        "suite": _get(profile, "suite") or "",
        "mmxfer_version": env.get("mmxfer_version") or run.done_info().get("mmxfer_version") or "",
        "path": str(run.path),
    }


def collect_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Finished runs under each path (run, study or runs folder); unfinished ones are skipped with a log line."""
    runs: list[Run] = []
    seen: set[Path] = set()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise RunStoreError(f"runs folder not found: {path}")
        for run in iter_runs(path, finished_only=False):
            if run.path.resolve() in seen:
                continue
            seen.add(run.path.resolve())
            if run.is_done():
                runs.append(run)
            else:
                log.info("skipping unfinished run %s (no DONE)", run.path)
    return runs


def build_results(run_paths: Iterable[str | Path]) -> pd.DataFrame:
    """The tidy table from every finished run under ``run_paths`` (columns: :data:`COLUMNS` + ``path``)."""
    paths = list(run_paths)
    runs = collect_runs(paths)
    if not runs:
        raise RunStoreError(
            f"no finished runs (folders with a DONE file) under {', '.join(map(str, paths)) or 'nothing'}"
        )
    rows: list[dict[str, Any]] = []
    category_cache: dict[str, str] = {}
    for run in runs:
        meta = run_meta(run)
        for m in run.verified_metrics():
            task, lang, metric, score = m["task"], m["lang"], m["metric"], m["score"]
            category = m.get("category")
            if not category:
                if task not in category_cache:
                    category_cache[task] = task_attr(task, "category") or "other"
                category = category_cache[task]
            rows.append(
                {
                    **meta,
                    "task": task,
                    "category": category,
                    "lang": str(lang),
                    "split": m.get("split", "test"),
                    "metric": metric,
                    "part": m.get("part") or "",
                    "score": float(score) if score is not None else float("nan"),
                    "n_examples": m.get("n"),
                    "caveat": m.get("caveat") or "",
                }
            )
    if not rows:
        raise RunStoreError(
            f"the {len(runs)} finished run(s) under {', '.join(map(str, paths))} have no metrics"
        )
    frame = pd.DataFrame(rows)
    frame["n_examples"] = pd.to_numeric(frame["n_examples"], errors="coerce").astype("Int64")
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    ordered = [*COLUMNS, "caveat", "suite", "path"]
    return frame[ordered].sort_values(
        ["study", "arm", "task", "lang", "metric", "part", "seed"], kind="stable", ignore_index=True
    )


def check_recorded_score(
    run_path: str | Path,
    task: str,
    split: str,
    lang: str,
    metric: str,
    recorded: float,
    recomputed: float,
) -> None:
    """The score a run recorded for one predictions file must be the one its predictions give now (the point
    estimate of a margin comes from the former, its interval from the latter)."""
    if recorded is None or recomputed is None:
        return
    if math.isnan(recorded) and math.isnan(recomputed):
        return
    if not abs(float(recorded) - float(recomputed)) <= 1e-4 + 1e-6 * abs(float(recorded)):
        raise DataError(
            f"run {run_path}: its predictions for {task} {split}-{lang} score {recomputed:.4f} but its "
            f"metrics.jsonl records {metric} {float(recorded):.4f}; re-score it "
            f"(mmxfer evaluate --rescore {run_path}) or rerun it with --force"
        )


def write_results(
    frame: pd.DataFrame, out_dir: str | Path, stem: str = "results"
) -> dict[str, Path]:
    """Write the table as Parquet and CSV (atomically); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": out_dir / f"{stem}.parquet", "csv": out_dir / f"{stem}.csv"}
    with atomic.atomic_open(paths["parquet"], "wb") as handle:
        frame.to_parquet(handle, index=False)
    with atomic.atomic_open(paths["csv"], "w") as handle:
        frame.to_csv(handle, index=False)
    return paths


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a tidy table written by :func:`write_results` (Parquet or CSV)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"results table not found: {path}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
