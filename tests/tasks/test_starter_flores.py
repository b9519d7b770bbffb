"""The starter's real targets: SIB-200 and FLORES retrieval read from the SIB-200 files shipped in the package."""

from __future__ import annotations

import gzip
import shutil

import pytest

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.tasks.flores import SIB_LABELS
from mmxfer.tasks.starter_flores import PIVOT, SHIPPED_LANGS, STARTER_LANGS, shipped_root


def test_every_starter_language_is_shipped_with_the_licence_and_attribution():
    root = shipped_root()
    assert set(STARTER_LANGS) <= set(SHIPPED_LANGS)
    for lang in SHIPPED_LANGS:
        for split in ("dev", "test") + (("train",) if lang in STARTER_LANGS else ()):
            assert (root / "data" / "annotated" / lang / f"{split}.tsv.gz").is_file(), (lang, split)
    assert "Apache License" in (root / "LICENSE").read_text()
    notice = (root / "NOTICE.md").read_text()
    assert "CC BY-SA 4.0" in notice and "Adelani et al. 2024" in notice


def test_starter_sib200_is_the_sib200_task_on_the_shipped_folder():
    catalog.load_plugins()
    ours = catalog.task("starter-sib200")
    assert (
        ours.label_names == SIB_LABELS
        and ours.train_language == PIVOT
        and len(ours.languages) == 33
    )
    for split, lang in (("train", PIVOT), ("validation", PIVOT), ("test", "amh_Ethi")):
        a = ours.load(split, lang)
        b = catalog.task("sib200").load(split, lang, str(shipped_root()))
        assert a["id"] == b["id"] and a["text_a"] == b["text_a"] and a["label"] == b["label"]
    assert len(ours.load("train", PIVOT)) == 701 and len(ours.load("test", "yor_Latn")) == 204


def test_a_quoted_sentence_keeps_its_quotes():
    texts = catalog.task("starter-sib200").load("train", PIVOT)["text_a"]
    # CSV quoting read as such: the quotes are text, not field delimiters
    assert any('"' in t for t in texts)
    assert not any(t.startswith('"') and t.endswith('"') and t.count('"') == 2 for t in texts)


def test_retrieval_pairs_each_test_sentence_with_its_english_translation_among_all_english_sentences():
    spec = catalog.task("starter-flores")
    assert PIVOT not in spec.languages and len(spec.languages) == 32
    rows = spec.load("test", "jpn_Jpan")
    sib = catalog.task("starter-sib200")
    english = sib.load("test", PIVOT)
    assert rows["id"][:204] == english["id"] and rows["target"][:204] == english["text_a"]
    assert rows["source"][:204] == sib.load("test", "jpn_Jpan")["text_a"]
    # the 800 English sentences of train and dev are candidates without a source
    others = list(sib.load("train", PIVOT)["text_a"]) + list(
        sib.load("validation", PIVOT)["text_a"]
    )
    assert (
        len(rows) == 1004
        and list(rows["source"][204:]) == [None] * 800
        and list(rows["target"][204:]) == others
    )
    assert len(set(rows["id"])) == 1004


def test_retrieval_refuses_files_that_are_not_parallel(tmp_path):
    root = tmp_path / "sib"
    for lang in (PIVOT, "deu_Latn"):
        (root / "data" / "annotated" / lang).mkdir(parents=True)
        for name in ("train", "dev", "test"):
            src = shipped_root() / "data" / "annotated" / lang / f"{name}.tsv.gz"
            shutil.copy(src, root / "data" / "annotated" / lang / f"{name}.tsv.gz")
    path = root / "data" / "annotated" / "deu_Latn" / "test.tsv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(DataError, match="not the same FLORES ids in the same order"):
        catalog.task("starter-flores").load("test", "deu_Latn", str(root))


def test_shipped_files_are_the_release_files(realdata):
    release = realdata / "sib200" / "data" / "annotated"
    for lang, name in ((PIVOT, "train"), ("tir_Ethi", "test"), ("deu_Latn", "train")):
        with gzip.open(
            shipped_root() / "data" / "annotated" / lang / f"{name}.tsv.gz", "rt", encoding="utf-8"
        ) as fh:
            assert fh.read() == (release / lang / f"{name}.tsv").read_text(encoding="utf-8"), (
                lang,
                name,
            )


def test_the_positive_control_trains_on_no_sentence_a_target_evaluates():
    """Targets evaluate every language's test sentences (SIB-200, the retrieval queries) and every English sentence
    (the retrieval candidates); the control's pairs hold neither."""
    from mmxfer.tasks.starter_flores import CONTROL_LANGS, CONTROL_PIVOT

    control = catalog.task("starter-pivot-bitext")
    assert control.control and "test" not in control.splits
    sib = catalog.task("starter-sib200")
    evaluated = set(sib.load("test", PIVOT)["text_a"]) | {
        t for s in ("train", "validation") for t in sib.load(s, PIVOT)["text_a"]
    }
    test_ids = set(sib.load("test", PIVOT)["id"])
    for lang in STARTER_LANGS:
        evaluated |= set(sib.load("test", lang)["text_a"])
    for split in ("train", "validation"):
        rows = control.load(split, CONTROL_PIVOT)
        assert len(rows) == len(CONTROL_LANGS) * len(sib.load(split, PIVOT))
        assert not (set(rows["source"]) | set(rows["target"])) & evaluated
        assert not {i.split(":", 1)[1] for i in rows["id"]} & test_ids
    assert (
        PIVOT not in CONTROL_LANGS
        and CONTROL_PIVOT not in CONTROL_LANGS
        and len(CONTROL_LANGS) == 31
    )
