"""The per-run savings of the rehearsal's common path, pinned: each must stay cheap and change no result."""

from __future__ import annotations

import gc
import subprocess

import datasets
import torch
from torch import nn

from mmxfer import catalog
from mmxfer.config import PhaseConfig
from mmxfer.runs import env
from mmxfer.train import data as train_data
from mmxfer.train.loop import LoopOptions, make_accelerator, train_phase


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x, labels):
        return {"loss": nn.functional.cross_entropy(self.linear(x), labels)}


def test_a_cpu_phase_ends_without_a_full_garbage_collection(tmp_path, monkeypatch):
    """accelerate's free_memory runs gc.collect (about 0.5 s a phase in a process with torch, transformers
    and datasets loaded) while the phase still holds its model; on CPU the references are dropped alone."""
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    data = [{"x": torch.randn(4), "labels": torch.tensor(i % 2)} for i in range(8)]
    accelerator = make_accelerator("no")
    result = train_phase(
        _Tiny(),
        data,
        lambda items: {k: torch.stack([i[k] for i in items]) for k in items[0]},
        PhaseConfig(batch_size=4, epochs=1, checkpoint_every=100, lr=0.1),
        LoopOptions(workdir=tmp_path, seed=1, accelerator=accelerator),
    )
    assert calls == []
    # nothing prepared is kept alive
    assert accelerator._models == [] and accelerator._optimizers == []
    assert result.state.global_step == 2


def test_small_splits_skip_the_feature_cache(tmp_path, monkeypatch):
    from mmxfer.testing.tiny import tiny_tokenizer

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path))
    spec, tok = catalog.task("sst2"), tiny_tokenizer()

    def rows(n: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "id": [str(i) for i in range(n)],
                "text_a": ["The cat sat."] * n,
                "text_b": [None] * n,
                "label": [i % 2 for i in range(n)],
            }
        )

    least = getattr(train_data, "MIN_CACHED_ROWS", 200)
    stored = tmp_path / "features" / "sst2"
    small = train_data.task_data(spec, rows(least - 1), tok, 16, split="train", lang="en")
    assert not stored.exists() or not any(stored.iterdir())
    large = train_data.task_data(spec, rows(least), tok, 16, split="train", lang="en")
    assert any(stored.iterdir())
    assert small.features[0] == large.features[0]  # in memory or from the cache: the same features


def test_the_run_environment_asks_git_once_per_process(monkeypatch):
    env.environment()  # whatever an earlier test left: from here on, cached
    calls = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    first, second = env.environment(seed=1), env.environment(seed=2)
    assert calls == [] and first["git_commit"] == second["git_commit"]
    assert (
        first["packages"] == env.package_versions()
        and first["packages"] is not env.package_versions()
    )
