"""Token lengths of the tasks' examples (XLM-R SentencePiece pieces): what the cost estimate pads and truncates.

The table ``mmxfer/resources/cost/token_lengths.json`` holds, per task, the distribution of one featurised
example's length as the task's kind makes it (special tokens included, before truncation to a recipe's
``max_length``): 21 quantiles (0, 5, ..., 100 %). Every entry says whether it was **measured** - featurised
here from real data (the SIB-200 files shipped with mmxfer; excerpts of XQuAD, PAWS-X, UD, Tatoeba, FLORES-200
and Multi30K) by :func:`measure`, written by ``benchmarks/token_lengths.py`` - or **assumed** (no copy of the
data on the machine that wrote the table): then the source gives the typical length in words, turned into pieces
with the pieces-per-word ratio measured on English FLORES-200 sentences, and the spread is an assumed log-normal.

Per kind, "one example" is: a sequence (classification, tagging, captioning, VQA, retrieval: one sentence); span
QA: question + context (with ``question`` the question's own pieces, which set the window stride); multiple
choice: one choice's sequence (``choices`` sequences an example); translation: the source, with ``target`` the
English side's label length.

Other languages: a task's length in language ``x`` is its measured length scaled by ``ratio(x) /
ratio(measured language)``, ratios measured on the same FLORES-200 sentences in 61 languages (SIB-200's test split:
the same 204 sentences in every language); a language outside them takes the median ratio, marked assumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mmxfer.errors import ConfigError

TABLE = Path(__file__).resolve().parent.parent / "resources" / "cost" / "token_lengths.json"
QUANTILE_POINTS = tuple(i / 20 for i in range(21))  # 0, 5, ..., 100 %
MEASURED, ASSUMED = "measured", "assumed"


@dataclass(frozen=True)
class Lengths:
    """A length distribution given by its quantiles at :data:`QUANTILE_POINTS`."""

    quantiles: tuple[float, ...]

    @property
    def mean(self) -> float:
        """The mean of the piecewise-linear quantile function (the trapezoid rule over the 20 intervals)."""
        q = self.quantiles
        return float(sum((a + b) / 2 for a, b in zip(q[:-1], q[1:])) / (len(q) - 1))

    def scaled(self, factor: float) -> Lengths:
        return Lengths(tuple(max(1.0, v * factor) for v in self.quantiles))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` integer lengths drawn from the distribution (inverse CDF, linear between quantiles)."""
        u = np.random.default_rng(seed).random(n)
        return np.maximum(1, np.rint(np.interp(u, QUANTILE_POINTS, self.quantiles))).astype(
            np.int64
        )


@dataclass(frozen=True)
class TaskLengths:
    """One task's entry of the table."""

    task: str
    tokens: Lengths
    status: str  # measured | assumed
    source: str
    language: str  # the language the lengths are of
    question: float | None = None  # span QA: the question's pieces
    choices: int | None = None  # multiple choice: sequences an example
    target: Lengths | None = None  # translation: the English label length (pieces + end token)


def quantiles_of(values: Sequence[float]) -> tuple[float, ...]:
    """The 21 quantiles of ``values`` (rounded to 0.1 piece) as the table stores them."""
    if not len(values):
        raise ValueError("no lengths to summarise")
    return tuple(
        round(float(v), 1)
        for v in np.quantile(np.asarray(values, dtype=np.float64), QUANTILE_POINTS)
    )


def lognormal(mean: float, cv: float) -> Lengths:
    """An assumed length distribution: log-normal with ``mean`` and coefficient of variation ``cv``, its
    0 and 100 % points taken at 0.5 and 99.5 % (a log-normal has no finite ends)."""
    from statistics import NormalDist

    sigma = math.sqrt(math.log(1 + cv * cv))
    mu = math.log(mean) - sigma * sigma / 2
    points = [min(max(p, 0.005), 0.995) for p in QUANTILE_POINTS]
    return Lengths(tuple(round(math.exp(mu + sigma * NormalDist().inv_cdf(p)), 1) for p in points))


def _lengths(data: Any) -> Lengths:
    if isinstance(data, dict) and "quantiles" in data:
        return Lengths(tuple(float(v) for v in data["quantiles"]))
    if isinstance(data, dict) and "mean" in data:
        return lognormal(float(data["mean"]), float(data.get("cv", 0.5)))
    raise ConfigError(f"{TABLE}: a length entry needs 'quantiles' or 'mean' (got {data!r})")


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def task_lengths(task: str) -> TaskLengths | None:
    """The table's entry for ``task`` (its canonical name); None when the table has none."""
    entry = table()["tasks"].get(task)
    if entry is None:
        return None
    return TaskLengths(
        task=task,
        tokens=_lengths(entry["tokens"]),
        status=entry["status"],
        source=entry["source"],
        language=entry["language"],
        question=entry.get("question"),
        choices=entry.get("choices"),
        target=_lengths(entry["target"]) if "target" in entry else None,
    )


def language_ratio(lang: str) -> tuple[float, bool]:
    """``(pieces of lang / pieces of English, measured)`` on the same FLORES-200 sentences; a language not
    measured gets the median of the measured ones (``measured`` False)."""
    from mmxfer.languages import to_flores

    ratios = table()["language_ratios"]["ratios"]
    try:
        code = to_flores(lang)
    except Exception:  # noqa: BLE001 - a code the language table does not know: the median, marked assumed
        code = lang
    if code in ratios:
        return float(ratios[code]), True
    return float(np.median(list(ratios.values()))), False


def lengths_in(entry: TaskLengths, lang: str) -> tuple[Lengths, bool]:
    """``entry``'s distribution in language ``lang`` and whether the language's ratio was measured."""
    to, measured = language_ratio(lang)
    base, _ = language_ratio(entry.language)
    return (entry.tokens if math.isclose(to, base) else entry.tokens.scaled(to / base)), measured


# ----------------------------------------------------------------------------- measuring


def measure(spec: Any, dataset: Any, tokenizer: Any) -> dict[str, Any]:
    """Featurise ``dataset`` with ``spec``'s kind, untruncated, and summarise the lengths as a table entry's
    numbers: ``tokens`` (and ``question``, ``choices``, ``target`` where the kind has them), ``examples``."""
    from mmxfer.kinds import FeatureOptions, featurize, kind_of

    kind = kind_of(spec)
    space = kind.label_space(dataset)
    features = featurize(
        spec, dataset, tokenizer, FeatureOptions(max_length=100_000, use_cache=False), space=space
    )
    ids = features["input_ids"]
    out: dict[str, Any] = {"examples": len(dataset)}
    if ids and isinstance(ids[0][0], list):  # multiple choice: one sequence per choice
        out["tokens"] = {"quantiles": list(quantiles_of([len(c) for row in ids for c in row]))}
        out["choices"] = round(sum(len(row) for row in ids) / len(ids))
    else:
        out["tokens"] = {"quantiles": list(quantiles_of([len(x) for x in ids]))}
    # every window repeats the question: its length shapes the windows (cost.Costing.draw)
    if kind.windowed:
        questions = tokenizer([q.lstrip() for q in dataset["question"]], add_special_tokens=False)[
            "input_ids"
        ]
        out["question"] = round(float(np.mean([len(q) for q in questions])), 1)
    if kind.generates:  # the decoder's side
        out["target"] = {"quantiles": list(quantiles_of([len(x) for x in features["labels"]]))}
    return out


def mean_pieces(tokenizer: Any, sentences: Sequence[str]) -> float:
    """Mean pieces per sentence without special tokens (what the language ratios compare)."""
    return float(
        np.mean([len(x) for x in tokenizer(list(sentences), add_special_tokens=False)["input_ids"]])
    )
