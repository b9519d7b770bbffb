"""The starter world is byte-identical per seed; the CLDR targets cover >= 20 languages."""

from __future__ import annotations

import hashlib

from mmxfer.tasks import starter


def _digest(ds) -> str:
    h = hashlib.sha256()
    for row in (
        ds.cast_column("image", __import__("datasets").Image(decode=False))
        if "image" in ds.column_names
        else ds
    ):
        h.update(
            repr(
                sorted(
                    (k, v if not isinstance(v, dict) else v.get("bytes")) for k, v in row.items()
                )
            ).encode()
        )
    return h.hexdigest()


def _world_digest(seed: int, split: str, n: int) -> str:
    """SHA-256 over every image, caption and question of the world."""
    h = hashlib.sha256()
    for scene in starter.starter_world(seed, split, n):
        h.update(scene.png)
        h.update(scene.caption.encode())
        h.update(repr(scene.qa).encode())
    return h.hexdigest()


def test_world_is_byte_identical_per_seed():
    starter.starter_world.cache_clear()
    a = _world_digest(3, "validation", 40)
    starter.starter_world.cache_clear()
    assert _world_digest(3, "validation", 40) == a
    assert _world_digest(4, "validation", 40) != a
    assert starter.make_scene(3, "validation", 7).png == starter.make_scene(3, "validation", 7).png


def test_registered_datasets_are_deterministic_and_twins_share_supervision(catalog):
    vqa, twin = catalog.task("starter-vqa"), catalog.task("starter-vqa-text")
    a = vqa.load("test")
    starter.starter_world.cache_clear()
    assert _digest(vqa.load("test")) == _digest(a)
    t = twin.load("test")
    assert t["id"] == a["id"] and t["question"] == a["question"] and t["answers"] == a["answers"]
    img = a[0]["image"]
    # background + at least one shape
    assert img.size == (starter.SIZE, starter.SIZE) and len(img.getcolors(4096)) >= 2
    cap = catalog.task("starter-caption").load("test")
    assert cap.num_rows == starter.SPLIT_SIZES["test"] and cap[0]["caption"].endswith(".")
    assert catalog.task("starter-caption-text").load("test")["caption"] == cap["caption"]


def test_answers_match_the_scene():
    scene = starter.make_scene(0, "train", 11)
    for question, answer in scene.qa:
        if question.startswith("how many"):
            kind = question.split()[2][:-1]
            assert answer == str(sum(s.kind == kind for s in scene.shapes))
        if question.startswith("what colour is the"):
            kind = question.split()[-1][:-1]
            assert [s.colour for s in scene.shapes if s.kind == kind] == [answer]


def test_cldr_targets(catalog):
    bitext, names = catalog.task("starter-bitext"), catalog.task("starter-names")
    assert len(bitext.languages) >= 20 and len(names.languages) >= 20
    kk = bitext.load("test", "kk")
    assert len(kk) > 200 and dict(zip(kk["id"], kk["target"]))["DE"] == "Germany"
    train = names.load("train", "en")
    assert set(train["label"]) == set(range(len(starter.NAME_TYPES)))
    ja, en = names.load("test", "ja"), names.load("test", "en")
    assert ja["id"] == en["id"] and ja["label"] == en["label"] and ja["text_a"] != en["text_a"]
    assert not set(train["id"]) & set(en["id"])  # concepts do not leak from train to test
