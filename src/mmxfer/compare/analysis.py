"""The whole gap analysis of finished runs: tidy table -> gaps -> tables, plots, report, headline
(what ``mmxfer compare`` and a finished ``mmxfer study`` run)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from mmxfer.compare.gaps import compute_gaps
from mmxfer.compare.plots import all_plots
from mmxfer.compare.report import headline, write_report
from mmxfer.compare.results import build_results, write_results
from mmxfer.compare.settings import GapSettings
from mmxfer.compare.tracks import SuiteEntry
from mmxfer.config import SuiteConfig, load_suite
from mmxfer.runs import atomic

DEFAULT_RUNS = "runs"


def default_out(suite_name: str) -> str:
    """Where the report of a suite goes without ``--out``: ``reports/<suite>``."""
    return str(Path("reports") / Path(suite_name).stem)


def suite_entries(suite: SuiteConfig) -> list[SuiteEntry] | None:
    """The scored (task, metric) entries a suite declares (None = every task in the runs)."""
    entries = [
        SuiteEntry(t.task, (t.metric,) if t.metric else (), t.split, t.category, t.score_key)
        for t in suite.tasks
    ]
    return entries or None


def compare(
    suite_name: str,
    runs: Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    n_boot: int = GapSettings.n_boot,
    alpha: float = GapSettings.alpha,
    seed: int = GapSettings.seed,
    progress: bool = True,
) -> tuple[list[str], dict[str, Path]]:
    """Run the whole analysis of the finished runs under ``runs`` (default ``runs/``) into ``out``
    (default ``reports/<suite>``); returns (headline lines, written paths)."""
    suite = load_suite(suite_name)
    out = Path(out if out is not None else default_out(suite_name))
    atomic.check_output_dir(out, "--out")  # before the work, not after it
    results = build_results(list(runs or [DEFAULT_RUNS]))
    settings = GapSettings(
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        include_english=suite.include_english_in_average,
        average=suite.average,
        overall=suite.overall,
        progress=progress,
    )
    result = compute_gaps(results, settings, suite_entries(suite))
    paths = {f"results_{k}": v for k, v in write_results(results, out).items()}
    plots = all_plots(result, out)
    paths.update(write_report(result, results, out, suite.name, plots))
    for p in plots:
        paths[p.name] = p
    return headline(result), paths


def compare_and_print(
    suite_name: str,
    runs: Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    n_boot: int = GapSettings.n_boot,
    alpha: float = GapSettings.alpha,
    seed: int = GapSettings.seed,
) -> None:
    """:func:`compare`, then its headline and where the files went, printed."""
    start = time.perf_counter()
    out = out or default_out(suite_name)
    lines, paths = compare(suite_name, runs, out, n_boot=n_boot, alpha=alpha, seed=seed)
    for line in lines:
        print(line)
    print(f"wrote {len(paths)} files to {out} (report.md) in {time.perf_counter() - start:.1f}s")
