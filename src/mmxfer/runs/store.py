"""Run folders: the source of truth for every result.

Layout::

    <runs_dir>/<study>/<run_id>/
        config.yaml        resolved configuration (what was run)
        env.json           provenance (versions, git commit, device, host, seed, command line)
        metrics.jsonl      one JSON object per (task, language, split, metric)
        predictions/<task>/<split>-<lang>.jsonl
        checkpoints/       resumable training state
        train_log.jsonl    loss / learning-rate log
        LOCK               while a process works on the run (:mod:`mmxfer.runs.lock`)
        DONE               written last, atomically; a folder without it is never a result

``DONE`` records the folder's format, ``run_format`` (:data:`RUN_FORMAT`), and what the run finished with:
``n_metrics`` (rows of metrics.jsonl), ``metrics_sha256`` and ``predictions_sha256``
(``{"<task>/<split>-<lang>.jsonl": sha256}``). Every reader of a finished run reads ``DONE`` first
(:meth:`Run.done_info`), so a folder of another format - one without ``run_format`` was written before formats
were numbered - is one :class:`~mmxfer.errors.RunFormatError` that names its format and what to do, before
anything else of it is read. :meth:`Run.verified_metrics` - what ``compare`` reads - checks the files against
``DONE``, and refuses torn lines, duplicate rows and scores that are not numbers, naming the run. Re-scoring a
finished run (:meth:`Run.write_metrics`) records the new files in its ``DONE``.

Every name that becomes a path component (study, arm, label, task, split, language) is checked by
:func:`check_name`: no ``..``, no path separators, not empty.

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
  row index - or, when retrieval is compared by text and the true sentence appears on several rows, the list
  of those rows; rows carry ``"direction": "xx-en" | "en-xx"`` when both directions are stored in one file;
- mining (BUCC): one row per source sentence, ``pred`` the extracted ``[src_id, tgt_id]`` pair or
  ``null``, ``gold`` the gold pair or ``null``;
- translation: ``pred`` the hypothesis, ``gold`` the reference.

Every metric in ``catalog.METRICS`` scores such rows: ``METRICS.get(name).score([r["gold"] ...], [r["pred"] ...])``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

import mmxfer
from mmxfer.config import config_hash, load_yaml, to_dict
from mmxfer.errors import ConfigError, DataError, RunFormatError, RunStoreError
from mmxfer.runs import atomic
from mmxfer.runs.env import environment
from mmxfer.runs.lock import LOCK_NAME, FileLock
from mmxfer.runs.sealed import sha256_file

DONE = "DONE"
#: the run-folder format this mmxfer writes (DONE's ``run_format``) and the only one it reads; bump it when a
#: run folder's files change in a way the readers cannot follow (format 0: DONE without ``run_format``)
RUN_FORMAT = 1
PREDICTION_KEYS = ("id", "pred", "gold")  # the keys every predictions row has
METRIC_KEYS = ("task", "lang", "metric", "score")  # the keys every metrics row has
SEAL_KEYS = (
    "n_metrics",
    "metrics_sha256",
    "predictions_sha256",
)  # what DONE records of the run's files


def check_name(kind: str, name: object) -> str:
    """``name`` if it can be one path component (a study, arm, task, language ...); else one clear error."""
    text = "" if name is None else str(name)
    if not text.strip():
        raise ConfigError(f"{kind}: empty name")
    if text.strip() in (".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise ConfigError(
            f"{kind} {text!r}: not allowed as a name (no '..', no '/' or '\\'): it becomes a "
            f"folder or file name"
        )
    return text


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-")[:60] or "run"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); the file is damaged"
        ) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); the file is damaged"
        ) from None


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
        check_name("task", task)
        check_name("split", split)
        check_name("language", lang)
        return self.predictions_dir / task / f"{split}-{lang}.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def lock(self) -> FileLock:
        """The run's lock (``with run.lock(): ...``): a second process gets one line naming the holder."""
        return FileLock(self.path, "run folder")

    # state ------------------------------------------------------------------
    def is_done(self) -> bool:
        return self.done_path.is_file()

    def is_started(self) -> bool:
        """Whether the folder holds anything of a run (a bare lock file does not count)."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            return any(
                not p.name.startswith((LOCK_NAME, f".{LOCK_NAME}")) for p in self.path.iterdir()
            )
        return False

    def config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise RunStoreError(f"{self.path}: no config.yaml - not a run folder")
        try:
            data = load_yaml(_read_text(self.config_path), str(self.config_path))
        except (yaml.YAMLError, RecursionError) as exc:
            raise DataError(
                f"{self.config_path}: not valid YAML ({str(exc).splitlines()[0]}); the file is damaged"
            ) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise DataError(
                f"{self.config_path}: expected a mapping, got {type(data).__name__}; the file is damaged"
            )
        return data

    def env(self) -> dict[str, Any]:
        if not self.env_path.is_file():
            return {}
        data = _read_json(self.env_path)
        if not isinstance(data, dict):
            raise DataError(f"{self.env_path}: expected a JSON object; the file is damaged")
        return data

    def done_info(self) -> dict[str, Any]:
        """What ``DONE`` records ({} while unfinished); a folder of another format is a :class:`RunFormatError`."""
        if not self.is_done():
            return {}
        data = _read_json(self.done_path)
        if not isinstance(data, dict):
            raise DataError(f"{self.done_path}: expected a JSON object; the file is damaged")
        check_format(self.path, data.get("run_format", 0))
        return data

    def require_done(self) -> None:
        if not self.is_done():
            raise RunStoreError(
                f"{self.path}: run is not finished (no DONE file); its results are not used"
            )

    # writing ----------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        atomic.write_yaml(self.config_path, config)

    def write_env(self, seed: int | None = None, extra: dict[str, Any] | None = None) -> None:
        atomic.write_json(self.env_path, environment(seed=seed, extra=extra))

    def log_metric(
        self, task: str, lang: str, split: str, metric: str, score: float, **extra: Any
    ) -> None:
        row = {
            "task": task,
            "lang": lang,
            "split": split,
            "metric": metric,
            "score": float(score),
            **extra,
        }
        atomic.append_jsonl(self.metrics_path, row)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl as a whole (used by re-scoring); a finished run's DONE records the new files."""
        # a finished folder of another format is refused before anything is written
        info = self.done_info()
        atomic.write_jsonl(self.metrics_path, rows)
        if info:
            atomic.write_json(
                self.done_path,
                {
                    **info,
                    **self.seal(),
                    "rescored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
            )

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        # a killed process may leave a torn line
        return atomic.read_jsonl(self.metrics_path, skip_bad=True)

    def write_predictions(
        self, task: str, split: str, lang: str, rows: list[dict[str, Any]]
    ) -> Path:
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

    def seal(self) -> dict[str, Any]:
        """What DONE records of the run's results: row count and sha256 of metrics.jsonl, sha256 of each
        predictions file."""
        rows = self.metrics() if self.metrics_path.is_file() else []
        return {
            "n_metrics": len(rows),
            "metrics_sha256": sha256_file(self.metrics_path)
            if self.metrics_path.is_file()
            else None,
            "predictions_sha256": {
                f"{task}/{path.name}": sha256_file(path)
                for task, _, _, path in self.prediction_files()
            },
        }

    def mark_done(self, summary: dict[str, Any] | None = None) -> None:
        info = {
            "run_format": RUN_FORMAT,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self.seal(),
            **(summary or {}),
        }
        atomic.write_json(self.done_path, info)

    def verified_metrics(self) -> list[dict[str, Any]]:
        """The metric rows of a finished run, checked against its DONE record (see the module docstring);
        any damage is a :class:`~mmxfer.errors.RunStoreError` naming the run and the file."""
        info = self.done_info()
        fix = f"re-score it from its predictions (mmxfer evaluate --rescore {self.path}) or rerun it with --force"
        unsealed = [k for k in SEAL_KEYS if k not in info]
        if unsealed:
            raise RunStoreError(
                f"{self.done_path}: records no {', '.join(unsealed)}, so the run's files cannot be "
                f"checked; the file is damaged; {fix}"
            )
        recorded = info["n_metrics"]
        if not self.metrics_path.is_file():
            rows_note = f" (its DONE records {recorded} rows)" if recorded else ""
            raise RunStoreError(f"finished run {self.path} has no metrics.jsonl{rows_note}; {fix}")
        data = self.metrics_path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RunStoreError(
                f"{self.metrics_path}: not UTF-8 text (byte {exc.start}); the file is damaged; {fix}"
            ) from None
        rows = _parse_metric_lines(self.metrics_path, text, fix)
        if recorded != len(rows):
            raise RunStoreError(
                f"{self.metrics_path}: {len(rows)} rows, but the run finished with {recorded} "
                f"(DONE); the file changed after the run finished; {fix}"
            )
        if info["metrics_sha256"] != hashlib.sha256(data).hexdigest():
            raise RunStoreError(
                f"{self.metrics_path}: the content differs from what the run finished with "
                f"(sha256 in DONE); {fix}"
            )
        for rel, digest in sorted((info["predictions_sha256"] or {}).items()):
            path = self.predictions_dir / rel
            if not path.is_file():
                raise RunStoreError(
                    f"finished run {self.path}: predictions file {path} is missing (DONE records "
                    f"it); rerun it with --force"
                )
            if sha256_file(path) != digest:
                raise RunStoreError(
                    f"{path}: the predictions differ from what the run finished with (sha256 in "
                    f"DONE), so its scores would not match them; {fix}"
                )
        return rows

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, done={self.is_done()})"


def check_format(path: Path, found: Any) -> None:
    """One clear error unless ``found`` (a DONE's ``run_format``) is :data:`RUN_FORMAT`."""
    if found == RUN_FORMAT and not isinstance(found, bool):
        return
    if not isinstance(found, int) or isinstance(found, bool) or found < 0:
        raise DataError(
            f"{path / DONE}: run_format {found!r} is not a format number; the file is damaged"
        )
    if found > RUN_FORMAT:
        raise RunFormatError(
            f"{path}: run folder of format {found}, newer than this mmxfer {mmxfer.__version__} "
            f"reads (format {RUN_FORMAT}); read it with the mmxfer that wrote it (its env.json "
            f"names the version)"
        )
    recorded = (
        "its DONE records no run_format" if found == 0 else f"its DONE records run_format {found}"
    )
    raise RunFormatError(
        f"{path}: run folder of format {found} ({recorded}); mmxfer {mmxfer.__version__} reads "
        f"format {RUN_FORMAT} only: run it again into a fresh folder (another --runs-dir or "
        f"study), or delete {path}"
    )


def run_id_for(config: Any, label: str) -> str:
    return f"{slug(label)}-{config_hash(config)}"


def run_path(runs_dir: str | Path, study: str, config: Any, label: str) -> Path:
    """``<runs_dir>/<study>/<run_id>``: the folder of the run of ``config``."""
    return (
        Path(runs_dir)
        / slug(check_name("study", study))
        / run_id_for(config, check_name("run label", label))
    )


def _parse_metric_lines(path: Path, text: str, fix: str) -> list[dict[str, Any]]:
    """Strictly parsed metric rows: every line JSON with the row keys, numeric scores, no key twice."""
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], tuple[int, Any]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise RunStoreError(
                f"{path}: line {n} is not valid JSON (a torn or damaged write); {fix}"
            ) from None
        if not isinstance(row, dict):
            raise RunStoreError(f"{path}: line {n} is not a JSON object; {fix}")
        missing = [k for k in METRIC_KEYS if k not in row]
        if missing:
            raise RunStoreError(f"{path}: line {n} has no {', '.join(missing)}; {fix}")
        score = row["score"]
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise RunStoreError(f"{path}: line {n}: score {score!r} is not a number; {fix}")
        key = (row["task"], row["lang"], row.get("split", "test"), row["metric"], row.get("part"))
        if key in seen:
            first, before = seen[key]
            what = (
                f"scores {before} and {score}" if before != score else f"score {score} both times"
            )
            raise RunStoreError(
                f"{path}: lines {first} and {n} are the same result ({key[0]} {key[1]} {key[2]} "
                f"{key[3]}{' ' + str(key[4]) if key[4] else ''}; {what}): the file was written "
                f"twice; {fix}"
            )
        seen[key] = (n, score)
        rows.append(row)
    return rows


def open_run(
    runs_dir: str | Path,
    study: str,
    config: Any,
    label: str,
    *,
    resume: bool = False,
    force: bool = False,
    seed: int | None = None,
    env: dict[str, Any] | None = None,
) -> Run:
    """Create (or reopen) the run folder for ``config``.

    - a finished run (DONE) is never touched unless ``force`` (then it is wiped and restarted);
    - an unfinished folder is continued with ``resume`` or wiped with ``force``; otherwise an error
      tells the user which flag to pass;
    - the resolved config is written atomically before anything else; ``env`` adds to env.json.
    """
    config_dict = to_dict(config)
    run = Run(run_path(runs_dir, study, config_dict, label))
    if run.is_started():
        if run.is_done() and not force:
            run.done_info()  # a folder of another format says so, rather than that it is finished
            raise RunStoreError(
                f"{run.path} is already finished (DONE); pass --force to run it again"
            )
        if force:
            wipe(run)
        elif not resume:
            raise RunStoreError(
                f"{run.path} exists but is unfinished; pass --resume to continue it or --force to start over"
            )
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config_dict)
    run.write_env(seed=seed, extra=env)
    return run


def wipe(run: Run) -> None:
    """Empty a run folder for ``--force`` (its lock stays). Never through a symbolic link."""
    if run.path.is_symlink():
        raise RunStoreError(
            f"{run.path} is a symbolic link (to {os.readlink(run.path)}); --force does not delete "
            f"through links: remove the link, or the folder it points to, yourself"
        )
    for entry in run.path.iterdir():
        if entry.name.startswith((LOCK_NAME, f".{LOCK_NAME}")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _run_folders(root: Path) -> list[Path]:
    """Folders holding a config.yaml under ``root``, following symbolic links to folders (each real folder once)."""
    found: list[Path] = []
    seen: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = Path(dirpath).resolve()
        if real in seen:  # a link back up the tree, or a second link to one folder
            dirnames[:] = []
            continue
        seen.add(real)
        if "config.yaml" in filenames:
            found.append(Path(dirpath))
        dirnames.sort()
    return sorted(found)


def iter_runs(root: str | Path, finished_only: bool = True) -> Iterator[Run]:
    """Every run folder under ``root`` (a runs dir, a study dir or a run dir); run folders that are symbolic
    links are followed."""
    root = Path(root)
    if (root / "config.yaml").is_file():
        candidates = [root]
    else:
        candidates = _run_folders(root)
    for path in candidates:
        run = Run(path)
        if not finished_only or run.is_done():
            yield run


# --------------------------------------------------------------------------- predictions files


def predictions_path(root: str | Path, task: str, split: str, lang: str) -> Path:
    """``<root>/predictions/<task>/<split>-<lang>.jsonl`` (``root``: a run folder or an evaluation's folder)."""
    return Run(root).predictions_path(task, split, lang)


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
    lines = _read_text(path).splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: empty predictions file")
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
