"""Dev caps take the first N examples, as jiant's ``eval_subset_num`` (jiant/shared/caching.py:271-272); training
caps stay a seeded draw in file order."""

from __future__ import annotations

from mmxfer import catalog
from mmxfer.train.phases import _load_split
from mmxfer.train.translation import _load


def test_the_dev_cap_is_the_head_of_the_split_and_the_train_cap_a_seeded_draw():
    spec = catalog.task("starter-sib200")
    full = spec.load("validation", "eng_Latn")
    assert len(full) > 20
    assert _load_split(spec, "validation", "eng_Latn", None, 20)["id"] == full["id"][:20]
    train = spec.load("train", "eng_Latn")
    drawn = _load_split(spec, "train", "eng_Latn", None, 20)["id"]
    order = {i: k for k, i in enumerate(train["id"])}
    # not the head of a file that may be sorted by label
    assert len(drawn) == 20 and drawn != train["id"][:20]
    assert [order[i] for i in drawn] == sorted(order[i] for i in drawn)  # in file order
    # the same draw every time
    assert _load_split(spec, "train", "eng_Latn", None, 20)["id"] == drawn


def test_the_translation_dev_cap_is_the_head_too():
    spec = catalog.task("starter-sib200")  # any task: _load only reads the split and caps it
    full = spec.load("validation", "eng_Latn")
    assert _load(spec, "validation", None, 7)["id"] == full["id"][:7]
