"""Featurisation: cache hit/invalidation, QA doc-stride round trip, first-sub-token tagging, VQA soft labels."""

from __future__ import annotations

import numpy as np
import pytest

from mmxfer.kinds import FeatureOptions, collate_fn, featurize
from mmxfer.kinds.base import IGNORE
from mmxfer.kinds.span_qa import qa_predictions
from mmxfer.kinds.tagging import tag_predictions
from mmxfer.tasks.common import dataset_from_rows


def _cls_ds(catalog, n=20):
    spec = catalog.task("pawsx")
    rows = [
        {"id": str(i), "text_a": f"sentence number {i}", "text_b": f"other {i}", "label": i % 2}
        for i in range(n)
    ]
    return spec, dataset_from_rows(spec, rows, split="validation", lang="de")


def test_cache_hit_then_invalidated_by_tokenizer_and_max_length(catalog, tok, mmxfer_cache):
    from mmxfer.testing.tiny import tiny_tokenizer

    spec, ds = _cls_ds(catalog)
    first, second, third, fourth = {}, {}, {}, {}
    a = featurize(
        spec, ds, tok, FeatureOptions(max_length=32, split="validation", lang="de"), stats=first
    )
    b = featurize(
        spec, ds, tok, FeatureOptions(max_length=32, split="validation", lang="de"), stats=second
    )
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert first["cache_path"] == second["cache_path"] and str(mmxfer_cache) in first["cache_path"]
    assert a["input_ids"] == b["input_ids"]
    featurize(
        spec, ds, tok, FeatureOptions(max_length=16, split="validation", lang="de"), stats=third
    )
    assert third["cache"] == "miss" and third["cache_path"] != first["cache_path"]
    other = tiny_tokenizer()
    other.add_tokens(["zzzunseen"])  # a different vocabulary -> a different key
    featurize(
        spec, ds, other, FeatureOptions(max_length=32, split="validation", lang="de"), stats=fourth
    )
    assert fourth["cache"] == "miss" and fourth["cache_path"] != first["cache_path"]
    again = {}
    featurize(
        spec,
        ds.select(range(10)),
        tok,
        FeatureOptions(max_length=32, split="validation", lang="de"),
        stats=again,
    )
    assert again["cache"] == "miss"  # different data, different key


def test_classification_batch(catalog, tok, mmxfer_cache):
    spec, ds = _cls_ds(catalog, 4)
    feats = featurize(spec, ds, tok, FeatureOptions(max_length=24, split="validation", lang="de"))
    batch = collate_fn(spec, tok)([feats[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] <= 24
    assert batch["labels"].tolist() == [0, 1, 0, 1]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}


def test_qa_doc_stride_round_trip_recovers_gold(catalog, tok, mmxfer_cache):
    spec = catalog.task("squad")
    filler = " ".join(f"word{k}" for k in range(60))
    rows = []
    for i, (answer, where) in enumerate([("Paris", 5), ("blue whale", 40), ("1889", 58)]):
        words = filler.split()
        words.insert(where, answer)
        context = " ".join(words)
        rows.append(
            {
                "id": f"q{i}",
                "context": context,
                "question": f"question {i}?",
                "answers": {"text": [answer], "answer_start": [context.index(answer)]},
            }
        )
    examples = dataset_from_rows(spec, rows, split="validation", lang="en")
    feats = featurize(
        spec,
        examples,
        tok,
        FeatureOptions(max_length=64, doc_stride=16, split="validation", lang="en"),
    )
    assert len(feats) > len(examples)  # long contexts became several windows
    n, length = len(feats), max(len(x) for x in feats["input_ids"])
    start, end = np.full((n, length), -10.0), np.full((n, length), -10.0)
    for i, (s, e) in enumerate(zip(feats["start_positions"], feats["end_positions"])):
        if s > 0:  # windows that contain the answer point at it; others at CLS with a lower score
            start[i, s], end[i, e] = 5.0, 5.0
    preds = qa_predictions(feats, examples, start, end)
    assert preds == {r["id"]: r["answers"]["text"][0] for r in rows}
    assert feats["offset_mapping"][0][0] == [-1, -1]  # CLS is outside the context


def test_tagging_first_subtoken_and_inverse(catalog, tok, mmxfer_cache):
    spec = catalog.task("panx")
    rows = [
        {"id": "s0", "tokens": ["Angela", "Merkel", "spricht"], "tags": ["B-PER", "I-PER", "O"]},
        {"id": "s1", "tokens": ["in", "Berlin"], "tags": ["O", "B-LOC"]},
    ]
    ds = dataset_from_rows(spec, rows, split="test", lang="de")
    feats = featurize(spec, ds, tok, FeatureOptions(max_length=32, split="test", lang="de"))
    for f, r in zip(feats, rows):
        firsts = [
            k
            for k, w in enumerate(f["word_ids"])
            if w >= 0 and (k == 0 or f["word_ids"][k - 1] != w)
        ]
        assert [f["labels"][k] for k in firsts] == [spec.label_names.index(t) for t in r["tags"]]
        assert all(f["labels"][k] == IGNORE for k in range(len(f["labels"])) if k not in firsts)
    preds = [[max(x, 0) for x in f["labels"]] for f in feats]  # a perfect tagger
    assert tag_predictions(feats, [np.array(p) for p in preds], spec.label_names) == {
        r["id"]: r["tags"] for r in rows
    }
    batch = collate_fn(spec, tok)([feats[0], feats[1]])
    assert (
        batch["labels"].shape == batch["input_ids"].shape
        and (batch["labels"][1] == IGNORE).sum() > 0
    )


def test_multiple_choice_shape(catalog, tok, mmxfer_cache):
    spec = catalog.task("hellaswag")
    rows = [
        {
            "id": str(i),
            "context": "A man",
            "question": "then he",
            "choices": ["a", "bb", "ccc", "dddd"],
            "label": i,
        }
        for i in range(2)
    ]
    feats = featurize(
        spec,
        dataset_from_rows(spec, rows, split="validation", lang="en"),
        tok,
        FeatureOptions(max_length=32, split="validation", lang="en"),
    )
    batch = collate_fn(spec, tok)([feats[0], feats[1]])
    assert batch["input_ids"].shape[:2] == (2, 4) and batch["labels"].tolist() == [0, 1]


def test_vqa_soft_labels_and_bad_images(catalog, tok, mmxfer_cache, tmp_path):
    from PIL import Image

    from mmxfer.errors import DataError
    from mmxfer.metrics.vqa import soft_scores

    assert soft_scores(["red"] * 3 + ["blue"] * 7)["red"] == pytest.approx(0.9)
    assert soft_scores(["red"] + ["blue"] * 9)["red"] == pytest.approx(0.3)
    assert soft_scores(["Two"] * 4 + ["x"] * 6)["2"] == 1.0
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    spec = catalog.task("vqa")
    rows = [
        {"id": "a", "image": str(good), "question": "what?", "answers": ["red"] * 3 + ["blue"] * 7},
        {
            "id": "b",
            "image": str(tmp_path / "bad.jpg"),
            "question": "what?",
            "answers": ["red"] * 10,
        },
        {
            "id": "c",
            "image": str(tmp_path / "missing.jpg"),
            "question": "what?",
            "answers": ["red"] * 10,
        },
    ]
    ds = dataset_from_rows(spec, rows, split="validation", lang="en")
    stats = {}
    feats = featurize(
        spec,
        ds,
        tok,
        FeatureOptions(max_length=16, split="validation", lang="en"),
        space={"answer_vocab": ["blue", "red"]},
        stats=stats,
    )
    assert len(feats) == 1 and stats["bad_images"] == 2
    batch = collate_fn(spec, tok, num_answers=2)([feats[0]])
    assert batch["labels"].tolist() == [[1.0, pytest.approx(0.9)]]
    assert batch["pixel_values"].shape == (1, 3, 224, 224)
    with pytest.raises(DataError, match="bad.jpg"):
        featurize(
            spec,
            ds,
            tok,
            FeatureOptions(max_length=16, on_bad_image="fail", use_cache=False),
            space={"answer_vocab": ["red"]},
        )


def test_caption_mlm_masking_is_deterministic(catalog, tok, mmxfer_cache):
    spec = catalog.task("starter-caption-text")
    ds = spec.load("validation").select(range(20))
    a = featurize(spec, ds, tok, FeatureOptions(max_length=48, split="validation", use_cache=False))
    b = featurize(spec, ds, tok, FeatureOptions(max_length=48, split="validation", use_cache=False))
    assert a["input_ids"] == b["input_ids"] and a["mlm_labels"] == b["mlm_labels"]
    for ids, labels in zip(a["input_ids"], a["mlm_labels"]):
        masked = [k for k, x in enumerate(labels) if x != IGNORE]
        assert masked and ids[0] == tok.cls_token_id and labels[0] == IGNORE


def test_real_xlmr_tokenizer_qa_round_trip_on_xquad(realdata, catalog, mmxfer_cache):
    """With the real XLM-R vocabulary, gold start/end labels decode back to the gold answers."""
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
    spec = catalog.task("xquad")
    examples = spec.load("test", "de", str(realdata)).select(range(60))
    feats = featurize(
        spec, examples, xlmr, FeatureOptions(max_length=128, doc_stride=32, split="test", lang="de")
    )
    n, length = len(feats), max(len(x) for x in feats["input_ids"])
    start, end = np.full((n, length), -10.0), np.full((n, length), -10.0)
    for i, (s, e) in enumerate(zip(feats["start_positions"], feats["end_positions"])):
        if s > 0:
            start[i, s], end[i, e] = 5.0, 5.0
    preds = qa_predictions(feats, examples, start, end, max_answer_length=64)
    exact = sum(preds[ex["id"]] == ex["answers"]["text"][0].strip() for ex in examples)
    assert exact >= 0.95 * len(examples), exact


class _PinnedTokenizer:
    """A stand-in tokenizer with a fixed vocabulary (no backend): a stable fingerprint; its name and revision say
    where it was read from and are not part of it."""

    name_or_path = "pinned-tokenizer"
    init_kwargs = {"revision": "r1"}
    special_tokens_map = {"pad_token": "<pad>", "cls_token": "<s>"}

    def get_vocab(self):
        return {"<pad>": 0, "<s>": 1, "a": 2, "b": 3}

    def __len__(self) -> int:
        return 4


class _PinnedDataset:
    _fingerprint = "0123456789abcdef"


def test_cache_key_is_pinned(catalog):
    """The on-disk feature cache stays valid across refactors: the same inputs give the same key."""
    import hashlib

    from mmxfer.kinds.cache import cache_key, tokenizer_fingerprint

    tok = _PinnedTokenizer()
    assert (
        tokenizer_fingerprint(tok)
        == hashlib.sha256(
            b'[["<pad>", 0], ["<s>", 1], ["a", 2], ["b", 3]]'
            + b'{"cls_token": "<s>", "pad_token": "<pad>"}'
        ).hexdigest()
    )
    key = cache_key(
        catalog.task("squad"),
        _PinnedDataset(),
        tok,
        max_length=64,
        doc_stride=32,
        split="validation",
        lang="en",
        answer_vocab=["x", "y"],
        extra={"labels": None, "on_bad_image": "skip", "mlm": None},
    )
    # squad version 1.1 (XTREME windows); fingerprint without name, revision
    assert key == "a810747757e5dcdacca5384ba47812d5"


def test_a_tokenizer_fingerprint_is_what_it_does_not_where_it_was_read_or_its_last_call(tok):
    """A phase-2 folder's copy of the trunk's tokenizer (another path) and a tokenizer that has just truncated and
    padded a batch (settings its backend keeps) hash like the fresh one; another vocabulary does not."""
    import copy

    from mmxfer.kinds.cache import tokenizer_fingerprint

    tokenizer_fingerprint(tok)  # copies of a tokenizer already hashed are hashed anew
    fresh, moved, used, other = (copy.deepcopy(tok) for _ in range(4))
    moved.name_or_path = "/runs/phase2/caption-s1/trunk"
    used(["a few words here", "one"], truncation=True, max_length=3, padding="max_length")
    # the call's settings are still on the backend
    assert used.backend_tokenizer.truncation is not None
    other.add_tokens(["zebra-crossing"])
    assert (
        tokenizer_fingerprint(moved) == tokenizer_fingerprint(used) == tokenizer_fingerprint(fresh)
    )
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(fresh)
    before = tokenizer_fingerprint(fresh)
    fresh.add_tokens(["a-new-piece"])  # changed after it was hashed: hashed again
    assert tokenizer_fingerprint(fresh) not in (before, tokenizer_fingerprint(other))


PINNED_ROWS = {
    "pawsx": {"id": "p0", "text_a": "a cat", "text_b": "an animal", "label": 1},
    "squad": {
        "id": "q0",
        "context": "The red square is left of the circle.",
        "question": "What is left?",
        "answers": {"text": ["The red square"], "answer_start": [0]},
    },
    "panx": {"id": "s0", "tokens": ["Angela", "Merkel"], "tags": ["B-PER", "I-PER"]},
    "hellaswag": {
        "id": "h0",
        "context": "A man",
        "question": "then he",
        "choices": ["a", "bb"],
        "label": 0,
    },
    "starter-vqa-text": {
        "id": "v0",
        "context": "There is a red circle.",
        "question": "what colour?",
        "answers": ["red"] * 10,
    },
    "starter-caption-text": {"id": "c0", "caption": "a red circle in the centre."},
    "tatoeba": {"id": "t0", "source": "Hallo", "target": "Hello"},
    "bucc": {"id": "de-1", "side": "source", "text": "Hallo Welt", "gold": "en-1"},
    "starter-caption": {"id": "c1", "image": "PNG", "caption": "a red circle in the centre."},
}
PINNED_PATHS = {  # a change here silently invalidates every feature cache already on disk
    "bucc": "686b405696aac55d56494a94e2202db7",  # task version 1.2 (XTREME's de-duplicated mining)
    "hellaswag": "48ca431cba47c3a999d531bdf24f0053",
    "panx": "63779347bf464daf0ed228b0abbe091c",  # version 1.1 + word-boundary chunking
    "pawsx": "53706232195b1fed15d2b28ea275d2de",
    "squad": "35ae45e18f0f8eaf88579cf776de6068",  # version 1.1: XTREME's doc-stride windows, max-context flags
    "starter-caption": "a9a54eae9d72ac77aa00879b03799095",  # task version 1.1
    "starter-caption-text": "9b2e706eca32029c37f9ec0218d6d3ac",  # task version 1.1
    "starter-vqa-text": "9ec0cbcb374934c6e105b4f4c31ee69c",
    "tatoeba": "47ce6c6fe474a6b2a79c096516eee12c",
}


@pytest.mark.parametrize("task", sorted(PINNED_ROWS))
def test_feature_cache_path_is_pinned(task, catalog, tok, mmxfer_cache, monkeypatch):
    """featurize's cache folder for each kind, with the tokenizer and data fingerprints held fixed."""
    from mmxfer.kinds import cache
    from mmxfer.kinds.images import default_image_preprocess

    monkeypatch.setattr(cache, "tokenizer_fingerprint", lambda tokenizer: "pinned-tokenizer")
    monkeypatch.setattr(cache, "dataset_fingerprint", lambda dataset: "pinned-data")
    spec = catalog.task(task)
    row = dict(PINNED_ROWS[task])
    if row.get("image") == "PNG":
        from mmxfer.tasks.starter import Shape, render

        row["image"] = render((Shape("circle", "red", 1, 1),))
    ds = dataset_from_rows(spec, [row], split="validation", lang="en")
    stats = {}
    preprocess = default_image_preprocess(32) if "image" in row else None
    options = FeatureOptions(
        max_length=32,
        doc_stride=16,
        split="validation",
        lang="en",
        image_preprocess=preprocess,
        use_cache=False,
    )
    featurize(
        spec,
        ds,
        tok,
        options,
        stats=stats,
        space={"answer_vocab": ["red"]} if task == "starter-vqa-text" else None,
    )
    path = stats["cache_path"]
    assert path.startswith(str(mmxfer_cache / "features" / spec.name))
    assert path.rsplit("/", 1)[1] == PINNED_PATHS[task]
