"""The cost estimate at this CPU's measured matrix-product speed against a timed training run of the same shape.

A rehearsal-sized phase 3 (the rehearsal recipe's batch 4 x grad-accum 2, one epoch, max length 64) of an XLM-R-
architecture trunk large enough for its matrix products to dominate (4 layers, 256 wide), trained by mmxfer's
loop in fp32 on one thread. The CPU's speed is a 512-square fp32 matrix product on the same thread, timed right
before and after the run; both are timed in CPU seconds of this process (``time.process_time``), which other
processes on the shared machine do not change. The estimate counts matrix FLOPs only - no LayerNorm,
softmax, dropout, optimizer arithmetic or Python - so the run takes longer than it; the stated factor is
generous because the machine is shared: the point is the order of magnitude.
"""

from __future__ import annotations

import time

import pytest
import torch

from mmxfer import catalog
from mmxfer.config import PhaseConfig
from mmxfer.study import cost, flops
from mmxfer.study.lengths import QUANTILE_POINTS, Lengths, TaskLengths
from mmxfer.study.throughput import cpu_device, cpu_matmul_flops

#: measured time / estimated time must lie in [1 / FACTOR_BELOW, FACTOR_ABOVE]
FACTOR_BELOW, FACTOR_ABOVE = 2.0, 5.0
LAYERS, HIDDEN, FF, HEADS, VOCAB, LENGTH, EXAMPLES = 4, 256, 1024, 4, 1000, 64, 96


def _run(tmp_path) -> float:
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from mmxfer.models.build import build_task_model
    from mmxfer.train.loop import LoopOptions, train_phase

    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FF,
        max_position_embeddings=LENGTH + 2,
    )
    model = build_task_model(
        XLMRobertaModel(config, add_pooling_layer=False), "classification", num_labels=3
    )
    g = torch.Generator().manual_seed(0)
    data = [
        {
            "input_ids": torch.randint(5, VOCAB, (LENGTH,), generator=g),
            "attention_mask": torch.ones(LENGTH, dtype=torch.long),
            "labels": torch.tensor(i % 3),
        }
        for i in range(EXAMPLES)
    ]

    def collate(items):
        return {k: torch.stack([x[k] for x in items]) for k in items[0]}

    phase = PhaseConfig(batch_size=4, grad_accum=2, epochs=1, checkpoint_every=0, lr=1e-4)
    start = time.process_time()
    train_phase(model, data, collate, phase, LoopOptions(workdir=tmp_path, seed=0))
    return time.process_time() - start


@pytest.mark.slow
def test_estimate_at_the_cpu_matmul_speed_is_within_the_stated_factor(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = cpu_matmul_flops("fp32", clock=time.process_time)
        measured = _run(tmp_path)
        speed = (before + cpu_matmul_flops("fp32", clock=time.process_time)) / 2
    finally:
        torch.set_num_threads(threads)
    spec = catalog.task("xnli")
    every_example = TaskLengths(
        "xnli", Lengths((float(LENGTH),) * len(QUANTILE_POINTS)), "measured", "fixed", "en"
    )
    costing = cost.Costing(
        spec,
        flops.Encoder(LAYERS, HIDDEN, FF, VOCAB),
        every_example,
        LENGTH,
        "classification",
        3,
        None,
        True,
    )
    phase = PhaseConfig(batch_size=4, grad_accum=2, epochs=1)
    estimate = cost.training_estimate(costing, EXAMPLES, phase, cpu_device("fp32", flops=speed))[
        0
    ].seconds
    ratio = measured / estimate
    print(
        f"measured {measured:.2f} s, estimated {estimate:.2f} s at {speed / 1e9:.1f} GFLOP/s: ratio {ratio:.2f}"
    )
    assert 1 / FACTOR_BELOW <= ratio <= FACTOR_ABOVE
