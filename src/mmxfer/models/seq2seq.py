"""The zero-shot translation model (SixT, Chen et al. 2021, arXiv 2104.08757): the trunk encodes, a decoder
with cross-attention writes English.

Built with ``transformers``' :class:`~transformers.EncoderDecoderModel`: the encoder is the (phase-2) trunk as
:func:`~mmxfer.models.trunk.load_trunk` returns it; the decoder is the trunk's own architecture as a causal LM
with cross-attention added (``is_decoder`` + ``add_cross_attention``: ``XLMRobertaForCausalLM`` for XLM-R,
``BertLMHeadModel`` for BERT-style trunks such as the starter's e5), ``layers`` deep:

- ``init="trunk"`` (default): decoder layer ``i`` starts as trunk layer ``i`` (``layers: N`` takes the first
  N), the cross-attention is new - the warm-started decoder of Rothe et al. 2020 (TACL, "Leveraging
  Pre-trained Checkpoints for Sequence Generation Tasks"). Chosen as the default because it learns from far
  fewer updates than a random decoder, which matters for every budget below SixT's 230k updates;
- ``init="random"``: only the embeddings come from the trunk and the layers start random, as SixT's decoder.

Either way the decoder's token embeddings are the trunk's rows of its *target vocabulary* and the output
projection is tied to them (SixT shares the decoder's input and output embeddings). The target vocabulary is,
by default, the trunk's pieces that occur in the English side of the training pairs (SixT's target dictionary;
:func:`target_vocabulary`), which keeps the softmax small; decoder ids are compact positions in it and are
mapped back to the trunk's ids for decoding.

Stages (:meth:`Seq2Seq.set_stage`): 1 = the whole encoder frozen (kept in eval mode: no dropout, as SixT) and
the decoder's embeddings frozen, so the decoder layers and cross-attention learn; 2 = the encoder trained
except its embeddings (token, position, embedding LayerNorm), the decoder entirely (its embeddings optionally).
Generation is beam search through ``generate`` (``num_beams``; no sampling, so it is deterministic), each
sentence's length bounded inside the search (fairseq's rule, :class:`EndAtBound`) and a sentence finished once
``num_beams`` hypotheses have ended (fairseq's ``SequenceGenerator``, sequence_generator.py:610:
``early_stopping=True``).

ResDrop (``resdrop_layer``, SixT's position-disentangled encoder): that encoder layer's self-attention sub-layer
computes ``LayerNorm(dropout(attention(x)))`` instead of ``LayerNorm(x + dropout(attention(x)))``, from stage 2 on
(ghchen18/emnlp2021-sixt fairseq/modules/transformer_sentence_encoder_layer.py:136-137, the layer
``--resdrop-layer`` names, 0-based: transformer_sentence_encoder.py:274-275).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmxfer.errors import ConfigError
from mmxfer.models.trunk import Trunk, load_state_partial

# transformers is imported when a model is built: registering the models stays fast

log = logging.getLogger(__name__)

IGNORE = -100


def special_ids(tokenizer: Any) -> dict[str, int]:
    """The decoder's start, end, padding and unknown tokens (start: ``<s>``/``[CLS]``, end: ``</s>``/``[SEP]``)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    ids = {"start": start, "end": end, "pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id}
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise ConfigError(
            f"the trunk's tokenizer has no {', '.join(missing)} token: it cannot drive a decoder"
        )
    return ids


def target_vocabulary(tokenizer: Any, label_rows: Iterable[Sequence[int]]) -> list[int]:
    """The trunk ids a decoder needs for these targets: the special tokens and every id in ``label_rows``
    (``-100`` skipped), sorted - compact id ``k`` is the ``k``-th smallest."""
    ids = set(special_ids(tokenizer).values())
    for row in label_rows:
        ids.update(int(t) for t in row if t >= 0)
    return sorted(ids)


def shift_right(labels: torch.Tensor, start: int, pad: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: ``start`` then the labels without their last position."""
    out = labels.new_full(labels.shape, pad)
    out[:, 1:] = labels[:, :-1]
    out[:, 0] = start
    return out.masked_fill(out == IGNORE, pad)


class NoResidualSelfOutput(nn.Module):
    """A BERT-style self-attention output (``dense``, ``dropout``, ``LayerNorm``) that adds the sub-layer's input
    back only while ``active`` is False; the same parameters (and state-dict keys) as the module it wraps."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.dense, self.dropout, self.LayerNorm = inner.dense, inner.dropout, inner.LayerNorm
        self.active = False

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(out if self.active else out + input_tensor)


def install_resdrop(encoder: nn.Module, layer: int) -> NoResidualSelfOutput:
    """Put :class:`NoResidualSelfOutput` into encoder layer ``layer`` (0-based), inactive until stage 2."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None or not 0 <= layer < len(layers):
        depth = len(layers) if layers is not None else 0
        raise ConfigError(
            f"translation.resdrop_layer={layer}: the trunk has {depth} layers (0-based index "
            f"0 to {depth - 1})"
        )
    attention = getattr(layers[layer], "attention", None)
    output = getattr(attention, "output", None)
    if not all(hasattr(output, name) for name in ("dense", "dropout", "LayerNorm")):
        raise ConfigError(
            f"translation.resdrop_layer: layer {layer} of this trunk has no BERT-style self-attention "
            f"output (dense, dropout, LayerNorm) to remove the residual from"
        )
    if not isinstance(output, NoResidualSelfOutput):
        output = NoResidualSelfOutput(output)
        attention.output = output
    return output


class EndAtBound:
    """A logits processor: a row whose hypothesis has ``bounds[sentence]`` tokens may only end (every score but the
    end token's is -inf), as fairseq's ``SequenceGenerator`` does at ``step >= max_len``
    (fairseq/sequence_generator.py:286-288) - the bound is inside the search, per sentence."""

    def __init__(self, bounds: torch.Tensor, num_beams: int, end: int) -> None:
        self.rows = bounds.long().repeat_interleave(num_beams)  # beam search's rows: sentence-major
        self.end = end

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids.shape[-1] - 1  # after the decoder start token
        done = generated >= self.rows.to(scores.device)
        if bool(done.any()):
            end_scores = scores[:, self.end].clone()
            scores = scores.masked_fill(done[:, None], float("-inf"))
            scores[:, self.end] = torch.where(done, end_scores, scores[:, self.end])
        return scores


class Seq2Seq(nn.Module):
    """An :class:`~transformers.EncoderDecoderModel` over a compact target vocabulary.

    ``forward(input_ids, attention_mask, labels)`` takes labels in the trunk's ids (``-100`` = padding) and
    returns ``{"loss"}`` (label-smoothed cross-entropy); :meth:`generate` returns trunk ids.
    """

    def __init__(
        self,
        model: Any,
        vocab: Sequence[int],
        full_size: int,
        specials: dict[str, int],
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = float(label_smoothing)
        compact = torch.tensor(list(vocab), dtype=torch.long)
        lookup = torch.full((full_size,), -1, dtype=torch.long)
        lookup[compact] = torch.arange(len(compact))
        self.register_buffer("compact_to_full", compact, persistent=True)
        self.register_buffer(
            "full_to_compact",
            lookup.masked_fill(lookup < 0, int(lookup[specials["unk"]])),
            persistent=True,
        )
        self.ids = {
            k: int(lookup[v]) for k, v in specials.items()
        }  # compact ids of start, end, pad, unk
        self.encoder_frozen = False
        # the ResDrop layer's output (active from stage 2), held in a tuple: it is registered once, in the encoder
        self.resdrop: tuple[NoResidualSelfOutput, ...] = ()

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.model.decoder

    @property
    def vocab_size(self) -> int:
        return int(self.compact_to_full.numel())

    def to_compact(self, labels: torch.Tensor) -> torch.Tensor:
        ids = self.full_to_compact[labels.clamp(min=0)]
        return ids.masked_fill(labels == IGNORE, IGNORE)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> dict[str, torch.Tensor]:
        if labels is None:
            raise ValueError("Seq2Seq.forward needs labels (use generate() to translate)")
        target = self.to_compact(labels)
        decoder_inputs = shift_right(target, self.ids["start"], self.ids["pad"])
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_inputs,
            use_cache=False,
        )
        logits = out.logits
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            target.reshape(-1),
            ignore_index=IGNORE,
            label_smoothing=self.label_smoothing,
        )
        return {"loss": loss}

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        num_beams: int = 5,
        max_new_tokens: int = 128,
        min_new_tokens: int = 0,
        bounds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Beam search (no sampling: deterministic); trunk ids ``[B, T]``, right-padded with the pad id.

        ``bounds``: each sentence's most tokens before its end token (:meth:`length_bounds`), enforced inside the
        search (:class:`EndAtBound`); the search then runs ``max(bounds) + 1`` steps (the end token included) and
        ``max_new_tokens`` is not read. ``min_new_tokens``: no end token before that many (benchmarks use it to fix
        the output length)."""
        from transformers import LogitsProcessorList

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra: dict[str, Any] = {"min_new_tokens": min_new_tokens} if min_new_tokens else {}
        if bounds is not None:
            max_new_tokens = int(bounds.max()) + 1
            extra["logits_processor"] = LogitsProcessorList(
                [EndAtBound(bounds, num_beams, self.ids["end"])]
            )
        if num_beams > 1:
            extra["early_stopping"] = True
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            num_beams=num_beams,
            num_return_sequences=1,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            decoder_start_token_id=self.ids["start"],
            bos_token_id=self.ids["start"],
            eos_token_id=self.ids["end"],
            pad_token_id=self.ids["pad"],
            **extra,
        )
        sequences = out if isinstance(out, torch.Tensor) else out.sequences
        return self.compact_to_full[sequences]

    def length_bounds(self, source_lengths: torch.Tensor, a: float, b: int) -> torch.Tensor:
        """fairseq's ``int(max_len_a * source length + max_len_b)`` (sequence_generator.py:195-198), capped by the
        decoder's positions (the start token and the hypothesis must fit). Per sentence, from its own length:
        fairseq takes the batch's padded source width (:188), the same bound when ``a`` is 0 (its test decoding)
        and never below this one otherwise, so a translation here does not depend on its batch."""
        positions = int(getattr(self.decoder.config, "max_position_embeddings", 512))
        # XLM-R positions start after pad
        first = int(getattr(self.decoder.config, "pad_token_id", 0) or 0) + 1
        raw = torch.tensor([int(a * int(n) + b) for n in source_lengths.tolist()], dtype=torch.long)
        # fed to the decoder: the start token and every hypothesis token but the last (fairseq: positions - 1)
        return raw.clamp(min=1, max=positions - first - 1)

    # --- stages -----------------------------------------------------------------------------------

    def set_stage(self, stage: int, *, train_decoder_embeddings: bool = True) -> None:
        """1: encoder and decoder embeddings frozen; 2: encoder trained except its embeddings, decoder trained
        (its embeddings only with ``train_decoder_embeddings``). The encoder's pooler is never used."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.requires_grad_(True)
        self.encoder.requires_grad_(stage == 2)
        self.encoder.embeddings.requires_grad_(False)
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler.requires_grad_(False)
        self.decoder.base_model.embeddings.requires_grad_(stage == 2 and train_decoder_embeddings)
        self.encoder_frozen = stage == 1
        for output in self.resdrop:
            output.active = stage == 2
        self.train(self.training)

    def train(self, mode: bool = True) -> Seq2Seq:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()  # a frozen encoder runs without dropout (SixT stage 1)
        return self

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _decoder_config(
    encoder_config: Any,
    layers: int | None,
    vocab_size: int,
    specials: dict[str, int],
    dropout: float | None,
) -> Any:
    config = copy.deepcopy(encoder_config)
    n = layers if layers is not None else int(config.num_hidden_layers)
    if n < 1:
        raise ConfigError(f"translation.decoder_layers must be at least 1, got {n}")
    config.num_hidden_layers = n
    config.is_decoder = True
    config.add_cross_attention = True
    config.vocab_size = vocab_size
    config.output_hidden_states = False
    config.tie_word_embeddings = True  # output projection = the decoder's token embeddings
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        specials["pad"],
        specials["start"],
        specials["end"],
    )
    if dropout is not None:
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = float(dropout)
    return config


def build_seq2seq(
    trunk: Trunk,
    *,
    vocab: Sequence[int] | None = None,
    layers: int | None = None,
    init: str = "trunk",
    dropout: float | None = None,
    label_smoothing: float = 0.0,
    resdrop_layer: int | None = None,
) -> Seq2Seq:
    """The trunk as encoder + a decoder made from it (see the module docstring).

    ``vocab``: the trunk ids the decoder can emit (:func:`target_vocabulary`); None = the whole vocabulary.
    ``layers``: decoder depth (None = the trunk's); ``init``: ``trunk`` or ``random``; ``resdrop_layer``: the
    encoder layer (0-based) without its self-attention residual from stage 2 on (None = none).
    """
    from transformers import AutoModelForCausalLM, EncoderDecoderModel

    encoder, tokenizer = trunk.model, trunk.tokenizer
    if init not in ("trunk", "random"):
        raise ConfigError(
            f"translation.decoder_init: {init!r} is not allowed; allowed values: 'trunk', 'random'"
        )
    full_size = int(encoder.get_input_embeddings().weight.shape[0])
    specials = special_ids(tokenizer)
    vocab = list(range(full_size)) if vocab is None else sorted({*vocab, *specials.values()})
    if vocab[-1] >= full_size:
        raise ConfigError(
            f"target vocabulary id {vocab[-1]} is outside the trunk's {full_size} embeddings"
        )
    depth = layers if layers is not None else int(encoder.config.num_hidden_layers)
    if init == "trunk" and depth > int(encoder.config.num_hidden_layers):
        raise ConfigError(
            f"translation.decoder_layers={depth} but the trunk has {encoder.config.num_hidden_layers} "
            f"layers to start from; use at most that many or decoder_init=random"
        )
    compact_specials = {k: vocab.index(v) for k, v in specials.items()}
    config = _decoder_config(encoder.config, layers, len(vocab), compact_specials, dropout)
    decoder = AutoModelForCausalLM.from_config(
        config, attn_implementation=encoder.config._attn_implementation
    )
    _init_decoder(decoder, encoder, vocab, init, depth)
    encoder.config.output_hidden_states = False  # the decoder reads the last layer only
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    seq2seq = Seq2Seq(model, vocab, full_size, specials, label_smoothing)
    if resdrop_layer is not None:
        seq2seq.resdrop = (install_resdrop(seq2seq.encoder, resdrop_layer),)
    seq2seq.set_stage(1)
    return seq2seq


def _init_decoder(
    decoder: nn.Module, encoder: nn.Module, vocab: Sequence[int], init: str, depth: int
) -> None:
    """Copy the trunk's embeddings (target-vocabulary rows) and, with ``init="trunk"``, its first ``depth``
    layers into the decoder; cross-attention and the LM head's transform stay freshly initialised."""
    state = encoder.state_dict()
    rows = torch.as_tensor(list(vocab), dtype=torch.long)
    wanted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("embeddings."):
            wanted[key] = (
                value[rows].clone() if key == "embeddings.word_embeddings.weight" else value.clone()
            )
        elif init == "trunk" and key.startswith("encoder.layer."):
            index = int(key.split(".")[2])
            if index < depth:
                wanted[key] = value.clone()
    report = load_state_partial(decoder.base_model, wanted, log_level=logging.DEBUG)
    if report.mismatched:
        raise ConfigError(
            f"cannot start the decoder from the trunk: mismatched weights {report.mismatched[:3]}"
        )
    decoder.tie_weights()
