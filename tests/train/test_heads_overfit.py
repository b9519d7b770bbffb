"""Every registered head overfits one tiny batch through the training loop (tiny trunk, CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from mmxfer.config import PhaseConfig, VisionConfig
from mmxfer.train.loop import LoopOptions, train_phase

B, L = 4, 12
VISION = VisionConfig(
    model="starter-vit", pretrained=None, freeze=False, projector="linear", num_tokens=4
)


def _batch(head: str, g: torch.Generator) -> tuple[dict, dict]:
    ids = torch.randint(5, 500, (B, L), generator=g)
    ids[:, 0] = 0
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    kwargs: dict = {}
    if head == "classification":
        batch["labels"] = torch.tensor([0, 1, 2, 1])
        kwargs["num_labels"] = 3
    elif head == "multiple_choice":
        batch["input_ids"] = torch.randint(5, 500, (B, 3, L), generator=g)
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        batch["labels"] = torch.tensor([0, 2, 1, 0])
    elif head == "span_qa":
        batch["start_positions"] = torch.tensor([3, 5, 1, 7])
        batch["end_positions"] = torch.tensor([4, 6, 2, 9])
    elif head == "tagging":
        batch["labels"] = torch.randint(0, 5, (B, L), generator=g)
        batch["labels"][:, 0] = -100
        kwargs["num_labels"] = 5
    elif head == "vqa":
        labels = torch.zeros(B, 7)
        labels[torch.arange(B), torch.tensor([1, 3, 5, 6])] = 1.0
        batch["labels"] = labels
        kwargs["num_labels"] = 7
        batch["pixel_values"] = torch.randn(B, 3, 64, 64, generator=g)
        kwargs["vision_cfg"] = VISION
    elif head == "caption_mlm":
        labels = torch.full((B, L), -100)
        labels[:, 2:5] = ids[:, 2:5]
        batch["input_ids"] = ids.clone()
        batch["input_ids"][:, 2:5] = 3
        batch["mlm_labels"] = labels
        batch["pixel_values"] = torch.randn(B, 3, 64, 64, generator=g)
        kwargs["vision_cfg"] = VISION
    elif head == "caption_contrastive":
        batch["pixel_values"] = torch.randn(B, 3, 64, 64, generator=g)
        kwargs["vision_cfg"] = VISION
    return batch, kwargs


@pytest.mark.parametrize(
    "head",
    [
        "classification",
        "multiple_choice",
        "span_qa",
        "tagging",
        "vqa",
        "caption_mlm",
        "caption_contrastive",
    ],
)
def test_head_overfits_a_tiny_batch(head, tmp_path):
    from mmxfer.catalog import HEADS, load_plugins
    from mmxfer.models.build import build_task_model
    from mmxfer.models.trunk import load_trunk

    load_plugins()
    assert head in HEADS
    torch.manual_seed(0)
    batch, kwargs = _batch(head, torch.Generator().manual_seed(0))
    model = build_task_model(load_trunk("tiny"), head, **kwargs)
    # 12 masked tokens over a 588-word vocab learn slower
    steps = 150 if head == "caption_mlm" else 60
    phase = PhaseConfig(
        lr=1e-2,
        batch_size=1,
        epochs=steps,
        warmup_ratio=0.0,
        checkpoint_every=0,
        log_every=1,
        weight_decay=0.0,
    )
    train_phase(
        model,
        [batch],
        lambda items: items[0],
        phase,
        LoopOptions(workdir=tmp_path, seed=1, log_path=tmp_path / "log.jsonl"),
    )
    losses = [json.loads(x)["loss"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.05 * losses[0] and losses[-1] < 0.1, (losses[0], losses[-1])
