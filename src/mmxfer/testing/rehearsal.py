"""Everything a rehearsal run needs besides its study: tiny models on disk and both forms of fixture data.

``rehearsal_assets()`` makes (once, under ``$MMXFER_CACHE/testing``) the tiny XLM-R-architecture trunk
folder, the tiny open_clip checkpoint and the fixture data, and says how to point a run at them: the
``--set`` overrides of a profile and the environment, for either data form::

    assets = rehearsal_assets()
    overrides = assets.overrides("release")      # trunk.name=<folder>, vision.*, data_dir=<release dir>
    with assets.environment("hub"):              # MMXFER_HUB_MIRROR, MMXFER_COCO_IMAGES, MMXFER_LOCAL_DATA,
                                                 # MMXFER_FLORES200_SPM (release form: that one only)
        ...                                      # overrides("hub") leave data_dir unset: the hub loaders run

The fixtures are also the registered data source ``fixtures`` (``data: fixtures`` in a study, as in
``configs/studies/rehearsal.yaml``), and the saved models the registered ``rehearsal-xlmr`` trunk and
``rehearsal-vit`` tower (:mod:`mmxfer.testing.saved`): the ``rehearsal`` profile needs no paths.

Both forms give spBLEU a SentencePiece model (:func:`mmxfer.testing.saved.tiny_spm_model`, through
``MMXFER_FLORES200_SPM``), so the FLORES-200 translation track is scored on both of its metrics offline.

In hub form, the tasks the hub cannot serve (a loading-script dataset such as VQAv2 or FLORES-200, or none at
all: CCGbank) read their release fixtures through ``MMXFER_LOCAL_DATA``, as a hub run of the paper study reads
local copies of them; every other task reads the mirror.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mmxfer.assets import DataSource, LocalData
from mmxfer.catalog import DATA_SOURCES
from mmxfer.metrics.generation import SPM_ENV
from mmxfer.tasks.common import LOCAL_DATA_ENV
from mmxfer.testing.fixtures import HUB, RELEASE, FixtureSet, fixture_set, patched_env
from mmxfer.testing.saved import tiny_spm_model, tiny_trunk_dir, tiny_vision_checkpoint


@dataclass(frozen=True)
class RehearsalAssets:
    trunk_dir: Path
    vision_checkpoint: Path
    fixtures: FixtureSet
    spm_model: (
        Path  # spBLEU's SentencePiece model (the FLORES-200 one cannot be downloaded offline)
    )

    def overrides(self, form: str = RELEASE) -> list[str]:
        """Profile overrides (``key=value``) for the tiny models and, in release form, the data dir."""
        if form not in (RELEASE, HUB):
            raise ValueError(f"form must be {RELEASE!r} or {HUB!r}, not {form!r}")
        out = [
            f"trunk.name={self.trunk_dir}",
            "vision.model=tiny-vit",
            "vision.pretrained=null",
            f"vision.checkpoint={self.vision_checkpoint}",
        ]
        return out + ([f"data_dir={self.fixtures.data_dir}"] if form == RELEASE else [])

    def env(self, form: str = RELEASE) -> dict[str, str]:
        """Environment variables of a run in ``form``: spBLEU's SentencePiece model, and in hub form the mirror
        and the release files of the tasks the hub cannot serve."""
        data = (
            {**self.fixtures.env(), LOCAL_DATA_ENV: str(self.fixtures.data_dir)}
            if form == HUB
            else {}
        )
        return {**data, SPM_ENV: str(self.spm_model)}

    def environment(self, form: str = RELEASE) -> contextlib.AbstractContextManager[None]:
        """Inside this block, runs see :meth:`env` of ``form``."""
        return patched_env(self.env(form))


def rehearsal_assets(
    root: str | os.PathLike | None = None, *, all_languages: bool = False
) -> RehearsalAssets:
    """The tiny models and the fixtures under ``root`` (default ``$MMXFER_CACHE/testing``), made once."""
    base = Path(root) if root is not None else None
    return RehearsalAssets(
        tiny_trunk_dir(base),
        tiny_vision_checkpoint(base),
        fixture_set(base, all_languages=all_languages),
        tiny_spm_model(base),
    )


def _prepare_fixtures(form: str) -> LocalData:
    if form not in (RELEASE, HUB):
        raise ValueError(f"form must be {RELEASE!r} or {HUB!r}, not {form!r}")
    assets = rehearsal_assets()
    return LocalData(
        data_dir=str(assets.fixtures.data_dir) if form == RELEASE else None, env=assets.env(form)
    )


DATA_SOURCES.add(
    DataSource(
        "fixtures",
        "every task's fixture data (mmxfer.testing.fixtures), made on first use into $MMXFER_CACHE/testing",
        _prepare_fixtures,
    ),
    "fixtures",
)
