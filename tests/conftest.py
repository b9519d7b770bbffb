"""Shared test fixtures. Real benchmark excerpts are reached only through MMXFER_REAL_DATA."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import mmxfer.testing.tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# tests/tasks/test_featurize.py and tests/train/test_decode_dropped.py import the tiny tokenizer from
# mmxfer.models.tiny, the former home of mmxfer.testing.tiny; this alias keeps those imports working.
# Delete it once both files import mmxfer.testing.tiny.
sys.modules.setdefault("mmxfer.models.tiny", mmxfer.testing.tiny)


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder, or a clean skip when MMXFER_REAL_DATA is not set."""
    value = os.environ.get("MMXFER_REAL_DATA")
    if not value:
        pytest.skip("MMXFER_REAL_DATA is not set (point it at shared/realdata to run real-data tests)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"MMXFER_REAL_DATA={value} is not a directory")
    return path


@pytest.fixture()
def mmxfer_cache(tmp_path, monkeypatch) -> Path:
    """A private cache dir for one test (features, converted trunks)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MMXFER_CACHE", str(cache))
    return cache
