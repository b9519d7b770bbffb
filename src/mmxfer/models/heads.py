"""Task heads, each a small module that owns its loss; registered in ``catalog.HEADS``.

Every head sees the trunk's last hidden states ``[B, T, H]`` of the (possibly visual-prefixed)
sequence, the matching attention mask, and ``text_start`` - the index of the text's ``<s>``
token (the number of visual tokens before it) - so pooling and token-level outputs always refer
to the text. ``forward`` returns a dict with ``logits`` (``start_logits``/``end_logits`` for span
QA) and ``loss`` when its label keys are in ``labels``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmxfer.catalog import HEADS
from mmxfer.errors import ConfigError, DataError
from mmxfer.memory import give_back_if_file_mapped

# safetensors is imported where a checkpoint's LM head is read: registering the heads stays fast


def _require_labels(name: str, num_labels: int | None) -> int:
    if not num_labels or num_labels < 1:
        raise ConfigError(f"head {name!r} needs num_labels >= 1 (the task's label or answer count)")
    return int(num_labels)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [B, T, H]`` over the positions ``mask [B, T]`` keeps (an empty row gives zeros)."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class Head(nn.Module):
    """Base: ``label_keys`` name the batch entries the loss needs; ``dual`` heads encode text and image apart."""

    label_keys: tuple[str, ...] = ("labels",)
    dual: bool = False
    token_level: bool = False

    def has_labels(self, labels: dict[str, torch.Tensor]) -> bool:
        return all(labels.get(k) is not None for k in self.label_keys)


class _PooledHead(Head):
    """``<s>`` pooling -> dense -> tanh -> dropout -> output (RoBERTa's classification head shape)."""

    def __init__(self, hidden_size: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, out_dim)

    def pool(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, text_start: int
    ) -> torch.Tensor:
        """One vector per sequence: the text's ``<s>`` state."""
        return hidden[:, text_start]

    def pooled_logits(
        self, hidden: torch.Tensor, text_start: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.dropout(self.pool(hidden, mask, text_start))
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)


@HEADS.register("classification", "sequence_classification")
class ClassificationHead(_PooledHead):
    """Sequence classification from the text's ``<s>`` token; cross-entropy over ``labels`` [B]."""

    def __init__(
        self, hidden_size: int, num_labels: int | None = None, dropout: float = 0.1, **_: object
    ) -> None:
        super().__init__(hidden_size, _require_labels("classification", num_labels), dropout)
        self.num_labels = num_labels

    def forward(
        self, hidden, mask, *, text_start: int = 0, labels: dict | None = None, **_: object
    ) -> dict:
        logits = self.pooled_logits(hidden, text_start, mask)
        out = {"logits": logits}
        if labels and self.has_labels(labels):
            out["loss"] = F.cross_entropy(logits.float(), labels["labels"].long())
        return out


@HEADS.register("classification_mean", "mean_classification")
class MeanClassificationHead(ClassificationHead):
    """Sequence classification from the mean of the text's token states (the pooling sentence encoders such as
    e5 are trained for), then the same dense -> tanh -> output layers; cross-entropy over ``labels`` [B]."""

    def pool(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, text_start: int
    ) -> torch.Tensor:
        return masked_mean(hidden[:, text_start:], mask[:, text_start:])


@HEADS.register("multiple_choice")
class MultipleChoiceHead(_PooledHead):
    """Scores each (context, choice) sequence; the model flattens ``[B, C, L]`` to ``[B*C, L]``."""

    def __init__(self, hidden_size: int, dropout: float = 0.1, **_: object) -> None:
        super().__init__(hidden_size, 1, dropout)

    def forward(
        self,
        hidden,
        mask,
        *,
        text_start: int = 0,
        labels: dict | None = None,
        num_choices: int = 1,
        **_: object,
    ) -> dict:
        logits = self.pooled_logits(hidden, text_start).view(-1, num_choices)
        out = {"logits": logits}
        if labels and self.has_labels(labels):
            out["loss"] = F.cross_entropy(logits.float(), labels["labels"].long())
        return out


@HEADS.register("span_qa", "qa")
class SpanQAHead(Head):
    """Extractive QA: start/end logits over the text tokens; positions index the text ``input_ids``."""

    label_keys = ("start_positions", "end_positions")
    token_level = True

    def __init__(self, hidden_size: int, **_: object) -> None:
        super().__init__()
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(
        self, hidden, mask, *, text_start: int = 0, labels: dict | None = None, **_: object
    ) -> dict:
        logits = self.qa_outputs(hidden[:, text_start:])
        start, end = logits.split(1, dim=-1)
        out = {"start_logits": start.squeeze(-1), "end_logits": end.squeeze(-1)}
        if labels and self.has_labels(labels):
            length = out["start_logits"].shape[1]
            s = labels["start_positions"].long().view(-1).clamp(0, length)
            e = labels["end_positions"].long().view(-1).clamp(0, length)
            out["loss"] = (
                F.cross_entropy(out["start_logits"].float(), s, ignore_index=length)
                + F.cross_entropy(out["end_logits"].float(), e, ignore_index=length)
            ) / 2
        return out


@HEADS.register("tagging", "token_classification")
class TaggingHead(Head):
    """Token classification over the text tokens; ``labels`` [B, L] with -100 ignored."""

    token_level = True

    def __init__(
        self, hidden_size: int, num_labels: int | None = None, dropout: float = 0.1, **_: object
    ) -> None:
        super().__init__()
        self.num_labels = _require_labels("tagging", num_labels)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, self.num_labels)

    def forward(
        self, hidden, mask, *, text_start: int = 0, labels: dict | None = None, **_: object
    ) -> dict:
        logits = self.classifier(self.dropout(hidden[:, text_start:]))
        out = {"logits": logits}
        if labels and self.has_labels(labels):
            out["loss"] = F.cross_entropy(
                logits.float().reshape(-1, self.num_labels),
                labels["labels"].long().reshape(-1),
                ignore_index=-100,
            )
        return out


@HEADS.register("vqa")
class VQAHead(Head):
    """Multi-label over an answer vocabulary; labels are VQAv2 soft scores ``min(1, #humans/3)`` in ``[B, A]``."""

    def __init__(
        self, hidden_size: int, num_labels: int | None = None, dropout: float = 0.1, **_: object
    ) -> None:
        super().__init__()
        self.num_labels = _require_labels("vqa", num_labels)
        self.net = nn.Sequential(
            nn.Linear(hidden_size, 2 * hidden_size),
            nn.GELU(),
            nn.LayerNorm(2 * hidden_size),
            nn.Dropout(dropout),
            nn.Linear(2 * hidden_size, self.num_labels),
        )

    def forward(
        self, hidden, mask, *, text_start: int = 0, labels: dict | None = None, **_: object
    ) -> dict:
        logits = self.net(hidden[:, text_start])
        out = {"logits": logits}
        if labels and self.has_labels(labels):
            target = labels["labels"].to(torch.float32)
            # mean BCE scaled by the answer count (the usual VQAv2 convention: a sum over answers, mean over batch)
            out["loss"] = (
                F.binary_cross_entropy_with_logits(logits.float(), target) * target.shape[1]
            )
        return out


def _lm_head_tensors(trunk: nn.Module) -> dict[str, torch.Tensor]:
    """The checkpoint's MLM-head tensors, renamed to this module's keys; {} when it has none."""
    source = getattr(trunk, "mmxfer_source_dir", None)
    if not source:
        return {}
    files = sorted(Path(source).glob("*.safetensors"))
    if not files:
        return {}
    from safetensors import safe_open

    names = {  # XLM-R/RoBERTa and BERT layouts -> ours
        "lm_head.dense.weight": "dense.weight",
        "lm_head.dense.bias": "dense.bias",
        "lm_head.layer_norm.weight": "layer_norm.weight",
        "lm_head.layer_norm.bias": "layer_norm.bias",
        "lm_head.bias": "bias",
        "cls.predictions.transform.dense.weight": "dense.weight",
        "cls.predictions.transform.dense.bias": "dense.bias",
        "cls.predictions.transform.LayerNorm.weight": "layer_norm.weight",
        "cls.predictions.transform.LayerNorm.bias": "layer_norm.bias",
        "cls.predictions.bias": "bias",
    }
    found: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                if key in names:
                    found[names[key]] = handle.get_tensor(key)
    return found if len(found) == 5 else {}


@HEADS.register("caption_mlm", "mlm", "captioning")
class CaptionMLMHead(Head):
    """Image-conditioned masked LM over the caption; decoder tied to the trunk's word embeddings.

    Logits are computed only at masked positions (``mlm_labels != -100``; without labels, the
    ``<mask>`` tokens of ``input_ids`` when the tokenizer is known): a full ``[B, L, 250k]`` tensor
    would not fit. ``logits`` is ``[M, V]`` for the M masked tokens, in row-major order. With ``vocabulary``
    (sorted piece ids: a closed caption language, :mod:`mmxfer.kinds.captioning`) the softmax runs over those
    pieces alone and ``logits`` is ``[M, len(vocabulary)]``, column j for piece ``vocabulary[j]``.
    """

    label_keys = ("mlm_labels",)
    token_level = True

    def __init__(
        self,
        hidden_size: int,
        trunk: nn.Module | None = None,
        mask_token_id: int | None = None,
        vocabulary: list[int] | None = None,
        **_: object,
    ) -> None:
        super().__init__()
        self.mask_token_id = mask_token_id
        ids = None
        if vocabulary is not None:
            ids = torch.as_tensor(sorted(set(vocabulary)), dtype=torch.long)
            if not len(ids):
                raise ConfigError("head 'caption_mlm': the caption vocabulary is empty")
        self.register_buffer("vocabulary", ids, persistent=False)
        if trunk is None:
            raise ConfigError(
                "head 'caption_mlm' needs the trunk (its word embeddings are the decoder)"
            )
        emb = trunk.get_input_embeddings()
        eps = getattr(trunk.config, "layer_norm_eps", 1e-5)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.bias = nn.Parameter(torch.zeros(emb.num_embeddings))
        self._embeddings = [emb]  # a list, so the tied weight is not registered twice
        self._cast: tuple[tuple, torch.Tensor] | None = (
            None  # (key, frozen decoder weight in the autocast dtype)
        )
        state = _lm_head_tensors(trunk)
        self.reused_lm_head = bool(state) and state["bias"].shape == self.bias.shape
        if self.reused_lm_head:
            self.load_state_dict(state)

    def forward(
        self,
        hidden,
        mask,
        *,
        text_start: int = 0,
        labels: dict | None = None,
        input_ids: torch.Tensor | None = None,
        **_: object,
    ) -> dict:
        text = hidden[:, text_start:]
        mlm = labels.get("mlm_labels") if labels else None
        if mlm is None and input_ids is not None and self.mask_token_id is not None:
            selected, target = (
                text[input_ids == self.mask_token_id],
                None,
            )  # prediction: the <mask> positions
        elif mlm is None:
            selected, target = text.reshape(-1, text.shape[-1]), None
        else:
            keep = mlm != -100
            selected, target = text[keep], mlm[keep]
        x = self.layer_norm(F.gelu(self.dense(selected)))
        if self.vocabulary is not None:
            weight = self._embeddings[0].weight.index_select(0, self.vocabulary)
            logits = F.linear(x, weight, self.bias.index_select(0, self.vocabulary))
            if target is not None:
                target = self._vocabulary_index(target)
        else:
            logits = F.linear(x, self._decoder_weight(x.device.type), self.bias)
        out = {"logits": logits}
        if target is not None:
            loss = (
                F.cross_entropy(logits.float(), target.long())
                if target.numel()
                else logits.sum() * 0.0
            )
            out["loss"] = loss
        return out

    def _vocabulary_index(self, target: torch.Tensor) -> torch.Tensor:
        """Each target piece's column in the closed vocabulary; a DataError for a piece outside it."""
        vocabulary = self.vocabulary
        index = torch.searchsorted(vocabulary, target.long()).clamp(max=len(vocabulary) - 1)
        outside = vocabulary[index] != target
        if bool(outside.any()):
            raise DataError(
                f"caption_mlm: masked piece {int(target[outside][0])} is not in the caption vocabulary "
                f"of {len(vocabulary)} pieces made from the training captions"
            )
        return index

    def _decoder_weight(self, device_type: str) -> torch.Tensor:
        """The tied decoder weight; when it is frozen and autocast runs in a lower precision, one cast copy kept
        while the weight is unchanged (the same values autocast would make at every step, so the same logits).

        Autocast casts a weight that takes no gradient anew at every forward: for a 250k x 384 matrix that is
        a 0.19 GB copy per step and a read of all 0.38 GB, which leaves the whole float32 matrix resident.
        Once the copy is made, the float32 pages of a weight mapped from its file are given back; the
        embedding lookups bring back the rows they use. "Unchanged" is what autograd counts: a new tensor,
        storage, shape or device, or an in-place change (``load_state_dict``, ``mul_`` under ``no_grad``);
        a write through ``weight.data``, which autograd does not see, is not noticed."""
        weight = self._embeddings[0].weight
        if weight.requires_grad or not torch.is_autocast_enabled(device_type):
            self._cast = None
            return weight
        dtype = torch.get_autocast_dtype(device_type)
        key = (
            id(weight),
            weight.data_ptr(),
            weight._version,
            tuple(weight.shape),
            weight.device,
            dtype,
        )
        cast = self._cast
        if cast is None or cast[0] != key:
            self._cast = None  # a stale copy goes before the new one is made, not beside it
            cast = (key, weight.detach().to(dtype))
            self._cast = cast
            give_back_if_file_mapped(weight)
        return cast[1]


@HEADS.register("caption_contrastive", "contrastive")
class ContrastiveHead(Head):
    """Symmetric InfoNCE between mean-pooled text and mean-pooled image sequences, learnable temperature.

    Both sides run through the one trunk: the caption alone, and the visual tokens alone.
    """

    label_keys = ()
    dual = True

    def __init__(self, hidden_size: int, init_temperature: float = 0.07, **_: object) -> None:
        super().__init__()
        self.text_proj = nn.Linear(hidden_size, hidden_size)
        self.image_proj = nn.Linear(hidden_size, hidden_size)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def forward(
        self,
        hidden,
        mask,
        *,
        image_hidden=None,
        image_mask=None,
        labels: dict | None = None,
        **_: object,
    ) -> dict:
        text = F.normalize(self.text_proj(masked_mean(hidden, mask)).float(), dim=-1)
        out: dict[str, torch.Tensor] = {"text_embeds": text}
        if image_hidden is None:
            return out
        image = F.normalize(self.image_proj(masked_mean(image_hidden, image_mask)).float(), dim=-1)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * text @ image.t()
        target = torch.arange(logits.shape[0], device=logits.device)
        out.update(
            logits=logits,
            image_embeds=image,
            loss=(F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2,
        )
        return out


@HEADS.register("bitext_contrastive")
class BitextContrastiveHead(Head):
    """Symmetric InfoNCE between a sentence and its translation, both encoded by the trunk alone, over the pairs
    of the batch: the mean-pooled, L2-normalised last states (what retrieval reads), no projection, so the
    alignment is learnt by the trunk itself; fixed temperature :data:`TEMPERATURE`."""

    label_keys = ()
    dual = True
    #: e5's contrastive pre-training uses 0.01; 0.05 keeps the first steps of a small trunk update gentle
    TEMPERATURE = 0.05

    def __init__(self, hidden_size: int, **_: object) -> None:
        super().__init__()

    def forward(
        self,
        hidden,
        mask,
        *,
        pair_hidden=None,
        pair_mask=None,
        labels: dict | None = None,
        **_: object,
    ) -> dict:
        source = F.normalize(masked_mean(hidden, mask).float(), dim=-1)
        out: dict[str, torch.Tensor] = {"text_embeds": source}
        if pair_hidden is None:
            return out
        target = F.normalize(masked_mean(pair_hidden, pair_mask).float(), dim=-1)
        logits = source @ target.t() / self.TEMPERATURE
        gold = torch.arange(logits.shape[0], device=logits.device)
        out.update(
            logits=logits,
            pair_embeds=target,
            loss=(F.cross_entropy(logits, gold) + F.cross_entropy(logits.t(), gold)) / 2,
        )
        return out
