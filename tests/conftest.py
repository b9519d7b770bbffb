"""Shared test fixtures. Real benchmark excerpts are reached only through MMXFER_REAL_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder, or a clean skip when MMXFER_REAL_DATA is not set."""
    value = os.environ.get("MMXFER_REAL_DATA")
    if not value:
        pytest.skip(
            "MMXFER_REAL_DATA is not set (point it at shared/realdata to run real-data tests)"
        )
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


@pytest.fixture(autouse=True)
def _fresh_accelerator_state():
    """Each test starts without accelerate's process-wide state: one process of mmxfer runs one profile's
    precision, but tests of different profiles (``precision: auto`` is bf16 on a CPU with native bf16) share one."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
