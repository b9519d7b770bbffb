"""Tiny deterministic images (PNG or JPEG bytes) for the image-text fixtures."""

from __future__ import annotations

import io

from mmxfer.testing.corpus import rng


def tiny_image(*key: object, size: int = 24, fmt: str = "JPEG") -> bytes:
    """A ``size`` x ``size`` image of a coloured background with one rectangle, drawn from ``key``."""
    from PIL import Image, ImageDraw

    r = rng("image", *key)
    image = Image.new("RGB", (size, size), tuple(r.randrange(256) for _ in range(3)))
    x0, y0 = r.randrange(size // 2), r.randrange(size // 2)
    ImageDraw.Draw(image).rectangle(
        (x0, y0, x0 + size // 3, y0 + size // 3), fill=tuple(r.randrange(256) for _ in range(3))
    )
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()
