"""Batch orders: length grouping, determinism, and multi-task proportions against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from mmxfer.config import MultiTaskConfig
from mmxfer.errors import ConfigError
from mmxfer.train.sampling import epoch_batches, multitask_epoch_batches, task_probabilities

SIZES = [100_000, 20_000, 500]


def test_probabilities_match_definitions():
    p = task_probabilities(SIZES, MultiTaskConfig(sampling="proportional", cap=50_000))
    assert np.allclose(p, np.array([50_000, 20_000, 500]) / 70_500)
    p = task_probabilities(SIZES, MultiTaskConfig(sampling="proportional", cap=None))
    assert np.allclose(p, np.array(SIZES) / sum(SIZES))
    p = task_probabilities(SIZES, MultiTaskConfig(sampling="temperature", temperature=2.0))
    w = np.sqrt(np.array(SIZES, dtype=float))
    assert np.allclose(p, w / w.sum())
    assert np.allclose(task_probabilities(SIZES, MultiTaskConfig(sampling="uniform")), [1 / 3] * 3)
    with pytest.raises(ConfigError, match="needs training examples"):
        task_probabilities([10, 0], MultiTaskConfig())


@pytest.mark.parametrize(
    "config",
    [
        MultiTaskConfig(sampling="proportional", cap=2_000),
        MultiTaskConfig(sampling="temperature", temperature=3.0),
        MultiTaskConfig(sampling="uniform"),
    ],
)
def test_empirical_task_mix_matches_probabilities(config):
    sizes = [5_000, 1_000, 300]
    counts = np.zeros(3)
    for epoch in range(4):
        for task, batch in multitask_epoch_batches(sizes, 4, seed=7, epoch=epoch, config=config):
            counts[task] += 1
            assert max(batch) < sizes[task] and len(batch) <= 4
    expected = task_probabilities(sizes, config)
    n = counts.sum()
    # within 4 standard errors of a multinomial draw
    assert np.all(np.abs(counts / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_multitask_epoch_length_and_determinism():
    cfg = MultiTaskConfig(sampling="proportional", cap=1_000)
    a = multitask_epoch_batches([5_000, 200], 8, seed=1, epoch=0, config=cfg)
    assert len(a) == int(np.ceil((1_000 + 200) / 8))
    assert a == multitask_epoch_batches([5_000, 200], 8, seed=1, epoch=0, config=cfg)
    assert a != multitask_epoch_batches([5_000, 200], 8, seed=1, epoch=1, config=cfg)


def test_epoch_batches_cover_every_example_once_and_group_by_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1_000).tolist()
    batches = epoch_batches(1_000, 10, seed=3, epoch=0, lengths=lengths, group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(1_000))
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the longest batch goes first
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    plain = epoch_batches(1_000, 10, seed=3, epoch=0)
    spread_plain = np.mean([np.ptp([lengths[i] for i in b]) for b in plain])
    assert spread < spread_plain / 5  # far less padding
    assert batches == epoch_batches(
        1_000, 10, seed=3, epoch=0, lengths=lengths, group_by_length=True
    )
    assert batches != epoch_batches(
        1_000, 10, seed=3, epoch=1, lengths=lengths, group_by_length=True
    )
