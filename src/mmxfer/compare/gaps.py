"""Margins between arms with hierarchical paired bootstrap intervals and corrected tests.

Comparisons (:func:`comparisons`), two effects kept apart:

* the modality effect - each multimodal arm (modality ``image-text`` or ``mixed``) against its text twin
  (``multimodal-vs-twin``: the text arm whose intermediate tasks are the twins of its own, the same
  questions or captions without the image; task specs name theirs in ``extra["twin_of"]``), the pooled margin
  ``pooled-multimodal - pooled-text`` (the mean over every multimodal arm minus the mean over every text arm,
  per seed; only with more than one arm on a side) and, for reference, every other multimodal-text pair
  (``multimodal-vs-text``: unlike tasks, never a headline);
* the effect of intermediate training on the trunk - every arm against the baseline (modality ``none``: no
  intermediate task): ``multimodal-vs-baseline`` and ``text-vs-baseline`` (the STILTs effect; on retrieval
  targets, which use the trunk as it is, a negative margin is forgetting).

A margin is ``score(arm) - score(reference)``, averaged over the seeds both sides have (paired by seed), and
sign-flipped for lower-is-better metrics (xSIM error rate) so that a positive margin always means
the arm is better. :attr:`GapResult.contrasts` holds, for each modality comparison, the difference of its
margin between two categories (classification - retrieval) with its own interval.

Levels: per language (one cell = task x split x language x metric), per task (mean over the
task's languages; English left out when the suite says ``include_english_in_average: false``),
per category (mean of its tasks) and the suite average (mean of tasks, or of categories when the
suite says ``average: mean-of-categories``).

Uncertainty (hierarchical paired bootstrap, B resamples): each resample draws the seeds with
replacement (one draw per resample, shared by every cell, so the seed spread propagates into
the averages) and, inside each cell, the example ids with replacement - the same ids for both
arms and every seed (paired). Cells whose example-id lists are identical (parallel test sets
such as XNLI's languages) share their id draw. The per-example scores come from the stored
predictions (``predictions/<task>/<split>-<lang>.jsonl``); corpus-level metrics resample their
per-example sufficient statistics where they register them (chunk F1, chrF++, spBLEU) and are
recomputed per resample otherwise. Aggregated margins average the replicates of their cells, so their intervals
carry every source of variation. Intervals are percentile intervals; p-values are two-sided
centred-bootstrap p-values for margin = 0 (:func:`mmxfer.compare.stats.bootstrap_p`).

Tracks: every (task, metric) a suite declares is a track (FLORES-200: xSIM, SIB-200 accuracy, translation
chrF++ and spBLEU). A declared track that the runs lack, or whose rows carry no score (spBLEU without the
FLORES-200 SentencePiece model), is reported as missing with the reason (:class:`Track`), never dropped in
silence; a track that some arms lack names them. A run limited to some languages (``--languages``) covers only
those: its cells exist for them alone, and the track records the subset. With ``overall: false`` (a suite whose
tracks mix error rates and scores) there is no suite level at all.

Multiple comparisons: per-language p-values are corrected across the languages of one
(comparison, task) with Holm's step-down method (family-wise error; ``bh`` = Benjamini-Hochberg
is available); task-level p-values across the tasks of one comparison, category-level across
its categories, suite-level across comparisons. ``significant`` = adjusted p < alpha.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mmxfer import catalog
from mmxfer.compare import stats
from mmxfer.compare.example_scores import example_scores, prediction_columns, scorer_for, task_attr
from mmxfer.compare.results import check_recorded_score
from mmxfer.compare.settings import GapSettings
from mmxfer.errors import AssetError, ConfigError, DataError, RunStoreError
from mmxfer.languages import is_english
from mmxfer.runs import atomic
from mmxfer.runs.store import Run

log = logging.getLogger(__name__)

MULTIMODAL = ("image-text", "mixed")
LEVELS = ("language", "task", "category", "suite")
POOLED_MULTIMODAL, POOLED_TEXT = "pooled-multimodal", "pooled-text"
#: comparison kinds of the modality effect, headline first; the rest compare an arm with the baseline
MODALITY_KINDS = ("multimodal-vs-twin", "pooled-multimodal-vs-text", "multimodal-vs-text")


@dataclass
class GapResult:
    """Margins at four levels; each frame has the same comparison columns."""

    languages: pd.DataFrame
    tasks: pd.DataFrame
    categories: pd.DataFrame
    suite: pd.DataFrame
    settings: GapSettings
    arms: pd.DataFrame = field(default_factory=pd.DataFrame)
    tracks: list[Track] = field(default_factory=list)  # every declared (task, metric), present or missing
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)  # category differences of modality margins

    @property
    def missing(self) -> list[Track]:
        return [t for t in self.tracks if t.status == "missing"]

    def all(self) -> pd.DataFrame:
        frames = [f.assign(level=lvl) for lvl, f in zip(LEVELS, (self.languages, self.tasks, self.categories,
                                                                    self.suite))]
        return pd.concat(frames, ignore_index=True)


def _stable_int(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def arm_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: name, modality, intermediate tasks, seeds."""
    rows = []
    for arm, grp in results.groupby("arm", sort=True):
        modalities = sorted(set(grp["modality"]))
        if len(modalities) > 1:
            raise DataError(f"arm {arm!r} has runs of different modalities ({', '.join(modalities)}); "
                            "give each arm one intermediate task set")
        rows.append({"arm": arm, "modality": modalities[0], "intermediate": grp["intermediate"].iloc[0],
                     "seeds": ",".join(str(s) for s in sorted(grp["seed"].dropna().unique())),
                     "n_runs": grp["run_id"].nunique()})
    return pd.DataFrame(rows)


def _canonical(name: str) -> str:
    spec = catalog.find_task(name)
    return spec.name if spec is not None else name


def _tasks_of(row: Any) -> frozenset[str]:
    return frozenset(_canonical(t) for t in str(row.intermediate or "").split(",") if t)


def twins(arms: pd.DataFrame) -> dict[str, str]:
    """multimodal arm -> its text twin: the text arm whose intermediate tasks are exactly the twins
    (``extra["twin_of"]``) of the multimodal arm's tasks; arms without such a partner are left out."""
    tasks = {row.arm: _tasks_of(row) for row in arms.itertuples()}
    modality = dict(zip(arms["arm"], arms["modality"]))
    out: dict[str, str] = {}
    for text_arm, names in tasks.items():
        if modality[text_arm] != "text" or not names:
            continue
        twin_of = set()
        for name in names:
            spec = catalog.find_task(name)
            partner = spec.extra.get("twin_of") if spec is not None else None
            if partner is None:
                break
            twin_of.add(_canonical(partner))
        else:
            for arm, mm_names in tasks.items():
                if modality[arm] in MULTIMODAL and mm_names == frozenset(twin_of) and arm not in out:
                    out[arm] = text_arm
    return out


def comparisons(arms: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(arm, reference, kind): each multimodal arm vs its text twin, the pooled multimodal arms vs the pooled
    text arms (when a side has more than one arm), every other multimodal-text pair, and every arm vs the
    baseline (see the module docstring). Pooled sides are named :data:`POOLED_MULTIMODAL` and
    :data:`POOLED_TEXT`; :func:`members` gives their arms."""
    by_mod = defaultdict(list)
    for row in arms.itertuples():
        by_mod[row.modality].append(row.arm)
    baselines = by_mod.get("none", [])
    if not baselines:
        raise RunStoreError(
            "no baseline arm among the finished runs (an arm with no intermediate task, "
            "`mmxfer train --intermediate none`); margins against the baseline need it"
        )
    multimodal = [a for m in MULTIMODAL for a in by_mod.get(m, [])]
    text = by_mod.get("text", [])
    twin = twins(arms)
    pairs = [(a, twin[a], "multimodal-vs-twin") for a in multimodal if a in twin]
    if multimodal and text and (len(multimodal) > 1 or len(text) > 1):
        pairs.append((POOLED_MULTIMODAL, POOLED_TEXT, "pooled-multimodal-vs-text"))
    pairs += [(a, t, "multimodal-vs-text") for a in multimodal for t in text if twin.get(a) != t]
    pairs += [(a, b, "multimodal-vs-baseline") for a in multimodal for b in baselines]
    pairs += [(t, b, "text-vs-baseline") for t in text for b in baselines]
    if not pairs:
        raise RunStoreError("nothing to compare: the finished runs have only baseline arms")
    return pairs


def members(arms: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Each side a comparison may name -> its arms (an arm is its own only member; the pooled sides)."""
    out = {a: (a,) for a in arms["arm"]}
    out[POOLED_MULTIMODAL] = tuple(a for a, m in zip(arms["arm"], arms["modality"]) if m in MULTIMODAL)
    out[POOLED_TEXT] = tuple(a for a, m in zip(arms["arm"], arms["modality"]) if m == "text")
    return out


def check_consistent(results: pd.DataFrame) -> None:
    """One trunk and one suite per comparison (mixing them would confound the margins)."""
    trunks = sorted({t for t in results["trunk"].dropna() if t})
    if len(trunks) > 1:
        raise ConfigError(f"runs of different trunks are mixed ({', '.join(trunks)}); "
                          "compare one trunk at a time (pass --runs for one study)")
    if "suite" in results:
        suites = sorted({s for s in results["suite"].dropna() if s})
        if len(suites) > 1:
            raise ConfigError(f"runs of different suites are mixed ({', '.join(suites)}); "
                              "compare runs of one suite at a time")


@dataclass(frozen=True)
class SuiteEntry:
    """One scored (task, metric) of a suite: metric names to look for in the runs (first found wins),
    the split, and a category override. A task may appear in several entries (FLORES-200: xSIM, chrF++)."""

    task: str
    metrics: tuple[str, ...] = ()
    split: str | None = None
    category: str | None = None
    score_key: str | None = None  # compare this key of the runs' ``scores`` (QA: f1_em, XTREME's task score)


def _with_score_key(sub: pd.DataFrame, key: str) -> pd.DataFrame:
    """``sub`` valued by ``scores[key]`` of each run's metric row, under the metric name ``key``; unchanged (with a
    warning) when a run did not record it."""
    recorded: dict[str, dict[tuple, dict]] = {}
    values = []
    for row in sub.itertuples():
        if row.path not in recorded:
            recorded[row.path] = {(m.get("task"), str(m.get("lang")), m.get("split", "test"), m.get("metric")):
                                  m.get("scores") or {} for m in Run(row.path).metrics() if not m.get("part")}
        values.append(recorded[row.path].get((row.task, row.lang, row.split, row.metric), {}).get(key))
    if any(v is None for v in values):
        log.warning("task %s: not every run recorded %r; comparing its headline %s", sub["task"].iloc[0], key,
                    sub["metric"].iloc[0])
        return sub
    return sub.assign(score=[float(v) for v in values], metric=key)


@dataclass(frozen=True)
class Track:
    """One declared (task, metric) of a suite and what the runs hold for it."""

    task: str
    metric: str | None  # the metric the runs' rows carry (None when the runs have no rows for the task)
    category: str | None
    status: str  # "ok" or "missing"
    reason: str = ""  # why it is missing
    n_languages: int = 0
    languages_subset: tuple[str, ...] = ()  # the runs were limited to these languages (--languages); () = all
    arms_missing: tuple[str, ...] = ()  # arms with no scored run for this track
    label: str = ""  # how tables and the printed answer name it: "task (metric)"
    note: str = ""  # e.g. why its margins have no intervals

    @property
    def name(self) -> str:
        return self.label or self.task


def _chosen_metric(task_rows: pd.DataFrame, entry: SuiteEntry, several: bool) -> str | None:
    """The metric :func:`select_metrics` keeps for ``entry`` (None: the runs have none it accepts)."""
    metrics = sorted(set(task_rows["metric"]))
    chosen = next((c for c in entry.metrics if c in metrics), None)
    if chosen is None and metrics and not (entry.metrics and several):
        spec = task_attr(entry.task, "metric")
        chosen = spec if spec in metrics else metrics[0]
    return chosen


def _run_reasons(rows: pd.DataFrame, task: str, metric: str) -> list[str]:
    """The ``missing`` reasons the runs' metric rows give for (task, metric) rows without a score."""
    reasons: list[str] = []
    for path in dict.fromkeys(rows["path"]):
        for m in Run(path).metrics():
            if m.get("task") == task and m.get("metric") == metric and m.get("score") is None and m.get("missing"):
                reasons.append(str(m["missing"]))
    return list(dict.fromkeys(reasons))


def _how_to_run(task: str) -> str:
    spec = catalog.find_task(task)
    if spec is None:
        return f"no finished run has {task} scores"
    from mmxfer.kinds import kind_of

    if kind_of(spec).trunk_only:
        return (f"no finished run has {task} scores: evaluate each arm's trunk (a study with this suite adds one "
                f"retrieval run per arm and seed, or `mmxfer train --intermediate ARM` without --target)")
    return (f"no finished run has {task} scores: train it (`mmxfer train --intermediate ARM --target {task}`, or a "
            f"study with this suite, which runs every track)")


def _subset(rows: pd.DataFrame) -> tuple[str, ...]:
    """The union of the runs' ``--languages`` subsets; () when any run covers every language."""
    union: list[str] = []
    for path in dict.fromkeys(rows["path"]):
        langs = Run(path).config().get("languages")
        if not langs:
            return ()
        union += [str(x) for x in langs]
    return tuple(dict.fromkeys(union))


def describe_tracks(results: pd.DataFrame, scored: pd.DataFrame, entries: list[SuiteEntry] | None) -> list[Track]:
    """One :class:`Track` per declared entry (without entries: per task and metric of ``scored``): its metric,
    status and, when missing, why; ``scored`` = the selected rows that carry a score."""
    if entries is None:
        pairs = scored[["task", "metric"]].drop_duplicates()
        entries = [SuiteEntry(r.task, (r.metric,)) for r in pairs.itertuples()]
    per_task: dict[str, int] = defaultdict(int)
    for e in entries:
        per_task[e.task] += 1
    arms = sorted(set(results["arm"]))
    tracks: list[Track] = []
    for e in entries:
        several = per_task[e.task] > 1
        task_rows = results[results["task"] == e.task]
        metric = _chosen_metric(task_rows, e, several) if not task_rows.empty else None
        label = f"{e.task} ({metric or '/'.join(e.metrics) or 'no scores'})"
        common = {"task": e.task, "metric": metric, "category": e.category, "label": label}
        if task_rows.empty:
            tracks.append(Track(status="missing", reason=_how_to_run(e.task), **common))
            continue
        if metric is None:
            tracks.append(Track(status="missing", reason=f"the runs have {e.task} scores for "
                                f"{', '.join(sorted(set(task_rows['metric'])))} but none for {'/'.join(e.metrics)}",
                                **common))
            continue
        rows = scored[(scored["task"] == e.task) & (scored["metric"] == metric)]
        if rows.empty and e.score_key:  # valued by scores[score_key] (select_metrics renames the metric to it)
            rows = scored[(scored["task"] == e.task) & (scored["metric"] == e.score_key)]
            if not rows.empty:
                common.update(metric=e.score_key, label=f"{e.task} ({e.score_key})")
        if rows.empty:
            unscored = task_rows[task_rows["metric"] == metric]
            reasons = _run_reasons(unscored, e.task, metric) or [f"the runs' {e.task} {metric} rows have no score"]
            tracks.append(Track(status="missing", reason="; ".join(reasons), **common))
            continue
        tracks.append(Track(status="ok", n_languages=int(rows["lang"].nunique()), languages_subset=_subset(rows),
                            arms_missing=tuple(a for a in arms if a not in set(rows["arm"])), **common))
    return tracks


def select_metrics(results: pd.DataFrame, entries: list[SuiteEntry] | None = None) -> pd.DataFrame:
    """Keep the rows each entry asks for: its first metric the runs have (without any: the task
    spec's metric, else the first in name order), its split (else ``test`` when present)."""
    if entries is None:
        entries = [SuiteEntry(t) for t in dict.fromkeys(results["task"])]
    per_task = defaultdict(int)
    for e in entries:
        per_task[e.task] += 1
    keep = []
    for e in entries:
        grp = results[results["task"] == e.task]
        if grp.empty:
            continue
        metrics = sorted(set(grp["metric"]))
        metric = next((c for c in e.metrics if c in metrics), None)
        if metric is None:
            if e.metrics and per_task[e.task] > 1:
                log.warning("task %s: no %s scores in the runs; entry skipped", e.task, "/".join(e.metrics))
                continue
            if e.metrics:
                log.warning("task %s: no %s scores in the runs; using %s", e.task, "/".join(e.metrics), metrics)
            spec = task_attr(e.task, "metric")
            metric = spec if spec in metrics else metrics[0]
        sub = grp[grp["metric"] == metric]
        have = set(sub["split"])
        split = e.split if e.split in have else ("test" if "test" in have else sorted(have)[0])
        sub = sub[sub["split"] == split]
        if e.score_key and not sub.empty:
            sub = _with_score_key(sub, e.score_key)
        if e.category:
            sub = sub.assign(category=e.category)
        keep.append(sub)
    if not keep:
        return results.iloc[0:0]
    return pd.concat(keep, ignore_index=True).drop_duplicates(["run_id", "task", "lang", "split", "metric"])


def _registered(task: str, metric: str, entries: list[SuiteEntry] | None) -> list[str]:
    """Registry metric names that may score (task, metric): the metric itself, the entry's names, the spec's."""
    names = [metric]
    for e in entries or []:
        if e.task == task and (metric in e.metrics or metric == e.score_key):
            names += list(e.metrics)
    spec = task_attr(task, "metric")
    return [*dict.fromkeys(names + ([spec] if spec else []))]


def _higher_is_better(names: list[str]) -> bool:
    """The first registered metric's direction; True when none of ``names`` is registered."""
    catalog.load_plugins()
    for name in names:
        if name in catalog.METRICS:
            return catalog.METRICS.get(name).higher_is_better
    return True


class _Cell:
    """All arms' runs on one task x split x language x metric."""

    def __init__(self, key: tuple[str, str, str, str], category: str, grp: pd.DataFrame) -> None:
        self.task, self.split, self.lang, self.metric = key
        self.category = category
        self.runs: dict[str, dict[int, tuple[float, str, Any]]] = defaultdict(dict)
        for row in grp.itertuples():
            seed = int(row.seed) if pd.notna(row.seed) else 0
            if seed in self.runs[row.arm]:
                other = self.runs[row.arm][seed][1]
                raise DataError(f"two finished runs for arm {row.arm!r} seed {seed} on {self.task}.{self.lang}: "
                                f"{other} and {row.path}; remove one or pass --runs for one study")
            self.runs[row.arm][seed] = (float(row.score), row.path, row.n_examples)

    def seeds(self, *arms: str) -> list[int]:
        """The seeds every one of ``arms`` has a run of."""
        common = set(self.runs.get(arms[0], {}))
        for arm in arms[1:]:
            common &= set(self.runs.get(arm, {}))
        return sorted(common)

    def mean_score(self, arms: tuple[str, ...], seed: int) -> float:
        return float(np.mean([self.runs[a][seed][0] for a in arms]))


def _recorded_params(cell: _Cell, needed: list[tuple[str, int]]) -> dict[str, Any]:
    """Metric arguments the runs were scored with and re-scoring must use again: spBLEU's SentencePiece model
    (``settings.spm_model`` of its rows), which may not be what this machine would resolve now."""
    if cell.metric not in catalog.METRICS or catalog.METRICS.canonical(cell.metric) != "spbleu":
        return {}
    models = set()
    for arm, seed in needed:
        for row in Run(cell.runs[arm][seed][1]).metrics():
            if (row.get("task"), row.get("split"), row.get("lang"), row.get("metric")) == \
                    (cell.task, cell.split, cell.lang, cell.metric) and not row.get("part"):
                models.add((row.get("settings") or {}).get("spm_model"))
    models.discard(None)
    if len(models) > 1:
        raise DataError(f"{cell.task}.{cell.lang}: the runs scored spBLEU with different SentencePiece models "
                        f"({', '.join(sorted(models))}); re-score them with one (mmxfer evaluate --rescore RUN "
                        f"with MMXFER_FLORES200_SPM set)")
    return {"spm_model": models.pop()} if models else {}


def _cell_replicates(cell: _Cell, needed: list[tuple[str, int]], settings: GapSettings,
                     draw_cache: dict[int, np.ndarray], names: list[str]
                     ) -> tuple[dict[tuple[str, int], np.ndarray], int]:
    """Bootstrap replicate scores (B,) per (arm, seed) on shared example draws; and n examples."""
    loaded = {}
    for arm, seed in needed:
        run = Run(cell.runs[arm][seed][1])
        path = run.predictions_path(cell.task, cell.split, cell.lang)
        if not path.is_file():
            raise RunStoreError(
                f"missing predictions for the bootstrap: {path} (arm {arm}, seed {seed}); re-run "
                f"`mmxfer evaluate --run {run.path}` or pass --bootstrap 0 for margins without intervals"
            )
        loaded[(arm, seed)] = prediction_columns(path)
    ref_ids = next(iter(loaded.values()))[0]
    if all(v[0] == ref_ids for v in loaded.values()):
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
    n = len(ids)
    B = settings.n_boot
    draw_key = _stable_int(settings.seed, cell.task, cell.split, n, hashlib.blake2b(
        "\x1f".join(map(str, ids)).encode(), digest_size=8).hexdigest())
    scorer = scorer_for(cell.task, cell.metric, names, lang=cell.lang, params=_recorded_params(cell, needed))
    if ids is ref_ids:  # whole files: each must give the score its run recorded (point estimate = interval's data)
        for (arm, seed), (golds, preds) in aligned.items():
            check_recorded_score(cell.runs[arm][seed][1], cell.task, cell.split, cell.lang, cell.metric,
                                 cell.runs[arm][seed][0], scorer.fn(golds, preds))
    out: dict[tuple[str, int], np.ndarray] = {}
    if not scorer.corpus_level or scorer.stats is not None:
        if draw_key not in draw_cache:
            draw_cache.clear()  # parallel languages come together; keep memory flat
            draw_cache[draw_key] = stats.resample_counts(np.random.default_rng(draw_key), n, B)
        counts = draw_cache[draw_key]
        keys = list(aligned)
        if scorer.stats is not None:  # corpus-level: resample summed per-example statistics
            counts64 = counts.astype(np.float64)
            for k in keys:
                out[k] = scorer.from_stats(counts64 @ scorer.stats(*aligned[k])).astype(np.float32)
            return out, n
        X = np.stack([example_scores(scorer, *aligned[k]) for k in keys], axis=1)  # (n, K)
        M = counts @ X / n  # (B, K)
        for j, k in enumerate(keys):
            out[k] = M[:, j]
        return out, n
    rng = np.random.default_rng(draw_key)
    idx = rng.integers(0, n, size=(B, n))
    for k, (golds, preds) in aligned.items():  # lists, not object arrays: equal-length pairs would become 2-D
        out[k] = np.fromiter((scorer.fn([golds[j] for j in row], [preds[j] for j in row]) for row in idx),
                             np.float32, B)
    return out, n


def _seed_draws(settings: GapSettings, k: int) -> np.ndarray:
    rng = np.random.default_rng(_stable_int(settings.seed, "seeds", k))
    if settings.resample_seeds and k > 1:
        return rng.integers(0, k, size=(settings.n_boot, k))
    return np.tile(np.arange(k), (settings.n_boot, 1))


def compute_gaps(results: pd.DataFrame, settings: GapSettings | None = None,
                 entries: list[SuiteEntry] | None = None) -> GapResult:
    """Margins at every level from the tidy table (see module docstring for the method)."""
    settings = settings or GapSettings()
    if settings.correction not in stats.CORRECTIONS:
        raise ConfigError(f"unknown correction {settings.correction!r}; choose from {', '.join(stats.CORRECTIONS)}")
    if not 0 < settings.alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {settings.alpha}")
    if settings.n_boot < 0:
        raise ConfigError(f"--bootstrap must be >= 0, got {settings.n_boot}")
    frame = select_metrics(results, entries)
    frame = frame[frame["score"].notna()].reset_index(drop=True)  # unscored rows: their tracks say why
    tracks = describe_tracks(results, frame, entries)
    if frame.empty:
        wanted = ", ".join(dict.fromkeys(e.task for e in entries or []))
        why = "; ".join(f"{t.name}: {t.reason}" for t in tracks if t.status == "missing")
        raise RunStoreError(f"no finished run has scores for the suite's tasks ({wanted}); "
                            f"the runs have: {', '.join(sorted(set(results['task'])))}{' (' + why + ')' if why else ''}")
    check_consistent(frame)
    arms = arm_table(frame)
    pairs = comparisons(arms)
    side = members(arms)
    B = settings.n_boot

    cells = [_Cell(key, grp["category"].iloc[0], grp)
             for key, grp in frame.groupby(["task", "split", "lang", "metric"], sort=True)]
    rows: list[dict[str, Any]] = []
    reps: list[np.ndarray | None] = []
    draw_cache: dict[int, np.ndarray] = {}
    notes: dict[tuple[str, str], str] = {}
    bar = tqdm(cells, desc="compare", unit="cell", disable=not settings.progress or len(cells) < 20)
    for cell in bar:
        names = _registered(cell.task, cell.metric, entries)
        sign = 1.0 if _higher_is_better(names) else -1.0
        active = [(a, r, kind, cell.seeds(*side[a], *side[r])) for a, r, kind in pairs]
        active = [p for p in active if p[3]]
        if not active:
            continue
        cell_reps: dict[tuple[str, int], np.ndarray] = {}
        n = None
        if B > 0:
            needed = sorted({(arm, s) for a, r, _, seeds in active for arm in (*side[a], *side[r]) for s in seeds})
            try:
                cell_reps, n = _cell_replicates(cell, needed, settings, draw_cache, names)
            except AssetError as exc:  # spBLEU without the SentencePiece model here: margins without intervals
                notes[(cell.task, cell.metric)] = f"no intervals: {exc}"
                cell_reps = {k: np.full(B, np.nan, np.float32) for k in needed}
        for a, r, kind, seeds in active:
            sa = np.array([cell.mean_score(side[a], s) for s in seeds])
            sr = np.array([cell.mean_score(side[r], s) for s in seeds])
            n_ex = n if n is not None else cell.runs[side[a][0]][seeds[0]][2]
            rows.append({"arm": a, "reference": r, "kind": kind, "task": cell.task, "category": cell.category,
                         "metric": cell.metric, "split": cell.split, "lang": cell.lang,
                         "higher_is_better": sign > 0, "score_arm": sa.mean(), "score_reference": sr.mean(),
                         "margin": float(sign * (sa - sr).mean()),
                         "n_seeds": len(seeds), "n_examples": n_ex})
            if B > 0:
                diff = sign * np.stack([_side_reps(cell_reps, side[a], s) - _side_reps(cell_reps, side[r], s)
                                        for s in seeds], axis=1)  # (B, k)
                sidx = _seed_draws(settings, len(seeds))
                reps.append(np.take_along_axis(diff, sidx, axis=1).mean(axis=1).astype(np.float32))
            else:
                reps.append(None)
    if not rows:
        raise RunStoreError("no task x language has finished runs of both arms of any comparison")
    lang_df = pd.DataFrame(rows)
    lang_reps = np.stack(reps) if B > 0 else np.zeros((len(rows), 0), np.float32)
    lang_df = _finish(lang_df, lang_reps, settings, group=["arm", "reference", "task", "metric"])

    # aggregate: task = mean over languages, category = mean over tasks, suite = mean over tasks/categories
    in_avg = np.array([settings.include_english or not is_english(x) for x in lang_df["lang"]])
    task_df, task_reps = _group_means(lang_df[in_avg], lang_reps[in_avg],
                                    ["arm", "reference", "kind", "category", "task", "metric"])
    task_df = _finish(task_df, task_reps, settings, group=["arm", "reference"])
    cat_df, cat_reps = _group_means(task_df, task_reps, ["arm", "reference", "kind", "category"])
    cat_df = _finish(cat_df, cat_reps, settings, group=["arm", "reference"])
    contrasts = category_contrasts(cat_df, cat_reps, settings)
    if settings.average == "mean-of-categories":
        suite_df, suite_reps = _group_means(cat_df, cat_reps, ["arm", "reference", "kind"])
    else:
        suite_df, suite_reps = _group_means(task_df, task_reps, ["arm", "reference", "kind"])
    suite_df = _finish(suite_df, suite_reps, settings, group=None)
    if not settings.overall:  # the suite declares no overall number: none is computed, shown or written
        suite_df = suite_df.iloc[0:0]
    tracks = [dataclasses.replace(t, note=notes[(t.task, t.metric)]) if (t.task, t.metric) in notes else t
              for t in tracks]
    return GapResult(lang_df, task_df, cat_df, suite_df, settings, arms, tracks, contrasts)


def _side_reps(cell_reps: dict[tuple[str, int], np.ndarray], arms: tuple[str, ...], seed: int) -> np.ndarray:
    """Bootstrap replicates of one side of a comparison for one seed: the mean over its arms (same draws)."""
    if len(arms) == 1:
        return cell_reps[(arms[0], seed)]
    return np.mean([cell_reps[(a, seed)] for a in arms], axis=0)


def category_order(category: str) -> tuple[bool, bool]:
    """Sort key of categories in what a report lists: classification first, retrieval last, the rest kept in
    their order between (a stable sort)."""
    return category != "classification", category == "retrieval"


CONTRAST_COLUMNS = ("arm", "reference", "kind", "category", "other", "margin", "margin_category",
                    "margin_other", "ci_low", "ci_high", "p", "p_adj", "significant", "correction")


def category_contrasts(cat_df: pd.DataFrame, cat_reps: np.ndarray, settings: GapSettings) -> pd.DataFrame:
    """For each modality comparison (:data:`MODALITY_KINDS`) and each pair of its categories: how much larger
    its margin is on ``category`` than on ``other`` (``margin_category - margin_other``), with a percentile
    interval and p-value from the same bootstrap replicates (so the shared seeds and examples are paired);
    p-values are corrected across the contrasts of one comparison. Categories in suite order of appearance;
    classification before retrieval when both are there."""
    frame = cat_df.reset_index(drop=True)
    rows, reps = [], []
    for (arm, ref), grp in frame.groupby(["arm", "reference"], sort=False):
        if grp["kind"].iloc[0] not in MODALITY_KINDS or len(grp) < 2:
            continue
        order = sorted(grp.index, key=lambda i: category_order(grp.at[i, "category"]))
        for x, i in enumerate(order):
            for j in order[x + 1:]:
                rows.append({"arm": arm, "reference": ref, "kind": grp.at[i, "kind"],
                             "category": grp.at[i, "category"], "other": grp.at[j, "category"],
                             "margin": float(grp.at[i, "margin"] - grp.at[j, "margin"]),
                             "margin_category": float(grp.at[i, "margin"]), "margin_other": float(grp.at[j, "margin"])})
                reps.append(cat_reps[i] - cat_reps[j] if cat_reps.shape[1] else np.zeros(0, np.float32))
    if not rows:
        return pd.DataFrame(columns=list(CONTRAST_COLUMNS))
    out = pd.DataFrame(rows)
    return _finish(out, np.stack(reps).astype(np.float32), settings, group=["arm", "reference"])[list(CONTRAST_COLUMNS)]


def _group_means(df: pd.DataFrame, reps: np.ndarray, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Mean margins (and scores) and mean bootstrap replicates within groups of ``keys``: one level of the
    language -> task -> category -> suite averaging (the point-score twin for one run's metric rows is
    :func:`mmxfer.evaluation.suites.suite_scores`)."""
    df = df.reset_index(drop=True)
    codes = df.groupby(keys, sort=False).ngroup().to_numpy()
    g = int(codes.max()) + 1 if len(codes) else 0
    counts = np.bincount(codes, minlength=g).astype(float)
    first = np.unique(codes, return_index=True)[1]
    out = df.loc[first, keys].reset_index(drop=True)
    for col in ("margin", "score_arm", "score_reference"):
        out[col] = np.bincount(codes, weights=df[col].to_numpy(float), minlength=g) / counts
    out["n_seeds"] = df.groupby(codes)["n_seeds"].min().to_numpy()
    out["n_cells"] = np.bincount(codes, weights=df.get("n_cells", pd.Series(1, index=df.index)).to_numpy(float),
                                 minlength=g).astype(int)
    if reps.shape[1]:
        agg = np.zeros((g, reps.shape[1]), np.float64)
        np.add.at(agg, codes, reps)
        agg /= counts[:, None]
    else:
        agg = np.zeros((g, 0))
    return out, agg.astype(np.float32)


def _finish(df: pd.DataFrame, reps: np.ndarray, settings: GapSettings, group: list[str] | None) -> pd.DataFrame:
    """Add interval, p-value, corrected p-value and the significance flag."""
    df = df.reset_index(drop=True).copy()
    lo, hi = stats.percentile_interval(reps, settings.alpha)
    df["ci_low"], df["ci_high"] = lo, hi
    df["p"] = stats.bootstrap_p(reps, df["margin"].to_numpy(float))
    if reps.shape[-1]:  # cells without replicates (no intervals could be computed) have no p-value either
        df.loc[np.isnan(reps).all(axis=-1), "p"] = np.nan
    if group is None:
        df["p_adj"] = stats.adjust(df["p"].to_numpy(), settings.correction)
    else:
        df["p_adj"] = np.nan
        for _, idx in df.groupby(group, sort=False).groups.items():
            df.loc[idx, "p_adj"] = stats.adjust(df.loc[idx, "p"].to_numpy(), settings.correction)
    df["significant"] = df["p_adj"] < settings.alpha
    df["correction"] = settings.correction
    return df


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
