"""Resolve every external thing (hub model, hub dataset, local dir, packaged file) in one place.

Honours ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` / ``TRANSFORMERS_OFFLINE``: offline, only
local folders and the local hub cache are used, and a missing asset is an :class:`AssetError`
that names the asset and says how to pass a local copy instead.

Hub datasets can also come from a local *mirror* (``MMXFER_HUB_MIRROR``, see :func:`hub_mirror_dir`):
copies of hub dataset repositories (Parquet files and the README that declares their configs), for
air-gapped clusters and for the tests, which mirror every dataset mmxfer uses in its exact schema.

A *data source* (:class:`DataSource`, registered in ``catalog.DATA_SOURCES``) is a named set of local data
made on first use, in hub form (a mirror) or release form (a ``--data-dir``): a study names one with
``data:`` (the rehearsal's fixtures).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from mmxfer.errors import AssetError, ConfigError, DataError

# huggingface_hub and datasets are imported in the functions that need them: `mmxfer --help` and `mmxfer ls` stay fast

_TRUTHY = {"1", "true", "yes", "on"}
MIRROR_ENV = "MMXFER_HUB_MIRROR"
REVISION_FILE = "REVISION"


DataForm = Literal["hub", "release"]


@dataclass(frozen=True)
class LocalData:
    """Where runs read a data source: ``data_dir`` (release files, as ``--data-dir``; None = the hub loaders) and
    the environment they need (``MMXFER_HUB_MIRROR`` and the like)."""

    data_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSource:
    """A named set of local data: ``prepare(form)`` makes it on first use and says where it is."""

    name: str
    description: str
    prepare: Callable[[DataForm], LocalData] = field(compare=False, repr=False)


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set inside the block, as it was after it (where a data source's
    settings - local data folders, the hub mirror - apply to one study or one test)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


CACHE_ENV = "MMXFER_CACHE"


def cache_root() -> Path:
    """Where mmxfer keeps what it derives (converted trunks, features, the test models): ``$MMXFER_CACHE`` or
    ``~/.cache/mmxfer``. Every entry there is sealed (:mod:`mmxfer.runs.sealed`): checked on load, remade when
    damaged."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mmxfer").expanduser()


def cache_write_error(path: str | os.PathLike, exc: OSError) -> ConfigError:
    """The one line for a cache folder that cannot be written."""
    reason = (
        "a file is in the way of a folder"
        if isinstance(exc, (FileExistsError, NotADirectoryError))
        else exc.strerror or str(exc)
    )
    return ConfigError(
        f"{CACHE_ENV} ({cache_root()}): cannot write {path} ({reason}); set {CACHE_ENV} to a writable folder"
    )


def cache_dir(*parts: str) -> Path:
    """The folder ``parts`` of mmxfer's cache (:func:`cache_root`), made if absent."""
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_write_error(path, exc) from None
    return path


def check_cache_writable() -> Path:
    """The cache root, once a file can be made and removed in it: a command that fills the cache fails here, in
    one line, before any work."""
    root = cache_dir()
    try:
        fd, probe = tempfile.mkstemp(prefix=".mmxfer-write-test.", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise cache_write_error(root, exc) from None
    return root


def is_offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in _TRUTHY
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def resolve_model_dir(name_or_path: str, revision: str | None = None, *, hint: str = "") -> Path:
    """A local folder holding ``name_or_path``: the folder itself, or the hub snapshot (downloaded unless offline)."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local
    if local.suffix or name_or_path.startswith((".", "/", "~")):
        raise AssetError(f"model folder not found: {name_or_path}")
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            name_or_path,
            revision=revision,
            local_files_only=is_offline(),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.bin"],
        )
    except Exception as exc:  # hub client raises many types: offline, 404, gated, network
        mode = (
            "offline (HF_HUB_OFFLINE is set) and not in the local hub cache"
            if is_offline()
            else "not reachable"
        )
        raise AssetError(
            f"hub model {name_or_path!r}{f'@{revision}' if revision else ''} is {mode} ({_describe(exc)}); "
            f"download it on a connected machine (`huggingface-cli download {name_or_path}`) and pass its folder "
            f"instead{hint}"
        ) from None
    return Path(path)


def hub_token() -> str | None:
    """The Hugging Face token from the environment, if any (gated datasets need one)."""
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def hub_mirror_dir(path: str, revision: str | None = None) -> Path | None:
    """The local mirror folder of hub dataset ``path`` (``org/name``), or None when there is none.

    ``MMXFER_HUB_MIRROR`` names one or more folders (joined with ``os.pathsep``); each holds hub dataset
    repositories as ``<org>/<name>/`` - a copy of the repository (``huggingface-cli download --repo-type
    dataset <id> --local-dir <mirror>/<id>`` makes one), read by ``datasets.load_dataset`` as a local
    folder. Revisions: a folder ``<org>/<name>@<revision>/`` (the revision quoted, ``/`` as ``%2F``) is a
    copy of that revision and wins when the task pins it. Otherwise ``<org>/<name>/`` is used; when it
    holds a ``REVISION`` file (the commit it was copied at) and the task pins another revision, that is
    an :class:`AssetError`; without a ``REVISION`` file the pin is ignored.
    """
    roots = [r for r in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if r.strip()]
    for root in roots:
        base = Path(root).expanduser() / path
        if revision:
            pinned = base.with_name(f"{base.name}@{quote(revision, safe='')}")
            if pinned.is_dir():
                return pinned
        if base.is_dir():
            marker = base / REVISION_FILE
            held = marker.read_text(encoding="utf-8").strip() if marker.is_file() else ""
            if revision and held and held != revision:
                raise AssetError(
                    f"hub mirror {base} holds {path}@{held}, but revision {revision} is asked for; "
                    f"copy that revision into {base.name}@{quote(revision, safe='')} beside it"
                )
            return base
    return None


#: datasets read from a hub mirror in this process, by what was asked and the state of the mirror's files: a
#: process that runs a study asks for the same split of the same dataset in many runs, and each ``load_dataset``
#: of a mirror folder parses its README again (about 50 ms for google/xtreme's list of configs)
_mirror_reads: OrderedDict[tuple, Any] = OrderedDict()
_MIRROR_READS_MAX = 512


def _mirror_key(
    mirror: Path, name: str | None, split: str | None, kwargs: dict[str, Any]
) -> tuple | None:
    """What a mirror read depends on: the request, and the name, size and mtime of every file of the mirror folder
    (None when an argument cannot be a key: the read is not kept)."""
    try:
        files = tuple(
            sorted(
                (str(p.relative_to(mirror)), st.st_size, st.st_mtime_ns)
                for p in mirror.rglob("*")
                if p.is_file()
                for st in (p.stat(),)
            )
        )
        key = (str(mirror), name, split, tuple(sorted(kwargs.items())), files)
        hash(key)
    except (OSError, TypeError):
        return None
    return key


def load_hub_dataset(
    path: str,
    name: str | None = None,
    *,
    split: str | None = None,
    revision: str | None = None,
    gated: bool = False,
    **kwargs: Any,
) -> Any:
    """``datasets.load_dataset`` with the failure modes a user can fix turned into one clear message.

    A dataset found in the hub mirror (:func:`hub_mirror_dir`) is read from there, with no token and no
    network; a repository that is a loading script (which ``datasets`` >= 4 no longer runs) is a
    :class:`DataError` that says so.
    """
    import datasets

    mirror = hub_mirror_dir(path, revision)
    if mirror is None and gated and not hub_token():
        raise AssetError(
            f"dataset {path!r} is gated: accept its terms on the Hub and set HF_TOKEN, "
            f"or pass a local copy with --data-dir"
        )
    source, where = (
        (str(mirror), f"{path!r} (mirror {mirror})") if mirror is not None else (path, repr(path))
    )
    pin = {} if mirror is not None else {"revision": revision}
    key = _mirror_key(mirror, name, split, kwargs) if mirror is not None else None
    if key is not None and key in _mirror_reads:
        _mirror_reads.move_to_end(key)
        return _mirror_reads[key]
    try:
        ds = datasets.load_dataset(source, name, split=split, **pin, **kwargs)
        if key is not None:
            _mirror_reads[key] = ds
            while len(_mirror_reads) > _MIRROR_READS_MAX:
                _mirror_reads.popitem(last=False)
        return ds
    except (ValueError, KeyError) as exc:
        if "split" in str(exc).lower() and split:
            raise DataError(
                f"dataset {where} ({name or 'default'}) has no split {split!r}: {_describe(exc)}"
            ) from None
        raise AssetError(
            f"dataset {where} ({name or 'default'}) could not be loaded: {_describe(exc)}"
        ) from None
    except Exception as exc:
        if "scripts are no longer supported" in str(exc):
            raise DataError(
                f"dataset {where} is a loading script, which datasets {datasets.__version__} no longer "
                f"runs ({_describe(exc)}); use a Parquet revision or copy of it, or pass a local copy "
                f"in its release format with --data-dir"
            ) from None
        if mirror is not None:
            raise AssetError(
                f"dataset {where} ({name or 'default'}) could not be read: {_describe(exc)}"
            ) from None
        mode = (
            "offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set)"
            if is_offline()
            else "not reachable"
        )
        raise AssetError(
            f"hub dataset {path!r} ({name or 'default'}) is {mode} and not cached ({_describe(exc)}); "
            f"pass a local copy in its release format with --data-dir"
        ) from None
