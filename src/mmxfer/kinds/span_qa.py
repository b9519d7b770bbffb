"""Extractive QA: question + context -> an answer span, over doc-stride windows of long contexts.

Windows and decoding follow XTREME (google-research/xtreme ``third_party/processors/squad.py``,
``third_party/run_squad.py``): the question cut to 64 tokens, windows ``doc_stride`` (128) context tokens apart,
and a predicted span must start where its first token has its maximal context (:func:`max_context`).
"""

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
    return " ".join(words[first : last + 1]).find(" ".join(text.strip().split())) != -1


def _windows(
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    max_length: int,
    doc_stride: int,
    qlens: list[int],
) -> tuple[list[dict[str, Any]], list[int]]:
    """XTREME's doc-stride windows: window k of a context holds its tokens from ``k * doc_stride`` on, as many as
    fit beside the question (processors/squad.py lines 137-180); the last one reaches the context's end.

    The fast tokenizer's ``stride`` is the overlap of consecutive windows, so questions of one length share one
    call. Returns the windows (one encoding per feature, in example order) and each window's example index.
    A window shorter than ``doc_stride`` (a tiny ``max_length``) steps by its own length, so no token is skipped.
    """
    pair_specials = tokenizer.num_special_tokens_to_add(pair=True)
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(qlens):
        by_length.setdefault(n, []).append(i)
    found: dict[int, list[dict[str, Any]]] = {}
    for qlen, members in by_length.items():
        room = max_length - qlen - pair_specials
        enc = tokenizer(
            [questions[i] for i in members],
            [contexts[i] for i in members],
            truncation="only_second",
            max_length=max_length,
            stride=max(0, room - doc_stride),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=False,
        )
        for f, local in enumerate(enc["overflow_to_sample_mapping"]):
            found.setdefault(members[local], []).append(
                {
                    "input_ids": enc["input_ids"][f],
                    "attention_mask": enc["attention_mask"][f],
                    "offset_mapping": enc["offset_mapping"][f],
                    "sequence_ids": enc.sequence_ids(f),
                    "step": min(doc_stride, room),
                }
            )
    windows, owner = [], []
    for i in range(len(questions)):
        windows += found[i]
        owner += [i] * len(found[i])
    return windows, owner


def max_context(spans: list[tuple[int, int]]) -> list[list[bool]]:
    """For each window (its first context token's position in the context, its number of context tokens), whether
    each of its tokens has there its maximal context: the most tokens on its shorter side, plus 0.01 x the window
    length, the first window winning ties (XTREME processors/squad.py ``_new_check_is_max_context``, lines 60-79)."""
    best: dict[int, tuple[float, int]] = {}
    for k, (start, length) in enumerate(spans):
        for pos in range(start, start + length):
            score = min(pos - start, start + length - 1 - pos) + 0.01 * length
            if pos not in best or score > best[pos][0]:
                best[pos] = (score, k)
    return [
        [best[pos][1] == k for pos in range(start, start + length)]
        for k, (start, length) in enumerate(spans)
    ]


def encode(rows: Rows, tokenizer: Any, max_length: int, doc_stride: int) -> dict[str, list[Any]]:
    limit = max(1, min(MAX_QUERY_TOKENS, max_length // 2 - 2))
    questions = _short_questions([q.lstrip() for q in rows["question"]], tokenizer, limit)
    qlens = [len(x) for x in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    windows, owner = _windows(
        tokenizer, questions, list(rows["context"]), max_length, doc_stride, qlens
    )
    out: dict[str, list] = {
        "input_ids": [],
        "attention_mask": [],
        "start_positions": [],
        "end_positions": [],
        "example_id": [],
        "offset_mapping": [],
        "max_context": [],
    }
    ctx_of: list[np.ndarray] = []
    for w in windows:
        ctx_of.append(
            np.fromiter((s == 1 for s in w["sequence_ids"]), dtype=bool, count=len(w["input_ids"]))
        )
    spans: dict[int, list[tuple[int, int]]] = {}
    for w, ex, in_ctx in zip(windows, owner, ctx_of):
        done = spans.setdefault(ex, [])
        done.append((len(done) * w["step"], int(in_ctx.sum())))
    flags = {ex: max_context(s) for ex, s in spans.items()}
    seen: dict[int, int] = {}
    for w, ex, in_ctx in zip(windows, owner, ctx_of):
        k = seen[ex] = seen.get(ex, -1) + 1
        offs = np.asarray(w["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        offs[~in_ctx] = -1
        answers = rows["answers"][ex]
        ctx_idx = np.flatnonzero(in_ctx)
        start_tok = end_tok = 0
        if answers["answer_start"] and len(ctx_idx):
            a_start = answers["answer_start"][0]
            a_end = a_start + len(answers["text"][0])
            first, last = int(ctx_idx[0]), int(ctx_idx[-1])
            if offs[first, 0] <= a_start and offs[last, 1] >= a_end:
                s = first + int(np.searchsorted(offs[first : last + 1, 1], a_start, side="right"))
                e = first + int(np.searchsorted(offs[first : last + 1, 0], a_end, side="left")) - 1
                if s <= e:
                    start_tok, end_tok = s, e
        is_max = np.zeros(len(offs), dtype=bool)
        is_max[ctx_idx] = flags[ex][k]
        out["input_ids"].append(w["input_ids"])
        out["attention_mask"].append(w["attention_mask"])
        out["start_positions"].append(start_tok)
        out["end_positions"].append(end_tok)
        out["example_id"].append(rows["id"][ex])
        out["offset_mapping"].append(offs)
        out["max_context"].append(is_max.tolist())
    return out


def _best_indexes(logits: np.ndarray, n_best: int) -> np.ndarray:
    """The ``n_best`` highest logits' positions, ties to the lower position (squad_metrics ``_get_best_indexes``)."""
    return np.argsort(-logits, kind="stable")[:n_best]


def qa_predictions(
    features: datasets.Dataset,
    examples: datasets.Dataset,
    start_logits: Any,
    end_logits: Any,
    n_best: int = 20,
    max_answer_length: int = 30,
    *,
    allow_null: bool = False,
    null_threshold: float = 0.0,
) -> dict[str, str]:
    """Best answer text per example id from window-level start/end logits, as XTREME's ``run_squad.py`` decodes
    (transformers ``squad_metrics.compute_predictions_logits``): in each window the ``n_best`` (20) best start and
    end positions; a span counts when both lie in the context, it is at most ``max_answer_length`` (30) tokens
    long, and its start token has its maximal context in this window (``max_context``, :func:`max_context`); the
    highest start + end logit wins, the first found on ties.

    ``allow_null`` (SQuAD v2): predict "" when the CLS score beats the best span by ``null_threshold``.
    """
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    by_example: dict[str, list[int]] = {}
    for i, ex_id in enumerate(features["example_id"]):
        by_example.setdefault(ex_id, []).append(i)
    offsets_all = features["offset_mapping"]
    max_context_all = features["max_context"]
    preds: dict[str, str] = {}
    for ex in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for fi in by_example.get(ex["id"], []):
            s_log, e_log, offsets, is_max = (
                start_logits[fi],
                end_logits[fi],
                offsets_all[fi],
                max_context_all[fi],
            )
            null_score = min(null_score, float(s_log[0] + e_log[0]))
            n = min(len(offsets), len(s_log))
            for s in _best_indexes(s_log[:n], n_best):
                if offsets[s] is None or offsets[s][0] < 0 or not is_max[s]:
                    continue
                for e in _best_indexes(e_log[:n], n_best):
                    if (
                        offsets[e] is None
                        or offsets[e][0] < 0
                        or e < s
                        or e - s + 1 > max_answer_length
                    ):
                        continue
                    score = float(s_log[s] + e_log[e])
                    if score > best_score:
                        best_score = score
                        best_text = ex["context"][offsets[s][0] : offsets[e][1]].strip()
        if allow_null and (best_score == -np.inf or null_score > best_score + null_threshold):
            best_text = ""
        preds[ex["id"]] = best_text
    return preds


@KINDS.register("span_qa")
class SpanQA(TaskKind):
    name = "span_qa"
    windowed = True

    def cache_extra(self, options: FeatureOptions, space: LabelSpace) -> dict[str, Any]:
        return {"windows": "xtreme-doc-stride, max-context"}

    def encoder(self, tokenizer: Any, options: FeatureOptions, space: LabelSpace) -> Encoder:
        return lambda rows: encode(rows, tokenizer, options.max_length, options.doc_stride)

    def trainable(self, raw: datasets.Dataset) -> tuple[datasets.Dataset, str]:
        """Training trains on each question's first answer; a question whose first answer cannot be placed in its
        context (:func:`answer_found`) is left out, as XTREME's run_squad.py leaves it out."""
        keep = [
            not a["text"] or answer_found(c, a["text"][0], a["answer_start"][0])
            for c, a in zip(raw["context"], raw["answers"])
        ]
        if all(keep):
            return raw, ""
        with progress_bars(False):
            kept = raw.select([i for i, k in enumerate(keep) if k], keep_in_memory=True)
        return (
            kept,
            'the first answer is not at its answer_start in the context (XTREME\'s "Could not find answer")',
        )

    def collate_labels(
        self, examples: list[dict[str, Any]], batch: dict[str, Any], num_answers: int | None
    ) -> dict[str, torch.Tensor]:
        return {
            "start_positions": torch.as_tensor(
                [e["start_positions"] for e in examples], dtype=torch.long
            ),
            "end_positions": torch.as_tensor(
                [e["end_positions"] for e in examples], dtype=torch.long
            ),
        }

    def decode(
        self,
        features: Any,
        raw: datasets.Dataset,
        outputs: dict[str, torch.Tensor],
        space: LabelSpace,
    ) -> dict[str, Any]:
        """The best span per example; ``allow_null`` tasks (SQuAD v2) may answer ""."""
        return qa_predictions(
            features,
            raw,
            outputs["start_logits"].float().numpy(),
            outputs["end_logits"].float().numpy(),
            allow_null=self.spec.allow_null,
        )

    def golds(self, raw: datasets.Dataset) -> list[Any]:
        return [a["text"] for a in raw["answers"]]
