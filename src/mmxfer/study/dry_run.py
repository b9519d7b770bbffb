"""The sections a study's dry run prints after its plan: the cost of the runs
(:mod:`mmxfer.study.cost_report`) and, from a finished pilot study, the seeds the study needs to detect a margin
(:mod:`mmxfer.compare.power`)."""

from __future__ import annotations

from mmxfer.config import ExperimentConfig, StudyConfig
from mmxfer.errors import ConfigError
from mmxfer.study import cost, cost_report, throughput
from mmxfer.study.grid import PlannedRun


def cost_section(
    study: StudyConfig,
    profile: ExperimentConfig,
    runs: list[PlannedRun],
    data_dir: str | None,
    *,
    gpu: str,
    gpus: int | None,
    budget: float | None,
) -> None:
    """The dry run's cost of ``runs`` on ``gpu`` (with the wall time on ``gpus`` and what fits ``budget``)."""
    device = throughput.device(gpu, profile.precision)
    estimate = cost.estimate(profile, runs, device, languages=study.languages, data_dir=data_dir)
    cost_report.print_cost(estimate, runs, gpus=gpus, budget_hours=budget)


def power_section(
    study: StudyConfig,
    profile: ExperimentConfig,
    runs: list[PlannedRun],
    data_dir: str | None,
    *,
    pilot: str,
    detect: float,
) -> None:
    """For each suite the study reports, the seeds per arm its confirmatory margins need to detect ``detect``
    points, from the variances of the finished runs under ``pilot``."""
    import tempfile

    from mmxfer.compare import power
    from mmxfer.compare.analysis import suite_entries
    from mmxfer.compare.gaps import compute_gaps
    from mmxfer.compare.results import build_results
    from mmxfer.compare.settings import GapSettings
    from mmxfer.config import load_suite
    from mmxfer.errors import RunStoreError
    from mmxfer.study.reports import comparison_suites

    results = build_results([pilot])
    targets = list(dict.fromkeys(r.target for r in runs if r.target))
    print(
        f"\nseeds to detect a {detect:g}-point margin, from the pilot {pilot} "
        f"({results['run_id'].nunique()} finished runs):"
    )
    with tempfile.TemporaryDirectory() as scratch:
        suites = comparison_suites(study, profile, targets, scratch)
        for name in suites:
            suite = load_suite(name)
            settings = GapSettings(
                include_english=suite.include_english_in_average,
                average=suite.average,
                overall=suite.overall,
                progress=False,
            )
            try:
                result = compute_gaps(results, settings, suite_entries(suite))
            except RunStoreError as exc:
                print(f"  {suite.name}: not planned ({exc})")
                continue
            table = power.seeds_needed(result, detect, n_arms=len(study.arms) or None)
            if not table.empty and table["pilot_seeds"].max() < 2:
                raise ConfigError(
                    f"--pilot {pilot}: every arm has one seed, so the run-to-run variance cannot be "
                    f"estimated; run the pilot with two seeds per arm"
                )
            print(f"  {suite.name}:")
            for line in power.plan_lines(table, detect, len(study.seeds)):
                print(f"    {line}")
            if not table.empty:
                print(
                    "    "
                    + table.to_string(index=False, float_format=lambda v: f"{v:.2f}").replace(
                        "\n", "\n    "
                    )
                )
    print(
        "  (assumes the pilot's test sets, arms and family; its variances are estimates: round up)"
    )
