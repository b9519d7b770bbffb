"""One run: an arm x target x seed into one run folder, from a resolved :class:`RunRequest`.

``mmxfer train`` parses its arguments into a request (:mod:`mmxfer.cli.train`); ``mmxfer study`` builds
the requests of its grid from the study's profile and calls :func:`execute` for each local run. Both
reach the same folder: ``run_id`` hashes :func:`run_config`, which only the request determines.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from mmxfer import assets, catalog
from mmxfer.config import ExperimentConfig, check_seed, to_dict
from mmxfer.errors import ConfigError, MmxferError
from mmxfer.memory import release_memory
from mmxfer.runs import atomic
from mmxfer.runs.env import precision_record, precision_text
from mmxfer.runs.store import Run, check_name, open_run, run_path
from mmxfer.tasks.common import LOCAL_DATA_ENV
from mmxfer.train import phases
from mmxfer.train.loop import remove_training_state
from mmxfer.train.runners import profile_sections, runner_of


def parse_intermediate(
    text: str | None, profile: ExperimentConfig | None = None
) -> tuple[str, ...]:
    """``none`` -> (); ``mnli,squad`` -> canonical names (unknown names fail with suggestions).

    Names go through the profile's ``task_aliases`` first (the starter profile maps ``vqa`` to
    its offline ``starter-vqa``).
    """
    if text is None or text.strip().lower() in ("", "none", "baseline"):
        return ()
    names = [t.strip() for t in text.split(",") if t.strip()]
    if profile is not None:
        names = [profile.resolve_task(name) for name in names]
    out = []
    for name in names:
        spec = catalog.task(name)
        if not spec.intermediate:
            raise ConfigError(f"{spec.name!r} is not an intermediate task (see `mmxfer ls tasks`)")
        out.append(spec.name)
    if len(set(out)) != len(out):
        raise ConfigError(f"--intermediate lists a task twice: {text}")
    return tuple(out)


def parse_target(text: str | None, profile: ExperimentConfig) -> str | None:
    """The canonical target task (through the profile's ``task_aliases``); None without one."""
    return catalog.task(profile.resolve_task(text)).name if text else None


def arm_name(tasks: tuple[str, ...]) -> str:
    return "+".join(tasks) if tasks else "baseline"


def run_config(
    profile: ExperimentConfig,
    tasks: tuple[str, ...],
    target: str | None,
    seed: int,
    study: str,
    arm: str | None = None,
    languages: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The run's config.yaml (the gap analysis reads exactly these top-level keys).

    A phase-3 runner's own profile section (the ``translation`` recipe) is part of the config of that
    runner's targets only (it determines nothing else); ``languages`` is present only for a run limited to a
    subset of the evaluation languages.
    """
    profile_dict = to_dict(profile)
    # how the profile introduces itself on the console; nothing a run computes
    profile_dict.pop("console")
    own = runner_of(catalog.task(target)).profile_section if target else None
    for section in profile_sections() - {own}:
        profile_dict.pop(section, None)
    if own:  # the whole recipe, defaults included: it determines this run
        profile_dict[own] = to_dict(getattr(profile, own))
    config = {
        "arm": {
            "name": arm or arm_name(tasks),
            "intermediate": list(tasks),
            "modality": catalog.modality_of(tasks),
        },
        "target": target,
        "seed": seed,
        "study": study,
        "profile": profile_dict,
    }
    if languages:
        config["languages"] = list(languages)
    return config


def parse_languages(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``a,b,c`` (or a list) -> ("a", "b", "c"); None or empty -> None (every language)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(x.strip() for x in items if x and x.strip()))
    return out or None


def run_label(arm: str, target: str | None, seed: int) -> str:
    return f"{arm}-{target or 'retrieval'}-s{seed}"


@dataclass(frozen=True)
class RunRequest:
    """One run, resolved: task names canonical, every default taken from the profile."""

    profile: ExperimentConfig
    tasks: tuple[str, ...]  # intermediate tasks; () = the no-intermediate baseline
    target: str | None  # None: no phase 3, the trunk is evaluated on the profile's retrieval suite
    seed: int
    study: str
    arm: str
    runs_dir: str | Path
    data_dir: str | None = None
    resume: bool = False  # continue an unfinished run folder
    force: bool = False  # start over, even if the folder is finished
    languages: tuple[str, ...] | None = (
        None  # zero-shot evaluation limited to these languages (None = all)
    )

    @property
    def config(self) -> dict[str, Any]:
        return run_config(
            self.profile, self.tasks, self.target, self.seed, self.study, self.arm, self.languages
        )

    @property
    def label(self) -> str:
        return run_label(self.arm, self.target, self.seed)

    @property
    def path(self) -> Path:
        """The run folder ``<runs_dir>/<study>/<run_id>``."""
        return run_path(self.runs_dir, self.study, self.config, self.label)


def resolve_request(
    profile: ExperimentConfig,
    intermediate: str | None,
    target: str | None,
    *,
    seed: int | None = None,
    study: str | None = None,
    arm: str | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | None = None,
    resume: bool = False,
    force: bool = False,
    languages: str | Sequence[str] | None = None,
) -> RunRequest:
    """A request from names as a user writes them; what is not given comes from ``profile``. Everything a
    run folder would be made of is checked here, before any folder exists."""
    catalog.load_plugins()
    tasks = parse_intermediate(intermediate, profile)
    request = RunRequest(
        profile=profile,
        tasks=tasks,
        target=parse_target(target, profile),
        seed=seed if seed is not None else profile.seed,
        study=study or profile.study,
        arm=arm or arm_name(tasks),
        runs_dir=runs_dir or profile.runs_dir,
        data_dir=data_dir or profile.data_dir,
        resume=resume,
        force=force,
        languages=parse_languages(languages),
    )
    check_request(request)
    return request


def check_request(request: RunRequest) -> None:
    """The names that become folder names, the seed, the target's recipe (its overrides included) and, for a
    run limited to some languages, that the target has at least one of them."""
    check_seed(request.seed, "--seed" if request.seed != request.profile.seed else "seed")
    check_name("study", request.study)
    check_name("arm", request.arm)
    request.profile.check_phase_settings()
    if request.target:
        request.profile.phase_for_target(request.target)
        phases.target_text_prefix(request.profile, catalog.task(request.target))
        if request.languages:
            phases.target_languages(
                catalog.task(request.target), request.languages, request.data_dir
            )


def execute(request: RunRequest) -> Run:
    """Phase 2 (shared, see :mod:`mmxfer.train.phases`), phase 3 or retrieval, then DONE; returns the run.

    A finished run is left as it is unless ``request.force``. The run folder is locked while it runs: a
    second process on the same run stops at once with one line naming the holder (:mod:`mmxfer.runs.lock`).
    """
    state = PartialState(cpu=not torch.cuda.is_available())
    if request.profile.cpu_threads and state.device.type == "cpu":
        torch.set_num_threads(request.profile.cpu_threads)
    main = state.is_main_process
    run = Run(run_path(request.runs_dir, request.study, request.config, request.label))
    if run.is_done() and not request.force:
        run.done_info()  # a folder of another format says so, rather than that it is finished
        if main:
            print(f"already finished: {run.path} (pass --force to run it again)")
        return run
    if main:
        atomic.check_output_dir(request.runs_dir, "--runs-dir")
    with run.lock() if main else contextlib.nullcontext():
        if run.is_done() and not request.force:  # finished by the holder we waited behind
            if main:
                print(f"already finished: {run.path} (pass --force to run it again)")
            return run
        _execute_locked(request, run, state)
    return run


def _execute_locked(request: RunRequest, run: Run, state: PartialState) -> None:
    profile, tasks, target, seed = request.profile, request.tasks, request.target, request.seed
    study, arm, runs_dir, data_dir = request.study, request.arm, request.runs_dir, request.data_dir
    config = request.config
    main = state.is_main_process
    if main:
        print(
            f"mmxfer train: profile {profile.name} | trunk {profile.trunk.name} | "
            f"data {data_dir or profile.console.data or _hub_label()} | "
            f"precision {precision_text(profile.precision)} | {state.num_processes} process(es) on {state.device}"
        )
        if profile.console.note:
            print(f"  ({profile.console.note})")
        print(
            f"  arm {arm} ({config['arm']['modality']}) -> target {target or 'retrieval suite ' + profile.suite}"
            f" | seed {seed}{' | languages ' + ','.join(request.languages) if request.languages else ''}"
            f" | run folder {run.path}"
        )
        open_run(
            runs_dir,
            study,
            config,
            request.label,
            resume=request.resume,
            force=request.force,
            seed=seed,
            env={"precision": precision_record(profile.precision)},
        )
    state.wait_for_everyone()
    log_with = profile.log_with
    trunk = profile.trunk.name
    summary: dict[str, Any] = {}
    if tasks:
        trunk_dir = phases.run_intermediate(
            profile,
            tasks,
            seed=seed,
            runs_dir=runs_dir,
            study=study,
            data_dir=data_dir,
            resume=True,
            log_with=log_with,
        )
        trunk = str(trunk_dir)
        if main:
            _copy_phase2_log(trunk_dir.parent / "train_log.jsonl", run)
            summary.update(_copy_phase2_selection(trunk_dir.parent / phases.SELECTION_FILE, run))
        release_memory()  # phase 2's model and optimizer, before phase 3 loads the trunk it saved
    languages = request.languages
    if target:
        phase3 = runner_of(catalog.task(target)).run
        rows = phase3(
            run,
            profile,
            target,
            trunk=trunk,
            seed=seed,
            data_dir=data_dir,
            resume=request.resume,
            log_with=log_with,
            languages=languages,
        )
    elif main and (twin := seed_twin(request)) is not None:
        rows = reuse_results(*twin, run)
        summary["reused_from"] = twin[0].path.name
        print(
            f"  the untrained trunk's retrieval does not read the seed: results of {twin[0].path.name} reused"
        )
    elif main:
        rows = phases.run_retrieval(
            run, profile, trunk=trunk, suite=profile.suite, data_dir=data_dir, languages=languages
        )
    else:
        rows = []
    state.wait_for_everyone()
    if main:
        if languages:
            summary["languages"] = list(languages)
        run.mark_done({"trunk": trunk, "n_rows": len(rows), "data_dir": data_dir, **summary})
        # training state (optimizer, weights) is only needed to resume; predictions and metrics stay
        remove_training_state(run.path)
        _summary(rows)
        print(f"done: {run.path}")


def _without_seed(config: dict[str, Any]) -> str:
    """``config`` as canonical JSON with the run's seed left out (lists and tuples alike, as YAML reads them)."""
    return json.dumps({**config, "seed": None}, sort_keys=True, default=str)


def seed_twin(request: RunRequest) -> tuple[Run, list[dict[str, Any]]] | None:
    """For a retrieval run of the untrained trunk (no intermediate task, no target, not ``--force``): a finished
    run of the same study whose config differs from this one's in the seed alone, read from the same data, with
    its verified metric rows; else None. Nothing in that computation reads the seed (no training; evaluation in
    eval mode), so its results are this run's too."""
    if request.tasks or request.target or request.force:
        return None
    mine = _without_seed(request.config)
    study_dir = request.path.parent
    for path in sorted(study_dir.iterdir()) if study_dir.is_dir() else ():
        other = Run(path)
        if path == request.path or not other.is_done():
            continue
        try:  # a damaged or vanishing folder is no twin; it is reported where it is read as a run
            if (
                _without_seed(other.config()) == mine
                and other.done_info().get("data_dir") == request.data_dir
            ):
                return other, other.verified_metrics()
        except MmxferError:
            continue
    return None


def reuse_results(source: Run, rows: list[dict[str, Any]], run: Run) -> list[dict[str, Any]]:
    """Copy ``source``'s predictions and its (verified) metric ``rows`` into ``run``; returns the rows."""
    if source.predictions_dir.is_dir():
        shutil.copytree(source.predictions_dir, run.predictions_dir, dirs_exist_ok=True)
    atomic.write_jsonl(run.metrics_path, rows)
    return rows


def _hub_label() -> str:
    """Where hub datasets come from in this process: the Hub, or a local mirror of it (and the release files of
    the tasks the hub cannot serve, when given)."""
    mirror, local = os.environ.get(assets.MIRROR_ENV), os.environ.get(LOCAL_DATA_ENV)
    return (
        "Hugging Face Hub"
        + (f" (mirror {mirror})" if mirror else "")
        + (f", hub-less tasks from {local}" if local else "")
    )


def _copy_phase2_log(source: Path, run: Run) -> None:
    """Put the (shared) phase-2 loss curve into this run's train_log.jsonl, once, marked with its origin."""
    if not source.is_file():
        return
    existing = (
        atomic.read_jsonl(run.train_log_path, skip_bad=True) if run.train_log_path.is_file() else []
    )
    if any(str(r.get("phase", "")).startswith("phase2:") for r in existing):
        return
    rows = [
        {**r, "shared_from": str(source.parent)} for r in atomic.read_jsonl(source, skip_bad=True)
    ]
    atomic.write_jsonl(run.train_log_path, rows + existing)


def _copy_phase2_selection(source: Path, run: Run) -> dict[str, Any]:
    """With ``intermediate.select_best``: the phase-2 selection (step, epoch, dev score) into this run's
    ``phase2_selection.json`` and its DONE record."""
    if not source.is_file():
        return {}
    selection = {
        **json.loads(source.read_text(encoding="utf-8")),
        "shared_from": str(source.parent),
    }
    atomic.write_json(run.path / "phase2_selection.json", selection)
    return {"phase2_selection": {k: selection.get(k) for k in phases.SELECTION_SUMMARY}}


def _summary(rows: list[dict[str, Any]]) -> None:
    by_metric: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("split") != "validation" and "direction" not in r and not r.get("part"):
            by_metric.setdefault((r["task"], r["metric"]), []).append(r)
    for (task, metric), group in by_metric.items():
        scored = [r["score"] for r in group if r.get("score") is not None]
        if scored:
            print(f"  {len(scored)} scores, mean {sum(scored) / len(scored):.4f} ({task} {metric})")
        missing = [r for r in group if r.get("score") is None]
        if missing:
            print(
                f"  {len(missing)} {task} {metric} rows without a score: {missing[0].get('missing', 'not scored')}"
            )
