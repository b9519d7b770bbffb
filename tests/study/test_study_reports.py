"""A local study's automatic report covers the whole grid: every suite of its comma list and every fine-tuned
target (small.yaml: xtreme-retrieval for BUCC/Tatoeba plus xtreme for XNLI, PAN-X, XQuAD)."""

from __future__ import annotations

import yaml

from mmxfer.config import load_study, load_suite
from mmxfer.study import grid


def _compared(monkeypatch, study, tmp_path) -> list[str]:
    calls = []
    monkeypatch.setattr(grid, "execute", lambda request: None)
    # no run trains here: no models to free
    monkeypatch.setattr(grid, "release_memory", lambda: None)
    monkeypatch.setattr(grid, "compare_and_print", lambda suite, runs, *a, **k: calls.append(suite))
    grid.run_study(study, runs_dir=tmp_path, launcher="local")
    return calls


def _covered(suites: list[str]) -> set[str]:
    return {t.task for s in suites for t in load_suite(s).tasks}


def test_small_study_compares_every_suite_and_target(monkeypatch, tmp_path):
    study = load_study("small")
    suites = _compared(monkeypatch, study, tmp_path)
    assert suites == ["xtreme-retrieval", "xtreme"]
    assert set(study.targets) | {"bucc", "tatoeba"} <= _covered(suites)


def test_paper_study_compares_its_comma_list_and_its_targets(monkeypatch, tmp_path):
    study = load_study("paper", ["launcher=local"])
    suites = _compared(monkeypatch, study, tmp_path)
    assert suites[:2] == ["xtreme-retrieval", "flores200"] and set(study.targets) <= _covered(
        suites
    )


def test_targets_no_suite_holds_get_their_own_suite(monkeypatch, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "profile": "starter",
                "suite": "starter",
                "arms": [{"name": "baseline", "intermediate": []}],
                "targets": ["starter-sib200", "pawsx"],
            }
        )
    )
    suites = _compared(monkeypatch, load_study(str(path)), tmp_path / "runs")
    assert suites[0] == "starter" and len(suites) == 2
    assert [t.task for t in load_suite(suites[1]).tasks] == ["pawsx"]
