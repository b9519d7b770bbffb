"""Hub code paths against fake datasets shaped like the real hub configs (no network)."""

from __future__ import annotations

import datasets
import pytest


@pytest.fixture()
def fake_hub(monkeypatch):
    calls = []
    tables: dict = {}

    def load(path, name=None, *, split=None, revision=None, gated=False, **kw):
        calls.append((path, name, split))
        return tables[(path, name, split)]

    from mmxfer import assets

    monkeypatch.setattr(assets, "load_hub_dataset", load)
    monkeypatch.setattr(assets, "is_offline", lambda: False)
    return tables, calls


def test_xnli_filters_language(fake_hub, catalog):
    tables, calls = fake_hub
    tables[("google/xtreme", "XNLI", "test")] = datasets.Dataset.from_dict(
        {
            "language": ["de", "fr", "de"],
            "sentence1": ["a", "b", "c"],
            "sentence2": ["x", "y", "z"],
            "gold_label": ["entailment", "neutral", "contradiction"],
        }
    )
    ds = catalog.task("xnli").load("test", "de")
    assert ds["text_a"] == ["a", "c"] and ds["label"] == [0, 2]


def test_tydiqa_filters_by_id_prefix(fake_hub, catalog):
    tables, _ = fake_hub
    ans = {"text": ["x"], "answer_start": [0]}
    tables[("google/xtreme", "tydiqa", "validation")] = datasets.Dataset.from_dict(
        {
            "id": ["arabic-1", "english-2", "arabic-3"],
            "title": ["t"] * 3,
            "context": ["x"] * 3,
            "question": ["q"] * 3,
            "answers": [ans] * 3,
        }
    )
    assert catalog.task("tydiqa").load("validation", "ar")["id"] == ["arabic-1", "arabic-3"]


def test_udpos_classlabel_and_config_name(fake_hub, catalog):
    tables, calls = fake_hub
    upos = catalog.task("udpos").label_names
    feats = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "pos_tags": datasets.Sequence(datasets.ClassLabel(names=list(upos))),
        }
    )
    tables[("google/xtreme", "udpos.German", "test")] = datasets.Dataset.from_dict(
        {"tokens": [["Das", "Haus"]], "pos_tags": [[upos.index("DET"), upos.index("NOUN")]]},
        features=feats,
    )
    assert catalog.task("udpos").load("test", "de")[0]["tags"] == ["DET", "NOUN"]


def test_bucc_hub_pairs_become_mining_rows(fake_hub, catalog):
    tables, _ = fake_hub
    tables[("google/xtreme", "bucc18.fr", "test")] = datasets.Dataset.from_dict(
        {
            "source_sentence": ["Bonjour"],
            "target_sentence": ["Hello"],
            "source_lang": ["fr"],
            "target_lang": ["en"],
        }
    )
    ds = catalog.task("bucc").load("test", "fr")
    src = [r for r in ds if r["side"] == "source"][0]
    trg = [r for r in ds if r["side"] == "target"][0]
    assert src["gold"] == trg["id"] and trg["gold"] == src["id"]


def test_tatoeba_and_xquad_split_mapping(fake_hub, catalog):
    tables, calls = fake_hub
    tables[("google/xtreme", "tatoeba.kaz", "validation")] = datasets.Dataset.from_dict(
        {
            "source_sentence": ["Сәлем"],
            "target_sentence": ["Hello"],
            "source_lang": ["kaz"],
            "target_lang": ["eng"],
        }
    )
    # ISO 639-1 mapped to kaz
    assert catalog.task("tatoeba").load("test", "kk")[0]["source"] == "Сәлем"
    assert calls[-1] == ("google/xtreme", "tatoeba.kaz", "validation")


def test_glue_mnli_and_hellaswag(fake_hub, catalog):
    tables, _ = fake_hub
    tables[("nyu-mll/glue", "mnli", "validation_matched")] = datasets.Dataset.from_dict(
        {"premise": ["p", "q"], "hypothesis": ["h", "i"], "label": [2, -1], "idx": [0, 1]}
    )
    ds = catalog.task("mnli").load("validation")
    assert ds["label"] == [2] and ds["id"] == ["0"] and ds["text_b"] == ["h"]
    tables[("Rowan/hellaswag", None, "validation")] = datasets.Dataset.from_dict(
        {
            "ind": [4],
            "ctx_a": ["A"],
            "ctx_b": ["b"],
            "endings": [["1", "2", "3", "4"]],
            "label": ["3"],
            "activity_label": ["x"],
        }
    )
    assert catalog.task("hellaswag").load("validation")[0]["label"] == 3


def test_flores_plus_renames_codes(fake_hub, catalog, monkeypatch):
    tables, calls = fake_hub
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    for code, text in (("cmn_Hans", "你好"), ("eng_Latn", "Hello")):
        tables[("openlanguagedata/flores_plus", code, "devtest")] = datasets.Dataset.from_dict(
            {"text": [text]}
        )
    ds = catalog.task("flores_plus").load("devtest", "zho_Hans")
    assert (
        ds[0]["source"] == "你好"
        and ("openlanguagedata/flores_plus", "cmn_Hans", "devtest") in calls
    )
