"""Stopping on SIGTERM - what SLURM sends at a time limit, on ``scancel`` or before preemption - without losing
work or leaving a lock behind.

:func:`handling_sigterm` (the command line's ``main``) makes SIGTERM raise :class:`Stopped` in the main thread, so
every ``finally`` runs: locks are released, temp files of atomic writes removed. Inside :func:`deferred` - the
training loop - the signal only records itself; the loop finishes the current optimizer step, writes a
checkpoint, and raises :class:`Stopped` (:func:`raise_if_requested`). A second SIGTERM while deferred raises at
once. ``Stopped`` derives from ``BaseException`` like ``KeyboardInterrupt``: no ``except Exception`` swallows it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Stopped(BaseException):
    """The process was asked to stop (SIGTERM); ``detail`` says what was kept."""

    def __init__(self, signum: int = signal.SIGTERM, detail: str = "") -> None:
        super().__init__(detail or signal.Signals(signum).name)
        self.signum = signum
        self.detail = detail

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


_requested: int | None = None
_deferring = 0


def _handler(signum: int, frame: FrameType | None) -> None:
    global _requested
    if _deferring > 0 and _requested is None:
        _requested = signum
        return
    raise Stopped(signum)


def requested() -> int | None:
    """The signal received while deferred, or None."""
    return _requested


def clear() -> None:
    global _requested
    _requested = None


@contextlib.contextmanager
def handling_sigterm() -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` inside the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _handler)
    clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside the block, SIGTERM is only recorded (:func:`requested`); the code polls it at safe points."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _deferring == 0:
        raise_if_requested()  # a signal the block did not act on stops the process now


def raise_if_requested(detail: str = "") -> None:
    signum = _requested
    if signum is not None:
        clear()
        raise Stopped(signum, detail)
