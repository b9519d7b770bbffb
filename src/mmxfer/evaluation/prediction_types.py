"""What the ``pred`` and ``gold`` of a predictions row must be for the metric that scores it.

Metrics compare whatever they are given: a classification file whose predictions are strings scores 0
instead of failing. Before re-scoring, every file is checked against the row shapes documented in
:mod:`mmxfer.runs.store`, and the first row that does not fit is named in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.runs.store import read_predictions


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def _index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _row_or_rows(v: Any) -> bool:
    return _index(v) or (isinstance(v, list) and bool(v) and all(_index(x) for x in v))


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _text_or_none(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _answers(v: Any) -> bool:
    return isinstance(v, str) or _texts(v)


def _pair_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) == 2)


Check = Callable[[Any], bool]
#: metric -> (pred check, what pred must be, gold check, what gold must be)
SHAPES: dict[str, tuple[Check, str, Check, str]] = {
    "accuracy": (_scalar, "a label (index or name)", _scalar, "a label (index or name)"),
    "tatoeba_accuracy": (_index, "a row index", _row_or_rows, "a row index or a list of them"),
    "xsim": (_index, "a row index", _row_or_rows, "a row index or a list of them"),
    "bucc_f1": (_pair_or_none, "an id pair or null", _pair_or_none, "an id pair or null"),
    "span_f1": (_texts, "a list of tags", _texts, "a list of tags"),
    "token_f1": (_texts, "a list of tags", _texts, "a list of tags"),
    "squad": (_text_or_none, "an answer text or null", _answers, "a list of answer texts"),
    "tydiqa": (_text_or_none, "an answer text or null", _answers, "a list of answer texts"),
    "mlqa": (_text_or_none, "an answer text or null", _answers, "a list of answer texts"),
    "vqa_accuracy": (_text_or_none, "an answer text", _answers, "a list of human answers"),
    "chrf_pp": (_text, "a hypothesis text", _text, "a reference text"),
    "spbleu": (_text, "a hypothesis text", _text, "a reference text"),
}


def _kind_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def check_rows(path: str | Path, rows: list[dict[str, Any]], metric: str) -> None:
    """One clear error naming ``path`` and the first row whose pred or gold ``metric`` cannot score."""
    shape = SHAPES.get(catalog.METRICS.canonical(metric) if metric in catalog.METRICS else metric)
    if shape is None:
        return
    pred_ok, pred_what, gold_ok, gold_what = shape
    for n, row in enumerate(rows, 1):
        pred, gold = row.get("pred"), row.get("gold")
        if not pred_ok(pred):
            raise DataError(
                f"{path}: row {n}: pred is {_kind_name(pred)} {pred!r:.40}, but {metric} scores "
                f"{pred_what}: these predictions do not belong to this task"
            )
        if not gold_ok(gold):
            raise DataError(
                f"{path}: row {n}: gold is {_kind_name(gold)} {gold!r:.40}, but {metric} scores "
                f"{gold_what}: these predictions do not belong to this task"
            )
        if metric == "accuracy" and type(pred) is not type(gold):
            raise DataError(
                f"{path}: row {n}: pred is {_kind_name(pred)} {pred!r:.40} but gold is "
                f"{_kind_name(gold)} {gold!r:.40}; {metric} compares labels of one kind (both indices "
                f"or both names): these predictions do not belong to this task"
            )


def check_prediction_files(
    files: Iterable[tuple[str, str, str, Path]],
    metrics: dict[tuple[str, str, str], str] | None = None,
) -> None:
    """Check every ``(task, split, lang, path)`` predictions file (empty files and bad JSON are named too);
    ``metrics`` gives the metric of a file where it is not its task's own."""
    catalog.load_plugins()
    for task, split, lang, path in files:
        metric = (metrics or {}).get((task, split, lang)) or getattr(
            catalog.find_task(task), "metric", None
        )
        rows = read_predictions(path)
        if metric:
            check_rows(path, rows, metric)
