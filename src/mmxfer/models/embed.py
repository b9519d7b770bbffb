"""Sentence embeddings from a trunk: what retrieval evaluation and ``mmxfer embed`` call."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from tqdm.auto import tqdm

from mmxfer.errors import ConfigError
from mmxfer.models.fusion import position_limit
from mmxfer.models.heads import masked_mean
from mmxfer.runs.env import resolve_precision


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    return masked_mean(hidden, mask)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 (or, on a GPU, fp16) autocast for ``precision`` on ``device``; ``auto`` as
    :func:`mmxfer.runs.env.resolve_precision` decides; a null context for fp32."""
    resolved = resolve_precision(precision, device.type)
    if resolved == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if resolved == "fp16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if resolved not in ("no", "fp16"):
        raise ConfigError(f"precision must be one of no, bf16, fp16, auto; got {precision!r}")
    return contextlib.nullcontext()


@torch.no_grad()
def encode(
    model,
    tokenizer,
    sentences: list[str],
    *,
    layer: int | None = None,
    pooling: str = "mean",
    prefix: str = "",
    batch_size: int = 32,
    max_length: int = 256,
    normalize: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    precision: str = "no",
) -> np.ndarray:
    """Pooled hidden states, float32 ``[N, H]``, in input order.

    ``layer``: None = last, 0 = embedding output, negative counts from the end (-1 = last).
    Mean pooling averages every non-pad token including ``<s>``/``</s>`` (as e5 and the XTREME
    retrieval baselines do). Every sentence is truncated to ``max_length`` tokens, and never to more than the
    trunk's positions allow. Sentences are tokenised once and batched by token count internally
    for speed. ``precision``: ``no`` (fp32), ``bf16``, or ``auto`` (bf16 where the hardware has it natively).
    """
    if pooling not in ("mean", "cls"):
        raise ConfigError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    if batch_size < 1 or max_length < 2:
        raise ConfigError("batch_size must be >= 1 and max_length >= 2")
    num_layers = int(model.config.num_hidden_layers)
    index = num_layers if layer is None else layer
    if not -(num_layers + 1) <= index <= num_layers:
        raise ConfigError(
            f"layer {layer} is out of range: the trunk has layers 0..{num_layers} (or -1..-{num_layers + 1})"
        )
    hidden_size = int(model.config.hidden_size)
    limit = position_limit(model)
    if limit is not None:  # a longer window would index past the position embeddings
        max_length = min(max_length, limit)
    if not sentences:
        return np.zeros((0, hidden_size), dtype=np.float32)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    model.to(device)
    ids = tokenizer([prefix + s for s in sentences], truncation=True, max_length=max_length)[
        "input_ids"
    ]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros((len(ids), hidden_size), dtype=np.float32)
    try:
        with autocast(precision, device):
            for start in tqdm(
                range(0, len(order), batch_size), desc="embed", unit="batch", disable=not progress
            ):
                idx = order[start : start + batch_size]
                input_ids, mask = _padded([ids[i] for i in idx], pad_id)
                input_ids, mask = input_ids.to(device), mask.to(device)
                hidden = model(
                    input_ids=input_ids, attention_mask=mask, output_hidden_states=True
                ).hidden_states[index]
                pooled = _pool(hidden.float(), mask, pooling)
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def _padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask of token-id rows."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return input_ids, mask
