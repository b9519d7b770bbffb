"""The training loop on tiny plain torch modules: overfitting, resume == uninterrupted, seeds, NaN."""

from __future__ import annotations

import json

import pytest
import torch
from toy import ToyClassifier, ToyDataset, collate

from mmxfer.config import PhaseConfig
from mmxfer.errors import TrainingError
from mmxfer.train.loop import (
    LoopOptions,
    eval_loader,
    gather_outputs,
    latest_checkpoint,
    train_phase,
)

PHASE = PhaseConfig(
    lr=1e-2,
    batch_size=8,
    epochs=3,
    grad_accum=2,
    checkpoint_every=3,
    warmup_ratio=0.1,
    eval_every=2,
    group_by_length=True,
)


class Crash(Exception):
    pass


class CrashingCollate:
    """Raises after ``after`` batches, like a job killed mid-epoch."""

    def __init__(self, after: int) -> None:
        self.after, self.calls = after, 0

    def __call__(self, items):
        self.calls += 1
        if self.calls > self.after:
            raise Crash()
        return collate(items)


def accuracy_fn(dev):
    def evaluate(model, accelerator):
        loader = eval_loader(accelerator, dev, collate, batch_size=16)
        out = gather_outputs(
            accelerator,
            model,
            loader,
            lambda m, b: {"pred": m(**b)["logits"].argmax(-1), "gold": b["labels"]},
        )
        assert len(out["pred"]) == len(dev)
        return (out["pred"] == out["gold"]).float().mean().item()

    return evaluate


def _run(tmp, seed=1, phase=PHASE, collate_fn=collate, resume=False, init_seed=0):
    torch.manual_seed(init_seed)
    model = ToyClassifier()
    train, dev = ToyDataset(60, seed=0), ToyDataset(20, seed=5)
    return train_phase(
        model,
        train,
        collate_fn,
        phase,
        LoopOptions(
            workdir=tmp,
            seed=seed,
            lengths=train.lengths(),
            evaluate=accuracy_fn(dev),
            resume=resume,
            log_path=tmp / "train_log.jsonl",
        ),
    )


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_tiny_batch_is_overfitted(tmp_path):
    torch.manual_seed(0)
    model = ToyClassifier(dropout=0.0)
    data = ToyDataset(8, seed=3)
    phase = PhaseConfig(
        lr=3e-2,
        batch_size=8,
        epochs=60,
        warmup_ratio=0.0,
        checkpoint_every=0,
        weight_decay=0.0,
        log_every=1,
    )
    result = train_phase(
        model,
        data,
        collate,
        phase,
        LoopOptions(workdir=tmp_path, seed=1, log_path=tmp_path / "log.jsonl"),
    )
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] > 0.3
    assert rows[-1]["loss"] < 0.01
    assert result.state.global_step == 60


def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    full = _run(tmp_path / "full")
    # 60 examples / batch 8 = 8 batches = 4 optimizer steps per epoch; crash in epoch 2 after step 6's checkpoint
    with pytest.raises(Crash):
        _run(tmp_path / "cut", collate_fn=CrashingCollate(after=13))
    ckpt = latest_checkpoint(tmp_path / "cut" / "checkpoints")
    state = json.loads((ckpt / "trainer_state.json").read_text())
    # mid-epoch
    assert state["global_step"] == 6 and state["epoch"] == 1 and state["batch_in_epoch"] == 4
    # a different init is overwritten by the checkpoint
    resumed = _run(tmp_path / "cut", resume=True, init_seed=123)
    assert resumed.resumed_from == str(ckpt)
    assert _same(full.model, resumed.model)
    assert full.state.history == resumed.state.history
    assert full.state.best_metric == resumed.state.best_metric
    log_full = [
        json.loads(x) for x in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()
    ]
    log_cut = [
        json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()
    ]
    strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in log_full]
    assert strip == [{k: v for k, v in r.items() if k != "elapsed_s"} for r in log_cut]


def test_same_seed_identical_other_seed_differs(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    c = _run(tmp_path / "c", seed=2)
    assert _same(a.model, b.model) and a.state.history == b.state.history
    assert not _same(a.model, c.model)


def test_early_stopping_and_best_weights(tmp_path):
    phase = PhaseConfig(
        lr=1e-2,
        batch_size=8,
        epochs=50,
        eval_every=1,
        early_stopping_patience=2,
        checkpoint_every=0,
    )
    result = _run(tmp_path, phase=phase)
    assert result.state.stopped_early
    assert result.state.global_step < 50 * 8
    assert result.state.evals_without_improvement == 2
    # best is kept, not the last
    assert result.state.history[-3]["metric"] == result.state.best_metric


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    class Exploding(ToyClassifier):
        calls = 0

        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            Exploding.calls += 1
            if Exploding.calls > 5:
                out["loss"] = out["loss"] * float("nan")
            return out

    phase = PhaseConfig(lr=1e-2, batch_size=8, epochs=2, checkpoint_every=2)
    data = ToyDataset(40)
    with pytest.raises(
        TrainingError, match="loss became nan at step 6.*last good checkpoint is kept"
    ):
        train_phase(Exploding(), data, collate, phase, LoopOptions(workdir=tmp_path, seed=1))
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt is not None and ckpt.name.endswith("000000004")
    state = torch.load(ckpt / "pytorch_model.bin", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_unavailable_or_unknown_tracker_is_a_config_error():
    from mmxfer.errors import ConfigError
    from mmxfer.train.loop import make_accelerator

    with pytest.raises(ConfigError, match="unknown tracker 'tensorbord'"):
        make_accelerator("no", log_with=["tensorbord"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed where there is a GPU")
def test_fp16_without_gpu_is_a_config_error():
    from mmxfer.errors import ConfigError
    from mmxfer.train.loop import make_accelerator

    with pytest.raises(ConfigError, match="precision fp16 needs a GPU"):
        make_accelerator("fp16")


def test_without_checkpoints_only_the_newest_best_is_kept(tmp_path):
    phase = PhaseConfig(lr=1e-2, batch_size=8, epochs=2, checkpoint_every=0, eval_every=1)
    seen = []

    def evaluate(model, accelerator):  # a new best at every step
        seen.append(sorted(p.name for p in (tmp_path / "best").glob("*.pt")))
        return float(len(seen))

    torch.manual_seed(0)
    result = train_phase(
        ToyClassifier(),
        ToyDataset(32, seed=0),
        collate,
        phase,
        LoopOptions(workdir=tmp_path, seed=1, evaluate=evaluate),
    )
    assert result.state.best_step == result.state.global_step == 8
    assert seen[0] == [] and all(len(names) == 1 for names in seen[1:])
    assert not (tmp_path / "checkpoints").exists()
    assert [p.name for p in (tmp_path / "best").iterdir()] == ["step-000000008.pt"]
