"""Write local copies of Hugging Face dataset repositories, as :func:`mmxfer.assets.hub_mirror_dir` reads them.

A repository is ``<mirror>/<org>/<name>/`` (or ``<name>@<revision>/`` for a pinned revision) with one
Parquet file per config and split - the features (``ClassLabel``, ``Sequence``, ``Translation``,
``Image``) stored in the file's schema metadata exactly as the Hub's Parquet conversion stores them -
and a ``README.md`` whose YAML ``configs:`` lists the ``data_files`` of every config and split, which
``datasets.load_dataset(<folder>, <config>, split=...)`` reads. A ``REVISION`` file records the
commit the copy stands for. :func:`write_script_repo` writes a repository that is only a loading
script, as some hub datasets still are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

DEFAULT = "default"


class HubRepo:
    """One mirrored dataset repository, written config by config, then :meth:`finish`-ed."""

    def __init__(
        self, mirror: Path, repo_id: str, *, revision: str | None = None, pinned: bool = False
    ) -> None:
        """``revision``: the commit the copy stands for (a ``REVISION`` file); with ``pinned``, the folder is
        ``<name>@<revision>`` (a copy of that revision beside the main one)."""
        org, name = repo_id.split("/")
        folder = f"{name}@{quote(revision, safe='')}" if pinned and revision else name
        self.repo_id = repo_id
        self.path = mirror / org / folder
        self.revision = revision
        self.configs: dict[
            str, list[tuple[str, str]]
        ] = {}  # config -> [(split, data_files pattern)]

    def add(
        self, config: str | None, split: str, rows: Sequence[Mapping[str, Any]], features: Any
    ) -> Path:
        """Write ``rows`` (dicts keyed by the features' columns) as ``config``'s ``split``."""
        import datasets

        config = config or DEFAULT
        folder = "data" if config == DEFAULT else config
        rel = f"{folder}/{split}-00000-of-00001.parquet"
        columns = {name: [row[name] for row in rows] for name in features}
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        table = datasets.Dataset.from_dict(columns, features=features)
        table.to_parquet(str(target))
        self.configs.setdefault(config, []).append((split, f"{folder}/{split}-*"))
        return target

    def finish(self) -> Path:
        """Write the README (``configs:`` with ``data_files``) and the ``REVISION`` file."""
        self.path.mkdir(parents=True, exist_ok=True)
        configs = [
            {"config_name": name, "data_files": [{"split": s, "path": p} for s, p in files]}
            for name, files in self.configs.items()
        ]
        if len(configs) == 1 and configs[0]["config_name"] == DEFAULT:
            configs[0]["default"] = True
        card = yaml.safe_dump({"configs": configs}, sort_keys=False, allow_unicode=True)
        (self.path / "README.md").write_text(
            f"---\n{card}---\n\n# {self.repo_id} (local mirror)\n", encoding="utf-8"
        )
        if self.revision:
            (self.path / "REVISION").write_text(self.revision + "\n", encoding="utf-8")
        return self.path


def write_script_repo(
    mirror: Path,
    repo_id: str,
    script: str,
    *,
    revision: str | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """A repository that holds only a loading script ``script`` (and ``files``), as ``repo_id``'s main branch."""
    org, name = repo_id.split("/")
    path = mirror / org / name
    path.mkdir(parents=True, exist_ok=True)
    (path / script).write_text(
        "import datasets  # a loading script: datasets >= 4 refuses to run it\n", encoding="utf-8"
    )
    for rel, text in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    (path / "README.md").write_text(
        f"# {repo_id} (local mirror of a loading-script repository)\n", encoding="utf-8"
    )
    if revision:
        (path / "REVISION").write_text(revision + "\n", encoding="utf-8")
    return path
