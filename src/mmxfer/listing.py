"""`mmxfer ls` and `mmxfer validate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmxfer import catalog, config
from mmxfer.console import print_table
from mmxfer.errors import ConfigError, RunStoreError
from mmxfer.registry import Registry
from mmxfer.runs.lock import FileLock, read_holder
from mmxfer.runs.store import Run, iter_runs
from mmxfer.validation import validate_file


def _hub_revision(spec) -> str:
    """What ``ls tasks --verbose`` says about the hub revision a task reads."""
    src = spec.source
    if src is None:
        return "-"
    if src.loading_script:
        return "loading script (use --data-dir)"
    return src.revision or "unpinned"


def _ls_tasks(verbose: bool = False) -> None:
    catalog.load_plugins()
    rows = []
    for name, spec in catalog.TASKS.items():
        source = spec.source.path if spec.source else ("shipped: " + spec.shipped if spec.shipped else "generated")
        if spec.source and spec.source.config:
            source += f" ({spec.source.config})"
        if spec.source and spec.hub_caveat:
            source += f" [hub: {spec.hub_caveat}]"
        aliases = ",".join(catalog.TASKS.aliases_of(name))
        row = (name, aliases, spec.modality, spec.kind, spec.category, len(spec.languages), spec.metric, source)
        rows.append(row + ((_hub_revision(spec),) if verbose else ()))
    header = ("task", "aliases", "modality", "kind", "category", "langs", "metric", "source")
    print_table(header + (("revision",) if verbose else ()), rows)


def _ls_configs(kind: str) -> None:
    rows = []
    for name, path in config.named_configs(kind).items():
        data = config.read_yaml(path)
        rows.append((name, str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""))
    print_table((kind[:-1], "description"), rows)


def _ls_registry(registry: Registry) -> None:
    catalog.load_plugins()
    rows = []
    for name, obj in registry.items():
        module = sys.modules.get(getattr(obj, "__module__", ""))  # a kind adapter is described by its module
        doc = (getattr(obj, "description", None) or getattr(obj, "__doc__", None) or getattr(module, "__doc__", None)
               or "").strip()
        rows.append((name, ",".join(registry.aliases_of(name)), doc.splitlines()[0] if doc else ""))
    print_table((registry.kind, "aliases", "description"), rows)


def _state(run: Run) -> str:
    if run.is_done():
        return "done"
    holder = read_holder(run.lock_path)
    if holder is None:
        return "unfinished"
    return "stale lock" if holder.stale(FileLock(run.path).stale_after) else f"running (pid {holder.pid}@{holder.host})"


def _ls_runs(runs_dir: str) -> None:
    if not Path(runs_dir).is_dir():
        raise RunStoreError(f"--runs-dir {runs_dir}: no such folder" if not Path(runs_dir).exists()
                            else f"--runs-dir {runs_dir}: not a folder")
    rows = []
    for run in iter_runs(runs_dir, finished_only=False):
        rows.append((run.study, run.run_id, _state(run), len(run.metrics())))
    print_table(("study", "run", "state", "metrics"), rows)


def run(args: argparse.Namespace) -> int:
    what = args.what
    if what == "tasks":
        _ls_tasks(verbose=getattr(args, "details", False))
    elif what in ("suites", "profiles", "studies"):
        _ls_configs(what)
    elif what == "runs":
        _ls_runs(args.runs_dir)
    else:
        registry = {"trunks": catalog.TRUNKS, "towers": catalog.VISION_TOWERS, "heads": catalog.HEADS,
                    "metrics": catalog.METRICS, "kinds": catalog.KINDS}[what]
        _ls_registry(registry)
    return 0


def validate(args: argparse.Namespace) -> int:
    """Validate a config file; also checks that the names it uses are registered."""
    kind = {"profile": "profiles", "suite": "suites", "study": "studies"}.get(args.kind or "") or None
    path = config.resolve_config_path(kind or "profiles", args.config) if kind else None
    if path is None:
        candidate = Path(args.config)
        if candidate.exists() or candidate.suffix in (".yaml", ".yml"):
            path = config.resolve_config_path("profiles", args.config)
            kind = config.detect_kind(path)
        else:
            for k in ("profiles", "studies", "suites"):
                if args.config in config.named_configs(k):
                    kind, path = k, config.named_configs(k)[args.config]
                    break
            else:
                raise ConfigError(f"no config file or shipped config named {args.config!r}")
    summary = validate_file(path, kind, args.overrides)
    print(f"{path}: valid {kind[:-1]} ({summary})")
    return 0
