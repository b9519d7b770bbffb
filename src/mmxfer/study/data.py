"""Where a study's runs read their data: the hub, a ``--data-dir``, or the registered data source it names.

A study with ``data: fixtures`` (the rehearsal) reads a data source of ``catalog.DATA_SOURCES``, made on first
use: in hub form (``data_form: hub``, the default) its runs see the environment the source gives (a local hub
mirror) and no data dir; in release form they read its release folder as ``--data-dir``. A ``--data-dir`` given
to the study wins over both: every task reads its release files from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mmxfer import catalog
from mmxfer.assets import LocalData, patched_env
from mmxfer.config import StudyConfig
from mmxfer.errors import ConfigError, suggest


def prepare(study: StudyConfig, data_dir: str | None) -> LocalData:
    """The data of ``study``'s runs: ``data_dir`` when given, else its ``data`` source in its ``data_form``."""
    if data_dir is not None or not study.data:
        return LocalData(data_dir=data_dir)
    catalog.load_plugins()
    names = catalog.DATA_SOURCES.all_names()
    if study.data not in names:
        raise ConfigError(
            f"study {study.name}: data: unknown data source {study.data!r}{suggest(study.data, names)}; "
            f"known: {', '.join(names) or 'none'}"
        )
    return catalog.DATA_SOURCES.get(study.data).prepare(study.data_form)


def describe(study: StudyConfig, data_dir: str | None, local: LocalData) -> str:
    """One line: where the runs' data comes from."""
    if data_dir is not None:
        return f"data: release files in {data_dir} (--data-dir)"
    if study.data:
        where = (
            local.data_dir
            if study.data_form == "release"
            else ", ".join(f"{k}={v}" for k, v in local.env.items())
        )
        return f"data: {study.data}, {study.data_form} form ({where})"
    return "data: the hub"


@contextlib.contextmanager
def study_data(study: StudyConfig, data_dir: str | None) -> Iterator[str | None]:
    """Inside the block, the environment of the study's data is set; yields the runs' data dir."""
    local = prepare(study, data_dir)
    print(describe(study, data_dir, local))
    with patched_env(local.env):
        yield local.data_dir
