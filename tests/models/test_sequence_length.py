"""Visual + text tokens that exceed the trunk's positions fail at build time with one clear ConfigError."""

from __future__ import annotations

import pytest
import torch

from mmxfer.config import VisionConfig
from mmxfer.errors import ConfigError
from mmxfer.models import build_task_model
from mmxfer.models.build import visual_token_count
from mmxfer.models.fusion import check_fused_length, fused_forward, position_limit
from mmxfer.testing.tiny import tiny_bert_trunk, tiny_trunk

VISION = VisionConfig(
    model="tiny-vit", pretrained=None, freeze=True, projector="linear", num_tokens=None
)


def test_position_limit_subtracts_the_padding_offset():
    # XLM-R style: 130 positions, counted from padding_idx + 1
    assert position_limit(tiny_trunk().model) == 128
    assert position_limit(tiny_bert_trunk().model) == 128  # BERT style: from 0


def test_visual_token_count_matches_the_built_tower():
    model = build_task_model(tiny_trunk(), "classification", num_labels=2, vision_cfg=VISION)
    assert (
        visual_token_count(VISION) == model.visual_tokens(torch.zeros(1, 3, 32, 32)).shape[1] == 4
    )
    assert visual_token_count(VisionConfig(model="tiny-vit", pretrained=None, num_tokens=2)) == 2


def test_build_fails_with_both_numbers_and_the_fix():
    trunk = tiny_trunk()
    # 4 + 124 fits
    build_task_model(trunk, "vqa", num_labels=3, vision_cfg=VISION, max_text_length=124)
    with pytest.raises(ConfigError) as info:
        build_task_model(
            trunk,
            "vqa",
            num_labels=3,
            vision_cfg=VISION,
            max_text_length=125,
            length_key="intermediate.max_length",
        )
    msg = str(info.value)
    assert "\n" not in msg
    assert "4 visual + 125 text tokens" in msg and "at most 128" in msg
    assert "130 position embeddings minus a padding offset of 2" in msg
    assert "lower intermediate.max_length to at most 124" in msg and "vision.num_tokens" in msg


def test_text_only_and_too_many_visual_tokens():
    trunk = tiny_bert_trunk().model
    with pytest.raises(
        ConfigError, match=r"0 visual \+ 129 text tokens .* set trunk.max_length=128 or lower"
    ):
        check_fused_length(trunk, 0, 129)
    with pytest.raises(ConfigError, match="use fewer visual tokens"):
        check_fused_length(trunk, 200, 16)


def test_fused_forward_overflow_is_a_config_error():
    model, tok = tiny_trunk()
    ids = torch.full((1, 126), 5)
    with pytest.raises(ConfigError, match="4 visual"):
        fused_forward(model, ids, torch.ones_like(ids), torch.zeros(1, 4, 32))
