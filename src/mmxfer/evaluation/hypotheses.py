"""Score translations made elsewhere (``mmxfer evaluate --hypotheses DIR``): a folder with one file of
hypotheses per language, ``<lang>.txt`` (a FLORES-200 code, or any code that names it: ``de``, ``deu``), one
line per FLORES-200 devtest sentence in release order, scored against the English references like a run's
own translations (chrF++, spBLEU) and stored in the same predictions layout, so ``compare`` and ``--rescore``
read them as they read a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmxfer import catalog
from mmxfer.errors import ConfigError, DataError, MmxferError
from mmxfer.evaluation.scoring import score_file_metrics
from mmxfer.runs import atomic
from mmxfer.runs.store import predictions_path, write_predictions
from mmxfer.tasks.common import check_language, read_lines

DEFAULT_TASK = "flores200-translate"


def hypothesis_files(
    folder: str | Path, task: str = DEFAULT_TASK, data_dir: str | None = None
) -> dict[str, Path]:
    """``{FLORES-200 code: file}`` for every ``<lang>.txt`` in ``folder``; a name that is no language of the
    task is an error (a typo would otherwise drop a language silently)."""
    spec = catalog.task(task)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"hypotheses folder not found: {root}")
    files: dict[str, Path] = {}
    for path in sorted(root.glob("*.txt")):
        try:
            lang = check_language(spec, path.stem, data_dir)
        except MmxferError as exc:
            raise DataError(f"{path.name}: not a language of {spec.name} ({exc})") from None
        if lang in files:
            raise DataError(f"{root}: {files[lang].name} and {path.name} are both {lang}")
        files[lang] = path
    if not files:
        raise DataError(
            f"{root}: no hypothesis files; expected <lang>.txt (e.g. deu_Latn.txt), one line per "
            f"{spec.name} devtest sentence"
        )
    return files


def score_hypotheses(
    folder: str | Path,
    out_dir: str | Path,
    *,
    task: str = DEFAULT_TASK,
    data_dir: str | None = None,
    languages: Sequence[str] | None = None,
    spm_model: str | None = None,
) -> list[dict[str, Any]]:
    """Predictions files and metric rows under ``out_dir`` for the hypotheses in ``folder``; returns the rows."""
    spec = catalog.task(task)
    if spec.kind != "translation":
        raise ConfigError(
            f"--hypotheses scores translations; {spec.name} is a {spec.kind} task "
            f"(use --task flores200-translate)"
        )
    files = hypothesis_files(folder, spec.name, data_dir)
    if languages:
        wanted = [check_language(spec, lang, data_dir) for lang in languages]
        absent = [lang for lang in wanted if lang not in files]
        if absent:
            raise DataError(
                f"{folder}: no hypotheses for {', '.join(absent)} (expected {absent[0]}.txt)"
            )
        files = {lang: files[lang] for lang in wanted}
    split = "devtest" if "devtest" in spec.splits else spec.splits[-1]
    rows: list[dict[str, Any]] = []
    for lang, path in files.items():
        refs = spec.load(split, lang, data_dir)
        hyps = read_lines(path)
        if len(hyps) != len(refs):
            raise DataError(
                f"{path}: {len(hyps)} lines but {spec.name} {split} {lang} has {len(refs)} sentences; "
                f"one hypothesis per line, in release order"
            )
        preds = [
            {"id": i, "pred": h.strip(), "gold": ref}
            for i, h, ref in zip(refs["id"], hyps, refs["target"])
        ]
        write_predictions(predictions_path(out_dir, spec.name, split, lang), preds)
        rows.extend(score_file_metrics(spec.name, split, lang, preds, spm_model=spm_model))
    atomic.write_jsonl(Path(out_dir) / "metrics.jsonl", rows)
    return rows
