"""Images of image-text tasks: decoding, checking a dataset's images, the default preprocessing."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mmxfer.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import datasets

log = logging.getLogger(__name__)


def open_image(value: Any):
    """A PIL RGB image from a path, bytes, a ``{"bytes", "path"}`` dict or a PIL image."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, bytes):
        data, path = value, None
    else:
        data, path = None, str(value)
    src = io.BytesIO(data) if data else path
    if src is None:
        raise OSError("no image bytes and no path")
    with Image.open(src) as img:
        img.load()
        return img.convert("RGB")


def _image_name(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("path") or "<embedded image bytes>"
    return str(value) if isinstance(value, (str, os.PathLike)) else "<embedded image>"


def check_images(
    dataset: datasets.Dataset, *, on_bad_image: str = "skip", stats: dict[str, Any] | None = None
) -> datasets.Dataset:
    """Drop (``skip``, counted in ``stats['bad_images']``) or fail on images that cannot be decoded."""
    from datasets import Image

    if "image" not in dataset.column_names:
        return dataset
    if isinstance(dataset.features["image"], Image):
        dataset = dataset.cast_column("image", Image(decode=False))
    good, bad = [], []
    seen: dict[str, str | None] = {}  # path -> error (captions repeat each image ~5 times)
    for offset in range(0, len(dataset), 512):  # chunks: embedded images never all in memory
        for i, value in enumerate(dataset[offset : offset + 512]["image"], offset):
            path = value.get("path") if isinstance(value, dict) and not value.get("bytes") else None
            if path is not None and path in seen:
                error = seen[path]
            else:
                try:
                    open_image(value)
                    error = None
                except Exception as exc:  # PIL raises many types for truncated/corrupt files
                    error = str(exc) or type(exc).__name__
                if path is not None:
                    seen[path] = error
            if error is None:
                good.append(i)
            elif on_bad_image == "fail":
                raise DataError(
                    f"corrupt or missing image {_image_name(value)}: {error} "
                    f"(set on_bad_image: skip to drop such examples)"
                )
            else:
                bad.append(_image_name(value))
    if stats is not None:
        stats["bad_images"] = len(bad)
        stats["bad_image_files"] = bad[:20]
    if bad:
        log.warning(
            "skipped %d example(s) with corrupt or missing images, e.g. %s", len(bad), bad[0]
        )
        dataset = dataset.select(good)
    return dataset


def default_image_preprocess(size: int = 224) -> Callable[[Any], Any]:
    """CLIP-style resize, centre crop and normalise (used when no open_clip preprocess is given)."""
    from torchvision import transforms

    tf = transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(
                (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
            ),
        ]
    )
    tf.cache_id = f"clip-default-{size}"
    return tf
