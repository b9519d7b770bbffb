"""``mmxfer ls``: what is registered (tasks, trunks, towers, heads, metrics, kinds), shipped (suites, profiles,
studies) or on disk (runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmxfer import catalog, config
from mmxfer.cli.common import Command
from mmxfer.console import print_table
from mmxfer.errors import RunStoreError
from mmxfer.registry import Registry
from mmxfer.runs.lock import FileLock, read_holder
from mmxfer.runs.store import Run, iter_runs

if TYPE_CHECKING:
    from mmxfer.tasks.base import TaskSpec

EPILOG = """examples:
  mmxfer ls tasks
  mmxfer ls suites
  mmxfer ls profiles
"""

WHAT = (
    "tasks",
    "suites",
    "profiles",
    "studies",
    "trunks",
    "towers",
    "heads",
    "metrics",
    "kinds",
    "runs",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=WHAT)
    p.add_argument("--runs-dir", default="runs", help="for `ls runs`")
    p.add_argument(
        "--verbose",
        dest="details",
        action="store_true",
        help="for `ls tasks`: the pinned hub revision",
    )


def _hub_revision(spec: TaskSpec) -> str:
    """What ``ls tasks --verbose`` says about the hub revision a task reads."""
    src = spec.source
    if src is None:
        return "-"
    if src.loading_script:
        return "loading script (use --data-dir)"
    return src.revision or "unpinned"


def _task_source(spec: TaskSpec) -> str:
    """Where a task's data comes from, as ``ls tasks`` says it: its hub dataset, the files shipped with mmxfer,
    the code that generates it, or else the local release files it reads from ``--data-dir`` (its
    ``local_format``)."""
    from mmxfer.tasks.common import is_generated

    if spec.source is not None:
        text = spec.source.path + (f" ({spec.source.config})" if spec.source.config else "")
        return text + (f" [hub: {spec.hub_caveat}]" if spec.hub_caveat else "")
    if spec.shipped:
        return "shipped: " + spec.shipped
    if is_generated(spec):
        return "generated"
    return "local only (--data-dir): " + (spec.local_format or "the task's release files")


def _ls_tasks(verbose: bool = False) -> None:
    catalog.load_plugins()
    rows = []
    for name, spec in catalog.TASKS.items():
        aliases = ",".join(catalog.TASKS.aliases_of(name))
        row = (
            name,
            aliases,
            spec.modality,
            spec.kind,
            spec.category,
            len(spec.languages),
            spec.metric,
            _task_source(spec),
        )
        rows.append(row + ((_hub_revision(spec),) if verbose else ()))
    header = ("task", "aliases", "modality", "kind", "category", "langs", "metric", "source")
    print_table(header + (("revision",) if verbose else ()), rows)


def _ls_configs(kind: str) -> None:
    rows = []
    for name, path in config.named_configs(kind).items():
        data = config.read_yaml(path)
        rows.append(
            (
                name,
                str(data.get("description", "")).strip().splitlines()[0]
                if data.get("description")
                else "",
            )
        )
    print_table((kind[:-1], "description"), rows)


def _ls_registry(registry: Registry) -> None:
    catalog.load_plugins()
    rows = []
    for name, obj in registry.items():
        # a kind adapter is described by its module
        module = sys.modules.get(getattr(obj, "__module__", ""))
        doc = (
            getattr(obj, "description", None)
            or getattr(obj, "__doc__", None)
            or getattr(module, "__doc__", None)
            or ""
        ).strip()
        rows.append((name, ",".join(registry.aliases_of(name)), doc.splitlines()[0] if doc else ""))
    print_table((registry.kind, "aliases", "description"), rows)


def _state(run: Run) -> str:
    if run.is_done():
        return "done"
    holder = read_holder(run.lock_path)
    if holder is None:
        return "unfinished"
    return (
        "stale lock"
        if holder.stale(FileLock(run.path).stale_after)
        else f"running (pid {holder.pid}@{holder.host})"
    )


def _ls_runs(runs_dir: str) -> None:
    if not Path(runs_dir).is_dir():
        raise RunStoreError(
            f"--runs-dir {runs_dir}: no such folder"
            if not Path(runs_dir).exists()
            else f"--runs-dir {runs_dir}: not a folder"
        )
    rows = []
    for run in iter_runs(runs_dir, finished_only=False):
        rows.append((run.study, run.run_id, _state(run), len(run.metrics())))
    print_table(("study", "run", "state", "metrics"), rows)


def run(args: argparse.Namespace) -> int:
    what = args.what
    if what == "tasks":
        _ls_tasks(verbose=args.details)
    elif what in ("suites", "profiles", "studies"):
        _ls_configs(what)
    elif what == "runs":
        # --runs-dir is read here, so it is not among the outputs checked writable
        _ls_runs(args.runs_dir)
    else:
        registry = {
            "trunks": catalog.TRUNKS,
            "towers": catalog.VISION_TOWERS,
            "heads": catalog.HEADS,
            "metrics": catalog.METRICS,
            "kinds": catalog.KINDS,
        }[what]
        _ls_registry(registry)
    return 0


COMMAND = Command(
    "ls",
    help="list tasks, suites, profiles, studies, trunks, vision towers, heads, metrics, kinds, runs",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
)
