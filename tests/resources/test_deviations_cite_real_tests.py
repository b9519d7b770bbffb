"""Every test that recipe_and_deviations.md names as the proof of a convention exists under tests/."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_cited_test_exists():
    text = (
        resources.files("mmxfer")
        .joinpath("resources/recipe_and_deviations.md")
        .read_text(encoding="utf-8")
    )
    cited_files = set(re.findall(r"(tests/[\w/]+\.py)", text))
    from mmxfer import config

    settings = {
        f.name
        for obj in vars(config).values()
        if dataclasses.is_dataclass(obj)
        for f in dataclasses.fields(obj)
    }  # a setting such as `test_max_length` is not a test
    cited_names = set(re.findall(r"(?:`|::)(test_\w+)`", text)) - settings
    assert cited_names, "the note names no test"
    for path in cited_files:
        assert (TESTS.parent / path).is_file(), path
    defined = set()
    for path in TESTS.rglob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M))
    missing = sorted(cited_names - defined)
    assert not missing, f"recipe_and_deviations.md names tests that do not exist: {missing}"
