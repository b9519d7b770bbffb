"""Showing or hiding the ``datasets`` progress bars around featurisation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

PROGRESS_MIN_ROWS = 5000  # smaller sets featurise in well under a second; their bars are noise


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Show or hide the `datasets` progress bars for one block, restoring the previous state."""
    from datasets.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()
