"""Giving memory back between the parts of a long process (the runs of a local study, phase 2 and phase 3 of a
run).

A trained model, its optimizer and its data loaders sit in reference cycles (modules, hooks, the accelerator's
state), which only a full collection frees; until then the next part loads its own model beside them. And glibc
keeps freed heap pages for reuse instead of returning them, so the resident size only grows: ``malloc_trim``
returns them. In the starter study the two took the peak from about 8 GB to 4.3 GB.

Weights read from safetensors files stay mapped from the file (as transformers 5 loads them to the CPU; older
versions may copy them), so only the pages a run touches are resident: a lookup of a few thousand of the 250k
embedding rows brings in those rows alone. Reading a whole matrix once (a content fingerprint) would make all of
it resident for the model's life;
:func:`hash_giving_back_file_pages` hashes such memory chunk by chunk and asks the kernel to take the file pages
back behind it (``MADV_PAGEOUT``): their content is unchanged and is read from the file again when touched.
The kernel reclaims only pages this process may write back and maps alone, so a model folder mapped by several
processes, or not writable, keeps its pages (madvise still succeeds); and anything that reads the whole matrix
later (saving the trunk, a forward pass without autocast) makes it resident again.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import gc
import mmap
import sys
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: madvise(2) advice: reclaim the pages of the range (Linux 5.4+; an error elsewhere, which is ignored)
MADV_PAGEOUT = 21
#: bytes hashed between two page-outs
HASH_CHUNK = 16 * 2**20


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@cache
def _malloc_trim() -> Any:
    return getattr(_libc(), "malloc_trim", None)  # glibc only: musl and others have no malloc_trim


@cache
def _madvise() -> Any:
    madvise = getattr(_libc(), "madvise", None)
    if madvise is not None:
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
    return madvise


#: every this many releases, the collection also examines the objects earlier releases froze
FULL_COLLECTION_EVERY = 16
_releases = 0


def release_memory() -> None:
    """Collect unreachable reference cycles and, on glibc, return freed heap pages to the system.

    The survivors of each collection are frozen (``gc.freeze``): they were alive at a release, and the next
    release examines only the objects made after it, so a collection costs what the last run allocated and
    not the whole process (imported modules alone are some 300k objects, about 0.3-0.5 s a full collection).
    A finished run's cycles are made after the previous release, so each release frees them all. What a
    frozen object holds is kept while it is frozen: an object alive at one release that joins a garbage cycle
    later (an entry a cache drops, a small trunk kept by ``models.trunk``) waits for the next full collection,
    which every :data:`FULL_COLLECTION_EVERY`-th release makes after unfreezing everything."""
    global _releases
    _releases += 1
    if _releases % FULL_COLLECTION_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


#: mappings with a path that are not plain files on a disk: devices, shared memory, memfd and SysV segments
_NOT_FILES = ("/dev/", "/memfd:", "/SYSV")


def file_ranges(maps: str) -> list[tuple[int, int]]:
    """Sorted ``[start, end)`` address ranges of the file mappings in a ``/proc/<pid>/maps`` text: entries with an
    inode and a path, devices, shared memory and memfd left out (reclaiming those would swap, not drop, them)."""
    ranges = []
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if (
            len(parts) == 6
            and parts[4] != "0"
            and parts[5].startswith("/")
            and not parts[5].startswith(_NOT_FILES)
        ):
            start, end = parts[0].split("-")
            ranges.append((int(start, 16), int(end, 16)))
    return sorted(ranges)


def file_mapped_ranges() -> list[tuple[int, int]]:
    """:func:`file_ranges` of this process (Linux; else [])."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return file_ranges(maps.read())
    except OSError:
        return []


def _in_ranges(address: int, ranges: list[tuple[int, int]], length: int) -> bool:
    """Whether ``[address, address + length)`` lies inside one of ``ranges``."""
    i = bisect.bisect_right(ranges, (address, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= address and address + length <= ranges[i][1]


def give_back_file_pages(address: int, length: int) -> bool:
    """Ask the kernel to reclaim the whole pages inside ``[address, address + length)``; call it only on memory
    that maps a file (then nothing changes but the resident size). False where madvise is missing or refused."""
    madvise = _madvise()
    start = -(-address // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (address + length) // mmap.PAGESIZE * mmap.PAGESIZE
    if madvise is None or end <= start:
        return False
    return madvise(start, end - start, MADV_PAGEOUT) == 0


class _Digest(Protocol):
    def update(self, data: Any, /) -> None: ...


def hash_giving_back_file_pages(
    digest: _Digest, data: memoryview, address: int, ranges: list[tuple[int, int]]
) -> None:
    """``digest.update(data)``; where ``data`` (at ``address``) is larger than :data:`HASH_CHUNK` and maps a file
    (lies inside one of ``ranges``, from :func:`file_mapped_ranges`), in chunks whose pages are given back once
    hashed. Chunk edges fall on multiples of :data:`HASH_CHUNK` in the address space, so on page boundaries; smaller
    data (a layer's weights, which a forward pass reads anyway) stays resident."""
    if len(data) <= HASH_CHUNK or not _in_ranges(address, ranges, len(data)):
        digest.update(data)
        return
    offset = 0
    while offset < len(data):
        edge = (
            address + offset
        ) // HASH_CHUNK * HASH_CHUNK + HASH_CHUNK  # the next chunk edge after the offset
        size = min(edge - address - offset, len(data) - offset)
        digest.update(data[offset : offset + size])
        give_back_file_pages(address + offset, size)
        offset += size


def give_back_if_file_mapped(tensor: torch.Tensor) -> bool:
    """:func:`give_back_file_pages` for a CPU tensor's bytes when they map a file (other memory is left alone)."""
    if tensor.device.type != "cpu" or not tensor.is_contiguous():
        return False
    address, length = tensor.data_ptr(), tensor.numel() * tensor.element_size()
    if not _in_ranges(address, file_mapped_ranges(), length):
        return False
    return give_back_file_pages(address, length)
