"""The phase-3 runners: how a target is trained and evaluated, found by the name its task kind gives
(:attr:`mmxfer.kinds.TaskKind.runner`) in :data:`mmxfer.catalog.RUNNERS`.

A runner's ``run`` is called as ``run(run, profile, target, *, trunk, seed, data_dir, resume, log_with,
languages)`` and returns the metric rows it wrote into the run folder. ``profile_section`` names the section
of the profile that the recipe reads besides ``target`` (the translation recipe's ``translation``): that
section is part of the config, hence of the run id, of this runner's runs only. A plugin kind with a recipe
of its own registers its runner here under the name its kind gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmxfer import catalog
from mmxfer.errors import ConfigError
from mmxfer.kinds import kind_of
from mmxfer.tasks.base import TaskSpec
from mmxfer.train import phases, translation

Phase3Fn = Callable[..., list[dict[str, Any]]]


@dataclass(frozen=True)
class Phase3Runner:
    """A registered phase-3 recipe (see the module doc)."""

    run: Phase3Fn
    profile_section: str | None = None
    description: str = ""


catalog.RUNNERS.add(
    Phase3Runner(
        phases.run_target,
        description="fine-tune the trunk with the kind's head on "
        "the English training data, then predict every language zero-shot",
    ),
    "finetune",
)
catalog.RUNNERS.add(
    Phase3Runner(
        translation.run_translation,
        "translation",
        "train an encoder-decoder from the trunk on one pair, then translate every language into English",
    ),
    "translation",
)


def runner_of(spec: TaskSpec) -> Phase3Runner:
    """The runner that trains and evaluates ``spec`` as a target: the one its kind names."""
    kind = kind_of(spec)
    if kind.runner not in catalog.RUNNERS:
        raise ConfigError(
            f"{spec.name}: its task kind {kind.name!r} names the phase-3 runner "
            f"{kind.runner!r}, which is not registered (registered: "
            f"{', '.join(catalog.RUNNERS.names())})"
        )
    return catalog.RUNNERS.get(kind.runner)


def profile_sections() -> set[str]:
    """The profile sections that belong to one runner each (left out of the other runners' run configs)."""
    return {r.profile_section for _, r in catalog.RUNNERS.items() if r.profile_section}
