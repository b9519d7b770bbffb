"""Frozen lower trunk layers (``trunk.train_top_layers: K``) and the per-process cache of their output.

With ``K`` set, only the top ``K`` transformer layers of the trunk train, in every phase; its embeddings and every
layer below them take no gradient and always run in eval mode (no dropout). Their output for a text input is then a
pure function of those weights, the token ids and the autocast setting, so it is computed once per process and kept
in :data:`STATES` (least recently used out once its bytes exceed ``MMXFER_STATE_CACHE_MB``, default 1536; under bf16
autocast the states are kept in bf16, and the upper layers read the rounded states on every pass, cached or not, so a
result never depends on whether a sentence was seen before): every arm
whose training froze the same layers, every seed, every epoch of phase 3 and the retrieval evaluation reuse it. The
key holds a content fingerprint of the frozen weights (not the model object), so a trunk read back from a phase-2
folder finds the states that another run computed. Inputs that are not plain right-padded token ids (visual tokens
given as ``inputs_embeds``, explicit positions, token types) still skip the frozen layers' weight gradients and
dropout, but are not cached; gradients still flow through them to ``inputs_embeds`` (the projector of phase 2).

The split works on any encoder laid out as Hugging Face's BERT/RoBERTa/XLM-R are (``embeddings`` +
``encoder.layer``): the model's own forward runs twice, once over the lower layers and once over the upper ones with
the lower states standing in for the embeddings, so masks and outputs are what the library makes. ``hidden_states``
of a split forward holds ``None`` for the layers below the frozen depth (never computed). Tested on one process
(CPU or one GPU); the forward swaps the encoder's layer list while it runs, so it is not meant for FSDP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mmxfer.errors import ConfigError
from mmxfer.memory import file_mapped_ranges, hash_giving_back_file_pages

DEFAULT_BUDGET_MB = 1536


class StateCache:
    """Tensors by key, least recently used first out once their bytes exceed ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Any, torch.Tensor] = OrderedDict()

    def get(self, key: Any) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Any, value: torch.Tensor) -> None:
        if key in self._items:
            return
        size = value.numel() * value.element_size()
        if size > self.max_bytes:
            return
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()

    def clear(self) -> None:
        self._items.clear()
        self.bytes = self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


def _budget() -> int:
    raw = os.environ.get("MMXFER_STATE_CACHE_MB", str(DEFAULT_BUDGET_MB))
    try:
        return max(0, int(raw)) * 2**20
    except ValueError:
        raise ConfigError(
            f"MMXFER_STATE_CACHE_MB must be a whole number of MiB, got {raw!r}"
        ) from None


#: the process-wide cache of frozen-layer outputs
STATES = StateCache(_budget())


@dataclass
class _Frozen:
    layers: int
    fingerprint: str
    cache: StateCache | None


def layer_stack(model: nn.Module) -> nn.ModuleList:
    """The encoder's transformer layers (``encoder.layer``); a ConfigError for other layouts."""
    stack = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList) or not isinstance(
        getattr(model, "embeddings", None), nn.Module
    ):
        raise ConfigError(
            f"trunk.train_top_layers needs a BERT/RoBERTa-style trunk (embeddings + encoder.layer); "
            f"{type(model).__name__} is not laid out that way: leave trunk.train_top_layers unset"
        )
    return stack


def frozen_depth(model: nn.Module, train_top_layers: int | None) -> int:
    """How many lower layers stay frozen when only the top ``train_top_layers`` of ``model`` train (0: none)."""
    if train_top_layers is None:
        return 0
    return max(0, len(layer_stack(model)) - int(train_top_layers))


def tensors_fingerprint(named: Iterator[tuple[str, torch.Tensor]], *extra: str) -> str:
    """sha256 over names, shapes, dtypes and bytes of the tensors (and ``extra`` strings). Tensors mapped from a
    weights file are read without staying resident (:func:`mmxfer.memory.hash_giving_back_file_pages`): the
    embedding matrix's 250k rows would otherwise all be in memory for a model that looks up a few thousand."""
    digest = hashlib.sha256()
    for part in extra:
        digest.update(part.encode())
    ranges = file_mapped_ranges()
    for name, tensor in named:
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        hash_giving_back_file_pages(
            digest, memoryview(t.reshape(-1).view(torch.uint8).numpy()), t.data_ptr(), ranges
        )
    return digest.hexdigest()[:32]


def _lower_modules(model: nn.Module, n: int) -> list[nn.Module]:
    return [model.embeddings, *layer_stack(model)[:n]]


def lower_fingerprint(model: nn.Module, n: int) -> str:
    """Content fingerprint of the embeddings and the first ``n`` layers (weights and buffers), the model class,
    its config and attention implementation: two trunks with equal fingerprints compute equal lower states."""
    named = []
    for i, module in enumerate(_lower_modules(model, n)):
        named += [(f"{i}.{k}", v) for k, v in module.state_dict().items()]
    return tensors_fingerprint(iter(named), type(model).__name__, _numerics(model.config), str(n))


#: config fields that change what the lower layers compute beyond their weights' shapes
_NUMERIC_FIELDS = (
    "hidden_act",
    "layer_norm_eps",
    "num_attention_heads",
    "position_embedding_type",
    "pad_token_id",
    "_attn_implementation",
)


def _numerics(config: Any) -> str:
    return repr([(k, getattr(config, k, None)) for k in _NUMERIC_FIELDS])


def freeze_lower_layers(model: nn.Module, n: int, cache: StateCache | None = STATES) -> None:
    """Freeze the embeddings and the first ``n`` layers of ``model`` (a trunk) and route its forward through
    the split with the cache (:data:`STATES`; None = no cache). ``n = 0`` does nothing."""
    if n <= 0:
        return
    stack = layer_stack(model)
    if n > len(stack):
        raise ConfigError(f"cannot freeze {n} layers of a trunk with {len(stack)}")
    current = getattr(model, "_mmxfer_frozen", None)
    if current is not None:
        if current.layers != n:
            raise ConfigError(
                f"this trunk already has {current.layers} frozen layers; cannot freeze {n}"
            )
        return
    for module in _lower_modules(model, n):
        module.requires_grad_(False)
    model._mmxfer_frozen = _Frozen(n, lower_fingerprint(model, n), cache)
    # the instance's forward; the class (and saving) is unchanged
    model.forward = _split_forward.__get__(model)


@contextlib.contextmanager
def _eval_mode(modules: list[nn.Module]) -> Iterator[None]:
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for m, _ in modes:
        m.training = False
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


class _Given(nn.Module):
    """Stands in for the embeddings in the upper half: returns the lower layers' output as it is."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.hidden


@contextlib.contextmanager
def _swapped(
    model: nn.Module, layers: list[nn.Module], embeddings: nn.Module | None = None
) -> Iterator[None]:
    encoder, old_layers, old_embeddings = model.encoder, model.encoder.layer, model.embeddings
    encoder.layer = nn.ModuleList(layers)
    if embeddings is not None:
        model.embeddings = embeddings
    try:
        yield
    finally:
        encoder.layer = old_layers
        model.embeddings = old_embeddings


def _autocast_key(device: torch.device) -> tuple[str, bool, str]:
    kind = device.type
    try:
        enabled = torch.is_autocast_enabled(kind)
        dtype = str(torch.get_autocast_dtype(kind)) if enabled else ""
    except (TypeError, RuntimeError):  # pragma: no cover - a device type autocast does not know
        enabled, dtype = False, ""
    return kind, enabled, dtype


def _lower(model: nn.Module, n: int, **inputs: Any) -> torch.Tensor:
    """The output of the frozen layers (eval mode) for ``inputs`` (gradients flow to ``inputs_embeds`` only)."""
    original = type(model).forward.__get__(model)
    stack = list(model.encoder.layer)
    with _swapped(model, stack[:n]), _eval_mode(_lower_modules(model, n)):
        return original(**inputs, output_hidden_states=False).last_hidden_state


def _right_padded_lengths(mask: torch.Tensor) -> list[int] | None:
    """Row lengths when every row of ``mask`` is ones then zeros; None otherwise."""
    lengths = mask.sum(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    if not torch.equal(mask.bool(), positions < lengths.unsqueeze(1)):
        return None
    return [int(x) for x in lengths.tolist()]


def _cached_lower(
    model: nn.Module,
    state: _Frozen,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    lengths: list[int],
) -> torch.Tensor:
    """The frozen layers' output for right-padded token ids, row by row from the cache, the rest computed
    in one batch (only as long as its longest row) and stored."""
    cache = state.cache
    autocast = _autocast_key(input_ids.device)
    store = torch.bfloat16 if autocast[1] and autocast[2] == str(torch.bfloat16) else None
    ids_cpu = input_ids.detach().cpu()
    keys = [
        ((state.fingerprint, autocast), ids_cpu[i, :n].numpy().tobytes())
        for i, n in enumerate(lengths)
    ]
    rows: list[torch.Tensor | None] = [cache.get(k) for k in keys]
    todo = [i for i, r in enumerate(rows) if r is None]
    dtype = torch.float32 if store is not None else None
    if todo:
        width = max(lengths[i] for i in todo)
        with torch.no_grad():
            computed = _lower(
                model,
                state.layers,
                input_ids=input_ids[todo, :width],
                attention_mask=mask[todo, :width],
            )
        dtype = dtype or computed.dtype
        for j, i in enumerate(todo):
            rows[i] = computed[j, : lengths[i]].detach().to(store or computed.dtype, copy=True)
            cache.put(keys[i], rows[i])
    hidden = torch.zeros(
        input_ids.shape[0],
        input_ids.shape[1],
        rows[0].shape[-1],
        dtype=dtype or rows[0].dtype,
        device=input_ids.device,
    )
    for i, row in enumerate(rows):
        hidden[i, : lengths[i]] = row
    return hidden


def _split_forward(
    self: nn.Module,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    output_hidden_states: bool | None = None,
    return_dict: bool | None = None,
    **unsupported: Any,
) -> Any:
    """The trunk's forward with frozen lower layers: lower states (cached for plain token ids), then the
    upper layers through the model's own forward; ``hidden_states`` has None below the frozen depth."""
    if any(v is not None for v in unsupported.values()):
        raise TypeError(f"a trunk with frozen layers takes no {', '.join(sorted(unsupported))}")
    state: _Frozen = self._mmxfer_frozen
    n = state.layers
    reference = input_ids if input_ids is not None else inputs_embeds
    if attention_mask is None:
        attention_mask = torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
    plain_types = token_type_ids is None or not bool(token_type_ids.any())
    lengths = None
    if (
        state.cache is not None
        and input_ids is not None
        and inputs_embeds is None
        and position_ids is None
        and plain_types
    ):
        lengths = _right_padded_lengths(attention_mask)
    if lengths is not None and min(lengths) > 0:
        hidden = _cached_lower(self, state, input_ids, attention_mask, lengths)
    else:
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
        }
        grad = inputs_embeds is not None and inputs_embeds.requires_grad and torch.is_grad_enabled()
        with contextlib.nullcontext() if grad else torch.no_grad():
            hidden = _lower(self, n, **{k: v for k, v in inputs.items() if v is not None})
    original = type(self).forward.__get__(self)
    stack = list(self.encoder.layer)
    with _swapped(self, stack[n:], embeddings=_Given(hidden)):
        out = original(
            inputs_embeds=hidden, attention_mask=attention_mask, output_hidden_states=True
        )
    if out.hidden_states is not None:
        out.hidden_states = (None,) * n + tuple(out.hidden_states)
    return out
