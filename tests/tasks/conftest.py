"""Fixtures for task tests: the tiny trunk tokenizer and small release-format files written by the tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tok():
    from mmxfer.testing.tiny import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def catalog():
    from mmxfer import catalog as cat

    cat.load_plugins()
    return cat


@pytest.fixture(autouse=True)
def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    yield
