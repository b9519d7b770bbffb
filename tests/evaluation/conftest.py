import os
import zlib
from pathlib import Path

import numpy as np
import pytest


def char_ngram_embed(sentences, dim=512, n=3):
    """Deterministic bag of hashed character n-grams: a fake encoder for retrieval tests."""
    out = np.zeros((len(sentences), dim), dtype=np.float32)
    for i, s in enumerate(sentences):
        text = f" {s.lower()} "
        for j in range(max(1, len(text) - n + 1)):
            out[i, zlib.crc32(text[j : j + n].encode()) % dim] += 1.0
    return out


@pytest.fixture
def ngram_embedder():
    return char_ngram_embed, None


@pytest.fixture
def real_data() -> Path:
    root = os.environ.get("MMXFER_REAL_DATA")
    if not root:
        pytest.skip("MMXFER_REAL_DATA is not set (real benchmark excerpts)")
    return Path(root)
