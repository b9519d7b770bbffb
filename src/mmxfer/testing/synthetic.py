"""Synthetic run folders with known effects, for the compare tests and the ``compare`` benchmark.

Every run is written with :mod:`mmxfer.runs.store` exactly as a real run is (config.yaml,
metrics.jsonl, predictions, DONE). Predictions are 3-way classification rows; an arm with
accuracy ``p`` gets the first ``round(p * n)`` examples of a fixed permutation right, so the
accuracy of arm A minus that of arm B equals the constructed effect exactly when
``exact=True``; with ``exact=False`` every example is right with probability ``p``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmxfer.runs.store import Run, run_id_for


@dataclass(frozen=True)
class SynthArm:
    name: str
    intermediate: tuple[str, ...]
    modality: str
    effect: float = 0.0  # accuracy points added to the base accuracy (0-100 scale)


@dataclass(frozen=True)
class SynthTask:
    name: str
    category: str
    languages: tuple[str, ...]
    n: int = 200
    base: float = 60.0  # baseline accuracy (0-100)


def _new_run(
    root: str | Path, study: str, arm: SynthArm, task: str, seed: int, trunk: str, suite: str
) -> Run:
    config = {
        "study": study,
        "target": task,
        "seed": seed,
        "arm": {"name": arm.name, "intermediate": list(arm.intermediate), "modality": arm.modality},
        "profile": {
            "name": "synthetic",
            "trunk": {"name": trunk},
            "vision": {"model": "ViT-B-32"},
            "suite": suite,
            "study": study,
        },
    }
    run = Run(Path(root) / study / run_id_for(config, f"{arm.name}-{task}-s{seed}"))
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    run.write_env(seed=seed)
    return run


def write_rows_run(
    root: str | Path,
    study: str,
    arm: SynthArm,
    task: str,
    seed: int,
    predictions: Mapping[str, list[dict]],
    *,
    split: str = "test",
    trunk: str = "xlm-roberta-large",
    suite: str = "synthetic",
) -> Run:
    """One finished run whose predictions rows (``{id, pred, gold}``, optionally ``direction``) per language are
    given; each file is scored with the task's metric as a real run scores it (headline and per-direction rows)."""
    from mmxfer.evaluation.scoring import score_file_rows

    run = _new_run(root, study, arm, task, seed, trunk, suite)
    rows = []
    for lang, preds in predictions.items():
        run.write_predictions(task, split, lang, preds)
        rows += score_file_rows(task, split, lang, preds)
    run.write_metrics(rows)
    run.mark_done()
    return run


def write_run(
    root: str | Path,
    study: str,
    arm: SynthArm,
    task: SynthTask,
    seed: int,
    accuracy: dict[str, float],
    *,
    trunk: str = "xlm-roberta-large",
    suite: str = "synthetic",
    exact: bool = True,
    rng: np.random.Generator | None = None,
    predictions: bool = True,
    done: bool = True,
) -> Run:
    """One finished run of ``arm`` on ``task`` with the given accuracy per language."""
    run = _new_run(root, study, arm, task.name, seed, trunk, suite)
    rng = rng or np.random.default_rng(seed)
    rows = []
    for lang in task.languages:
        n = task.n
        gold = (np.arange(n) * 7 + len(lang)) % 3  # fixed per language, same for every arm
        if exact:
            order = np.random.default_rng(abs(hash((task.name, lang))) % 2**32).permutation(n)
            right = np.zeros(n, bool)
            right[order[: int(round(accuracy[lang] / 100 * n))]] = True
        else:
            right = rng.random(n) < accuracy[lang] / 100
        pred = np.where(right, gold, (gold + 1) % 3)
        if predictions:
            run.write_predictions(
                task.name,
                "test",
                lang,
                [
                    {"id": f"{lang}-{i}", "pred": int(p), "gold": int(g)}
                    for i, (p, g) in enumerate(zip(pred, gold))
                ],
            )
        rows.append(
            {
                "task": task.name,
                "lang": lang,
                "split": "test",
                "metric": "accuracy",
                "score": 100.0 * float(right.mean()),
                "n": n,
                "category": task.category,
            }
        )
    run.write_metrics(rows)
    if done:
        run.mark_done()
    return run


def make_study(
    root: str | Path,
    arms: Sequence[SynthArm],
    tasks: Sequence[SynthTask],
    seeds: Sequence[int],
    *,
    study: str = "synthetic",
    exact: bool = True,
    seed_sd: float = 0.0,
    lang_effects: Mapping[str, Mapping[str, float]] | None = None,
    rng_seed: int = 0,
    **kwargs,
) -> list[Run]:
    """Write every arm x task x seed run. ``lang_effects[arm][lang]`` adds a per-language effect;
    ``seed_sd`` adds normal seed noise (accuracy points) per run and language."""
    rng = np.random.default_rng(rng_seed)
    runs = []
    for arm in arms:
        for task in tasks:
            for seed in seeds:
                acc = {}
                for lang in task.languages:
                    extra = (lang_effects or {}).get(arm.name, {}).get(lang, 0.0)
                    noise = rng.normal(0, seed_sd) if seed_sd else 0.0
                    acc[lang] = float(np.clip(task.base + arm.effect + extra + noise, 0, 100))
                runs.append(
                    write_run(root, study, arm, task, seed, acc, exact=exact, rng=rng, **kwargs)
                )
    return runs
