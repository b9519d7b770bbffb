"""Extractive QA: question + context -> an answer span, over doc-stride windows of long contexts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, TaskKind

if TYPE_CHECKING:  # pragma: no cover
    import datasets

MAX_QUERY_TOKENS = 64


def _short_questions(questions: list[str], tokenizer: Any, limit: int) -> list[str]:
    """Questions cut to ``limit`` tokens (XTREME's max_query_length is 64), at a token boundary."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, offsets in zip(questions, enc["offset_mapping"]):
        out.append(q if len(offsets) <= limit else q[: offsets[limit - 1][1]])
    return out


def encode(rows: Rows, tokenizer: Any, max_length: int, doc_stride: int) -> dict[str, list[Any]]:
    limit = max(1, min(MAX_QUERY_TOKENS, max_length // 2 - 2))
    questions = _short_questions([q.lstrip() for q in rows["question"]], tokenizer, limit)
    qlen = max(len(x) for x in tokenizer(questions, add_special_tokens=False)["input_ids"])
    stride = max(0, min(doc_stride, max_length - qlen - 5))
    enc = tokenizer(questions, rows["context"], truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=False)
    sample_map = enc["overflow_to_sample_mapping"]
    out: dict[str, list] = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                            "start_positions": [], "end_positions": [], "example_id": [], "offset_mapping": []}
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = sample_map[i]
        offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        in_ctx = np.fromiter((s == 1 for s in enc.sequence_ids(i)), dtype=bool, count=len(offs))
        offs[~in_ctx] = -1
        answers = rows["answers"][ex]
        ctx_idx = np.flatnonzero(in_ctx)
        start_tok = end_tok = 0
        if answers["answer_start"] and len(ctx_idx):
            a_start = answers["answer_start"][0]
            a_end = a_start + len(answers["text"][0])
            first, last = int(ctx_idx[0]), int(ctx_idx[-1])
            if offs[first, 0] <= a_start and offs[last, 1] >= a_end:
                s = first + int(np.searchsorted(offs[first:last + 1, 1], a_start, side="right"))
                e = first + int(np.searchsorted(offs[first:last + 1, 0], a_end, side="left")) - 1
                if s <= e:
                    start_tok, end_tok = s, e
        out["start_positions"].append(start_tok)
        out["end_positions"].append(end_tok)
        out["example_id"].append(rows["id"][ex])
        out["offset_mapping"].append(offs)
    return out


def qa_predictions(features: datasets.Dataset, examples: datasets.Dataset, start_logits: Any, end_logits: Any,
                   n_best: int = 20, max_answer_length: int = 30, *, allow_null: bool = False,
                   null_threshold: float = 0.0) -> dict[str, str]:
    """Best answer text per example id from window-level start/end logits (doc-stride windows merged).

    ``allow_null`` (SQuAD v2): predict "" when the CLS score beats the best span by ``null_threshold``.
    """
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    by_example: dict[str, list[int]] = {}
    for i, ex_id in enumerate(features["example_id"]):
        by_example.setdefault(ex_id, []).append(i)
    offsets_all = features["offset_mapping"]
    preds: dict[str, str] = {}
    for ex in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for fi in by_example.get(ex["id"], []):
            s_log, e_log, offsets = start_logits[fi], end_logits[fi], offsets_all[fi]
            null_score = min(null_score, float(s_log[0] + e_log[0]))
            n = min(len(offsets), len(s_log))
            starts = np.argsort(s_log[:n])[::-1][:n_best]
            ends = np.argsort(e_log[:n])[::-1][:n_best]
            for s in starts:
                if offsets[s] is None or offsets[s][0] < 0:
                    continue
                for e in ends:
                    if offsets[e] is None or offsets[e][0] < 0 or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(s_log[s] + e_log[e])
                    if score > best_score:
                        best_score = score
                        best_text = ex["context"][offsets[s][0]: offsets[e][1]].strip()
        if allow_null and (best_score == -np.inf or null_score > best_score + null_threshold):
            best_text = ""
        preds[ex["id"]] = best_text
    return preds


@KINDS.register("span_qa")
class SpanQA(TaskKind):
    name = "span_qa"
    windowed = True

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length, options.doc_stride)

    def collate_labels(self, examples: list[dict[str, Any]], batch: dict[str, Any],
                       num_answers: int | None) -> dict[str, torch.Tensor]:
        return {"start_positions": torch.as_tensor([e["start_positions"] for e in examples], dtype=torch.long),
                "end_positions": torch.as_tensor([e["end_positions"] for e in examples], dtype=torch.long)}

    def decode(self, features: Any, raw: datasets.Dataset, outputs: dict[str, torch.Tensor],
               space: LabelSpace) -> dict[str, Any]:
        """The best span per example; ``allow_null`` tasks (SQuAD v2) may answer ""."""
        return qa_predictions(features, raw, outputs["start_logits"].float().numpy(),
                              outputs["end_logits"].float().numpy(), allow_null=bool(self.spec.extra.get("allow_null")))

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return [a["text"] for a in raw["answers"]]
