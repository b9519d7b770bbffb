"""``mmxfer compare``: tidy table -> gaps -> tables, plots, report, headline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mmxfer.compare.gaps import GapSettings, SuiteEntry, compute_gaps
from mmxfer.compare.plots import all_plots
from mmxfer.compare.report import headline, write_report
from mmxfer.compare.results import build_results, write_results
from mmxfer.config import SuiteConfig, load_suite


def suite_entries(suite: SuiteConfig) -> list[SuiteEntry] | None:
    """The scored (task, metric) entries a suite declares (None = every task in the runs)."""
    entries = [SuiteEntry(t.task, tuple(c for c in (getattr(t, "score_key", None), t.metric) if c),
                          getattr(t, "split", None), getattr(t, "category", None)) for t in suite.tasks]
    return entries or None


def compare(suite_name: str, runs: list[str], out: str | Path, n_boot: int = 1000, alpha: float = 0.05,
            seed: int = 0, progress: bool = True) -> tuple[list[str], dict[str, Path]]:
    """Run the whole analysis; returns (headline lines, written paths)."""
    suite = load_suite(suite_name)
    out = Path(out)
    results = build_results(runs)
    settings = GapSettings(n_boot=n_boot, alpha=alpha, seed=seed, include_english=suite.include_english_in_average,
                           average=suite.average, progress=progress)
    result = compute_gaps(results, settings, suite_entries(suite))
    paths = {f"results_{k}": v for k, v in write_results(results, out).items()}
    plots = all_plots(result, out)
    paths.update(write_report(result, results, out, suite.name, plots))
    for p in plots:
        paths[p.name] = p
    return headline(result), paths


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    runs = args.runs or ["runs"]
    out = args.out or str(Path("reports") / Path(args.suite).stem)
    lines, paths = compare(args.suite, runs, out, n_boot=args.bootstrap, alpha=args.alpha, seed=args.seed)
    for line in lines:
        print(line)
    print(f"wrote {len(paths)} files to {out} (report.md) in {time.perf_counter() - start:.1f}s")
    return 0
