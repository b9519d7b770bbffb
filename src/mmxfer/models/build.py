"""``build_task_model``: trunk + optional vision tower and projector + one head, as one module.

Text inputs take exactly the plain trunk path (``trunk(input_ids, attention_mask)``); image+text
inputs are fused by prepending projected visual tokens (see :mod:`mmxfer.models.fusion`). Only
``trunk_state()`` / ``save_trunk`` is carried to the next phase.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmxfer.catalog import HEADS, load_plugins
from mmxfer.config import VisionConfig
from mmxfer.models.frozen import freeze_lower_layers, frozen_depth
from mmxfer.models.fusion import Projector, check_fused_length, fused_forward
from mmxfer.models.heads import Head
from mmxfer.models.trunk import Trunk, save_trunk
from mmxfer.models.vision import VisionTower, build_vision_tower, tower_config


class TaskModel(nn.Module):
    def __init__(
        self,
        trunk: nn.Module,
        head: Head,
        vision: nn.Module | None = None,
        projector: nn.Module | None = None,
        tokenizer: Any = None,
        head_name: str = "",
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.vision = vision
        self.projector = projector
        self.tokenizer = tokenizer
        self.head_name = head_name
        self.vision_frozen = vision is not None and not any(
            p.requires_grad for p in vision.parameters()
        )

    def train(self, mode: bool = True) -> TaskModel:
        super().train(mode)
        if self.vision is not None and self.vision_frozen:
            self.vision.eval()  # a frozen tower keeps eval-mode behaviour (dropout off)
        return self

    def visual_tokens(
        self, pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Projected visual tokens ``[B, N, H_trunk]`` of images given as pixels, or as the frozen tower's tokens
        (``image_features``, :mod:`mmxfer.models.image_features`)."""
        if self.vision is None or self.projector is None:
            raise ValueError(
                "this model has no vision tower: build it with vision_cfg to pass pixel_values"
            )
        if image_features is not None:
            if not self.vision_frozen:
                raise ValueError(
                    "image_features stand in for a frozen tower only; pass pixel_values"
                )
            tokens = image_features
        elif self.vision_frozen:
            with torch.no_grad():
                tokens = self.vision(pixel_values)
        else:
            tokens = self.vision(pixel_values)
        return self.projector(tokens)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        target_input_ids: torch.Tensor | None = None,
        target_attention_mask: torch.Tensor | None = None,
        **labels: Any,
    ) -> dict[str, torch.Tensor]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        num_choices = 1
        if input_ids.dim() == 3:  # multiple choice: [B, C, L] -> [B*C, L]
            num_choices = input_ids.shape[1]
            input_ids = input_ids.reshape(-1, input_ids.shape[-1])
            attention_mask = attention_mask.reshape(-1, attention_mask.shape[-1])
            if token_type_ids is not None:
                token_type_ids = token_type_ids.reshape(-1, token_type_ids.shape[-1])
            if pixel_values is not None:
                pixel_values = pixel_values.repeat_interleave(num_choices, dim=0)
            if image_features is not None:
                image_features = image_features.repeat_interleave(num_choices, dim=0)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        labels = {k: v for k, v in labels.items() if v is not None}

        if self.head.dual:
            text_out = self.trunk(input_ids=input_ids, attention_mask=attention_mask, **extra)
            kwargs: dict[str, Any] = {}
            # a sentence pair (bitext): the other side through the same trunk
            if target_input_ids is not None:
                if target_attention_mask is None:
                    target_attention_mask = torch.ones_like(target_input_ids)
                pair_out = self.trunk(
                    input_ids=target_input_ids, attention_mask=target_attention_mask
                )
                kwargs = {
                    "pair_hidden": pair_out.last_hidden_state,
                    "pair_mask": target_attention_mask,
                }
            elif pixel_values is not None or image_features is not None:
                empty = input_ids[:, :0]
                img_out, img_mask = fused_forward(
                    self.trunk,
                    empty,
                    attention_mask[:, :0],
                    self.visual_tokens(pixel_values, image_features),
                )
                kwargs = {"image_hidden": img_out.last_hidden_state, "image_mask": img_mask}
            return self.head(text_out.last_hidden_state, attention_mask, labels=labels, **kwargs)

        if pixel_values is None and image_features is None:
            out = self.trunk(input_ids=input_ids, attention_mask=attention_mask, **extra)
            hidden, mask, text_start = out.last_hidden_state, attention_mask, 0
        else:
            visual = self.visual_tokens(pixel_values, image_features)
            out, mask = fused_forward(self.trunk, input_ids, attention_mask, visual, token_type_ids)
            hidden, text_start = out.last_hidden_state, visual.shape[1]
        result = self.head(
            hidden,
            mask,
            text_start=text_start,
            labels=labels,
            num_choices=num_choices,
            input_ids=input_ids,
        )
        result["hidden_states"] = out.hidden_states
        return result

    def trunk_state(self) -> dict[str, torch.Tensor]:
        """The trunk's weights only (what phase 2 hands to phase 3)."""
        return {k: v.detach() for k, v in self.trunk.state_dict().items()}

    def save_trunk(self, out_dir: str, tokenizer: Any = None):
        tok = tokenizer or self.tokenizer
        if tok is None:
            raise ValueError(
                "save_trunk needs the tokenizer (pass it, or build the model from a Trunk)"
            )
        return save_trunk(self.trunk, tok, out_dir)


def visual_token_count(vision_cfg: VisionConfig) -> int:
    """How many visual tokens ``vision_cfg`` prepends to the text: ``num_tokens`` when set, else what the
    tower emits (probed on the meta device: no weights are allocated or loaded)."""
    if vision_cfg.num_tokens is not None:
        return int(vision_cfg.num_tokens)
    with torch.device("meta"):
        tower = VisionTower(vision_cfg.model, tower_config(vision_cfg.model)).eval()
        tokens = tower(torch.zeros(1, 3, tower.image_size, tower.image_size))
    return int(tokens.shape[1])


def check_sequence_length(
    trunk: Trunk | nn.Module,
    visual: int,
    max_text_length: int,
    *,
    length_key: str = "trunk.max_length",
    dual: bool = False,
) -> None:
    """ConfigError (one line, both numbers and the fix) when ``visual`` (:func:`visual_token_count`) + text
    tokens exceed the trunk's positions. ``dual`` heads encode image and text apart, so each must fit on its own."""
    model = trunk.model if isinstance(trunk, Trunk) else trunk
    if dual:
        check_fused_length(model, 0, max_text_length, length_key=length_key)
        check_fused_length(model, visual, 0, length_key=length_key)
    else:
        check_fused_length(model, visual, max_text_length, length_key=length_key)


def build_task_model(
    trunk: Trunk | nn.Module,
    head: str,
    *,
    num_labels: int | None = None,
    vision_cfg: VisionConfig | None = None,
    freeze_embeddings: bool = False,
    train_top_layers: int | None = None,
    max_text_length: int | None = None,
    length_key: str = "trunk.max_length",
    **head_kwargs: Any,
) -> TaskModel:
    """Trunk (a :class:`~mmxfer.models.trunk.Trunk`, or its model alone) + head; with ``vision_cfg`` also a tower
    and projector.
    ``train_top_layers``: only that many top layers of the trunk train (:mod:`mmxfer.models.frozen`).

    ``max_text_length`` (the featurisation's max length): checked against the trunk's positions
    together with the visual tokens before anything is built (see :func:`check_sequence_length`).
    """
    load_plugins()
    tokenizer = None
    if isinstance(trunk, Trunk):
        trunk, tokenizer = trunk.model, trunk.tokenizer
    if max_text_length is not None:
        visual = visual_token_count(vision_cfg) if vision_cfg is not None else 0
        check_sequence_length(
            trunk, visual, max_text_length, length_key=length_key, dual=HEADS.get(head).dual
        )
    hidden = int(trunk.config.hidden_size)
    head_cls = HEADS.get(head)
    if tokenizer is not None and getattr(tokenizer, "mask_token_id", None) is not None:
        head_kwargs.setdefault("mask_token_id", tokenizer.mask_token_id)
    head_module = head_cls(hidden_size=hidden, num_labels=num_labels, trunk=trunk, **head_kwargs)
    vision = projector = None
    if vision_cfg is not None:
        vision = build_vision_tower(vision_cfg)
        projector = Projector(
            vision.hidden_size, hidden, vision_cfg.projector, vision_cfg.num_tokens
        )
    if freeze_embeddings:
        trunk.get_input_embeddings().requires_grad_(False)
    freeze_lower_layers(trunk, frozen_depth(trunk, train_top_layers))
    return TaskModel(trunk, head_module, vision, projector, tokenizer, HEADS.canonical(head))
