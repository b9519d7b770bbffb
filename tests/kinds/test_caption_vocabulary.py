"""A closed caption language: the masked-LM softmax over the pieces of the training captions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.models import build_task_model
from mmxfer.testing.tiny import tiny_trunk
from mmxfer.train import data as train_data


def test_the_starter_worlds_captions_give_their_pieces_as_the_heads_vocabulary(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path))
    trunk = tiny_trunk()
    tok = trunk.tokenizer
    spec = catalog.task("starter-caption-text")
    raw = spec.load("train", "en", None)
    data = train_data.task_data(spec, raw, tok, 64, split="train", lang="en", seed=1)
    pieces = sorted({x for caption in raw["caption"] for x in tok(caption)["input_ids"]})
    assert data.label_space["caption_vocabulary"] == pieces and len(pieces) < 100
    dev = train_data.task_data(
        spec,
        spec.load("validation", "en", None),
        tok,
        64,
        split="validation",
        lang="en",
        space=data.label_space,
        seed=1,
    )
    assert dev.label_space == data.label_space  # dev reuses the training vocabulary
    model = build_task_model(trunk, "caption_mlm", **data.kind.head_options(data.label_space))
    batch = data.collate([data.features[i] for i in range(8)])
    out = model(**batch)
    assert out["logits"].shape == (int((batch["mlm_labels"] != -100).sum()), len(pieces))
    # an open-vocabulary caption task (COCO-style) keeps the trunk's whole softmax
    assert not catalog.task("caption").closed_vocabulary


def test_the_closed_softmax_is_the_full_one_with_every_other_piece_left_out():
    trunk = tiny_trunk()
    vocabulary = [0, 2, 5, 17, 40, 41]
    closed = build_task_model(trunk, "caption_mlm", vocabulary=vocabulary)
    full = build_task_model(trunk, "caption_mlm")
    full.head.load_state_dict(closed.head.state_dict())
    closed.eval(), full.eval()  # no dropout: the same trunk states for both
    with torch.no_grad():
        closed.head.bias.copy_(torch.randn_like(closed.head.bias))
        full.head.bias.copy_(closed.head.bias)
    ids = torch.tensor([[0, 5, 17, 4, 40, 2], [0, 41, 5, 4, 17, 2]])
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 3] = 40, 17  # position 3 holds the mask token stand-in
    got = closed(ids, torch.ones_like(ids), mlm_labels=labels)
    ref = full(ids, torch.ones_like(ids), mlm_labels=labels)
    kept = ref["logits"][:, vocabulary]
    assert torch.allclose(got["logits"], kept, atol=1e-5)
    target = torch.tensor([vocabulary.index(40), vocabulary.index(17)])
    assert torch.allclose(got["loss"], F.cross_entropy(kept, target), atol=1e-5)
    labels[1, 3] = 3  # not a piece of the captions
    with pytest.raises(DataError, match="not in the caption vocabulary"):
        closed(ids, torch.ones_like(ids), mlm_labels=labels)
