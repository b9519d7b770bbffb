"""Sealed folders: derived files that carry a checksum of their content, written last, checked on load.

:func:`seal` writes a record (JSON, atomically, the folder's last file) listing every file under the folder with
its size and sha256, beside whatever the writer wants kept (row counts). A writer killed half-way leaves no record,
so a partial folder never passes; :func:`check` re-reads every listed file and raises :class:`Damaged` naming the
first that is missing, of another size (truncated) or of other content (flipped bytes, rewritten with other labels
or dtypes), and for a record that is unreadable or written without checksums. What a damage means is the caller's:
a cache entry is recomputed, a phase-2 trunk is an error that says how to train it again.

Hashing reads the files through ``read``, not a mapping, so it adds nothing to the resident size (its speed and
what a run hashes: ``benchmarks/results/cache_checksum_cost.json``). Each process checks a folder once: a folder whose files have the
same size, modification time and inode as when this process sealed or checked it is not hashed again (a local study
loads the same trunk and feature entries run after run).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mmxfer.errors import DataError
from mmxfer.runs import atomic

SEAL_FORMAT = 1
FILES_KEY = "files"
_BLOCK = 1 << 20

#: record file (device, inode) -> the stat of every file when this process last sealed or checked the folder
_checked: dict[tuple[int, int], tuple] = {}


class Damaged(DataError):
    """A sealed folder whose content is not what its record says (or whose record cannot be read)."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed(folder: Path, record: str) -> list[str]:
    """Every regular file under ``folder`` but the record (relative POSIX paths, sorted)."""
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if rel != record and path.is_file() and not path.is_symlink():
            out.append(rel)
    return sorted(out)


def _stats(folder: Path, record: str, files: list[str]) -> tuple:
    rows = []
    for rel in [*files, record]:
        st = (folder / rel).stat()
        rows.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(rows)


def _memo_key(folder: Path, record: str) -> tuple[int, int]:
    """The record file's device and inode: they stay when the folder is renamed into place after sealing."""
    st = (folder / record).stat()
    return st.st_dev, st.st_ino


def seal(
    folder: str | Path, record: str = "DONE", info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``folder/record``: ``info`` plus the size and sha256 of every other file under ``folder``; returns it."""
    folder = Path(folder)
    files = _listed(folder, record)
    data = {
        **(info or {}),
        "seal": SEAL_FORMAT,
        FILES_KEY: {
            rel: {"size": (folder / rel).stat().st_size, "sha256": sha256_file(folder / rel)}
            for rel in files
        },
    }
    atomic.write_json(folder / record, data)
    _checked[_memo_key(folder, record)] = _stats(folder, record, files)
    return data


def _read_record(folder: Path, record: str) -> dict[str, Any]:
    path = folder / record
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(f"{folder}: no {record} (the writer did not finish)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Damaged(f"{path}: unreadable ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise Damaged(f"{path}: not a seal record")
    files = data.get(FILES_KEY)
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise Damaged(f"{path}: holds no checksums (written by an older mmxfer)")
    return data


def check(folder: str | Path, record: str = "DONE") -> dict[str, Any]:
    """The record of a sealed ``folder`` once every file it lists has its recorded size and sha256; else
    :class:`Damaged` naming the file and the problem. Files added after sealing are not looked at."""
    folder = Path(folder)
    data = _read_record(folder, record)
    files: dict[str, dict[str, Any]] = data[FILES_KEY]
    try:
        key, stats = _memo_key(folder, record), _stats(folder, record, sorted(files))
    except OSError:
        key = stats = None
    if stats is not None and _checked.get(key) == stats:
        return data
    for rel, want in sorted(files.items()):
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            raise Damaged(f"{path}: missing (listed in {record})") from None
        if size != want["size"]:
            raise Damaged(
                f"{path}: {size} bytes, {want['size']} recorded in {record} (truncated or rewritten)"
            )
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise Damaged(f"{path}: unreadable ({exc.strerror or exc})") from None
        if digest != want["sha256"]:
            raise Damaged(
                f"{path}: content differs from its sha256 in {record} (damaged or edited)"
            )
    if key is not None:
        _checked[key] = stats
    return data


def damage(folder: str | Path, record: str = "DONE") -> str | None:
    """What is wrong with a sealed ``folder``: None when it matches its record, "" when it has no record (absent,
    unfinished or from older code: nothing to report), else the :class:`Damaged` message."""
    if not is_sealed(folder, record):
        return ""
    try:
        check(folder, record)
    except Damaged as exc:
        return str(exc)
    return None


def is_sealed(folder: str | Path, record: str = "DONE") -> bool:
    """Whether ``folder`` has a record (checked or not): a folder without one is unfinished or from older code."""
    return os.path.isfile(Path(folder) / record)
