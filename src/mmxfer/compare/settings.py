"""The settings of the gap analysis, with the defaults of ``mmxfer compare`` and of a study's comparison.

Kept apart from :mod:`mmxfer.compare.gaps` (numpy, pandas) so that the command line parser can show
these defaults without importing the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GapSettings:
    n_boot: int = 1000  # bootstrap resamples (0 = margins without intervals)
    alpha: float = 0.05  # significance level; intervals are (1 - alpha) t intervals
    seed: int = 0  # seed of the bootstrap draws
    correction: str = "holm"  # holm | bh | none
    include_english: bool = True
    average: str = "mean-of-tasks"  # or mean-of-categories
    overall: bool = True  # False: the suite declares no overall number (no suite level anywhere)
    progress: bool = True
