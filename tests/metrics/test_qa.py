import pytest

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.metrics import qa


def _dataset(items):
    return {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [
                            {
                                "id": qid,
                                "question": "q",
                                "answers": [{"text": a, "answer_start": 0} for a in answers],
                            }
                            for qid, answers in items
                        ],
                    }
                ],
            }
        ],
    }


def test_squad_normalisation_and_f1():
    assert qa.normalize_squad("  The Cat, an  apple!") == "cat apple"
    assert qa.squad_em("The cat.", "cat") == 1.0
    # pred tokens [big, cat, sat], gold [cat]: P=1/3, R=1 -> F1=0.5
    assert qa.squad_f1("a big cat sat", "the cat") == pytest.approx(0.5)
    assert qa.squad_f1("", "cat") == 0.0


def test_squad_scores_max_over_golds_and_missing_predictions():
    data = _dataset([("1", ["Paris", "the city of Paris"]), ("2", ["42"]), ("3", ["x y"])])
    preds = {"1": "city of Paris", "2": "forty two"}  # "3" missing -> 0, still counted
    scores = qa.squad_scores(preds, data)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 / 3)
    # the data list alone works too (XTREME's read_squad returns it)
    assert qa.squad_scores(preds, data["data"]) == scores


def test_squad_empty_gold_list_scores_against_empty_answer():
    data = _dataset([("1", [])])
    assert qa.squad_scores({"1": ""}, data)["exact_match"] == 100.0
    assert qa.squad_scores({"1": "x"}, data)["exact_match"] == 0.0


def test_mlqa_per_language_articles_and_punctuation():
    assert qa.normalize_mlqa("Der Hund, die Katze.", "de") == "hund katze"
    assert qa.normalize_mlqa("el perro «grande»", "es") == "perro grande"
    # English articles are not removed in German
    assert qa.normalize_mlqa("the dog", "de") == "the dog"
    # Unicode punctuation (category P*) is removed, unlike SQuAD's ASCII set
    assert qa.normalize_mlqa("¿qué?", "es") == "qué"
    assert qa.normalize_squad("¿qué?") == "¿qué"
    # Arabic: the regex removes every "ال"
    assert qa.normalize_mlqa("الكتاب", "ar") == "كتاب"
    assert qa.normalize_mlqa("देश का", "hi") == "देश का"


def test_mlqa_zh_mixed_segmentation():
    assert qa.mixed_segmentation("北京abc de") == ["北", "京", "abc", "de"]
    # char-level F1: pred 北京大学 vs gold 北京: P=2/4, R=1 -> 2/3
    assert qa.mlqa_f1("北京大学", "北京", "zh") == pytest.approx(2 / 3)
    assert qa.mlqa_f1("北京大学", "北京", "en") == 0.0  # whitespace tokens: one token each
    data = _dataset([("1", ["北京"]), ("2", ["上海"])])
    scores = qa.mlqa_scores({"1": "北京。", "2": "上海市"}, data, "zh")
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8) / 2)
    with pytest.raises(DataError, match="unknown language"):
        qa.mlqa_scores({}, data, "xx")


def test_registered_qa_metrics_from_rows():
    squad = catalog.METRICS.get("squad")
    out = squad.score([["Paris"], ["a b"]], ["paris", None])
    assert out["exact_match"] == 50.0 and out["f1"] == 50.0 and out["f1_em"] == 50.0
    assert catalog.METRICS.get("mlqa").score([["北京"]], ["北京大学"], lang="zh")[
        "f1"
    ] == pytest.approx(200 / 3)
    assert catalog.METRICS.get("tydiqa").score([["x"]], ["x"])["exact_match"] == 100.0
