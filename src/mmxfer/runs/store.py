"""Run folders: the source of truth for every result.

Layout::

    <runs_dir>/<study>/<run_id>/
        config.yaml        resolved configuration (what was run)
        env.json           provenance (versions, git commit, device, host, seed, command line)
        metrics.jsonl      one JSON object per (task, language, split, metric)
        predictions/<task>/<split>-<lang>.jsonl
        checkpoints/       resumable training state
        train_log.jsonl    loss / learning-rate log
        DONE               written last, atomically; a folder without it is never a result

``run_id`` is ``<label>-<hash>`` where ``hash`` is a short content hash of the resolved
config, so the same config always maps to the same folder (a grid can skip finished runs)
and the label keeps folders readable.

Metric rows have the keys ``task, lang, split, metric, score`` and optionally ``n`` (number
of examples), ``category``, ``task_version`` and ``settings`` (e.g. the retrieval settings).

Predictions files (``predictions/<task>/<split>-<lang>.jsonl``, under a run folder or any folder with
that layout) are what evaluation writes first and scoring reads back; one JSON object per line::

    {"id": "...", "pred": <prediction>, "gold": <gold>}           # plus optional keys (e.g. "direction")

``pred``/``gold`` per task kind:

- classification / multiple_choice: label index (or name) - gold the same type;
- tagging: list of tag names, one per word (gold the same length);
- span_qa: ``pred`` the answer text (``null`` = unanswered, scores 0), ``gold`` the list of answer texts;
- vqa: ``pred`` the answer text, ``gold`` the list of human answers;
- retrieval (Tatoeba, FLORES xSIM, starter bitext): ``pred`` the retrieved row index, ``gold`` the true
  row index; rows carry ``"direction": "xx-en" | "en-xx"`` when both directions are stored in one file;
- mining (BUCC): one row per source sentence, ``pred`` the extracted ``[src_id, tgt_id]`` pair or
  ``null``, ``gold`` the gold pair or ``null``;
- translation: ``pred`` the hypothesis, ``gold`` the reference.

Every metric in ``catalog.METRICS`` scores such rows: ``METRICS.get(name).score([r["gold"] ...], [r["pred"] ...])``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from mmxfer.config import config_hash, to_dict
from mmxfer.errors import DataError, RunStoreError
from mmxfer.runs import atomic
from mmxfer.runs.env import environment

DONE = "DONE"
PREDICTION_KEYS = ("id", "pred", "gold")  # the keys every predictions row has


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-")[:60] or "run"


class Run:
    """One run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # paths ------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def study(self) -> str:
        return self.path.parent.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def env_path(self) -> Path:
        return self.path / "env.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def predictions_dir(self) -> Path:
        return self.path / "predictions"

    @property
    def train_log_path(self) -> Path:
        return self.path / "train_log.jsonl"

    @property
    def done_path(self) -> Path:
        return self.path / DONE

    def predictions_path(self, task: str, split: str, lang: str) -> Path:
        return self.predictions_dir / task / f"{split}-{lang}.jsonl"

    # state ------------------------------------------------------------------
    def is_done(self) -> bool:
        return self.done_path.is_file()

    def config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise RunStoreError(f"{self.path}: no config.yaml - not a run folder")
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    def env(self) -> dict[str, Any]:
        return json.loads(self.env_path.read_text(encoding="utf-8")) if self.env_path.is_file() else {}

    def done_info(self) -> dict[str, Any]:
        return json.loads(self.done_path.read_text(encoding="utf-8")) if self.is_done() else {}

    def require_done(self) -> None:
        if not self.is_done():
            raise RunStoreError(f"{self.path}: run is not finished (no DONE file); its results are not used")

    # writing ----------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        atomic.write_yaml(self.config_path, config)

    def write_env(self, seed: int | None = None, extra: dict[str, Any] | None = None) -> None:
        atomic.write_json(self.env_path, environment(seed=seed, extra=extra))

    def log_metric(self, task: str, lang: str, split: str, metric: str, score: float, **extra: Any) -> None:
        row = {"task": task, "lang": lang, "split": split, "metric": metric, "score": float(score), **extra}
        atomic.append_jsonl(self.metrics_path, row)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl as a whole (used by re-scoring)."""
        atomic.write_jsonl(self.metrics_path, rows)

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return atomic.read_jsonl(self.metrics_path, skip_bad=True)  # a killed process may leave a torn line

    def write_predictions(self, task: str, split: str, lang: str, rows: list[dict[str, Any]]) -> Path:
        return write_predictions(self.predictions_path(task, split, lang), rows)

    def read_predictions(self, task: str, split: str, lang: str) -> list[dict[str, Any]]:
        path = self.predictions_path(task, split, lang)
        if not path.is_file():
            raise RunStoreError(f"{self.path}: no predictions for {task} {split}-{lang} ({path})")
        return read_predictions(path)

    def prediction_files(self) -> Iterator[tuple[str, str, str, Path]]:
        """Yield (task, split, lang, path) for every predictions file."""
        if not self.predictions_dir.is_dir():
            return
        for path in sorted(self.predictions_dir.glob("*/*.jsonl")):
            split, _, lang = path.stem.partition("-")
            yield path.parent.name, split, lang, path

    def mark_done(self, summary: dict[str, Any] | None = None) -> None:
        info = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "n_metrics": len(self.metrics()), **(summary or {})}
        atomic.write_json(self.done_path, info)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, done={self.is_done()})"


def run_id_for(config: Any, label: str) -> str:
    return f"{slug(label)}-{config_hash(config)}"


def run_path(runs_dir: str | Path, study: str, config: Any, label: str) -> Path:
    """``<runs_dir>/<study>/<run_id>``: the folder of the run of ``config``."""
    return Path(runs_dir) / slug(study) / run_id_for(config, label)


def open_run(runs_dir: str | Path, study: str, config: Any, label: str, *, resume: bool = False,
             force: bool = False, seed: int | None = None) -> Run:
    """Create (or reopen) the run folder for ``config``.

    - a finished run (DONE) is never touched unless ``force`` (then it is wiped and restarted);
    - an unfinished folder is continued with ``resume`` or wiped with ``force``; otherwise an error
      tells the user which flag to pass;
    - the resolved config is written atomically before anything else.
    """
    config_dict = to_dict(config)
    run = Run(run_path(runs_dir, study, config_dict, label))
    if run.path.exists():
        if run.is_done() and not force:
            raise RunStoreError(f"{run.path} is already finished (DONE); pass --force to run it again")
        if force:
            shutil.rmtree(run.path)
        elif not resume:
            raise RunStoreError(
                f"{run.path} exists but is unfinished; pass --resume to continue it or --force to start over"
            )
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config_dict)
    run.write_env(seed=seed)
    return run


def iter_runs(root: str | Path, finished_only: bool = True) -> Iterator[Run]:
    """Every run folder under ``root`` (a runs dir, a study dir or a run dir)."""
    root = Path(root)
    if (root / "config.yaml").is_file():
        candidates = [root]
    else:
        candidates = sorted({p.parent for p in root.glob("**/config.yaml")})
    for path in candidates:
        run = Run(path)
        if not finished_only or run.is_done():
            yield run


# --------------------------------------------------------------------------- predictions files


def predictions_path(root: str | Path, task: str, split: str, lang: str) -> Path:
    """``<root>/predictions/<task>/<split>-<lang>.jsonl`` (``root``: a run folder or an evaluation's folder)."""
    return Run(root).predictions_path(task, split, lang)


def make_rows(ids: Iterable[Any], preds: Iterable[Any], golds: Iterable[Any], **extra: Any) -> list[dict[str, Any]]:
    ids, preds, golds = list(ids), list(preds), list(golds)
    if not len(ids) == len(preds) == len(golds):
        raise DataError(f"predictions: {len(ids)} ids, {len(preds)} predictions, {len(golds)} golds")
    return [{"id": i, "pred": p, "gold": g, **extra} for i, p, g in zip(ids, preds, golds)]


def write_predictions(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows atomically (a reader never sees half a file)."""
    rows = list(rows)
    for n, row in enumerate(rows):
        missing = [k for k in PREDICTION_KEYS if k not in row]
        if missing:
            raise DataError(f"predictions row {n}: missing key(s) {', '.join(missing)}")
    atomic.write_jsonl(path, rows)
    return Path(path)


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a predictions file; a bad row is named by its line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"predictions file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    try:  # one JSON array parse is ~4x faster than a parse per line
        rows = json.loads("[" + ",".join(line for line in lines if line.strip()) + "]")
        if all(isinstance(r, dict) and all(k in r for k in PREDICTION_KEYS) for r in rows):
            return rows
    except json.JSONDecodeError:
        pass
    for n, line in enumerate(lines, 1):  # find the bad row for the message
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}: row {n}: not valid JSON") from None
        missing = [k for k in PREDICTION_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(f"{path}: row {n}: missing key(s) {', '.join(missing)}")
    raise DataError(f"{path}: not a JSON-lines predictions file")  # pragma: no cover


def parse_name(path: str | Path) -> tuple[str, str, str]:
    """(task, split, lang) of ``.../<task>/<split>-<lang>.jsonl``."""
    path = Path(path)
    split, sep, lang = path.stem.partition("-")
    if not sep or not lang:
        raise DataError(f"{path}: predictions files are named <split>-<lang>.jsonl")
    return path.parent.name, split, lang
