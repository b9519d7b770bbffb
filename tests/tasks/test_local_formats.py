"""Every local release format: small fixtures written here, and the real excerpts (MMXFER_REAL_DATA)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def squad_json(qas: list[tuple[str, str, str, int]], context: str) -> str:
    return json.dumps(
        {
            "version": "1.1",
            "data": [
                {
                    "title": "t",
                    "paragraphs": [
                        {
                            "context": context,
                            "qas": [
                                {
                                    "id": i,
                                    "question": q,
                                    "answers": [{"text": a, "answer_start": s}],
                                }
                                for i, q, a, s in qas
                            ],
                        }
                    ],
                }
            ],
        }
    )


# --- fixtures written by the tests --------------------------------------------------------------


def test_tatoeba_and_flores_local(tmp_path, catalog):
    write(tmp_path / "tatoeba.kaz-eng.kaz", "Сәлем\nРахмет\n")
    write(tmp_path / "tatoeba.kaz-eng.eng", "Hello\nThanks\n")
    ds = catalog.task("tatoeba").load("test", "kaz", str(tmp_path))
    assert ds["source"] == ["Сәлем", "Рахмет"] and ds["target"] == ["Hello", "Thanks"]
    base = tmp_path / "flores200_dataset" / "dev"
    base.mkdir(parents=True)
    for lang, lines in (("eng_Latn", "One\nTwo\n"), ("amh_Ethi", "አንድ\nሁለት\n")):
        with gzip.open(base / f"{lang}.dev.gz", "wt", encoding="utf-8") as fh:
            fh.write(lines)
    # ISO 639-1 code mapped to amh_Ethi
    ds = catalog.task("flores200").load("dev", "am", str(tmp_path))
    assert ds["source"] == ["አንድ", "ሁለት"] and ds["target"] == ["One", "Two"]


def test_misaligned_bitext_is_an_error(tmp_path, catalog):
    from mmxfer.errors import DataError

    write(tmp_path / "tatoeba.fra-eng.fra", "a\nb\n")
    write(tmp_path / "tatoeba.fra-eng.eng", "a\n")
    with pytest.raises(DataError, match="aligned"):
        catalog.task("tatoeba").load("test", "fra", str(tmp_path))


def test_squad_formats(tmp_path, catalog):
    ctx = "Paris is the capital of France."
    write(tmp_path / "xquad.de.json", squad_json([("q1", "Hauptstadt?", "Paris", 0)], ctx))
    write(
        tmp_path / "MLQA_V1/dev/dev-context-de-question-de.json",
        squad_json([("m1", "Land?", "France", 24)], ctx),
    )
    write(
        tmp_path / "tydiqa-goldp-v1.1-dev.json",
        squad_json([("finnish-1", "Mikä?", "Paris", 0), ("english-2", "What?", "France", 24)], ctx),
    )
    write(tmp_path / "dev-v1.1.json", squad_json([("s1", "What?", "capital", 13)], ctx))
    assert catalog.task("xquad").load("test", "de", str(tmp_path))[0]["answers"]["text"] == [
        "Paris"
    ]
    assert catalog.task("mlqa").load("validation", "de", str(tmp_path))[0]["id"] == "m1"
    fi = catalog.task("tydiqa").load("validation", "fi", str(tmp_path))
    assert fi["id"] == ["finnish-1"]  # the other language's question is filtered out
    sq = catalog.task("squad").load("validation", None, str(tmp_path))[0]
    assert ctx[sq["answers"]["answer_start"][0] :].startswith("capital")


def test_conllu_panx_tsv_formats(tmp_path, catalog):
    write(
        tmp_path / "UD_German-X/de_x-ud-test.conllu",
        "# sent_id = s1\n1-2\tzum\t_\t_\t_\t_\t_\t_\t_\t_\n1\tzu\tzu\tADP\t_\t_\t0\troot\t_\t_\n"
        "2\tdem\tder\tDET\t_\t_\t1\tdet\t_\t_\n2.1\telided\t_\tX\t_\t_\t_\t_\t_\t_\n3\tHaus\tHaus\tNOUN\t_\t_\t1\tobj\t_\t_\n\n",
    )
    ud = catalog.task("udpos").load("test", "de", str(tmp_path))
    # XTREME keeps the multi-word token's surface form, tagged with its span head (zu, the root)
    assert ud[0]["tokens"] == ["zum", "Haus"] and ud[0]["tags"] == ["ADP", "NOUN"]
    write(
        tmp_path / "de/dev",
        "de:Angela\tB-PER\nde:Merkel\tI-PER\nde:spricht\tO\n\nde:Berlin\tB-LOC\n",
    )
    px = catalog.task("panx").load("validation", "de", str(tmp_path))
    assert px["tokens"] == [["Angela", "Merkel", "spricht"], ["Berlin"]] and px[1]["tags"] == [
        "B-LOC"
    ]
    write(
        tmp_path / "x-final/de/dev_2k.tsv",
        "id\tsentence1\tsentence2\tlabel\n1\tA\tB\t1\n2\tC\tD\t0\n",
    )
    assert catalog.task("pawsx").load("validation", "de", str(tmp_path))["label"] == [1, 0]
    write(
        tmp_path / "XNLI-1.0/xnli.test.tsv",
        "language\tgold_label\tsentence1\tsentence2\tpairID\n"
        "de\tcontradiction\tP\tH\t7\nfr\tneutral\tP\tH\t8\n",
    )
    xn = catalog.task("xnli").load("test", "de", str(tmp_path))
    assert len(xn) == 1 and xn[0]["label"] == 2


def test_bucc_release_format(tmp_path, catalog):
    d = tmp_path / "bucc2018/de-en"
    write(d / "de-en.sample.de", "de-000000001\tHallo Welt\nde-000000002\tNur ein Ablenker\n")
    write(d / "de-en.sample.en", "en-000000001\tHello world\nen-000000002\tA distractor\n")
    write(d / "de-en.sample.gold", "de-000000001\ten-000000001\n")
    ds = catalog.task("bucc").load("validation", "de", str(tmp_path))
    rows = {r["id"]: r for r in ds}
    assert rows["de-000000001"]["gold"] == "en-000000001" and rows["de-000000002"]["gold"] == ""
    assert sum(r["side"] == "target" for r in ds) == 2


def test_text_intermediate_formats(tmp_path, catalog):
    write(
        tmp_path / "multinli_1.0_dev_matched.jsonl",
        json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "neutral", "pairID": "1"})
        + "\n"
        + json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "-", "pairID": "2"})
        + "\n",
    )
    assert catalog.task("mnli").load("validation", None, str(tmp_path))["label"] == [1]
    write(
        tmp_path / "hellaswag_val.jsonl",
        json.dumps(
            {
                "ind": 3,
                "ctx_a": "A man",
                "ctx_b": "then",
                "endings": ["w", "x", "y", "z"],
                "label": 2,
            }
        )
        + "\n",
    )
    hs = catalog.task("hellaswag").load("validation", None, str(tmp_path))[0]
    assert hs["choices"] == ["w", "x", "y", "z"] and hs["label"] == 2
    write(
        tmp_path / "dev_rand_split.jsonl",
        json.dumps(
            {
                "id": "c1",
                "answerKey": "B",
                "question": {
                    "stem": "Where?",
                    "choices": [{"label": "A", "text": "here"}, {"label": "B", "text": "there"}],
                },
            }
        )
        + "\n",
    )
    assert catalog.task("commonsenseqa").load("validation", None, str(tmp_path))[0]["label"] == 1
    write(
        tmp_path / "valid.csv",
        "id,context,question,answer0,answer1,answer2,answer3,label\nk,ctx,q?,a,b,c,d,3\n",
    )
    assert catalog.task("cosmosqa").load("validation", None, str(tmp_path))[0]["choices"][3] == "d"
    write(
        tmp_path / "QQP/dev.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n5\t1\t2\tq a\tq b\t1\n",
    )
    assert catalog.task("qqp").load("validation", None, str(tmp_path))[0]["label"] == 1
    write(tmp_path / "ccg/dev.stagged", "Dogs|NNS|N bark|VBP|S[dcl]\\NP\n")
    assert catalog.task("ccg").load("validation", None, str(tmp_path))[0]["tags"] == [
        "N",
        "S[dcl]\\NP",
    ]


def _png(path: Path, colour=(255, 0, 0)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def test_coco_vqa_and_captions_with_image_folder(tmp_path, catalog):
    _png(tmp_path / "val2014/COCO_val2014_000000000042.jpg")
    write(
        tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json",
        json.dumps(
            {"questions": [{"image_id": 42, "question": "what colour?", "question_id": 420}]}
        ),
    )
    write(
        tmp_path / "v2_mscoco_val2014_annotations.json",
        json.dumps(
            {
                "annotations": [
                    {
                        "question_id": 420,
                        "image_id": 42,
                        "answers": [{"answer": "red", "answer_id": k} for k in range(10)],
                    }
                ]
            }
        ),
    )
    write(
        tmp_path / "dataset_coco.json",
        json.dumps(
            {
                "images": [
                    {
                        "filepath": "val2014",
                        "filename": "COCO_val2014_000000000042.jpg",
                        "cocoid": 42,
                        "split": "val",
                        "sentences": [{"raw": "A red square."}, {"raw": "Something red."}],
                    }
                ]
            }
        ),
    )
    vqa = catalog.task("vqa").load("validation", None, str(tmp_path))
    assert vqa[0]["answers"] == ["red"] * 10 and vqa[0]["image"].size == (8, 8)
    twin = catalog.task("vqa-text").load("validation", None, str(tmp_path))
    assert (
        twin[0]["context"] == "A red square. Something red."
        and twin[0]["answers"] == vqa[0]["answers"]
    )
    cap = catalog.task("caption").load("validation", None, str(tmp_path))
    assert cap["caption"] == ["A red square.", "Something red."] and cap[0]["image"].size == (8, 8)
    assert catalog.task("caption-text").load("validation", None, str(tmp_path)).column_names == [
        "id",
        "caption",
    ]


def test_sib200_local(tmp_path, catalog):
    write(
        tmp_path / "data/annotated/swh_Latn/test.tsv",
        "index_id\tcategory\ttext\n1\tsports\tMpira\n",
    )
    ds = catalog.task("sib200").load("test", "swh_Latn", str(tmp_path))
    assert ds[0]["label"] == catalog.task("sib200").label_names.index("sports")


# --- real excerpts ------------------------------------------------------------------------------


def test_realdata_every_format(realdata, catalog):
    R = str(realdata)
    t = catalog.task
    assert len(t("tatoeba").load("test", "kaz", R)) > 100
    fl = t("flores200").load("devtest", "swh_Latn", R)
    assert len(fl) == 1012 and fl[0]["target"].startswith('"We now have 4-month-old mice')
    xq = t("xquad").load("test", "zh", R)
    assert len(xq) == 1190 and all(
        c["context"][s:].startswith(a)
        for c in xq.select(range(50))
        for a, s in zip(c["answers"]["text"], c["answers"]["answer_start"])
    )
    ud = t("udpos").load("test", "zh", R)
    assert len(ud) == 1000 and set(ud[0]["tags"]) <= set(t("udpos").label_names)
    assert len(t("pawsx").load("validation", "de", R)) == 2000
    for lang in ("ar", "de", "en", "hi", "sw", "yo", "zh"):
        assert len(t("panx").load("test", lang, R)) >= 1
    xnli = t("xnli").load("test", "ar", R)
    assert set(xnli["label"]) <= {0, 1, 2}
    assert len(t("xnli").load("translate_train", "sw", R)) >= 1
    assert len(t("mlqa").load("test", "en", R)) >= 1
    tydi = t("tydiqa").load("validation", "ar", R)
    assert all(i.startswith("arabic-") for i in tydi["id"])
    vqa = t("textvqa").load("train", None, str(realdata / "images/textvqa"))
    assert len(vqa) == 5 and len(vqa[0]["answers"]) == 10 and vqa[0]["image"].size[0] > 100


def test_multi30k_real_and_written(tmp_path, catalog, realdata):
    ds = catalog.task("multi30k").load("validation", "de", str(realdata))
    assert len(ds) == 1014 and ds[0]["source"] != ds[0]["target"]
