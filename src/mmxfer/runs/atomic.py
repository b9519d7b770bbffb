"""Atomic file writes: write to a temp file in the same folder, fsync, then rename.

A reader never sees a half-written file: either the previous content or the new one. Files get the
permissions a plain ``open`` would give them (``0o666`` less the umask), so results in a shared runs
folder stay readable by the group. Output paths are checked before long work starts
(:func:`check_output_dir`, :func:`check_output_file`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from mmxfer.errors import ConfigError, DataError


def umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600: give the file the mode open() would
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(
        path, json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"
    )


def write_yaml(path: str | Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines atomically; returns the number of rows."""
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path, skip_bad: bool = False) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (blank lines skipped); ``skip_bad``: also skip lines that are not JSON,
    such as the torn last line an appending process left when it was killed. Text that is not UTF-8 is a
    :class:`~mmxfer.errors.DataError` naming the file."""
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    if not skip_bad:
                        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return rows


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one JSON line. Appends are used for logs; a torn last line is skipped on read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- output paths


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, path: Path, option: str) -> None:
    """Create and delete a file in ``folder``: the one test of writability that also holds for root and
    read-only mounts."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mmxfer-write-test.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc})"
        ) from None


def check_output_dir(path: str | Path, option: str = "output folder") -> Path:
    """Fail now, with one line, when ``path`` cannot become a writable folder (nothing is created)."""
    path = Path(path).expanduser()
    if not str(path).strip():
        raise ConfigError(f"{option}: empty path")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a folder")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise ConfigError(f"{option} {path}: {base} is a file, not a folder")
    _probe(base, path, option)
    return path


def check_output_file(path: str | Path, option: str = "output file") -> Path:
    """Fail now, with one line, when ``path`` cannot be written as a file (nothing is created)."""
    path = Path(path).expanduser()
    if not str(path).strip() or str(path).endswith(os.sep):
        raise ConfigError(f"{option} {path}: expected a file name")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: the file is not writable")
    base = _nearest_existing(path.absolute().parent)
    if not base.is_dir():
        raise ConfigError(f"{option} {path}: {base} is a file, not a folder")
    _probe(base, path, option)
    return path
