"""A study's grid: expand arms x targets x seeds into runs, skip finished ones, run or submit the rest.

Runs of a study: one per (arm, target, seed) for every fine-tuning target, plus - when the study
names a ``suite`` - one retrieval run per (arm, seed) that evaluates the arm's trunk on the
suite's retrieval tasks (comma list allowed: ``suite: xtreme,flores200``). Every other task of the
suite (fine-tuned: SIB-200; zero-shot translation: ``flores200-translate``) is a target of the study
too, whether or not ``targets`` lists it, so no track a suite declares is left without runs
(:func:`suite_targets`). ``languages`` limits every run's zero-shot evaluation. Run folders are the
same ones ``mmxfer train`` writes (``run_id`` = hash of the resolved run config), so a study and
hand-started ``mmxfer train`` runs share results, and a run with ``DONE`` is never redone.

Local runs are calls of :func:`mmxfer.train.run.execute` on the planned requests; SLURM jobs get a
``mmxfer train`` command line (:mod:`mmxfer.study.launch`). Phase-2 trainings are shared: see
:mod:`mmxfer.train.phases` for the key and the seed policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmxfer import catalog
from mmxfer.compare.analysis import compare_and_print
from mmxfer.config import ExperimentConfig, StudyConfig, load_profile
from mmxfer.errors import ConfigError, MmxferError
from mmxfer.evaluation.suites import suite_tasks, uses_trunk
from mmxfer.memory import release_memory
from mmxfer.runs import atomic
from mmxfer.runs.lock import LockHeld
from mmxfer.runs.store import Run, check_name, slug
from mmxfer.study import launch
from mmxfer.study.data import study_data
from mmxfer.study.reports import comparison_suites
from mmxfer.train import phases
from mmxfer.train.run import (
    RunRequest,
    check_request,
    execute,
    parse_intermediate,
    parse_languages,
    parse_target,
)


@dataclass(frozen=True)
class PlannedRun:
    request: RunRequest
    phase2: Path | None  # the phase-2 folder it needs (None for the baseline)

    @property
    def arm(self) -> str:
        return self.request.arm

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.request.tasks

    @property
    def target(self) -> str | None:
        return self.request.target

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def path(self) -> Path:
        return self.request.path

    @property
    def label(self) -> str:
        return self.request.label

    @property
    def done(self) -> bool:
        return Run(self.path).is_done()

    @property
    def phase2_done(self) -> bool:
        return self.phase2 is None or (self.phase2 / "DONE").is_file()


def profile_overrides(study: StudyConfig) -> list[str]:
    """The study's overrides of its profile, its suite included (what a SLURM job passes as ``--set``)."""
    return list(study.overrides) + ([f"suite={study.suite}"] if study.suite else [])


def study_profile(study: StudyConfig) -> ExperimentConfig:
    return load_profile(study.profile, profile_overrides(study) + [f"study={study.name}"])


def suite_targets(suite: str | None, profile: ExperimentConfig) -> tuple[list[str], bool]:
    """``(targets, trunk)``: the suite tasks that need a fine-tuned run (each once, in suite order) and whether
    any task is evaluated on the trunk itself (then each arm and seed gets one retrieval run)."""
    targets: list[str] = []
    trunk = False
    for name in (suite or "").split(","):
        if not name.strip():
            continue
        for item in suite_tasks(name.strip()):
            if uses_trunk(item):
                trunk = True
                continue
            spec = catalog.task(profile.resolve_task(item.task))
            if item.mode == "translation" and spec.kind != "translation":
                raise ConfigError(
                    f"suite {name.strip()}: {item.task} is a {spec.kind} task but its entry says "
                    f"mode: translation; name the translation task itself (e.g. flores200-translate)"
                )
            if spec.name not in targets:
                targets.append(spec.name)
    return targets, trunk


def plan(
    study: StudyConfig, runs_dir: str | Path | None = None, data_dir: str | None = None
) -> tuple[ExperimentConfig, list[PlannedRun]]:
    """Every run of ``study`` in a stable order (arm, target, seed), finished or not."""
    catalog.load_plugins()
    check_name("study", study.name)
    for arm in study.arms:
        check_name("arm", arm.name)
    profile = study_profile(study)
    runs_dir = str(runs_dir or profile.runs_dir)
    if not study.arms:
        raise MmxferError(f"study {study.name!r} has no arms")
    targets: list[str | None] = [parse_target(t, profile) for t in study.targets]
    from_suite, trunk = suite_targets(study.suite, profile)
    targets += [t for t in from_suite if t not in targets]
    if trunk:
        targets.append(None)
    if not targets:
        raise MmxferError(
            f"study {study.name!r} has neither targets nor a suite: nothing to evaluate"
        )
    out = []
    for arm in study.arms:
        tasks = parse_intermediate(",".join(arm.intermediate) or "none", profile)
        for target in targets:
            for seed in study.seeds:
                request = RunRequest(
                    profile=profile,
                    tasks=tasks,
                    target=target,
                    seed=seed,
                    study=study.name,
                    arm=arm.name,
                    runs_dir=runs_dir,
                    data_dir=data_dir or profile.data_dir,
                    resume=True,
                    languages=parse_languages(study.languages),
                )
                check_request(request)
                p2 = (
                    phases.phase2_dir(profile, tasks, seed, runs_dir, study.name, request.data_dir)
                    if tasks
                    else None
                )
                out.append(PlannedRun(request, p2))
    return profile, out


def counts(runs: list[PlannedRun]) -> dict[str, int]:
    todo = [r for r in runs if not r.done]
    phase2 = {r.phase2 for r in todo if r.phase2 is not None and not r.phase2_done}
    return {
        "runs": len(runs),
        "finished": len(runs) - len(todo),
        "to_run": len(todo),
        "phase2_trainings": len(phase2),
        "phase3_trainings": sum(1 for r in todo if r.target),
        "retrieval_evaluations": sum(1 for r in todo if not r.target),
    }


def print_plan(
    study: StudyConfig, profile: ExperimentConfig, runs: list[PlannedRun]
) -> dict[str, int]:
    c = counts(runs)
    targets = list(dict.fromkeys(r.target for r in runs if r.target))
    retrieval = any(r.target is None for r in runs)
    print(
        f"study {study.name}: profile {profile.name} ({profile.trunk.name}), {len(study.arms)} arms x "
        f"{len(targets)} targets{' + retrieval (' + study.suite + ')' if retrieval else ''} x "
        f"{len(study.seeds)} seeds{' | languages ' + ','.join(study.languages) if study.languages else ''}"
    )
    if targets:
        print(f"  targets: {', '.join(targets)}")
    for r in runs:
        state = "done" if r.done else "todo"
        p2 = (
            ""
            if r.phase2 is None
            else f"  phase2 {'reuse' if r.phase2_done else 'train'} {r.phase2.name}"
        )
        print(f"  [{state}] {r.label:<40} {r.path.name}{p2}")
    print(
        f"{c['runs']} runs: {c['finished']} finished, {c['to_run']} to run -> {c['phase2_trainings']} phase-2 "
        f"trainings (shared across targets), {c['phase3_trainings']} phase-3 trainings, "
        f"{c['retrieval_evaluations']} retrieval evaluations"
    )
    return c


#: what a dry run prints after the plan: ``section(study, profile, runs, data_dir)``
DryRunSection = Callable[[StudyConfig, ExperimentConfig, list[PlannedRun], "str | None"], None]


def run_study(
    study: StudyConfig,
    *,
    launcher: str | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | None = None,
    dry_run: bool = False,
    compare: bool = True,
    dry_run_sections: tuple[DryRunSection, ...] = (),
) -> None:
    """Plan ``study``, then run (``local``) or submit (``slurm``) every unfinished run; a local grid that
    finishes is compared (the gap analysis over the study's folder) unless ``compare`` is False. The runs read
    the study's data (:func:`mmxfer.study.data.study_data`: ``data_dir``, else its ``data`` source, else the hub).
    A dry run prints the plan, then each of ``dry_run_sections`` (the cost: :mod:`mmxfer.study.cost_report`)."""
    # the runs sharing a phase-2 trunk fingerprint its training data once (they read one copy of the data)
    with study_data(study, data_dir) as data_dir, phases.fingerprint_once():
        _run_study(
            study,
            launcher=launcher,
            runs_dir=runs_dir,
            data_dir=data_dir,
            dry_run=dry_run,
            compare=compare,
            sections=dry_run_sections,
        )


def _run_study(
    study: StudyConfig,
    *,
    launcher: str | None,
    runs_dir: str | Path | None,
    data_dir: str | None,
    dry_run: bool,
    compare: bool,
    sections: tuple[DryRunSection, ...] = (),
) -> None:
    launcher = launcher or study.launcher
    profile, runs = plan(study, runs_dir, data_dir)
    runs_dir = str(runs_dir or profile.runs_dir)
    print_plan(study, profile, runs)
    if dry_run:
        for section in sections:
            section(study, profile, runs, data_dir)
        return
    todo = [r for r in runs if not r.done]
    atomic.check_output_dir(runs_dir, "--runs-dir")
    if launcher == "slurm":
        _submit(study, todo, runs_dir)
        return
    failed, busy = [], []
    for i, r in enumerate(todo, 1):
        print(f"\n[{i}/{len(todo)}] {r.label}")
        try:
            execute(r.request)  # takes the run's lock: a run another process works on is left to it
        except LockHeld as exc:
            print(f"  skipped: {exc}")
            busy.append(r.label)
        except MmxferError as exc:  # one broken run does not stop the grid
            print(f"  failed: {exc}")
            failed.append(r.label)
        finally:
            release_memory()  # the finished run's models before the next run loads its own
    if failed:
        raise MmxferError(
            f"{len(failed)} of {len(todo)} runs failed: {', '.join(failed)}; fix and rerun the study "
            f"(finished runs are skipped)"
        )
    if busy:
        raise MmxferError(
            f"{len(busy)} of {len(todo)} runs are being run by other processes ({', '.join(busy)}); "
            f"rerun the study when they finish to compare"
        )
    if compare:  # the whole grid: every suite of the study and every fine-tuned target
        study_dir = Path(runs_dir) / slug(study.name)
        targets = list(dict.fromkeys(r.target for r in runs if r.target))
        for suite in comparison_suites(study, profile, targets, study_dir):
            print(f"\ngap analysis: mmxfer compare --suite {suite} --runs {study_dir}")
            compare_and_print(suite, [str(study_dir)])


def _submit(study: StudyConfig, todo: list[PlannedRun], runs_dir: str) -> None:
    """One SLURM job per run; runs that share an unfinished phase-2 trunk wait for the first one's job."""
    overrides = profile_overrides(study)
    first_job: dict[Path, str] = {}
    for r in todo:
        deps = [first_job[r.phase2]] if r.phase2 in first_job else []
        job = launch.submit_slurm(
            launch.train_argv(r.request, study.profile, overrides),
            study.slurm,
            Path(runs_dir) / slug(study.name) / "_slurm" / r.path.name,
            depends_on=deps,
            name=f"mmxfer-{r.label}",
        )
        if r.phase2 is not None and not r.phase2_done:
            first_job.setdefault(r.phase2, str(job.job_id))
        print(f"submitted {r.label}: job {job.job_id}{' after ' + deps[0] if deps else ''}")
