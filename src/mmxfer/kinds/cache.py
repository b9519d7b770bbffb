"""The feature cache: content-hash keys and the on-disk store under ``$MMXFER_CACHE/features``.

The key hashes the tokenizer (its full vocabulary/config, not where it was read from), max length, doc stride
(windowed kinds only), the task name and version, split, language, :data:`PREPROCESS_VERSION`,
the answer vocabulary, the image preprocessing, the input dataset's content fingerprint and the
kind's extras (tag set, masking). An entry is complete when it holds ``DONE``, written last with the size and
sha256 of every file (:mod:`mmxfer.runs.sealed`); it is checked on every first load in a process, and an entry that
fails the check (flipped bytes, truncated, rewritten with other labels or dtypes, unreadable) is logged and
computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmxfer import assets
from mmxfer.kinds.progress import progress_bars
from mmxfer.models.trunk import forget_call_settings
from mmxfer.runs import sealed
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets

log = logging.getLogger(__name__)

PREPROCESS_VERSION = "1"


#: fingerprints by tokenizer object, with the vocabulary size they were taken at: weak keys, so that a copy (the
#: trunk loader hands out copies) is hashed anew, not given its original's value after it has been changed
_fingerprints: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what the tokenizer does: its full serialised state (vocabulary, normaliser, template) and special
    tokens; not where it was read from, nor the truncation and padding its last call left on a fast tokenizer's
    backend. So a trunk's tokenizer and each phase-2 folder's copy of it share one feature cache, whichever of
    them a process read first (the trunk loader shares one tokenizer object between folders with equal files)."""
    size = len(tokenizer)
    kept = _fingerprints.get(tokenizer)
    if kept is not None and kept[0] == size:
        return kept[1]
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        forget_call_settings(tokenizer)
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(
        json.dumps(
            {k: str(v) for k, v in sorted(getattr(tokenizer, "special_tokens_map", {}).items())}
        ).encode()
    )
    digest = h.hexdigest()
    _fingerprints[tokenizer] = (size, digest)
    return digest


def dataset_fingerprint(dataset: datasets.Dataset) -> str:
    fp = getattr(dataset, "_fingerprint", None)
    if fp:
        return str(fp)
    h = hashlib.sha256()  # pragma: no cover - every datasets.Dataset has one
    for row in dataset:
        h.update(repr(row).encode())
    return h.hexdigest()


def cache_key(
    spec: TaskSpec,
    dataset: datasets.Dataset,
    tokenizer: Any,
    *,
    max_length: int,
    doc_stride: int | None,
    split: str,
    lang: str | None,
    answer_vocab: Sequence[str] | None = None,
    image_preprocess: Any = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The content hash naming a featurised dataset (``doc_stride``: None for kinds without windows)."""
    parts = {
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": max_length,
        "doc_stride": doc_stride,
        "task": spec.name,
        "version": spec.version,
        "split": split,
        "lang": lang,
        "preprocess": PREPROCESS_VERSION,
        "data": dataset_fingerprint(dataset),
        "answers": hashlib.sha256("\n".join(answer_vocab).encode()).hexdigest()
        if answer_vocab
        else None,
        "image": None
        if image_preprocess is None
        else getattr(image_preprocess, "cache_id", repr(image_preprocess)),
        "extra": extra or {},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cache_path(spec: TaskSpec, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else assets.cache_dir("features")
    return root / spec.name / key


def load_cached(path: Path, stats: dict[str, Any]) -> datasets.Dataset | None:
    """The cached dataset at ``path`` (``stats`` gets ``cache: hit`` and its bad-image count), or None: absent, or
    damaged - a file that differs from its checksum, a truncated or unreadable entry, a row count that is not the
    recorded one - which is logged in one line and removed, so the caller computes it again."""
    import datasets

    if not path.exists():
        return None
    try:
        done = sealed.check(path)
        features = datasets.load_from_disk(str(path))
        if len(features) != done.get("rows"):
            raise sealed.Damaged(
                f"{path}: {len(features)} rows, {done.get('rows')} recorded in DONE"
            )
    except sealed.Damaged as exc:
        _discard(path, str(exc))
        return None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
    ) as exc:  # what datasets raises for a folder it cannot read
        _discard(
            path,
            f"{path}: unreadable ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})",
        )
        return None
    stats["cache"] = "hit"
    stats.setdefault("bad_images", done.get("bad_images", 0))
    return features


def _discard(path: Path, problem: str) -> None:
    """Log a damaged entry and move it out of the way (renamed first, so no reader finds it half removed)."""
    log.warning("feature cache: %s; computing it again", problem)
    aside = path.with_name(f"{path.name}.damaged-{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:  # another process removed it first
        return
    except OSError as exc:
        raise assets.cache_write_error(path, exc) from None
    shutil.rmtree(aside, ignore_errors=True)


def store(features: datasets.Dataset, path: Path, stats: dict[str, Any]) -> datasets.Dataset:
    """Write ``features`` to ``path`` (temp folder, sealed ``DONE`` last, rename) and return the stored copy."""
    import datasets

    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        with progress_bars(False):
            features.save_to_disk(str(tmp))
        sealed.seal(tmp, "DONE", {"rows": len(features), "bad_images": stats.get("bad_images", 0)})
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise assets.cache_write_error(path.parent, exc) from None
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished first: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(path))
