"""Fixtures for the rehearsal: both data forms of every task, and the tiny models saved to disk.

``fixture_data`` writes the release form and the hub mirror once per test session (into the session's
temporary folder, about a second); ``hub_mirror`` points the hub loaders at the mirror for one test.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fixture_data(tmp_path_factory):
    """The release form (``.data_dir``) and the hub mirror (``.hub_mirror``) of every task."""
    import datasets

    from mmxfer import catalog
    from mmxfer.testing.fixtures import write_fixture_set

    catalog.load_plugins()
    datasets.disable_progress_bars()
    return write_fixture_set(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture()
def hub_mirror(fixture_data, monkeypatch):
    """Hub loaders read the mirror (and COCO images the release dir) for this test."""
    for key, value in fixture_data.env().items():
        monkeypatch.setenv(key, value)
    return fixture_data


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """``(trunk folder, vision checkpoint file)`` of the tiny models, saved once per session."""
    from mmxfer.testing.saved import tiny_trunk_dir, tiny_vision_checkpoint

    root = tmp_path_factory.mktemp("tiny-models")
    return tiny_trunk_dir(root), tiny_vision_checkpoint(root)
