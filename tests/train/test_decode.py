"""Prediction plumbing per task kind: featurise synthetic canonical rows, run a tiny model, decode rows."""

from __future__ import annotations

import pytest

from mmxfer import catalog
from mmxfer.train import data as train_data
from mmxfer.train.loop import make_accelerator
from mmxfer.train.phases import _build, predict

ROWS = {
    "squad": [
        {
            "id": f"q{i}",
            "context": "The red square is left of the blue circle. " * (1 + i % 3),
            "question": "What is left of the blue circle?",
            "answers": {"text": ["The red square"], "answer_start": [0]},
        }
        for i in range(5)
    ],
    "udpos": [
        {
            "id": f"s{i}",
            "tokens": ["the", "cat", "sat", "down"][: 2 + i % 3],
            "tags": ["DET", "NOUN", "VERB", "ADV"][: 2 + i % 3],
        }
        for i in range(5)
    ],
    "xnli": [
        {"id": f"n{i}", "text_a": "a cat sat", "text_b": "an animal sat", "label": i % 3}
        for i in range(5)
    ],
}


@pytest.mark.parametrize("task", sorted(ROWS))
def test_predictions_have_one_decoded_value_per_example(task, tmp_path, monkeypatch):
    from mmxfer.models.trunk import load_trunk
    from mmxfer.tasks.common import dataset_from_rows

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path))
    catalog.load_plugins()
    spec = catalog.task(task)
    ds = dataset_from_rows(spec, ROWS[task], split="validation", lang="en")
    trunk = load_trunk("tiny")
    data = train_data.task_data(spec, ds, trunk.tokenizer, 64, split="validation", lang="en")
    model = _build(trunk, spec, data, _profile(), image=False)
    by_id = predict(make_accelerator("no"), model, data, batch_size=2)
    assert set(by_id) == {r["id"] for r in ROWS[task]}
    rows = train_data.prediction_rows(data, by_id)
    assert [r["id"] for r in rows] == [r["id"] for r in ROWS[task]]
    preds, golds = [r["pred"] for r in rows], [r["gold"] for r in rows]
    assert len(preds) == len(golds) == len(ROWS[task])
    if spec.kind == "span_qa":
        assert all(isinstance(p, str) for p in preds) and golds[0] == ["The red square"]
    elif spec.kind == "tagging":
        assert [len(p) for p in preds] == [len(r["tokens"]) for r in ROWS[task]]
        assert all(t in spec.label_names for p in preds for t in p)
    else:
        assert all(p in (0, 1, 2) for p in preds) and golds == [r["label"] for r in ROWS[task]]


def _profile():
    from mmxfer.config import ExperimentConfig, TrunkConfig

    return ExperimentConfig(trunk=TrunkConfig(name="tiny"))


def test_longest_first_batching_gives_each_example_its_own_outputs(tmp_path, monkeypatch):
    """predict() batches the longest examples first (less padding) and puts the outputs back in feature order:
    every example's logits are the ones it gets alone in a batch of one."""
    import torch

    from mmxfer.models.trunk import load_trunk
    from mmxfer.tasks.common import dataset_from_rows

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path))
    catalog.load_plugins()
    spec = catalog.task("xnli")
    rows = [{**r, "text_a": "a cat sat " * (1 + (i * 2) % 5)} for i, r in enumerate(ROWS["xnli"])]
    ds = dataset_from_rows(spec, rows, split="validation", lang="en")
    trunk = load_trunk("tiny")
    data = train_data.task_data(spec, ds, trunk.tokenizer, 64, split="validation", lang="en")
    assert data.lengths != sorted(data.lengths, reverse=True)
    model = _build(trunk, spec, data, _profile(), image=False)
    seen = []
    real_decode = train_data.decode
    monkeypatch.setattr(
        train_data,
        "decode",
        lambda d, outputs: seen.append(outputs["logits"]) or real_decode(d, outputs),
    )
    predict(make_accelerator("no"), model, data, batch_size=3)
    model.eval()
    with torch.no_grad():  # each feature alone, in feature order, without predict()
        alone = torch.cat(
            [
                model(
                    **{k: v for k, v in data.collate([data.features[i]]).items() if k != "labels"}
                )["logits"]
                for i in range(len(rows))
            ]
        )
    # the examples differ, so an order mix-up would show
    assert not torch.allclose(alone[0], alone[1])
    torch.testing.assert_close(seen[0], alone, atol=1e-5, rtol=1e-5)
