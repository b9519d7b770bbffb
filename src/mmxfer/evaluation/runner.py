"""Evaluate a trunk on a suite's (or one task's) retrieval tasks: predictions first, then scores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmxfer import catalog
from mmxfer.config import ExperimentConfig, RetrievalConfig, SuiteTaskConfig
from mmxfer.errors import DataError
from mmxfer.evaluation import retrieval
from mmxfer.evaluation.scoring import score_file_rows
from mmxfer.evaluation.suites import metric_of
from mmxfer.kinds import kind_of
from mmxfer.models.frozen import freeze_lower_layers, frozen_depth
from mmxfer.models.trunk import load_profile_trunk
from mmxfer.runs import atomic
from mmxfer.runs.env import resolve_precision
from mmxfer.runs.store import predictions_path, write_predictions
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import check_language


def check_languages(spec: TaskSpec, languages: list[str], data_dir: str | None) -> list[str]:
    return [check_language(spec, lang, data_dir) for lang in languages]


def evaluate_retrieval(
    item: SuiteTaskConfig,
    embed: retrieval.Embedder,
    base: RetrievalConfig,
    out_dir: str | Path,
    *,
    layer: int | None,
    trunk: str | None = None,
    max_length: int | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    precision: str | None = None,
) -> list[dict[str, Any]]:
    """Run one retrieval task over its languages; write predictions under ``out_dir``; return metric rows."""
    catalog.load_plugins()
    spec = catalog.TASKS.get(item.task)
    if not kind_of(spec).trunk_only:
        raise DataError(
            f"{spec.name} is a {spec.kind} task: it needs a fine-tuned run, not a trunk"
        )
    cfg = retrieval.with_params(base, item.params)
    metric = metric_of(item)
    settings = retrieval.settings_of(cfg, layer=layer, trunk=trunk, max_length=max_length)
    if precision is not None:
        settings["precision"] = precision
    split = item.split if item.split in spec.splits else spec.splits[-1]
    languages = check_languages(spec, list(item.languages or spec.languages), data_dir)
    caveat = spec.hub_caveat if data_dir is None else None  # BUCC from the hub: no distractors
    rows: list[dict[str, Any]] = []
    bar = tqdm(languages, desc=f"{item.label or spec.name}", unit="lang", disable=not progress)
    for lang in bar:
        bar.set_postfix_str(lang)
        started = time.perf_counter()
        if spec.mining:
            dev = spec.load("validation", lang, data_dir) if cfg.threshold_source == "dev" else None
            preds, threshold = retrieval.mining_predictions(
                dev, spec.load(split, lang, data_dir), embed, cfg
            )
            lang_settings = {**settings, "threshold": threshold}
        else:
            ds = spec.load(split, lang, data_dir)
            preds = retrieval.pair_predictions(
                list(ds["source"]), list(ds["target"]), list(ds["id"]), embed, cfg, metric
            )
            lang_settings = settings
        write_predictions(predictions_path(out_dir, spec.name, split, lang), preds)
        file_rows = score_file_rows(
            spec.name, split, lang, preds, metric=metric, settings=lang_settings, caveat=caveat
        )
        for r in file_rows:
            r["seconds"] = round(time.perf_counter() - started, 3)
        rows.extend(file_rows)
    return rows


def _freeze_below(model: Any, layers: int, index: int | None) -> None:
    """The profile's frozen lower layers, when the embedded layer lies above them: their states then come from
    the process's cache (:mod:`mmxfer.models.frozen`; in eval mode this changes no number)."""
    depth = int(model.config.num_hidden_layers)
    position = depth if index is None else (index if index >= 0 else depth + 1 + index)
    if 0 < layers <= position:
        freeze_lower_layers(model, layers)


def evaluate_trunk(
    trunk: str,
    items: list[SuiteTaskConfig],
    profile: ExperimentConfig,
    out_dir: str | Path,
    *,
    data_dir: str | None = None,
    embedder: tuple[retrieval.Embedder, int | None] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate ``trunk`` on the retrieval ``items``; metric rows are also written to ``out_dir/metrics.jsonl``."""
    max_length = retrieval.retrieval_max_length(profile)
    precision = None
    if embedder is None:
        model, tokenizer = load_profile_trunk(trunk, profile.trunk, profile.precision)
        precision = resolve_precision(profile.precision, next(model.parameters()).device.type)
        embedder = retrieval.trunk_embedder(
            model, tokenizer, profile.retrieval, max_length=max_length, precision=precision
        )
        max_length = getattr(embedder[0], "max_length", max_length)
        _freeze_below(model, frozen_depth(model, profile.trunk.train_top_layers), embedder[1])
        print(
            retrieval.describe(profile, embedder[1], model.config.num_hidden_layers, max_length)
            + f", precision {precision}"
        )
    embed, layer = embedder
    embed = retrieval.cached(embed)
    rows: list[dict[str, Any]] = []
    for item in items:
        rows.extend(
            evaluate_retrieval(
                item,
                embed,
                profile.retrieval,
                out_dir,
                layer=layer,
                trunk=trunk,
                max_length=max_length,
                data_dir=data_dir,
                progress=progress,
                precision=precision,
            )
        )
    atomic.write_jsonl(Path(out_dir) / "metrics.jsonl", rows)
    return rows
