"""Predictions are matched to examples by id: a corrupt image dropped during featurisation must not shift
every later prediction onto the wrong question (it did when decoding went by row position)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from mmxfer import catalog
from mmxfer.train import data as train_data
from mmxfer.train.loop import make_accelerator
from mmxfer.train.phases import dev_scorer, predict

QUESTIONS = [
    ("What color is the car?", "blue"),
    ("Is the cat on the mat?", "yes"),
    ("What color is the ball?", "red"),
    ("Is a man riding a horse?", "no"),
]


class Oracle(nn.Module):
    """Answers each question with its own gold answer, looked up by the question's token ids."""

    def __init__(self, table: dict[tuple[int, ...], int], n_answers: int) -> None:
        super().__init__()
        self.table, self.n = table, n_answers
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask, pixel_values=None, **_):
        logits = torch.zeros(len(input_ids), self.n)
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
            logits[row, self.table[tuple(ids[mask.bool()].tolist())]] = 1.0
        return {"logits": logits + self.dummy}


@pytest.fixture()
def vqa_dev(tmp_path, monkeypatch):
    from PIL import Image

    from mmxfer.tasks.answers import build_answer_vocab
    from mmxfer.tasks.common import dataset_from_rows
    from mmxfer.testing.tiny import tiny_tokenizer

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    catalog.load_plugins()
    spec = catalog.task("starter-vqa")
    rows = []
    for i, (question, answer) in enumerate(QUESTIONS):
        path = tmp_path / f"img{i}.png"
        if i == 1:
            # corrupt: dropped by featurisation (on_bad_image: skip)
            path.write_bytes(b"not an image")
        else:
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(buf, format="PNG")
            path.write_bytes(buf.getvalue())
        rows.append(
            {"id": f"q{i}", "image": str(path), "question": question, "answers": [answer] * 4}
        )
    ds = dataset_from_rows(spec, rows, split="validation", lang="en")
    tok = tiny_tokenizer()
    space = {"answer_vocab": build_answer_vocab(ds["answers"])}
    data = train_data.task_data(spec, ds, tok, 32, split="validation", lang="en", space=space)
    assert len(data.features) == 3 and len(data.raw) == 4
    vocab = space["answer_vocab"]
    gold = {r["id"]: r["answers"][0] for r in rows}
    table = {tuple(f["input_ids"]): vocab.index(gold[f["id"]]) for f in data.features}
    return spec, data, Oracle(table, len(vocab))


def test_dropped_image_does_not_shift_predictions(vqa_dev):
    spec, data, model = vqa_dev
    by_id = predict(make_accelerator("no"), model, data, batch_size=2)
    assert by_id == {"q0": "blue", "q2": "red", "q3": "no"}  # q1's image was corrupt: no prediction
    rows = train_data.prediction_rows(data, by_id)
    assert [r["id"] for r in rows] == ["q0", "q2", "q3"]
    assert all(r["pred"] in r["gold"] for r in rows)


def test_dev_score_of_a_perfect_model_is_perfect_despite_a_dropped_row(vqa_dev):
    spec, data, model = vqa_dev
    # VQA accuracy in percent
    assert dev_scorer(spec, data, batch_size=2)(model, make_accelerator("no")) == pytest.approx(
        100.0
    )


def test_dev_scorer_reads_golds_and_warns_about_dropped_rows_once(vqa_dev, caplog, monkeypatch):
    spec, data, model = vqa_dev
    reads = []
    real_golds = train_data.golds
    monkeypatch.setattr(train_data, "golds", lambda d: reads.append(1) or real_golds(d))
    evaluate, accelerator = dev_scorer(spec, data, batch_size=2), make_accelerator("no")
    with caplog.at_level("WARNING", logger=train_data.__name__):
        scores = [evaluate(model, accelerator) for _ in range(3)]
    assert scores == [pytest.approx(100.0)] * 3
    assert len(reads) == 1
    assert [r.getMessage() for r in caplog.records if "no prediction" in r.getMessage()] == [
        "starter-vqa: 1 of 4 example(s) have no prediction (dropped during featurisation, e.g. bad images); "
        "scored without them"
    ]
