"""How a failed command ends: one line on stderr, on a line of its own even after a progress bar.

The errors the environment causes - a file that cannot be read or written (``OSError``), text that is not UTF-8,
broken JSON or YAML, damaged gzip data (``zlib.error``, ``EOFError``) - are not bugs: their line names the file.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zlib
from types import TracebackType

import yaml

#: errors the environment causes (not bugs): one line naming the file, unless --debug
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    yaml.YAMLError,
    zlib.error,
    EOFError,
)


def _file_in_traceback(tb: TracebackType | None) -> str | None:
    """The file an error happened in: the innermost open file object (or ``path`` variable) of the frames."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in list(frame.f_locals.values()):
            name = getattr(value, "name", None) if isinstance(value, io.IOBase) else None
            if isinstance(name, str):
                return name
    for frame in reversed(frames):
        for key in ("path", "filename", "file", "source"):
            value = frame.f_locals.get(key)
            if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                return os.fspath(value)
    return None


def describe_error(exc: BaseException) -> str:
    """One line for an error the environment caused, naming the file."""
    if isinstance(exc, OSError) and exc.filename is not None:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{where}: {exc.strerror or exc}"
    where = _file_in_traceback(exc.__traceback__) or "(file unknown)"
    if isinstance(exc, UnicodeDecodeError):
        return f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason})"
    if isinstance(exc, json.JSONDecodeError):
        return f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, yaml.YAMLError):
        return f"{where}: not valid YAML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if isinstance(exc, (zlib.error, EOFError)):
        return f"{where}: damaged or truncated compressed data ({exc})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{where}: {text}"


def end_progress_bars() -> None:
    """Close every live progress bar, so what follows starts on a line of its own."""
    tqdm_std = sys.modules.get("tqdm.std")
    bars = list(getattr(getattr(tqdm_std, "tqdm", None), "_instances", []) or [])
    for bar in bars:
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass
    if bars:
        sys.stderr.flush()
        sys.stdout.flush()


def print_error(command: str, message: str) -> None:
    """``mmxfer COMMAND: error: MESSAGE`` on stderr, after closing any progress bar."""
    end_progress_bars()
    print(f"mmxfer {command}: error: {' '.join(message.split())}", file=sys.stderr)
