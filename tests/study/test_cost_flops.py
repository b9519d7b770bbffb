"""The cost estimate's FLOPs equal hand counts made here from the architecture (layers, hidden, ff, vocab, length).

Hand-count rules (the module docstring of mmxfer.study.flops): a weight matrix of n parameters costs 2 n per position
forward, 2 n more for its input gradient where something below it trains, 2 n more for its weight gradient where
it trains; attention adds 4 T H per position and layer forward, with the same factor as the layer.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from mmxfer import catalog
from mmxfer.config import PhaseConfig, VisionConfig
from mmxfer.study import cost, flops
from mmxfer.study.lengths import QUANTILE_POINTS, Lengths, TaskLengths
from mmxfer.study.throughput import cpu_device

L, H, FF, V = 3, 64, 256, 1000  # layers, hidden, feed-forward, vocabulary of the small trunk
T = 32  # every example's length (special tokens included)


def _layer_forward(t: int, h: int = H, ff: int = FF) -> int:
    """One position through one layer: Q, K, V, O (4 h^2) and the feed-forward (2 h ff) as 2 FLOPs a multiply-add,
    plus the scores and their weighted sum over t positions (2 x 2 t h)."""
    return 2 * (4 * h * h + 2 * h * ff) + 4 * t * h


def _fixed_lengths(length: int, task: str) -> TaskLengths:
    """A token-length entry where every example has ``length`` pieces."""
    return TaskLengths(
        task, Lengths((float(length),) * len(QUANTILE_POINTS)), "measured", "fixed", "en"
    )


def _costing(task: str, **kw) -> cost.Costing:
    spec = catalog.task(task)
    base = dict(
        spec=spec,
        enc=flops.Encoder(L, H, FF, V),
        lengths=_fixed_lengths(T, task),
        max_length=64,
        head=catalog.HEADS.canonical(spec.head),
        num_labels=3,
        trained_layers=None,
        embeddings_train=True,
    )
    return cost.Costing(**{**base, **kw})


def test_one_small_run_equals_the_hand_count():
    """XNLI-style phase 3: 20 examples, batch 4, 2 epochs -> 10 micro-batches of 4 x 32 positions, every layer
    trained with the embeddings (6 N), the classification head (dense h x h, out h x 3) on the <s> position."""
    phase = PhaseConfig(batch_size=4, epochs=2, grad_accum=1, group_by_length=True)
    work, _, _ = cost.training_estimate(_costing("xnli"), 20, phase, cpu_device(flops=1e11))
    sequences = 10 * 4
    trunk = sequences * T * L * 3 * _layer_forward(T)
    head = sequences * 3 * 2 * (H * H + H * 3)
    assert work.flops == trunk + head
    assert work.train_tokens == sequences * T
    assert work.examples == 40


def test_frozen_lower_layers_cost_forward_only():
    """train_top_layers=1 (the starter's recipe): the two frozen lower layers have nothing trained below them
    (2 N, forward only); the trained top layer computes no input gradient (4 N); grad accumulation groups 4
    micro-batches into an optimizer step but does not change the FLOPs."""
    phase = PhaseConfig(batch_size=4, epochs=1, grad_accum=4)
    work, _, _ = cost.training_estimate(
        _costing("xnli", trained_layers=1, embeddings_train=False),
        16,
        phase,
        cpu_device(flops=1e11),
    )
    per_sequence = T * (2 * 1 * _layer_forward(T) + 1 * 2 * _layer_forward(T)) + 3 * 2 * (
        H * H + H * 3
    )
    assert work.flops == 16 * per_sequence


def test_caption_counts_the_250k_style_decoder_and_vision_tower():
    """Captioning's MLM head at 15 % of the non-special positions: dense h x h and the tied decoder h x V
    (trained with the embeddings: 6 N); the frozen ViT forward only; the projector (mlp) on its tokens computes
    weight gradients but no input gradient (nothing below it trains: 4 N)."""
    tower = flops.vision_shape(VisionConfig(model="tiny-vit", pretrained=None, num_tokens=None))
    visual = tower.out_tokens
    c = _costing("caption", head="caption_mlm", vision=tower, visual_tokens=visual, projector="mlp")
    work, _, _ = cost.training_estimate(
        c, 8, PhaseConfig(batch_size=8, epochs=1), cpu_device(flops=1e11)
    )
    width = T + visual
    trunk = width * L * 3 * _layer_forward(width)
    masked = 0.15 * (T - 2)
    head = masked * (3 * 2 * H * H + 3 * 2 * H * V)
    grid = (32 // 16) ** 2  # tiny-vit: 32 px images, 16 px patches, width 48, one layer
    w = 48
    vit = grid * 2 * 3 * 16 * 16 * w + (grid + 1) * 1 * _layer_forward(grid + 1, w, 4 * w)
    projector = 2 * 2 * (w * H + H * H) * visual
    assert tower.tokens == grid + 1
    assert work.flops == pytest.approx(8 * (trunk + head + vit + projector), rel=1e-12)


def test_vit_b32_shape_as_open_clip_declares_it():
    tower = flops.vision_shape(VisionConfig(model="ViT-B-32", pretrained=None))
    assert (tower.layers, tower.width, tower.ff, tower.tokens, tower.out_tokens) == (
        12,
        768,
        3072,
        50,
        49,
    )
    assert tower.forward() == 49 * 2 * 3 * 32 * 32 * 768 + 50 * 12 * _layer_forward(50, 768, 3072)


def test_generation_counts_every_step_of_every_beam():
    """Encoder once per sentence; cross-attention keys/values once per source position and layer; each step one
    position per beam through self-attention (4 h^2), cross-attention query/output (2 h^2), feed-forward and the
    output projection, attending over the steps so far and the source."""
    enc, dec = flops.Encoder(L, H, FF, V), flops.Decoder(2, H, FF, 500)
    s, steps, beams, batch = 10, 5, 3, 2
    encoder = s * L * _layer_forward(s) + 2 * 2 * (2 * H * H) * s
    per_step = [
        2 * (2 * (6 * H * H + 2 * H * FF) + 4 * (t + 1) * H + 4 * s * H) + 2 * H * 500
        for t in range(steps)
    ]
    assert flops.generation_batch(
        enc, dec, batch, s, steps, beams
    ) == batch * encoder + batch * beams * sum(per_step)


def test_translation_stages_train_what_each_stage_trains():
    """Stage 1: encoder forward only, decoder layers trained (the lowest without an input gradient: its embeddings
    are frozen), output projection frozen (4 N); stage 2: encoder trained except its embeddings."""
    enc, dec = flops.Encoder(L, H, FF, V), flops.Decoder(2, H, FF, 500)
    s, t = 10, 8
    layer = (2 * (6 * H * H + 2 * H * FF) + 4 * t * H + 4 * s * H) * t
    kv = 2 * 2 * (2 * H * H) * s
    stage1 = s * L * _layer_forward(s) + layer * (3 + 2) + kv * 2 + 2 * H * 500 * t * 2
    assert (
        flops.seq2seq_pair(enc, dec, s, t, encoder_trains=False, embeddings_train=False) == stage1
    )
    encoder2 = s * _layer_forward(s) * (2 + 3 * (L - 1))
    stage2 = encoder2 + layer * 2 * 3 + kv * 3 + 2 * H * 500 * t * 3
    assert flops.seq2seq_pair(enc, dec, s, t, encoder_trains=True, embeddings_train=True) == stage2


def test_steps_and_micro_batches_follow_the_loop(tmp_path):
    """loop_steps counts what train_phase does: its total steps and the forward calls it makes."""
    import torch

    from mmxfer.train.loop import LoopOptions, train_phase

    class Counting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(1, 1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return {"loss": self.w(x).pow(2).mean()}

    data = [{"x": torch.ones(1)} for _ in range(22)]
    for phase in (
        PhaseConfig(batch_size=4, grad_accum=2, epochs=1.5, checkpoint_every=0),
        PhaseConfig(batch_size=3, grad_accum=4, epochs=2, checkpoint_every=0),
        PhaseConfig(batch_size=5, grad_accum=1, max_steps=7, checkpoint_every=0),
    ):
        model = Counting()
        result = train_phase(
            model,
            data,
            lambda items: {"x": torch.stack([i["x"] for i in items])},
            phase,
            LoopOptions(workdir=tmp_path / f"{phase.batch_size}", seed=0),
        )
        steps, micro = cost.loop_steps(math.ceil(22 / phase.batch_size), phase)
        assert (steps, micro) == (result.state.total_steps, model.calls)


def test_span_qa_windows_equal_the_featuriser(mmxfer_cache):
    """The doc-stride windows of a long context: as many, and as long, as span-QA featurisation makes them."""
    import datasets

    from mmxfer.kinds import FeatureOptions, featurize
    from mmxfer.testing.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    spec = catalog.task("squad")
    question = "what is the colour of the small square"
    q = len(tok(question, add_special_tokens=False)["input_ids"])
    for words in (20, 150, 400):
        context = " ".join(["the red square is small and the blue circle is big"] * (words // 10))
        rows = {
            "id": ["a"],
            "question": [question],
            "context": [context],
            "answers": [{"text": ["red"], "answer_start": [4]}],
        }
        features = featurize(
            spec,
            datasets.Dataset.from_dict(rows),
            tok,
            FeatureOptions(max_length=96, use_cache=False),
        )
        full = len(tok(question, context)["input_ids"])
        entry = dataclasses.replace(_fixed_lengths(full, "squad"), question=float(q))
        c = _costing("squad", lengths=entry, max_length=96, head="span_qa")
        assert c._windows(full) == [len(x) for x in features["input_ids"]]
