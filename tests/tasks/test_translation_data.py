"""The FLORES-200 tracks' data: the WMT14 de-en pair (local text, TSV, hub schema), flores200-translate rows,
SIB-200 from the hub's Parquet export and from the real release files, language subsets."""

from __future__ import annotations

import datasets
import pytest

from mmxfer.errors import DataError
from mmxfer.kinds import kind_of
from mmxfer.kinds.collate import collate_fn
from mmxfer.models.trunk import load_trunk
from mmxfer.tasks.common import evaluation_languages
from mmxfer.testing.flores import sentence, write_flores, write_pair


def test_pair_from_local_text_and_tsv(tmp_path, catalog):
    pair = catalog.task("wmt14-de-en")
    write_pair(tmp_path / "a", n_train=5, n_valid=2)
    ds = pair.load("train", None, str(tmp_path / "a"))
    assert len(ds) == 5 and ds[0] == {
        "id": "0",
        "source": sentence("deu_Latn", 3000),
        "target": sentence("eng_Latn", 3000),
    }
    assert len(pair.load("validation", None, str(tmp_path / "a"))) == 2
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train.tsv").write_text(
        "en\tde\nHello\tHallo\nCat\tKatze\n", encoding="utf-8"
    )
    assert pair.load("train", None, str(tmp_path / "b"))[1] == {
        "id": "1",
        "source": "Katze",
        "target": "Cat",
    }
    # no header: German first
    (tmp_path / "b" / "dev.tsv").write_text("Hallo\tHello\n", encoding="utf-8")
    assert pair.load("validation", None, str(tmp_path / "b"))[0]["source"] == "Hallo"


def test_pair_errors_name_the_expected_files(tmp_path, catalog):
    pair = catalog.task("wmt14-de-en")
    # another task's train.tsv is never taken for the pair
    (tmp_path / "sib" / "eng_Latn").mkdir(parents=True)
    (tmp_path / "sib" / "eng_Latn" / "train.tsv").write_text(
        "index_id\tcategory\ttext\n1\ttravel\tx\n"
    )
    with pytest.raises(DataError, match=r"train\.de \+ train\.en"):
        pair.load("train", None, str(tmp_path))
    (tmp_path / "train.tsv").write_text("a\tb\tc\n", encoding="utf-8")
    with pytest.raises(DataError, match="two columns"):
        pair.load("train", None, str(tmp_path))


def test_pair_hub_schema(monkeypatch, catalog):
    from mmxfer import assets

    seen = {}

    def load(path, name=None, *, split=None, revision=None, gated=False, **kw):
        seen.update(path=path, name=name, split=split)
        return datasets.Dataset.from_dict(
            {
                "translation": [
                    {"de": "Hallo Welt", "en": "Hello world"},
                    {"de": "Katze", "en": "cat"},
                ]
            }
        )

    monkeypatch.setattr(assets, "load_hub_dataset", load)
    ds = catalog.task("wmt14-de-en").load("validation")
    assert seen == {"path": "wmt/wmt14", "name": "de-en", "split": "validation"}
    assert ds[1] == {"id": "1", "source": "Katze", "target": "cat"}


def test_sib_from_the_hub_parquet_export(monkeypatch, catalog):
    from mmxfer import assets

    seen = {}

    def load(path, name=None, *, split=None, revision=None, gated=False, **kw):
        seen.update(path=path, name=name, split=split, revision=revision, **kw)
        return datasets.Dataset.from_dict(
            {"index_id": [7], "category": ["travel"], "text": ["Habari"]}
        )

    monkeypatch.setattr(assets, "load_hub_dataset", load)
    ds = catalog.task("sib200").load("validation", "swh_Latn")
    assert seen == {
        "path": "Davlan/sib200",
        "name": None,
        "split": "validation",
        "revision": "refs/convert/parquet",
        "data_dir": "swh_Latn",
    }
    assert (
        ds[0]["label"] == catalog.task("sib200").label_names.index("travel") and ds[0]["id"] == "7"
    )


def test_translate_rows_and_features(tmp_path, catalog):
    spec = catalog.task("flores200-translate")
    write_flores(tmp_path, ["eng_Latn", "fra_Latn"], n=3)
    ds = spec.load("devtest", "fr", str(tmp_path))  # ISO 639-1 code mapped to fra_Latn
    assert ds[2] == {
        "id": "2",
        "source": sentence("fra_Latn", 1002),
        "target": sentence("eng_Latn", 1002),
    }
    _, tokenizer = load_trunk("tiny")
    kind = kind_of(spec)
    feats = kind.encoder(tokenizer, type("O", (), {"max_length": 32})(), {})(ds[:2])
    full = tokenizer(ds["target"][:2])["input_ids"]
    assert feats["labels"] == [
        ids[1:] for ids in full
    ]  # the decoder is fed <s> and predicts the rest
    batch = collate_fn(spec, tokenizer)([{k: feats[k][i] for k in feats} for i in range(2)])
    assert batch["labels"].shape[0] == 2 and (batch["labels"] == -100).any() == (
        len(full[0]) != len(full[1])
    )
    assert kind.golds(ds) == list(ds["target"])
    assert kind.hypotheses(ds, ds, [" a ", "b", "c"]) == {"0": "a", "1": "b", "2": "c"}


def test_language_subsets_are_normalised_and_intersected(catalog):
    sib, xnli = catalog.task("sib200"), catalog.task("xnli")
    assert evaluation_languages(sib, ["de", "swh", "fra_Latn", "xx"]) == [
        "deu_Latn",
        "fra_Latn",
        "swh_Latn",
    ]
    assert evaluation_languages(xnli, ["deu_Latn", "kaz_Cyrl"]) == ["de"]
    assert evaluation_languages(xnli, None) == list(xnli.languages)
    assert evaluation_languages(catalog.task("flores200-translate"), ["eng_Latn"]) == []
    tatoeba = catalog.task("tatoeba")  # codes it spells by another name (Mandarin cmn, Arabic ara)
    assert evaluation_languages(tatoeba, ["de", "zh", "ar"]) == ["ara", "cmn", "deu"]


@pytest.mark.realdata
def test_sib200_release_files(realdata, catalog):
    spec = catalog.task("sib200")
    root = str(realdata / "sib200")
    train = spec.load("train", "eng_Latn", root)
    assert len(train) == 701 and set(train["label"]) == set(range(len(spec.label_names)))
    langs = sorted(p.name for p in (realdata / "sib200" / "data" / "annotated").iterdir())
    assert len(langs) == 61
    english = spec.load("test", "eng_Latn", root)
    for lang in langs:
        test = spec.load("test", lang, root)
        assert (
            len(test) == 204 and test["id"] == english["id"] and test["label"] == english["label"]
        ), lang
    german = spec.load("train", "deu_Latn", root)  # German train: parallel to English by index_id
    assert sorted(german["id"]) == sorted(train["id"])
    # quoted fields are unquoted: the text is the FLORES-200 sentence itself
    import gzip

    with gzip.open(
        realdata / "flores200" / "devtest" / "eng_Latn.devtest.gz", "rt", encoding="utf-8"
    ) as handle:
        flores = set(handle.read().splitlines())
    quoted = [t for t in train["text_a"] if '"' in t]
    assert quoted and not any('""' in t for t in quoted)
    assert sum(t in flores for t in train["text_a"]) == 328


def test_sib_tsv_quoting(tmp_path, catalog):
    folder = tmp_path / "data" / "annotated" / "eng_Latn"
    folder.mkdir(parents=True)
    (folder / "test.tsv").write_text(
        'index_id\tcategory\ttext\n7\ttravel\t"He said ""hi"", then left."\n8\tsports\tPlain text.\n',
        encoding="utf-8",
    )
    ds = catalog.task("sib200").load("test", "eng_Latn", str(tmp_path))
    assert ds["text_a"] == ['He said "hi", then left.', "Plain text."]
