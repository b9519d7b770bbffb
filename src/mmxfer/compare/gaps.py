"""Margins between arms at four levels, with intervals that carry both the test set's and the runs' variance.

A margin is ``score(arm) - score(reference)`` for one of the named comparisons of :mod:`mmxfer.compare.arms`
(each a contrast of arm means: a pair, or the pooled twin margin), sign-flipped for lower-is-better metrics (xSIM
error rate) so that a positive margin always means the arm is better. Each arm's score is the mean over its seeds.

Levels: per language (one cell = task x split x language x metric), per task (mean over the task's languages;
English left out when the suite says ``include_english_in_average: false``), per category (mean of its tasks) and
the suite average (mean of tasks, or of categories when the suite says ``average: mean-of-categories``);
:attr:`GapResult.contrasts` holds, for each modality comparison, the difference of its margin between two
categories (classification - retrieval) with its own interval. Every one of these is a linear combination of
cell scores, so each gets its interval the same way (:mod:`mmxfer.compare.variance`):

* the example part from paired bootstrap replicates of every run's score (:mod:`mmxfer.compare.draws`: items drawn
  once for all languages of a parallel test set, both retrieval directions of a sentence as one unit), combined
  through the level's weights, so an average carries the correlation of its languages;
* the run part from the within-arm spread of the runs' scores *at that level*, pooled over all arms (each arm
  adds k-1 degrees of freedom), so that a task average's run variance is measured on task averages (a seed that is
  good in one language is often good in all);
* a t interval with Satterthwaite's degrees of freedom; "examples only" where no arm has two seeds.

Which margins are confirmatory (one family, corrected together) and which exploratory:
:mod:`mmxfer.compare.family`. The method, its assumptions and its calibration: ``resources/statistics.md``.

Tracks: every (task, metric) a suite declares is a track (:mod:`mmxfer.compare.tracks`); a declared track that the
runs lack is reported as missing with the reason, never dropped in silence.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mmxfer import catalog
from mmxfer.compare import draws, family, stats, variance
from mmxfer.compare.arms import MODALITY_KINDS, Comparison, arm_table, check_consistent, comparisons
from mmxfer.compare.example_scores import prediction_columns, scorer_for
from mmxfer.compare.results import check_recorded_score
from mmxfer.compare.settings import GapSettings
from mmxfer.compare.tracks import (
    SuiteEntry,
    Track,
    describe_tracks,
    higher_is_better,
    registered_metrics,
    select_metrics,
)
from mmxfer.errors import AssetError, ConfigError, DataError, RunStoreError
from mmxfer.languages import is_english
from mmxfer.runs import atomic
from mmxfer.runs.store import Run

log = logging.getLogger(__name__)

LEVELS = ("language", "task", "category", "suite")
#: what every margin row carries besides its keys (see :mod:`mmxfer.compare.variance` for the terms)
ESTIMATE_COLUMNS = (
    "margin",
    "se",
    "df",
    "var_examples",
    "var_runs",
    "run_variance",
    "df_runs",
    "pooled_arms",
    "sum_w2",
    "interval",
    "ci_low",
    "ci_high",
    "p",
)
CONTRAST_COLUMNS = (
    "arm",
    "reference",
    "kind",
    "category",
    "other",
    "margin_category",
    "margin_other",
    *ESTIMATE_COLUMNS,
    "n_seeds",
    "p_adj",
    "significant",
    "correction",
    "family",
    "mde",
)


@dataclass
class GapResult:
    """Margins at four levels; each frame has the same comparison columns."""

    languages: pd.DataFrame
    tasks: pd.DataFrame
    categories: pd.DataFrame
    suite: pd.DataFrame
    settings: GapSettings
    arms: pd.DataFrame = field(default_factory=pd.DataFrame)
    # every declared (task, metric), present or missing
    tracks: list[Track] = field(default_factory=list)
    # category differences of modality margins
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: list[Comparison] = field(default_factory=list)
    family_size: int = 0  # margins in the confirmatory family (:mod:`mmxfer.compare.family`)

    @property
    def missing(self) -> list[Track]:
        return [t for t in self.tracks if t.status == "missing"]

    def all(self) -> pd.DataFrame:
        frames = [
            f.assign(level=lvl)
            for lvl, f in zip(LEVELS, (self.languages, self.tasks, self.categories, self.suite))
        ]
        return pd.concat(frames, ignore_index=True)

    def confirmatory(self) -> pd.DataFrame:
        """Every margin of the declared family (:mod:`mmxfer.compare.family`), with its level."""
        frames = [
            f.assign(level=lvl)
            for lvl, f in zip(
                (*LEVELS, "contrast"),
                (self.languages, self.tasks, self.categories, self.suite, self.contrasts),
            )
            if "family" in f
        ]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["family"])
        return frame[frame["family"] == family.CONFIRMATORY].reset_index(drop=True)


class _Cell:
    """All arms' runs on one task x split x language x metric, and their bootstrap replicates."""

    def __init__(
        self, key: tuple[str, str, str, str], category: str, grp: pd.DataFrame, sign: float
    ) -> None:
        self.task, self.split, self.lang, self.metric = key
        self.category = category
        self.sign = sign
        self.n_examples: int | None = None
        self.runs: dict[str, dict[int, tuple[float, str, Any]]] = defaultdict(dict)
        self.reps: dict[tuple[str, int], np.ndarray] = {}
        for row in grp.itertuples():
            seed = int(row.seed) if pd.notna(row.seed) else 0
            if seed in self.runs[row.arm]:
                other = self.runs[row.arm][seed][1]
                raise DataError(
                    f"two finished runs for arm {row.arm!r} seed {seed} on {self.task}.{self.lang}: "
                    f"{other} and {row.path}; remove one or pass --runs for one study"
                )
            self.runs[row.arm][seed] = (float(row.score), row.path, row.n_examples)

    def run_keys(self) -> list[tuple[str, int]]:
        return sorted((arm, seed) for arm, seeds in self.runs.items() for seed in seeds)

    def examples(self) -> Any:
        """How many examples the cell's bootstrap scored, else the first run's recorded count."""
        if self.n_examples is not None:
            return self.n_examples
        arm, seed = self.run_keys()[0]
        return self.runs[arm][seed][2]

    def has(self, arms: tuple[str, ...]) -> bool:
        return all(self.runs.get(a) for a in arms)


def _recorded_params(cell: _Cell) -> dict[str, Any]:
    """Metric arguments the runs were scored with and re-scoring must use again: spBLEU's SentencePiece model
    (``settings.spm_model`` of its rows), which may not be what this machine would resolve now."""
    if cell.metric not in catalog.METRICS or catalog.METRICS.canonical(cell.metric) != "spbleu":
        return {}
    models = set()
    for arm, seed in cell.run_keys():
        for row in Run(cell.runs[arm][seed][1]).metrics():
            if (row.get("task"), row.get("split"), row.get("lang"), row.get("metric")) == (
                cell.task,
                cell.split,
                cell.lang,
                cell.metric,
            ) and not row.get("part"):
                models.add((row.get("settings") or {}).get("spm_model"))
    models.discard(None)
    if len(models) > 1:
        raise DataError(
            f"{cell.task}.{cell.lang}: the runs scored spBLEU with different SentencePiece models "
            f"({', '.join(sorted(models))}); re-score them with one (mmxfer evaluate --rescore RUN "
            f"with MMXFER_FLORES200_SPM set)"
        )
    return {"spm_model": models.pop()} if models else {}


def _cell_examples(cell: _Cell, names: list[str], alignment: str) -> draws.CellExamples:
    """Every run's predictions of one cell, aligned on the example ids they share, each checked against the score
    its run recorded (so a margin and its interval come from the same numbers)."""
    loaded = {}
    for arm, seed in cell.run_keys():
        run = Run(cell.runs[arm][seed][1])
        path = run.predictions_path(cell.task, cell.split, cell.lang)
        if not path.is_file():
            raise RunStoreError(
                f"missing predictions for the bootstrap: {path} (arm {arm}, seed {seed}); re-run "
                f"`mmxfer evaluate --run {run.path}` or pass --bootstrap 0 for margins without intervals"
            )
        loaded[(arm, seed)] = prediction_columns(path)
    ref_ids = next(iter(loaded.values()))[0]
    whole = all(v[0] == ref_ids for v in loaded.values())
    if whole:
        ids = ref_ids
        aligned = {k: (v[1], v[2]) for k, v in loaded.items()}
    else:  # different order or subsets: score the ids every file has
        common = set(ref_ids).intersection(*(set(v[0]) for v in loaded.values()))
        if not common:
            raise DataError(f"{cell.task}.{cell.lang}: the arms' predictions share no example ids")
        ids = [i for i in ref_ids if i in common]
        aligned = {}
        for k, (fids, golds, preds) in loaded.items():
            pos = {i: j for j, i in enumerate(fids)}
            aligned[k] = ([golds[pos[i]] for i in ids], [preds[pos[i]] for i in ids])
    scorer = scorer_for(
        cell.task, cell.metric, names, lang=cell.lang, params=_recorded_params(cell)
    )
    if whole:
        for (arm, seed), (golds, preds) in aligned.items():
            check_recorded_score(
                cell.runs[arm][seed][1],
                cell.task,
                cell.split,
                cell.lang,
                cell.metric,
                cell.runs[arm][seed][0],
                scorer.fn(golds, preds),
            )
    cell.n_examples = len(ids)
    return draws.cell_examples(cell.lang, ids, scorer, aligned, alignment)


def _fill_replicates(
    cells: list[_Cell],
    settings: GapSettings,
    entries: list[SuiteEntry] | None,
    notes: dict[tuple[str, str], str],
) -> None:
    """Bootstrap replicates of every run on every cell, one (task, split) at a time (its languages share draws)."""
    groups: dict[tuple[str, str], list[_Cell]] = defaultdict(list)
    for cell in cells:
        groups[(cell.task, cell.split)].append(cell)
    bar = tqdm(
        total=len(cells),
        desc="compare",
        unit="cell",
        disable=not settings.progress or len(cells) < 20,
    )
    for (task, split), group in groups.items():
        alignment = draws.alignment_of(task)
        examples: dict[int, draws.CellExamples] = {}
        for i, cell in enumerate(group):
            try:
                examples[i] = _cell_examples(
                    cell, registered_metrics(cell.task, cell.metric, entries), alignment
                )
            except (
                AssetError
            ) as exc:  # spBLEU without the SentencePiece model here: margins without intervals
                notes[(cell.task, cell.metric)] = f"no intervals: {exc}"
                cell.reps = {
                    k: np.full(settings.n_boot, np.nan, np.float32) for k in cell.run_keys()
                }
        for i, reps in draws.replicates(
            examples, alignment, settings.n_boot, (settings.seed, task, split)
        ).items():
            group[i].reps = reps
        bar.update(len(group))
    bar.close()


@dataclass
class _ArmLevel:
    """One arm on one level: its complete seeds, their signed and unsigned scores, and their replicates."""

    seeds: list[int]
    signed: np.ndarray
    unsigned: np.ndarray
    reps: np.ndarray | None  # (k, B)


Weights = tuple[
    tuple[int, float], ...
]  # (cell index, weight): a level's linear combination of cells


class _Levels:
    """Margins and intervals of linear combinations of cells (:mod:`mmxfer.compare.variance`)."""

    def __init__(self, cells: list[_Cell], arms: list[str], settings: GapSettings) -> None:
        self.cells, self.arms, self.settings = cells, arms, settings
        self._cache: dict[Weights, tuple[dict[str, _ArmLevel], variance.RunVariance]] = {}

    def _aggregate(self, weights: Weights) -> tuple[dict[str, _ArmLevel], variance.RunVariance]:
        if weights in self._cache:
            return self._cache[weights]
        per_arm: dict[str, _ArmLevel] = {}
        B = self.settings.n_boot
        for arm in self.arms:
            seeds: set[int] | None = None
            for ci, _ in weights:
                have = set(self.cells[ci].runs.get(arm, {}))
                seeds = have if seeds is None else seeds & have
            if not seeds:
                continue
            order = sorted(seeds)
            signed = np.array(
                [sum(v * self.cells[ci].runs[arm][s][0] for ci, v in weights) for s in order]
            )
            unsigned = np.array(
                [sum(abs(v) * self.cells[ci].runs[arm][s][0] for ci, v in weights) for s in order]
            )
            reps = None
            if B > 0:
                reps = np.stack(
                    [
                        np.sum(
                            [
                                v * self.cells[ci].reps[(arm, s)].astype(np.float64)
                                for ci, v in weights
                            ],
                            axis=0,
                        )
                        for s in order
                    ]
                )
            per_arm[arm] = _ArmLevel(order, signed, unsigned, reps)
        runs = variance.pooled_run_variance(
            {a: x.signed for a, x in per_arm.items()},
            {a: x.reps for a, x in per_arm.items() if x.reps is not None},
        )
        self._cache[weights] = (per_arm, runs)
        return per_arm, runs

    def row(self, comp: Comparison, weights: Weights) -> dict[str, Any] | None:
        """The margin of ``comp`` on the level ``weights`` describes, or None when an arm has no complete seed."""
        per_arm, runs = self._aggregate(weights)
        if any(a not in per_arm for a in comp.arms):
            log.warning(
                "%s: an arm has no seed with runs on every cell of one level; that level is left out",
                comp.name,
            )
            return None
        w = dict(comp.weights)
        margin = float(sum(w[a] * per_arm[a].signed.mean() for a in comp.arms))
        if self.settings.n_boot > 0:
            v_ex, _ = variance.example_variance({a: per_arm[a].reps for a in comp.arms}, w)
        else:
            v_ex = float("nan")
        moving = [a for a in comp.arms if a not in runs.fixed]
        run_weight = sum(w[a] ** 2 / len(per_arm[a].seeds) for a in moving)
        est = variance.estimate(margin, v_ex, run_weight, runs, self.settings.alpha)
        pooled = sum(1 for a, x in per_arm.items() if len(x.seeds) > 1 and a not in runs.fixed)
        out = {
            "margin": margin,
            "se": est.se,
            "df": est.df,
            "var_examples": est.var_examples,
            "var_runs": est.var_runs,
            "run_variance": runs.variance if runs.estimated else float("nan"),
            "df_runs": est.df_runs,
            "pooled_arms": pooled,
            "sum_w2": float(sum(w[a] ** 2 for a in moving)),
            "interval": est.interval,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "p": est.p,
            "n_seeds": min(len(per_arm[a].seeds) for a in comp.arms),
            "n_cells": len(weights),
        }
        for side, arms in (("score_arm", comp.arm_side), ("score_reference", comp.reference_side)):
            total = sum(abs(w[a]) for a in arms)
            out[side] = float(sum(abs(w[a]) * per_arm[a].unsigned.mean() for a in arms) / total)
        return out


def _scale(weights: list[tuple[int, float]], by: float) -> list[tuple[int, float]]:
    return [(ci, v * by) for ci, v in weights]


def _combine(*parts: list[tuple[int, float]]) -> Weights:
    total: dict[int, float] = defaultdict(float)
    for part in parts:
        for ci, v in part:
            total[ci] += v
    return tuple(sorted(total.items()))


def _build_cells(frame: pd.DataFrame, entries: list[SuiteEntry] | None) -> list[_Cell]:
    cells = []
    for key, grp in frame.groupby(["task", "split", "lang", "metric"], sort=True):
        sign = 1.0 if higher_is_better(registered_metrics(key[0], key[3], entries)) else -1.0
        cells.append(_Cell(key, grp["category"].iloc[0], grp, sign))
    return cells


def _level_rows(
    levels: _Levels, comps: list[Comparison], cells: list[_Cell], settings: GapSettings
) -> tuple[list[dict], list[dict], list[dict], list[dict], list[dict]]:
    """Rows of the language, task, category and suite levels and of the category contrasts."""
    lang_rows, task_rows, cat_rows, suite_rows, contrast_rows = [], [], [], [], []
    task_cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for ci, cell in enumerate(cells):
        if settings.include_english or not is_english(cell.lang):
            task_cells[(cell.task, cell.metric)].append(ci)
    for comp in comps:
        base = {"arm": comp.arm, "reference": comp.reference, "kind": comp.kind}
        for ci, cell in enumerate(cells):
            if cell.has(comp.arms):
                row = levels.row(comp, ((ci, cell.sign),))
                if row is not None:
                    lang_rows.append(
                        {
                            **base,
                            "task": cell.task,
                            "category": cell.category,
                            "metric": cell.metric,
                            "split": cell.split,
                            "lang": cell.lang,
                            "higher_is_better": cell.sign > 0,
                            "n_examples": cell.examples(),
                            **row,
                        }
                    )
        per_task: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for key, members in task_cells.items():
            have = [ci for ci in members if cells[ci].has(comp.arms)]
            if have:
                weights = [(ci, cells[ci].sign / len(have)) for ci in have]
                row = levels.row(comp, _combine(weights))
                if row is not None:
                    per_task[key] = weights
                    first = cells[have[0]]
                    task_rows.append(
                        {
                            **base,
                            "task": key[0],
                            "category": first.category,
                            "metric": key[1],
                            **row,
                        }
                    )
        per_category: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
        for weights in per_task.values():
            per_category[cells[weights[0][0]].category].append(weights)
        cat_weights = {
            c: [x for w in ws for x in _scale(w, 1 / len(ws))] for c, ws in per_category.items()
        }
        for category, weights in cat_weights.items():
            row = levels.row(comp, _combine(weights))
            if row is not None:
                cat_rows.append({**base, "category": category, **row})
        if settings.average == "mean-of-categories":
            suite = [x for w in cat_weights.values() for x in _scale(w, 1 / len(cat_weights))]
        else:
            suite = [x for w in per_task.values() for x in _scale(w, 1 / len(per_task))]
        if suite:
            row = levels.row(comp, _combine(suite))
            if row is not None:
                suite_rows.append({**base, **row})
        if comp.kind in MODALITY_KINDS:
            contrast_rows += _contrast_rows(levels, comp, cat_weights, base)
    return lang_rows, task_rows, cat_rows, suite_rows, contrast_rows


def category_order(category: str) -> tuple[bool, bool]:
    """Sort key of categories in what a report lists: classification first, retrieval last, the rest kept in
    their order between (a stable sort)."""
    return category != "classification", category == "retrieval"


def _contrast_rows(
    levels: _Levels,
    comp: Comparison,
    cat_weights: dict[str, list[tuple[int, float]]],
    base: dict[str, Any],
) -> list[dict]:
    """How much larger the margin is on one category than on another (``margin_category - margin_other``), as one
    linear combination of cells, so the shared seeds and examples of the two categories are paired."""
    order = sorted(cat_weights, key=category_order)
    rows = []
    for x, category in enumerate(order):
        for other in order[x + 1 :]:
            one = levels.row(comp, _combine(cat_weights[category]))
            two = levels.row(comp, _combine(cat_weights[other]))
            row = levels.row(
                comp, _combine(cat_weights[category], _scale(cat_weights[other], -1.0))
            )
            if row is None or one is None or two is None:
                continue
            rows.append(
                {
                    **base,
                    "category": category,
                    "other": other,
                    **row,
                    "margin_category": one["margin"],
                    "margin_other": two["margin"],
                }
            )
    return rows


def _frame(rows: list[dict], settings: GapSettings, group: list[str] | None) -> pd.DataFrame:
    """The rows with p-values corrected within ``group`` (None: all together) and the significance flag; the
    confirmatory family's rows are corrected again, together, by :func:`mmxfer.compare.family.declare`."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["p_adj"] = np.nan
    if group is None:
        df["p_adj"] = stats.adjust(df["p"].to_numpy(float), settings.correction)
    else:
        for _, idx in df.groupby(group, sort=False).groups.items():
            df.loc[idx, "p_adj"] = stats.adjust(
                df.loc[idx, "p"].to_numpy(float), settings.correction
            )
    df["significant"] = df["p_adj"] < settings.alpha
    df["correction"] = settings.correction
    return df


def _check(settings: GapSettings) -> None:
    if settings.correction not in stats.CORRECTIONS:
        raise ConfigError(
            f"unknown correction {settings.correction!r}; choose from {', '.join(stats.CORRECTIONS)}"
        )
    if not 0 < settings.alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {settings.alpha}")
    if settings.n_boot < 0:
        raise ConfigError(f"--bootstrap must be >= 0, got {settings.n_boot}")


def compute_gaps(
    results: pd.DataFrame,
    settings: GapSettings | None = None,
    entries: list[SuiteEntry] | None = None,
) -> GapResult:
    """Margins at every level from the tidy table (see the module docstring for the method)."""
    settings = settings or GapSettings()
    _check(settings)
    frame = select_metrics(results, entries)
    # unscored rows: their tracks say why
    frame = frame[frame["score"].notna()].reset_index(drop=True)
    tracks = describe_tracks(results, frame, entries)
    if frame.empty:
        wanted = ", ".join(dict.fromkeys(e.task for e in entries or []))
        why = "; ".join(f"{t.name}: {t.reason}" for t in tracks if t.status == "missing")
        raise RunStoreError(
            f"no finished run has scores for the suite's tasks ({wanted}); "
            f"the runs have: {', '.join(sorted(set(results['task'])))}{' (' + why + ')' if why else ''}"
        )
    check_consistent(frame)
    arms = arm_table(frame)
    comps = comparisons(arms)
    cells = _build_cells(frame, entries)
    notes: dict[tuple[str, str], str] = {}
    if settings.n_boot > 0:
        _fill_replicates(cells, settings, entries, notes)
    levels = _Levels(cells, list(arms["arm"]), settings)
    lang_rows, task_rows, cat_rows, suite_rows, contrast_rows = _level_rows(
        levels, comps, cells, settings
    )
    if not lang_rows:
        raise RunStoreError("no task x language has finished runs of both arms of any comparison")
    lang_df = _frame(lang_rows, settings, ["arm", "reference", "task", "metric"])
    task_df = _frame(task_rows, settings, ["arm", "reference"])
    cat_df = _frame(cat_rows, settings, ["arm", "reference"])
    suite_df = _frame(suite_rows, settings, None)
    contrasts = _frame(contrast_rows, settings, ["arm", "reference"])
    # the suite declares no overall number: none is computed, shown or written
    if not settings.overall:
        suite_df = suite_df.iloc[0:0]
    tracks = [
        dataclasses.replace(t, note=notes[(t.task, t.metric)]) if (t.task, t.metric) in notes else t
        for t in tracks
    ]
    result = GapResult(lang_df, task_df, cat_df, suite_df, settings, arms, tracks, contrasts, comps)
    family.declare(result)
    if result.contrasts.empty:
        result.contrasts = pd.DataFrame(columns=list(CONTRAST_COLUMNS))
    else:
        result.contrasts = result.contrasts[list(CONTRAST_COLUMNS)]
    return result


def write_gaps(result: GapResult, out_dir: str | Path) -> dict[str, Path]:
    """Every level as CSV (atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    frames = dict(zip(LEVELS, (result.languages, result.tasks, result.categories, result.suite)))
    frames["contrast"] = result.contrasts
    for level, frame in frames.items():
        path = out_dir / f"gaps_{level}.csv"
        with atomic.atomic_open(path, "w") as handle:
            frame.to_csv(handle, index=False)
        paths[level] = path
    return paths
