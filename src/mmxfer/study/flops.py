"""FLOPs of mmxfer's models from their shapes: the trunk, the vision tower, the heads, the encoder-decoder.

Counting rules (one multiply-add = 2 FLOPs):

* a weight matrix of ``n`` parameters costs ``2 n`` FLOPs per position it is applied to in the forward pass; in
  training the backward pass costs ``2 n`` more for the gradient of its input - wherever something below it
  trains (else no gradient flows there) - and ``2 n`` more for the gradient of its weight where it trains. So a
  trained layer costs ``6 n`` per position, a frozen layer above a trained part ``4 n``, a frozen layer with
  nothing trained below it (a frozen vision tower, the frozen lower layers of a trunk) ``2 n``;
* N (per position) is the matrices a position passes through: per transformer layer ``4 H^2`` (query, key,
  value, output) ``+ 2 H F`` (feed-forward); embeddings are lookups (0 FLOPs); biases, LayerNorm, softmax and
  activations are left out (under 1 % at these widths);
* attention scores and their weighted sum add ``4 T H`` per position and layer forward (``T`` = the padded
  sequence length the position attends over), with the same factor 1, 2 or 3 as the layer's matrices;
* heads count their own matrices at the positions they read: the ``<s>`` position (classification, multiple
  choice, VQA), every text position (span QA, tagging), the masked positions (captioning's MLM head, whose
  decoder is the 250k-row embedding matrix, trained when the embeddings train);
* the decoder of translation counts self-attention, cross-attention (its key and value projections once per
  source position) and the output projection over the target vocabulary; generation counts every decoding step
  of every beam.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmxfer.errors import ConfigError

ARCHITECTURES = Path(__file__).resolve().parent.parent / "resources" / "cost" / "architectures.json"
MLM_PROBABILITY = 0.15  # captioning's masked share (kinds.base.FeatureOptions.mlm_probability)


@dataclass(frozen=True)
class Encoder:
    """A transformer encoder's shape: ``layers`` x (attention + feed-forward of width ``ff``), ``hidden`` wide."""

    layers: int
    hidden: int
    ff: int
    vocab: int = 0

    @property
    def layer_params(self) -> int:
        """Matrix parameters of one layer (what a position passes through)."""
        return 4 * self.hidden * self.hidden + 2 * self.hidden * self.ff

    @property
    def params(self) -> int:
        """Matrix parameters of every layer (the embeddings, a lookup, are not counted)."""
        return self.layers * self.layer_params

    def layer_forward(self, context: float) -> float:
        """Forward FLOPs of one position through one layer attending over ``context`` positions."""
        return 2 * self.layer_params + 4 * context * self.hidden


@dataclass(frozen=True)
class Vision:
    """An open_clip ViT's shape: ``tokens`` positions (patches + class token) through ``layers`` of ``width``."""

    layers: int
    width: int
    ff: int
    patch: int
    image_size: int
    out_tokens: int  # the tokens the tower hands on (before the projector's pooling)

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2 + 1

    def forward(self) -> float:
        """Forward FLOPs of one image: patch embedding plus every layer over every position."""
        enc = Encoder(self.layers, self.width, self.ff)
        patches = (self.image_size // self.patch) ** 2
        return (
            patches * 2 * 3 * self.patch** 2 * self.width
            + self.tokens * self.layers * enc.layer_forward(self.tokens)
        )


# ----------------------------------------------------------------------------- shapes


def _shape_of_config(config: dict[str, Any]) -> Encoder:
    try:
        return Encoder(
            int(config["num_hidden_layers"]),
            int(config["hidden_size"]),
            int(config["intermediate_size"]),
            int(config.get("vocab_size", 0)),
        )
    except KeyError as exc:
        raise ConfigError(f"trunk config lacks {exc.args[0]}: cannot count its FLOPs") from None


def trunk_shape(name: str) -> Encoder:
    """The shape of trunk ``name``: a folder's ``config.json``, else the shipped table
    (``resources/cost/architectures.json``, keyed by registered name and hub id), else one clear error."""
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return _shape_of_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    table = json.loads(ARCHITECTURES.read_text(encoding="utf-8"))["trunks"]
    for key, entry in table.items():
        if name == key or name in entry.get("aliases", ()):
            return _shape_of_config(entry)
    from mmxfer.catalog import TRUNKS, load_plugins

    load_plugins()
    if name in TRUNKS:  # a registered builder (the tiny test trunks): build it and read its config
        from mmxfer.models.trunk import load_trunk

        return _shape_of_config(load_trunk(name).model.config.to_dict())
    raise ConfigError(
        f"no architecture known for trunk {name!r}: add it to {ARCHITECTURES} or pass a trunk folder "
        f"(with config.json) to estimate its cost"
    )


def vision_shape(vision_cfg: Any) -> Vision:
    """The shape of the profile's open_clip tower (its model config; output tokens probed on the meta device)."""
    from mmxfer.models.build import visual_token_count
    from mmxfer.models.vision import tower_config

    cfg = tower_config(vision_cfg.model)["vision_cfg"]
    if "timm_model_name" in cfg or isinstance(cfg.get("layers"), (list, tuple)):
        raise ConfigError(
            f"vision tower {vision_cfg.model!r} is not a plain ViT: its FLOPs are not counted here"
        )
    width = int(cfg["width"])
    out = visual_token_count(
        vision_cfg.__class__(model=vision_cfg.model, pretrained=None, num_tokens=None)
    )
    return Vision(
        int(cfg["layers"]),
        width,
        int(width * float(cfg.get("mlp_ratio", 4.0))),
        int(cfg["patch_size"]),
        int(cfg["image_size"]),
        out,
    )


# ----------------------------------------------------------------------------- per sequence


def _factor(trains: bool, grad_below: bool, training: bool) -> int:
    """FLOPs multiple of a matrix's forward cost: 1 forward, +1 input gradient, +1 weight gradient."""
    if not training:
        return 1
    return 1 + int(grad_below) + int(trains)


def trunk_sequence(
    enc: Encoder,
    length: float,
    *,
    training: bool,
    trained_layers: int | None = None,
    grad_below: bool = False,
) -> float:
    """FLOPs of one sequence of ``length`` (padded) positions through the trunk. ``trained_layers``: the top
    layers that train (None = all); ``grad_below``: something under the trunk trains (the vision projector), so
    even frozen layers pass the gradient down."""
    top = enc.layers if trained_layers is None else min(enc.layers, trained_layers)
    per_layer = length * enc.layer_forward(length)
    total = 0.0
    for i in range(enc.layers):
        trains = i >= enc.layers - top
        below = grad_below or (i > enc.layers - top)  # a trained layer under this one
        total += per_layer * _factor(trains, below, training)
    return total


def head_sequence(
    head: str,
    enc: Encoder,
    text_length: float,
    *,
    training: bool,
    num_labels: int = 2,
    embeddings_train: bool = True,
) -> float:
    """FLOPs of one sequence's head (``text_length``: its text positions); the head's matrices train in training."""
    h = enc.hidden
    f = _factor(True, True, training)
    if head == "retrieval":  # no head: the trunk's states are pooled (a mean, not counted)
        return 0.0
    if head in ("classification", "classification_mean"):
        return f * 2 * (h * h + h * num_labels)
    if head == "multiple_choice":
        return f * 2 * (h * h + h)
    if head == "span_qa":
        return f * 2 * text_length * 2 * h
    if head == "tagging":
        return f * 2 * text_length * h * num_labels
    if head == "vqa":
        return f * 2 * (h * 2 * h + 2 * h * num_labels)
    if head == "caption_mlm":
        masked = np.maximum(1.0, MLM_PROBABILITY * np.maximum(0.0, np.asarray(text_length) - 2))
        decoder = _factor(embeddings_train, True, training) * 2 * h * enc.vocab
        return masked * (f * 2 * h * h + decoder)
    raise ConfigError(f"no FLOP count for head {head!r}")


def projector_sequence(
    vision: Vision, hidden: int, tokens: int, kind: str, *, training: bool
) -> float:
    """The projector (trained) over ``tokens`` visual tokens: linear, or linear-GELU-linear."""
    params = vision.width * hidden + (hidden * hidden if kind == "mlp" else 0)
    return _factor(True, False, training) * 2 * params * tokens


# ----------------------------------------------------------------------------- the encoder-decoder


@dataclass(frozen=True)
class Decoder:
    """The translation decoder: ``layers`` of the trunk's width with cross-attention, over ``vocab`` targets."""

    layers: int
    hidden: int
    ff: int
    vocab: int

    @property
    def token_params(self) -> int:
        """Matrices a target position passes through per layer: self-attention (4 H^2), cross-attention query and
        output (2 H^2), feed-forward (2 H F)."""
        return 6 * self.hidden * self.hidden + 2 * self.hidden * self.ff

    @property
    def cross_kv_params(self) -> int:
        """Cross-attention key and value projections, applied to every source position per layer."""
        return 2 * self.hidden * self.hidden

    def token_forward(self, context: float, source: float) -> float:
        """Forward FLOPs of one target position through the decoder and the output projection."""
        per_layer = 2 * self.token_params + 4 * context * self.hidden + 4 * source * self.hidden
        return self.layers * per_layer + 2 * self.hidden * self.vocab

    def source_forward(self, source: float) -> float:
        """Forward FLOPs of the cross-attention keys and values of ``source`` positions, every layer."""
        return self.layers * 2 * self.cross_kv_params * source


def seq2seq_pair(
    enc: Encoder,
    dec: Decoder,
    source: float,
    target: float,
    *,
    encoder_trains: bool,
    embeddings_train: bool,
) -> float:
    """Training FLOPs of one padded pair. The encoder trains in stage 2 except its embeddings (so its lowest layer
    passes no gradient down), and is frozen in stage 1 (forward only); the decoder's layers and cross-attention
    train; its lowest layer passes a gradient down, and its output projection (tied to its embeddings) computes a
    weight gradient, only where the decoder's embeddings train (``embeddings_train``)."""
    encoder = trunk_sequence(
        enc, source, training=True, trained_layers=None if encoder_trains else 0
    )
    layer = (2 * dec.token_params + 4 * target * dec.hidden + 4 * source * dec.hidden) * target
    layers = layer * (3 * (dec.layers - 1) + _factor(True, embeddings_train, True))
    kv = dec.source_forward(source) * _factor(True, encoder_trains, True)
    head = 2 * dec.hidden * dec.vocab * target * _factor(embeddings_train, True, True)
    return encoder + layers + kv + head


def generation_batch(
    enc: Encoder, dec: Decoder, batch: int, source: float, steps: int, beams: int
) -> float:
    """Forward FLOPs of generating ``steps`` tokens for ``batch`` sentences of ``source`` padded positions with
    ``beams`` beams (a KV cache: each step runs one new position per beam; finished beams still compute)."""
    encode = batch * (trunk_sequence(enc, source, training=False) + dec.source_forward(source))
    decode = batch * beams * sum(dec.token_forward(t + 1, source) for t in range(steps))
    return encode + decode
