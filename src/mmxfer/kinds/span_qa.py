"""Extractive QA: question + context -> an answer span, over doc-stride windows of long contexts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmxfer.catalog import KINDS
from mmxfer.kinds.base import Encoder, FeatureOptions, LabelSpace, Rows, TaskKind
from mmxfer.kinds.progress import progress_bars

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


def _xtreme_whitespace(c: str) -> bool:
    """XTREME's ``_is_whitespace`` (third_party/processors/squad.py:82): the characters that split context words."""
    return c in " \t\r\n" or ord(c) == 0x202F


def answer_found(context: str, text: str, start: int) -> bool:
    """Whether a training answer can be placed: XTREME's test before it makes features of a training example
    (third_party/processors/squad.py:90-100, "Could not find answer"; positions from SquadExample, :615-640). The
    context is split into words at :func:`_xtreme_whitespace`; the words from the one holding ``start`` to the one
    holding its last character, joined by spaces, must contain the answer's whitespace-split words joined by
    spaces. An offset outside the context places nothing (XTREME's reader would stop there with an IndexError)."""
    if not 0 <= start < len(context):
        return False
    words: list[str] = []
    word_of: list[int] = []
    after_space = True
    for c in context:
        if _xtreme_whitespace(c):
            after_space = True
        else:
            if after_space:
                words.append(c)
            else:
                words[-1] += c
            after_space = False
        word_of.append(len(words) - 1)
    first, last = word_of[start], word_of[min(start + len(text) - 1, len(word_of) - 1)]
    return " ".join(words[first:last + 1]).find(" ".join(text.strip().split())) != -1


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

    def trainable(self, raw: datasets.Dataset) -> tuple[datasets.Dataset, str]:
        """Training trains on each question's first answer; a question whose first answer cannot be placed in its
        context (:func:`answer_found`) is left out, as XTREME's run_squad.py leaves it out."""
        keep = [not a["text"] or answer_found(c, a["text"][0], a["answer_start"][0])
                for c, a in zip(raw["context"], raw["answers"])]
        if all(keep):
            return raw, ""
        with progress_bars(False):
            kept = raw.select([i for i, k in enumerate(keep) if k], keep_in_memory=True)
        return kept, "the first answer is not at its answer_start in the context (XTREME's \"Could not find answer\")"

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
