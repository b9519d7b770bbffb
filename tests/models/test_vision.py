from __future__ import annotations

import pytest
import torch

from mmxfer.catalog import VISION_TOWERS
from mmxfer.config import VisionConfig
from mmxfer.errors import AssetError, UnknownNameError
from mmxfer.models.vision import build_vision_tower, tower_config


def test_shipped_towers_registered_and_shapes():
    assert {"tiny-vit", "starter-vit"} <= set(VISION_TOWERS.names())
    tower = build_vision_tower(VisionConfig(model="starter-vit", pretrained=None, freeze=False))
    tokens = tower(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 16, 128)  # (64/16)^2 patches, width 128
    assert all(p.requires_grad for p in tower.parameters())


def test_open_clip_names_resolve_without_text_tower():
    cfg = tower_config("ViT-B-32")
    assert cfg["vision_cfg"]["patch_size"] == 32


def test_unknown_tower_lists_close_names():
    with pytest.raises(UnknownNameError, match="ViT-B-32"):
        build_vision_tower(VisionConfig(model="ViT-B-23", pretrained=None))


def test_pretrained_tag_offline_says_file_and_checkpoint_option(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(AssetError) as info:
        build_vision_tower(VisionConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k"))
    msg = str(info.value)
    assert "vision.checkpoint" in msg and "open_clip_model.safetensors" in msg and "ViT-B-32" in msg


def test_local_checkpoint_loads_only_visual_weights_and_freezes(tmp_path):
    src = build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None, freeze=False))
    state = {f"visual.{k}": v + 0.5 for k, v in src.visual.state_dict().items()}
    state["text.token_embedding.weight"] = torch.zeros(3, 3)  # a text tower in the file is ignored
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state}, path)
    tower = build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None, checkpoint=str(path)))
    for k, v in tower.visual.state_dict().items():
        assert torch.equal(v, state[f"visual.{k}"])
    assert not any(p.requires_grad for p in tower.parameters())  # frozen by default


def test_checkpoint_without_visual_weights_is_clear(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"foo": torch.zeros(1)}, path)
    with pytest.raises(AssetError, match="visual"):
        build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None, checkpoint=str(path)))


def test_open_clip_preprocessing_matches_tower_size():
    from PIL import Image

    tower = build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None))
    image = Image.new("RGB", (80, 50), (200, 30, 30))
    pixels = tower.transform()(image)
    assert pixels.shape == (3, 32, 32)
    assert tower(pixels.unsqueeze(0)).shape == (1, 4, 48)
