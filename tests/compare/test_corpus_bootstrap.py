"""Corpus-level metrics in the bootstrap: resampling summed per-example statistics is exact."""

from pathlib import Path

import numpy as np
import pytest

from mmxfer import catalog
from mmxfer.compare.example_scores import scorer_for
from mmxfer.compare.gaps import GapSettings, compute_gaps
from mmxfer.compare.results import build_results
from mmxfer.errors import DataError
from mmxfer.runs.store import Run, run_id_for

ENTITY = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
UPOS_NO_X = [
    "NOUN",
    "VERB",
    "DET",
    "ADJ",
    "PUNCT",
    "PRON",
    "PROPN",
    "ADP",
]  # "X" chunks can cross sentences


def _tag_data(rng: np.random.Generator, n: int, tags: list[str]) -> tuple[list, list]:
    golds, preds = [], []
    for _ in range(n):
        length = int(rng.integers(1, 9))
        gold = [tags[i] for i in rng.integers(0, len(tags), length)]
        pred = [t if rng.random() < 0.7 else tags[int(rng.integers(0, len(tags)))] for t in gold]
        golds.append(gold)
        preds.append(pred)
    return golds, preds


def _text_data(rng: np.random.Generator, n: int) -> tuple[list, list]:
    words = "the a cat dog sat ran on under mat house big small red".split()
    golds = [
        " ".join(words[i] for i in rng.integers(0, len(words), int(rng.integers(2, 9))))
        for _ in range(n)
    ]
    preds = [
        " ".join(
            w if rng.random() < 0.6 else words[int(rng.integers(0, len(words)))] for w in g.split()
        )
        for g in golds
    ]
    return golds, preds


@pytest.mark.parametrize(
    "name,data",
    [
        ("span_f1", lambda r: _tag_data(r, 40, ENTITY)),
        ("token_f1", lambda r: _tag_data(r, 40, UPOS_NO_X)),
        ("chrf_pp", lambda r: _text_data(r, 40)),
    ],
)
def test_summed_statistics_equal_the_metric_on_a_resample(name, data):
    catalog.load_plugins()
    metric = catalog.METRICS.get(name)
    rng = np.random.default_rng(7)
    golds, preds = data(rng)
    per_example = metric.stats(golds, preds)
    assert metric.from_stats(per_example.sum(0)) == pytest.approx(
        metric.headline(golds, preds), abs=1e-9
    )
    draws = rng.integers(0, len(golds), size=(5, len(golds)))
    counts = np.stack([np.bincount(d, minlength=len(golds)) for d in draws]).astype(float)
    replicates = metric.from_stats(counts @ per_example)
    for draw, value in zip(draws, replicates):
        direct = metric.headline([golds[i] for i in draw], [preds[i] for i in draw])
        assert value == pytest.approx(direct, abs=1e-9)


def test_scorer_passes_the_language_to_mlqa():
    gold, pred = [["北京大学"]], ["北京"]
    catalog.load_plugins()
    zh, en = scorer_for("mlqa", "mlqa", lang="zh"), scorer_for("mlqa", "mlqa", lang="en")
    # zh scores characters; en needs whole tokens
    assert zh.fn(gold, pred) > 0.0 == en.fn(gold, pred)


def _run(
    root: Path, arm: str, modality: str, task: str, metric: str, golds: list, preds: list
) -> float:
    config = {
        "study": "s",
        "target": task,
        "seed": 1,
        "arm": {
            "name": arm,
            "intermediate": [] if modality == "none" else [arm],
            "modality": modality,
        },
        "profile": {"name": "p", "trunk": {"name": "t"}, "suite": "x", "study": "s"},
    }
    run = Run(root / "s" / run_id_for(config, f"{arm}-{task}"))
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.write_env(seed=1)
    run.write_predictions(
        task,
        "test",
        "de",
        [{"id": str(i), "gold": g, "pred": p} for i, (g, p) in enumerate(zip(golds, preds))],
    )
    score = catalog.METRICS.get(metric).headline(golds, preds)
    run.write_metrics(
        [
            {
                "task": task,
                "lang": "de",
                "split": "test",
                "metric": metric,
                "score": score,
                "n": len(golds),
                "category": catalog.task(task).category,
            }
        ]
    )
    run.mark_done()
    return score


def test_corpus_level_cell_gets_an_interval_around_its_margin(tmp_path):
    catalog.load_plugins()
    rng = np.random.default_rng(3)
    golds, weak = _tag_data(rng, 150, ENTITY)
    strong = [
        [g if rng.random() < 0.8 else p for g, p in zip(gs, ws)] for gs, ws in zip(golds, weak)
    ]
    base = _run(tmp_path, "baseline", "none", "panx", "span_f1", golds, weak)
    better = _run(tmp_path, "caption", "image-text", "panx", "span_f1", golds, strong)
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=300, progress=False))
    row = result.languages.set_index(["arm", "reference"]).loc[("caption", "baseline")]
    expected = better - base
    assert row["margin"] == pytest.approx(expected, abs=1e-6) and expected > 0
    assert row["ci_low"] < expected < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] > 0.5  # a real interval, not a point


def _pairs(rng: np.random.Generator, n: int) -> tuple[list, list]:
    golds = [
        [f"de-{i}", f"en-{i}"] if i % 3 else None for i in range(n)
    ]  # a third of the sources: no pair
    preds = [
        None if rng.random() < 0.2 else [f"de-{i}", f"en-{i if rng.random() < 0.6 else i + 1}"]
        for i in range(n)
    ]
    return golds, preds


def test_bucc_pair_counts_give_its_f1_on_the_file_and_on_resamples_without_repeats():
    catalog.load_plugins()
    metric = catalog.METRICS.get("bucc_f1")
    rng = np.random.default_rng(11)
    golds, preds = _pairs(rng, 50)
    per_row = metric.stats(golds, preds)
    assert metric.from_stats(per_row.sum(0)) == pytest.approx(
        metric.headline(golds, preds), abs=1e-9
    )
    for _ in range(5):  # a subset of the rows (no row twice: the set F1 and the counts agree)
        keep = np.sort(rng.choice(len(golds), size=30, replace=False))
        counts = np.bincount(keep, minlength=len(golds)).astype(float)
        direct = metric.headline([golds[i] for i in keep], [preds[i] for i in keep])
        assert metric.from_stats(counts @ per_row) == pytest.approx(direct, abs=1e-9)


def test_a_bucc_resample_without_gold_pairs_does_not_stop_the_comparison(tmp_path):
    """Ten rows, four without a gold pair (the rehearsal's BUCC release files): about one resample in ten
    thousand draws no gold pair. It scores 0 in the bootstrap instead of failing the whole comparison."""
    catalog.load_plugins()
    metric = catalog.METRICS.get("bucc_f1")
    golds = [[f"de-{i}", f"en-{i}"] if i < 6 else None for i in range(10)]
    preds = [[f"de-{i}", f"en-{i}"] for i in range(10)]
    counts = np.zeros((1, 10))
    counts[0, 8] = 10.0  # row 8 drawn ten times: predicted pairs, no gold
    assert metric.from_stats(counts @ metric.stats(golds, preds)).tolist() == [0.0]
    # a whole file must have gold
    with pytest.raises(DataError, match="none of the 10 rows has a gold pair"):
        metric.headline([golds[8]] * 10, [preds[8]] * 10)
    # two rows, one with a gold pair: a quarter of the resamples draw no gold pair; the comparison goes through
    _run(tmp_path, "baseline", "none", "bucc", "bucc_f1", golds[5:7], [preds[5], None])
    _run(tmp_path, "caption", "image-text", "bucc", "bucc_f1", golds[5:7], preds[5:7])
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=40, progress=False))
    row = result.languages.set_index(["arm", "reference"]).loc[("caption", "baseline")]
    assert (
        row["margin"] == pytest.approx(200 / 3 - 100)
        and row["ci_low"] <= row["margin"] <= row["ci_high"]
    )


def test_bucc_pairs_reach_the_bootstrap_as_pairs(tmp_path):
    """BUCC F1 is resampled on per-row pair counts; its [src, tgt] pair rows must reach the metric as pairs."""
    catalog.load_plugins()
    rng = np.random.default_rng(5)
    golds = [[i, i] if i % 3 else None for i in range(60)]
    weak = [[i, i] if rng.random() < 0.5 else [i, i + 1] for i in range(60)]
    strong = [[i, i] if rng.random() < 0.9 else None for i in range(60)]
    base = _run(tmp_path, "baseline", "none", "bucc", "bucc_f1", golds, weak)
    better = _run(tmp_path, "caption", "image-text", "bucc", "bucc_f1", golds, strong)
    result = compute_gaps(build_results([tmp_path]), GapSettings(n_boot=40, progress=False))
    row = result.languages.set_index(["arm", "reference"]).loc[("caption", "baseline")]
    assert row["margin"] == pytest.approx(better - base, abs=1e-6) and better > base
    assert row["ci_low"] < row["margin"] < row["ci_high"]
