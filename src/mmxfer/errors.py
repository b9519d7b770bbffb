"""User-facing errors.

Anything a user can cause (bad config, unknown name, missing file, offline hub asset) raises
a subclass of :class:`MmxferError`. The CLI prints its message on one line and exits non-zero,
with no traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MmxferError(Exception):
    """An error the user can fix; its message is shown as-is."""

    exit_code = 2


class ConfigError(MmxferError):
    """A configuration file or override is invalid."""


class UnknownNameError(MmxferError):
    """A registry lookup for a name that is not registered."""


class DataError(MmxferError):
    """Data is missing, empty, corrupt or of the wrong shape."""


class AssetError(MmxferError):
    """An external asset (hub model, dataset, tokenizer file) cannot be resolved."""


class RunStoreError(MmxferError):
    """A run folder is in a state that forbids the requested operation."""


class RunFormatError(RunStoreError):
    """A run folder was written in a format this mmxfer does not read (older or newer than its own)."""


class TrainingError(MmxferError):
    """Training stopped for a reason the user must know (e.g. NaN loss)."""


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean a, b?)' for close matches, or '' if none are close."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in choices if lowered in c.lower() or c.lower() in lowered][:n]
    return f" (did you mean {', '.join(close)}?)" if close else ""
