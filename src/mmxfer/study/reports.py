"""Which suites the automatic report of a local study compares: the whole grid, not its first suite.

Every suite of the study's comma list (``suite: xtreme-retrieval,flores200``), then - for fine-tuned targets
none of them holds - the suites of the profile's own ``suite`` that hold them (``xtreme`` for the XTREME
targets), and for targets no suite holds a suite of just those targets, written into the study folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mmxfer.config import ExperimentConfig, StudyConfig, load_profile
from mmxfer.evaluation.suites import suite_tasks
from mmxfer.runs import atomic
from mmxfer.runs.store import slug


def _names(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _tasks(suite: str) -> set[str]:
    return {item.task for item in suite_tasks(suite)}


def comparison_suites(
    study: StudyConfig, profile: ExperimentConfig, targets: list[str], study_dir: str | Path
) -> list[str]:
    """Suite names (or a YAML path) whose reports together cover every target of ``study`` and its suites.

    ``targets``: the study's fine-tuned targets, canonical names; ``profile``: the study's resolved profile.
    """
    suites = _names(study.suite) or _names(profile.suite)
    covered = set().union(*(_tasks(s) for s in suites)) if suites else set()
    missing = [t for t in targets if t not in covered]
    if missing:
        own = load_profile(
            study.profile, study.overrides
        ).suite  # the profile's suite before the study's override
        for name in _names(own):
            if name not in suites and _tasks(name) & set(missing):
                suites.append(name)
                covered |= _tasks(name)
        missing = [t for t in targets if t not in covered]
    if missing:  # targets no shipped suite holds: a suite of just them, next to the runs
        path = Path(study_dir) / "_suites" / f"{slug(study.name)}-targets.yaml"
        atomic.write_text(
            path,
            yaml.safe_dump(
                {
                    "description": f"fine-tuned targets of study {study.name} that no suite of it holds",
                    "tasks": [{"task": t} for t in missing],
                },
                sort_keys=False,
            ),
        )
        suites.append(str(path))
    return suites
