"""Visual tokens through the one trunk: projector, pooling, and the fused forward pass.

Visual tokens (projected to the trunk's hidden size) are prepended to the text token
embeddings and the whole sequence runs through the trunk via ``inputs_embeds``. Position ids
are given explicitly: RoBERTa-style trunks (embeddings with ``padding_idx``) count from
``padding_idx + 1`` over non-pad positions, as their own ``input_ids`` path does; BERT-style
trunks count from 0. Text-only inputs never enter this module's fused path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmxfer.errors import ConfigError


class Projector(nn.Module):
    """Maps ``[B, N, D_vision]`` to ``[B, N', H_trunk]``: optional adaptive pooling to N' tokens, then linear/MLP."""

    def __init__(
        self, in_dim: int, out_dim: int, kind: str = "mlp", num_tokens: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ("linear", "mlp"):
            raise ValueError(f"projector must be 'linear' or 'mlp', got {kind!r}")
        self.num_tokens = num_tokens
        if kind == "linear":
            self.net: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)
            )
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.num_tokens is not None and tokens.shape[1] != self.num_tokens:
            tokens = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.num_tokens).transpose(1, 2)
        return self.norm(self.net(tokens))


def word_embeddings(trunk: nn.Module) -> nn.Embedding:
    return trunk.get_input_embeddings()


def position_ids_for(trunk: nn.Module, attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids matching the trunk's own convention for a (possibly visual-prefixed) mask."""
    padding_idx = getattr(getattr(trunk, "embeddings", None), "padding_idx", None)
    mask = attention_mask.long()
    # RoBERTa / XLM-R: padding_idx + running count of real tokens, pads at padding_idx
    if padding_idx is not None:
        return torch.cumsum(mask, dim=1) * mask + padding_idx
    length = mask.shape[1]
    return torch.arange(length, device=mask.device).unsqueeze(0).expand_as(mask)


def position_limit(trunk: nn.Module) -> int | None:
    """How many tokens one sequence may have: ``max_position_embeddings`` minus the padding offset
    (RoBERTa/XLM-R count positions from ``padding_idx + 1``: 514 - 2 = 512); None = no limit known."""
    max_pos = getattr(getattr(trunk, "config", None), "max_position_embeddings", None)
    if max_pos is None:
        return None
    padding_idx = getattr(getattr(trunk, "embeddings", None), "padding_idx", None)
    return int(max_pos) - (int(padding_idx) + 1 if padding_idx is not None else 0)


def check_fused_length(
    trunk: nn.Module, num_visual: int, max_text_length: int, *, length_key: str = "trunk.max_length"
) -> None:
    """Raise one ConfigError line when ``num_visual`` visual + ``max_text_length`` text tokens do not
    fit the trunk's positions (instead of an index error deep inside the embeddings)."""
    limit = position_limit(trunk)
    if limit is None or num_visual + max_text_length <= limit:
        return
    max_pos = trunk.config.max_position_embeddings
    offset = (
        f" ({max_pos} position embeddings minus a padding offset of {max_pos - limit})"
        if max_pos != limit
        else ""
    )
    if num_visual == 0:
        fix = f"set {length_key}={limit} or lower"
    elif num_visual < limit:
        fix = f"lower {length_key} to at most {limit - num_visual}, or use fewer visual tokens (vision.num_tokens)"
    else:
        fix = f"use fewer visual tokens (vision.num_tokens, e.g. {max(1, limit // 4)})"
    raise ConfigError(
        f"{num_visual} visual + {max_text_length} text tokens ({length_key}) = "
        f"{num_visual + max_text_length} positions, but the trunk takes at most {limit}{offset}; "
        f"{fix}"
    )


def fused_forward(
    trunk: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    visual_tokens: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
):
    """Run ``[visual tokens; text tokens]`` through the trunk; returns the trunk output and the extended mask."""
    text_embeds = word_embeddings(trunk)(input_ids)
    visual_tokens = visual_tokens.to(text_embeds.dtype)
    embeds = torch.cat([visual_tokens, text_embeds], dim=1)
    vis_mask = attention_mask.new_ones(visual_tokens.shape[:2])
    mask = torch.cat([vis_mask, attention_mask], dim=1)
    positions = position_ids_for(trunk, mask)
    limit = position_limit(trunk)
    # normally caught before training; a sequence that fits by shape needs no device sync, and past
    # that only real tokens count (RoBERTa-style pads all sit at padding_idx)
    if (
        limit is not None
        and mask.shape[1] > limit
        and int(positions.max()) >= trunk.config.max_position_embeddings
    ):
        # raises
        check_fused_length(
            trunk, visual_tokens.shape[1], input_ids.shape[1], length_key="max_length"
        )
    kwargs = {}
    if token_type_ids is not None:
        kwargs["token_type_ids"] = torch.cat(
            [token_type_ids.new_zeros(visual_tokens.shape[:2]), token_type_ids], 1
        )
    out = trunk(
        inputs_embeds=embeds,
        attention_mask=mask,
        position_ids=positions,
        output_hidden_states=True,
        **kwargs,
    )
    return out, mask
