"""A phase-2 mix of several image-text tasks shares one vision tower, so its weights are read once."""

from __future__ import annotations

import pytest
import torch

from mmxfer.config import VisionConfig, load_profile
from mmxfer.models import vision
from mmxfer.train import phases


class Stop(Exception):
    pass


def test_mix_of_image_tasks_reads_the_vision_checkpoint_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    tower = vision.build_vision_tower(
        VisionConfig(model="starter-vit", pretrained=None, freeze=False)
    )
    state = {f"visual.{k}": v + 0.25 for k, v in tower.visual.state_dict().items()}
    torch.save(state, tmp_path / "tower.pt")
    profile = load_profile(
        "starter",
        [
            "trunk.name=tiny",
            "vision.model=starter-vit",
            f"vision.checkpoint={tmp_path / 'tower.pt'}",
            "intermediate.max_train_examples=4",
        ],
    )
    reads = []
    real_read = vision._read_checkpoint
    monkeypatch.setattr(
        vision, "_read_checkpoint", lambda path: reads.append(path) or real_read(path)
    )
    seen = {}

    def train_phase(model, *args, **kwargs):
        seen["model"] = model
        raise Stop

    monkeypatch.setattr(phases, "train_phase", train_phase)
    with pytest.raises(Stop):
        phases.run_intermediate(
            profile,
            ["starter-vqa", "starter-caption"],
            seed=1,
            runs_dir=tmp_path / "runs",
            study="s",
        )
    assert len(reads) == 1
    towers = [m.vision for m in seen["model"].models.values()]
    assert len(towers) == 2 and towers[0] is towers[1]
    loaded = towers[0].visual.state_dict()
    assert all(torch.equal(v, state[f"visual.{k}"]) for k, v in loaded.items())


def test_a_frozen_towers_batches_carry_its_cached_tokens_of_each_image(tmp_path, monkeypatch):
    """With vision.freeze the phase-2 batches hold the tower's tokens, computed before training once per
    distinct image, not pixels: the tower is not run while batches are made."""
    from mmxfer.models import image_features

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    image_features.FEATURES.clear()
    profile = load_profile(
        "starter",
        [
            "trunk.name=tiny",
            "vision.model=tiny-vit",
            "vision.pretrained=null",
            "vision.freeze=true",
            "intermediate.max_train_examples=12",
        ],
    )
    seen = {}

    def train_phase(model, dataset, collate, *args, **kwargs):
        model.vision.forward = lambda pixels: pytest.fail("the tower ran while a batch was made")
        seen.update(
            model=model,
            batch=collate([dataset[i] for i in range(len(dataset))]),
            images={image_features.image_digest(v) for v in dataset["image"]},
        )
        raise Stop

    monkeypatch.setattr(phases, "train_phase", train_phase)
    with pytest.raises(Stop):
        phases.run_intermediate(
            profile, ["starter-vqa"], seed=1, runs_dir=tmp_path / "runs", study="s"
        )
    batch, model = seen["batch"], seen["model"]
    assert "pixel_values" not in batch and batch["image_features"].shape == (12, 4, 48)
    assert len(image_features.FEATURES) == len(seen["images"])  # once per distinct scene
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    assert out["logits"].shape[0] == 12
