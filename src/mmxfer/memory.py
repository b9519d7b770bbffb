"""Giving memory back between the parts of a long process (the runs of a local study, phase 2 and phase 3 of a
run).

A trained model, its optimizer and its data loaders sit in reference cycles (modules, hooks, the accelerator's
state), which only a full collection frees; until then the next part loads its own model beside them. And glibc
keeps freed heap pages for reuse instead of returning them, so the resident size only grows: ``malloc_trim``
returns them. In the starter study the two took the peak from 7.9 GB to under 4 GB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache
from typing import Any


@cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc.malloc_trim  # glibc only: musl and others have no malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Collect unreachable reference cycles and, on glibc, return freed heap pages to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
