"""Span-QA windows and decoding as XTREME: doc-stride windows and the max-context rule.

References (google-research/xtreme@838c13b6): ``third_party/processors/squad.py`` lines 129-180 (the question cut
to ``max_query_length``, window k from ``k * doc_stride``, ``min(remaining, max_seq_length - |query| -
specials)`` context tokens, stop once a window reaches the end), lines 60-79 and 182-190
(``_new_check_is_max_context``), ``third_party/run_squad.py`` lines 571, 578, 584, 624, 630 (max_seq_length 384, doc_stride 128,
max_query_length 64, n_best_size 20, max_answer_length 30; ``scripts/train_qa.sh`` lines 29, 66-67: 384 and 128)
and transformers ``data/metrics/squad_metrics.py`` ``compute_predictions_logits`` (a start must have
``token_is_max_context``; the end need not).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmxfer.catalog import TASKS, load_plugins
from mmxfer.kinds.base import FeatureOptions
from mmxfer.kinds.featurize import featurize
from mmxfer.kinds.span_qa import MAX_QUERY_TOKENS, qa_predictions
from mmxfer.tasks.common import dataset_from_rows
from mmxfer.testing.tiny import tiny_tokenizer


def _xtreme_spans(
    n_doc: int, n_query: int, max_seq_length: int, doc_stride: int, pair_specials: int
):
    """(start, length) of each window, XTREME's loop transcribed."""
    spans = []
    while len(spans) * doc_stride < n_doc:
        length = min(n_doc - len(spans) * doc_stride, max_seq_length - n_query - pair_specials)
        spans.append((len(spans) * doc_stride, length))
        if spans[-1][0] + length >= n_doc:  # no overflowing tokens: the window reached the end
            break
    return spans


def _xtreme_is_max_context(spans, cur, position):
    best_score = best_index = None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return cur == best_index


def _features(rows, max_length, doc_stride, tmp_path, tok=None):
    load_plugins()
    spec = TASKS.get("squad")
    examples = dataset_from_rows(spec, rows, split="validation", lang="en")
    feats = featurize(
        spec,
        examples,
        tok or tiny_tokenizer(),
        FeatureOptions(
            max_length=max_length,
            doc_stride=doc_stride,
            split="validation",
            lang="en",
            cache_dir=tmp_path,
        ),
    )
    return examples, feats


def _rows(n_words: int, questions: list[str]) -> list[dict]:
    context = " ".join(f"w{k}" for k in range(n_words))
    return [
        {
            "id": f"q{i}",
            "context": context,
            "question": q,
            "answers": {"text": ["w3"], "answer_start": [context.index("w3")]},
        }
        for i, q in enumerate(questions)
    ]


@pytest.mark.parametrize("max_length, doc_stride", [(48, 16), (64, 20), (40, 128)])
def test_windows_and_max_context_flags_are_xtremes(max_length, doc_stride, tmp_path):
    tok = tiny_tokenizer()
    # questions of different lengths in one batch: each gets its own window size
    questions = ["what?", "which word is the third one here?", "w"]
    rows = _rows(70, questions)
    examples, feats = _features(rows, max_length, doc_stride, tmp_path, tok)
    doc = tok(rows[0]["context"], add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    first_token = {start: k for k, (start, _) in enumerate(doc)}
    for i, q in enumerate(questions):
        # XTREME cuts the question at 64 tokens; for a window this small mmxfer cuts it at half the window
        n_query = min(
            len(tok(q, add_special_tokens=False)["input_ids"]),
            MAX_QUERY_TOKENS,
            max_length // 2 - 2,
        )
        specials = tok.num_special_tokens_to_add(pair=True)
        # a window shorter than doc_stride steps by its own length, where XTREME would skip tokens
        step = min(doc_stride, max_length - n_query - specials)
        spans = _xtreme_spans(len(doc), n_query, max_length, step, specials)
        mine = [j for j, ex in enumerate(feats["example_id"]) if ex == f"q{i}"]
        got = []
        for j in mine:
            ctx = [o for o in feats["offset_mapping"][j] if o[0] >= 0]
            got.append((first_token[ctx[0][0]], len(ctx)))
        assert got == spans
        for k, j in enumerate(mine):
            flags = [
                f for f, o in zip(feats["max_context"][j], feats["offset_mapping"][j]) if o[0] >= 0
            ]
            start, length = spans[k]
            assert flags == [_xtreme_is_max_context(spans, k, start + t) for t in range(length)]
        assert not any(
            f
            for f, o in zip(feats["max_context"][mine[0]], feats["offset_mapping"][mine[0]])
            if o[0] < 0
        )  # the question and special tokens are never a maximal context


def test_a_start_is_taken_only_from_the_window_where_it_has_maximal_context(tmp_path):
    """The best-scoring start sits at the right edge of window 0, where it has no context on one side: XTREME
    discards it there (it has its maximal context in window 1, where the model does not pick it)."""
    tok = tiny_tokenizer()
    rows = _rows(70, ["what?"])
    examples, feats = _features(rows, 48, 16, tmp_path, tok)
    assert len(feats) >= 3
    # where each window's context starts and how long it is, and XTREME's max-context rule on that layout
    doc = tok(rows[0]["context"], add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    first_token = {start: k for k, (start, _) in enumerate(doc)}
    spans = []
    for offs in feats["offset_mapping"]:
        ctx = [o for o in offs if o[0] >= 0]
        spans.append((first_token[ctx[0][0]], len(ctx)))

    def is_max(window, token):
        position = spans[window][0] + [
            t for t, o in enumerate(feats["offset_mapping"][window]) if o[0] >= 0
        ].index(token)
        return _xtreme_is_max_context(spans, window, position)

    n, width = len(feats), max(len(x) for x in feats["input_ids"])
    start, end = np.full((n, width), -10.0), np.full((n, width), -10.0)
    ctx0 = [t for t, o in enumerate(feats["offset_mapping"][0]) if o[0] >= 0]
    edge = ctx0[-1]  # last context token of window 0
    assert not is_max(0, edge)
    start[0, edge], end[0, edge] = 10.0, 10.0  # span X in window 0: score 20
    ctx1 = [t for t, o in enumerate(feats["offset_mapping"][1]) if o[0] >= 0]
    context = rows[0]["context"]
    offs1 = feats["offset_mapping"][1]
    middle = next(
        t for t in ctx1[len(ctx1) // 2 :] if context[offs1[t][0] : offs1[t][1]].strip() == "w"
    )
    assert is_max(1, middle)
    start[1, middle], end[1, middle + 1] = (
        6.0,
        6.0,
    )  # span Y (a whole word "wNN") in window 1: score 12
    x_text = context[slice(*feats["offset_mapping"][0][edge])].strip()
    y_text = context[offs1[middle][0] : offs1[middle + 1][1]].strip()
    assert x_text != y_text
    assert qa_predictions(feats, examples, start, end) == {"q0": y_text}
    # the end token need not have its maximal context: a span starting mid-window 0 may end at its edge
    start[:], end[:] = -10.0, -10.0
    begin = max(t for t in ctx0 if is_max(0, t))  # the last start window 0 may offer
    assert begin < edge and edge - begin + 1 <= 30
    start[0, begin], end[0, edge] = 5.0, 5.0
    expected = context[
        feats["offset_mapping"][0][begin][0] : feats["offset_mapping"][0][edge][1]
    ].strip()
    assert qa_predictions(feats, examples, start, end) == {"q0": expected}


def test_xlmr_windows_on_real_xquad_follow_doc_stride(realdata, tmp_path):
    """With the real XLM-R vocabulary and XTREME's 384 / 128 on the longest real XQuAD contexts, consecutive
    windows start 128 context tokens apart and the gold answer is still recovered."""
    from transformers import PreTrainedTokenizerFast

    xlmr = PreTrainedTokenizerFast(
        tokenizer_file=str(realdata / "xlmr_tokenizer/tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    load_plugins()
    spec = TASKS.get("xquad")
    examples = spec.load("test", "de", str(realdata))
    lengths = [len(c) for c in examples["context"]]
    examples = examples.select(np.argsort(lengths)[-40:].tolist())
    feats = featurize(
        spec,
        examples,
        xlmr,
        FeatureOptions(max_length=384, doc_stride=128, split="test", lang="de", cache_dir=tmp_path),
    )
    assert len(feats) > len(examples)  # the longest contexts need several windows
    for ex in examples:
        doc = xlmr(ex["context"], add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        first_token = {start: k for k, (start, _) in enumerate(doc)}
        starts = [
            first_token[[o for o in offs if o[0] >= 0][0][0]]
            for offs, eid in zip(feats["offset_mapping"], feats["example_id"])
            if eid == ex["id"]
        ]
        assert starts == [128 * k for k in range(len(starts))]
