"""A frozen tower's tokens of an image are computed once per process, and equal the tower's own output."""

from __future__ import annotations

import pytest
import torch

from mmxfer.config import VisionConfig
from mmxfer.kinds.images import open_image
from mmxfer.models.frozen import StateCache
from mmxfer.models.image_features import FrozenImageFeatures
from mmxfer.models.vision import build_vision_tower
from mmxfer.tasks.starter import starter_world


def _counting_tower(calls: list[int]):
    tower = build_vision_tower(
        VisionConfig(model="tiny-vit", pretrained=None, freeze=True, num_tokens=None)
    )
    forward = tower.forward

    def counted(pixels):
        calls.append(pixels.shape[0])
        return forward(pixels)

    tower.forward = counted
    return tower, forward


def test_each_distinct_image_is_computed_once_and_equals_the_towers_output():
    calls: list[int] = []
    tower, forward = _counting_tower(calls)
    transform = tower.transform()
    images = [s.png for s in starter_world(0, "validation", 5)]
    cache = StateCache(2**26)
    features = FrozenImageFeatures(
        tower, lambda v: transform(open_image(v)), repr(transform), cache
    )
    assert features.prepare(images + images[:3]) == 5 and sum(calls) == 5
    got = features([images[4], images[0], images[4]])
    assert sum(calls) == 5  # every one cached: no tower call at collate time
    with torch.no_grad():
        want = forward(torch.stack([transform(open_image(v)) for v in (images[4], images[0])]))
    assert got.shape == (3, 4, 48)
    assert torch.allclose(got[0], want[0], atol=1e-6) and torch.allclose(got[1], want[1], atol=1e-6)
    assert torch.equal(got[0], got[2])
    # another task showing the same scenes (captioning after VQA) finds them; changed weights do not
    again = FrozenImageFeatures(tower, lambda v: transform(open_image(v)), repr(transform), cache)
    assert again.prepare(images) == 0
    with torch.no_grad():
        next(tower.parameters()).add_(1.0)
    changed = FrozenImageFeatures(tower, lambda v: transform(open_image(v)), repr(transform), cache)
    assert changed.prepare(images) == 5


def test_an_image_not_prepared_is_computed_when_a_batch_asks_for_it():
    calls: list[int] = []
    tower, _ = _counting_tower(calls)
    transform = tower.transform()
    features = FrozenImageFeatures(
        tower, lambda v: transform(open_image(v)), repr(transform), StateCache(2**26)
    )
    images = [s.png for s in starter_world(0, "validation", 2)]
    assert features(images).shape == (2, 4, 48) and calls == [2]


def test_only_a_frozen_tower_has_cached_features():
    tower = build_vision_tower(VisionConfig(model="tiny-vit", pretrained=None, freeze=False))
    with pytest.raises(ValueError, match="frozen"):
        FrozenImageFeatures(tower, lambda v: v, "id")
