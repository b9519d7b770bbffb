"""A frozen vision tower's features, computed once per image and process.

A frozen tower (``vision.freeze: true``: no gradient, eval mode) is a pure function of an image's pixels, so its
tokens for an image are computed once, in float32 and in batches of :data:`BATCH_SIZE`, and kept in
:data:`FEATURES` under a key of the tower's weights (a content fingerprint), its preprocessing and the image's
bytes: every step, epoch, seed and task (VQA and captioning of the same scenes) that shows the same image reuses
them, and batches carry the tokens (``image_features``) instead of pixels. Training then runs the projector and
the trunk only; decoding and resizing each image again at every step is gone too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmxfer.errors import ConfigError, DataError
from mmxfer.models.frozen import StateCache, tensors_fingerprint

BATCH_SIZE = 32
DEFAULT_BUDGET_MB = 512


def _budget() -> int:
    raw = os.environ.get("MMXFER_IMAGE_FEATURE_CACHE_MB", str(DEFAULT_BUDGET_MB))
    try:
        return max(0, int(raw)) * 2**20
    except ValueError:
        raise ConfigError(
            f"MMXFER_IMAGE_FEATURE_CACHE_MB must be a whole number of MiB, got {raw!r}"
        ) from None


#: the process-wide cache of frozen towers' image tokens
FEATURES = StateCache(_budget())


def image_digest(value: Any) -> bytes:
    """sha256 of an image's encoded bytes (embedded bytes, or the file a path names)."""
    data = (
        value.get("bytes")
        if isinstance(value, dict)
        else value
        if isinstance(value, bytes)
        else None
    )
    if not data:
        path = value.get("path") if isinstance(value, dict) else value
        try:
            data = Path(str(path)).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return hashlib.sha256(data).digest()


class FrozenImageFeatures:
    """``features(images) -> [B, N, D]``: the frozen ``tower``'s tokens of each image (an image value as a dataset
    holds it: bytes, a path or a ``{"bytes", "path"}`` dict, made into pixels by ``preprocess``, which
    ``preprocess_id`` names in the key), from :data:`FEATURES` or computed."""

    def __init__(
        self,
        tower: nn.Module,
        preprocess: Callable[[Any], torch.Tensor],
        preprocess_id: str,
        cache: StateCache = FEATURES,
    ) -> None:
        if any(p.requires_grad for p in tower.parameters()):
            raise ValueError(
                "image features are cached for a frozen tower only (vision.freeze: true)"
            )
        self.tower, self.preprocess, self.cache = tower, preprocess, cache
        self.fingerprint = tensors_fingerprint(
            iter(tower.state_dict().items()),
            type(tower).__name__,
            getattr(tower, "name", ""),
            preprocess_id,
        )

    def _keys(self, images: Sequence[Any]) -> list[tuple[str, bytes]]:
        return [(self.fingerprint, image_digest(v)) for v in images]

    def _compute(self, images: Sequence[Any], keys: list[tuple[str, bytes]]) -> None:
        was_training = self.tower.training
        self.tower.eval()
        try:
            with torch.no_grad(), torch.autocast("cpu", enabled=False):
                for start in range(0, len(images), BATCH_SIZE):
                    chunk = images[start : start + BATCH_SIZE]
                    pixels = torch.stack([self.preprocess(v) for v in chunk])
                    device = next(self.tower.parameters()).device
                    tokens = self.tower(pixels.to(device)).float().cpu()
                    for key, row in zip(keys[start : start + BATCH_SIZE], tokens):
                        self.cache.put(key, row.clone())
        finally:
            self.tower.train(was_training)

    def prepare(self, images: Iterable[Any]) -> int:
        """Compute the tokens of every distinct image not yet cached, in the order given; returns how many."""
        todo: dict[tuple[str, bytes], Any] = {}
        for key, value in zip(*self._unique(list(images))):
            if key not in todo and self.cache.get(key) is None:
                todo[key] = value
        self._compute(list(todo.values()), list(todo))
        return len(todo)

    def _unique(self, images: list[Any]) -> tuple[list[tuple[str, bytes]], list[Any]]:
        keys = self._keys(images)
        seen: dict[tuple[str, bytes], Any] = {}
        for key, value in zip(keys, images):
            seen.setdefault(key, value)
        return list(seen), list(seen.values())

    def __call__(self, images: Sequence[Any]) -> torch.Tensor:
        keys = self._keys(images)
        rows = [self.cache.get(k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:  # not prepared, or dropped from a full cache: computed now
            self._compute([images[i] for i in missing], [keys[i] for i in missing])
            for i in missing:
                rows[i] = self.cache.get(keys[i])
            if any(r is None for r in rows):  # larger than the whole cache: computed, not kept
                raise ConfigError(
                    "MMXFER_IMAGE_FEATURE_CACHE_MB is too small to hold one image's tokens"
                )
        return torch.stack(rows)
