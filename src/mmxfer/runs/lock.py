"""Exclusive lock files: one writer per run folder, one trainer per shared phase-2 folder.

A lock is a file (``<folder>/LOCK``) that names its holder as JSON: ``pid``, ``host``, ``started``, the
holder's ``command`` and a random ``token``. It is created whole - written to a temp file, then hard-linked to
its name, which fails when the name exists; that is atomic on local file systems and on NFS, where
``O_EXCL`` has not always been. While it is held, a daemon thread touches it every ``heartbeat`` seconds.

A lock nobody holds any more is taken over:

- its holder ran on this host and that process is gone (``kill -9``, the OOM killer, a node reboot, or its pid
  now belongs to a younger process): at once;
- its holder ran on another host and the heartbeat is older than ``stale_after`` seconds (that host died or
  lost the file system). A process that finds such a lock with a heartbeat that stopped (older than three
  beats) waits for that timeout rather than giving up, so a job requeued after a node failure goes on.

It is released (deleted) when the holder leaves the ``with`` block, whatever the exit - an exception, Ctrl-C,
or SIGTERM (which :mod:`mmxfer.runs.interrupt` turns into an exception). Defaults: a heartbeat every 30 s,
stale after 10 min; ``MMXFER_LOCK_HEARTBEAT_S`` and ``MMXFER_LOCK_STALE_S`` change them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmxfer.errors import RunStoreError

log = logging.getLogger(__name__)

LOCK_NAME = "LOCK"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
_HELD: set[str] = set()  # tokens of the locks this process holds


class LockHeld(RunStoreError):
    """The folder is locked by a live process."""

    def __init__(self, message: str, holder: Holder) -> None:
        super().__init__(message)
        self.holder = holder


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def hostname() -> str:
    return socket.gethostname()


def _pid_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot, Linux ``/proc``); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[
        stat.rfind(")") + 2 :
    ].split()  # after "pid (comm) ": state is field 3, starttime field 22
    return fields[19] if len(fields) > 19 else None


def _pid_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2 :].split()
    return rest[0] if rest else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host still runs (and is the one that started at ``started``)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    except OSError:
        return False
    if _pid_state(pid) in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    if started is not None:
        now = _pid_start(pid)
        if now is not None and now != started:  # the pid was reused by a younger process
            return False
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    pid: int | None
    host: str | None
    started: str | None
    command: str
    token: str | None
    pid_started: str | None
    heartbeat_age: float  # seconds since the file was last touched

    @property
    def local(self) -> bool:
        return self.host == hostname()

    def alive(self) -> bool | None:
        """True/False for a holder on this host; None for one on another host (only its heartbeat tells)."""
        if not self.local or self.pid is None:
            return None
        if self.pid == os.getpid():
            return (
                self.token in _HELD
            )  # a lock of this very process that it no longer holds is left over
        return pid_alive(self.pid, self.pid_started)

    def stale(self, stale_after: float) -> bool:
        alive = self.alive()
        return (not alive) if alive is not None else self.heartbeat_age > stale_after

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        where = f" on host {self.host}" if self.host else ""
        what = f" ({self.command})" if self.command else ""
        since = f", started {self.started}" if self.started else ""
        return f"{who}{where}{what}{since}, last heartbeat {self.heartbeat_age:.0f} s ago"


def read_holder(path: str | Path) -> Holder | None:
    """The holder recorded in lock file ``path``; None when there is no such file."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    age = max(0.0, time.time() - mtime)
    try:  # a file that is no JSON record names no holder: only its age (the heartbeat) tells whether it is stale
        loaded = json.loads(text) if text else {}
    except json.JSONDecodeError:
        loaded = {}
    data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    pid = data.get("pid")
    return Holder(
        pid=pid if isinstance(pid, int) else None,
        host=data.get("host"),
        started=data.get("started"),
        command=str(data.get("command") or ""),
        token=data.get("token"),
        pid_started=data.get("pid_started"),
        heartbeat_age=age,
    )


class FileLock:
    """An exclusive lock file for ``folder`` (see the module docstring); ``what`` names the folder in messages."""

    def __init__(
        self,
        folder: str | Path,
        what: str = "folder",
        *,
        name: str = LOCK_NAME,
        heartbeat: float | None = None,
        stale_after: float | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self.heartbeat = heartbeat or _env_seconds("MMXFER_LOCK_HEARTBEAT_S", HEARTBEAT_S)
        self.stale_after = stale_after or _env_seconds("MMXFER_LOCK_STALE_S", STALE_AFTER_S)
        self.token = secrets.token_hex(8)
        self.held = False
        self.lost = False
        self._created_folder = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- acquiring -------------------------------------------------------------------------------------

    def _record(self) -> str:
        return json.dumps(
            {
                "pid": os.getpid(),
                "host": hostname(),
                "pid_started": _pid_start(os.getpid()),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(["mmxfer", *sys.argv[1:]])[:300],
                "token": self.token,
            }
        )

    def _try_create(self) -> bool:
        """Create the lock file whole; False when it exists."""
        tmp = self.folder / f".{self.path.name}.{self.token}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(self._record())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create instead
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self._record())
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _take_over(self, holder: Holder) -> None:
        """Move the stale lock aside; if a new holder replaced it meanwhile, put that one back."""
        aside = self.folder / f".{self.path.name}.stale.{self.token}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another process removed it first
        moved = read_holder(aside)
        if moved is not None and moved.token != holder.token:
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        with contextlib.suppress(OSError):
            os.unlink(aside)

    def acquire(
        self,
        *,
        wait: bool = False,
        until: Callable[[], bool] | None = None,
        poll: float = 2.0,
        log_every: float = 60.0,
    ) -> bool:
        """Take the lock. A live holder: with ``wait``, wait for it (True once taken, or False as soon as
        ``until()`` is true - the work is then done); without, raise :class:`LockHeld` naming the holder."""
        if not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._created_folder = True
        last_log = None
        while True:
            if until is not None and until():
                return False
            if self._try_create():
                break
            holder = read_holder(self.path)
            if holder is None:
                continue  # released between our attempt and the read
            if holder.stale(self.stale_after):
                log.warning(
                    "taking over the stale lock of %s %s (%s)",
                    self.what,
                    self.folder,
                    holder.describe(),
                )
                self._take_over(holder)
                continue
            beating = holder.local or holder.heartbeat_age < 3 * self.heartbeat
            if not wait and beating:
                raise LockHeld(
                    f"{self.what} {self.folder} is in use by {holder.describe()}; wait for it to "
                    f"finish or stop it (a lock whose process is gone is taken over by itself)",
                    holder,
                )
            now = time.monotonic()
            if last_log is None or now - last_log >= log_every:
                if beating:
                    log.warning(
                        "waiting for %s %s: in use by %s", self.what, self.folder, holder.describe()
                    )
                else:  # a holder on another host whose heartbeat stopped: its host may have died
                    log.warning(
                        "%s %s: the heartbeat of %s stopped; taking the lock over %.0f s after it",
                        self.what,
                        self.folder,
                        holder.describe(),
                        self.stale_after,
                    )
                last_log = now
            time.sleep(poll)
        self.held = True
        _HELD.add(self.token)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"lock-heartbeat:{self.folder.name}", daemon=True
        )
        self._thread.start()
        return True

    # --- holding ---------------------------------------------------------------------------------------

    def owned(self) -> bool:
        holder = read_holder(self.path)
        return holder is not None and holder.token == self.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                if not self.owned():
                    self.lost = True
                    log.warning(
                        "the lock of %s %s was taken over by another process",
                        self.what,
                        self.folder,
                    )
                    return
                os.utime(self.path)
            except OSError:  # the file system is briefly away: try again at the next beat
                continue

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.held = False
        _HELD.discard(self.token)
        with contextlib.suppress(OSError):
            if self.owned():
                os.unlink(self.path)
        if self._created_folder:  # a folder made only to hold the lock, and still empty, goes again
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(
    folder: str | Path,
    what: str = "folder",
    *,
    wait: bool = False,
    until: Callable[[], bool] | None = None,
) -> Iterator[bool]:
    """Hold the lock of ``folder`` for the ``with`` block; yields False (without locking) when ``wait``-ing
    ended because ``until()`` became true."""
    lock = FileLock(folder, what)
    try:
        yield lock.acquire(wait=wait, until=until)
    finally:
        lock.release()
