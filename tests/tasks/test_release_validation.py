"""What the release readers accept and what they refuse (the command-line cases are in tests/cli/test_bad_inputs.py)."""

from __future__ import annotations

import json
import logging

import pytest

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.common import MAX_LINE_CHARS

WORD = "{id}\t{form}\t_\tNOUN\t_\t_\t0\troot\t_\t_"


def _conllu(tmp_path, ids: list[str]):
    path = tmp_path / "x-ud-test.conllu"
    path.write_text(
        "# sent_id = a\n" + "\n".join(WORD.format(id=i, form=f"w{i}") for i in ids) + "\n\n"
    )
    return path


def test_conllu_ids_words_ranges_and_empty_nodes_are_read(tmp_path):
    rows = formats.conllu_sentences(_conllu(tmp_path, ["0.1", "1", "2-3", "2", "3", "3.1", "4"]))
    assert rows == [{"id": "a", "tokens": ["w1", "w2-3", "w4"], "tags": ["NOUN", "NOUN", "NOUN"]}]


@pytest.mark.parametrize(
    "ids, words",
    [
        (["1", "2a"], ("x-ud-test.conllu:3", "token id '2a'")),
        (["1", "0"], ("x-ud-test.conllu:3", "token id '0'")),
        (["1", "-2"], ("x-ud-test.conllu:3", "token id '-2'")),
        (["1", "3-2", "2", "3"], ("x-ud-test.conllu:3", "range '3-2' does not go forward")),
        (["1", "2", "2"], ("x-ud-test.conllu:4", "word id 2 appears twice")),
    ],
)
def test_conllu_bad_ids_name_the_line(tmp_path, ids, words):
    with pytest.raises(DataError) as err:
        formats.conllu_sentences(_conllu(tmp_path, ids))
    assert all(w in str(err.value) for w in words), str(err.value)


def test_tsv_rows_carry_their_line_even_across_quoted_line_breaks(tmp_path):
    import csv

    path = tmp_path / "t.tsv"
    path.write_text('index_id\tcategory\ttext\n1\ttravel\t"two\nlines"\n2\tsports\tone\n')
    rows = formats.read_tsv(
        path, quoting=csv.QUOTE_MINIMAL, columns=("index_id", "category", "text")
    )
    assert [(r["text"], r.line) for r in rows] == [("two\nlines", 3), ("one", 4)]


def test_qqp_rows_with_too_few_fields_are_skipped_as_transformers_does(tmp_path, caplog):
    folder = tmp_path / "QQP"
    folder.mkdir()
    head = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    body = [f"{i}\t{2 * i}\t{2 * i + 1}\tWhat is {i}?\tWhat's {i}?\t{i % 2}" for i in range(6)]
    body[2] = "2\t4\t5\tA question cut short"
    (folder / "train.tsv").write_text("\n".join([head, *body]) + "\n")
    with caplog.at_level(logging.WARNING):
        ds = catalog.task("qqp").load("train", "en", str(tmp_path))
    assert ds["id"] == ["0", "1", "3", "4", "5"]
    assert (
        "1 row(s) with fewer fields than the header left out, as transformers' QqpProcessor"
        in caplog.text
    )


def test_a_line_longer_than_the_limit_is_named(tmp_path):
    path = tmp_path / "tatoeba.kaz-eng.kaz"
    path.write_text("ok\n" * 3 + "x" * (MAX_LINE_CHARS + 1) + "\n")
    with pytest.raises(DataError, match=r"tatoeba.kaz-eng.kaz:4: a line of 131,073 characters"):
        formats.read_lines(path)
    path.write_text("ok\n" + "x" * MAX_LINE_CHARS + "\n")
    assert len(formats.read_lines(path)) == 2


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"text": "a", "answer_start": -1}, ("question 'q1'", "answer_start -1")),
        ({"text": "a", "answer_start": 1.5}, ("answer_start 1.5",)),
        ({"text": "a", "answer_start": True}, ("answer_start True",)),
        ({"answer_start": 0}, ("an answer without a 'text'",)),
    ],
)
def test_squad_answers_must_be_offsets(tmp_path, answer, words):
    path = tmp_path / "dev.json"
    path.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "paragraphs": [
                            {
                                "context": "a b",
                                "qas": [{"id": "q1", "question": "?", "answers": [answer]}],
                            }
                        ]
                    }
                ]
            }
        )
    )
    with pytest.raises(DataError) as err:
        formats.squad_rows(path)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_squad_offsets_as_digit_strings_and_past_the_context_are_read(tmp_path):
    """Offsets are numbers in every release; one written as "12" is read as 12. One past the context is kept for
    evaluation (which reads only the answer texts); training leaves it out (tests/kinds)."""
    path = tmp_path / "dev.json"
    path.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "paragraphs": [
                            {
                                "context": "a b",
                                "qas": [
                                    {
                                        "id": "q1",
                                        "question": "?",
                                        "answers": [{"text": "b", "answer_start": "2"}],
                                    },
                                    {
                                        "id": "q2",
                                        "question": "?",
                                        "answers": [{"text": "b", "answer_start": 99}],
                                    },
                                ],
                            }
                        ]
                    }
                ]
            }
        )
    )
    assert [r["answers"]["answer_start"] for r in formats.squad_rows(path)] == [[2], [99]]


HELLASWAG = {
    "ind": 1,
    "ctx_a": "A man",
    "ctx_b": "then",
    "endings": ["a", "b", "c", "d"],
    "label": 0,
}
CSQA = {
    "id": "c1",
    "question": {
        "stem": "Where?",
        "choices": [{"label": "A", "text": "here"}, {"label": "B", "text": "there"}],
    },
    "answerKey": "A",
}
COSMOS_HEAD = "id,context,question,answer0,answer1,answer2,answer3,label\n"


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize(
    "task, split, files, words",
    [
        (
            "hellaswag",
            "train",
            {"hellaswag_train.jsonl": _jsonl(HELLASWAG, {**HELLASWAG, "label": "x"})},
            ("hellaswag_train.jsonl:2", "not of this format", "'x'"),
        ),
        (
            "hellaswag",
            "train",
            {
                "hellaswag_train.jsonl": _jsonl(
                    HELLASWAG, {k: v for k, v in HELLASWAG.items() if k != "endings"}
                )
            },
            ("hellaswag_train.jsonl:2", "missing column(s) endings"),
        ),
        (
            "commonsenseqa",
            "train",
            {"train_rand_split.jsonl": _jsonl(CSQA, {**CSQA, "question": {"stem": "Why?"}})},
            ("train_rand_split.jsonl:2", "no 'choices'"),
        ),
        (
            "cosmosqa",
            "train",
            {"train.csv": COSMOS_HEAD + "1,c,q,a,b,c,d,0\n2,c,q,a,b,c,d,zz\n"},
            ("train.csv:3", "not of this format", "'zz'"),
        ),
        (
            "cosmosqa",
            "validation",
            {"valid.csv": COSMOS_HEAD + '1,"two\nlines",q,a,b,c,d,0\n2,c,q\n'},
            ("valid.csv:4", "3 comma-separated field(s), the header has 8"),
        ),
        (
            "vqa",
            "train",
            {
                "v2_OpenEnded_mscoco_train2014_questions.json": json.dumps(
                    {
                        "questions": [
                            {"question_id": 1, "image_id": 5, "question": "What?"},
                            {"question_id": 2, "question": "Where?"},
                        ]
                    }
                ),
                "v2_mscoco_train2014_annotations.json": json.dumps({"annotations": []}),
            },
            ("questions.json: questions[1]", "no 'image_id'"),
        ),
        (
            "vqa",
            "train",
            {
                "v2_OpenEnded_mscoco_train2014_questions.json": json.dumps({"questions": []}),
                "v2_mscoco_train2014_annotations.json": json.dumps(
                    {"annotations": [{"question_id": 1}]}
                ),
            },
            ("annotations.json: annotations[0]", "no 'answers'"),
        ),
        (
            "textvqa",
            "train",
            {
                "TextVQA_0.5.1_train.json": json.dumps(
                    {
                        "data": [
                            {
                                "question_id": 1,
                                "image_id": "a",
                                "question": ["What?"],
                                "answers": [],
                            }
                        ]
                    }
                )
            },
            ("TextVQA_0.5.1_train.json: data[0]", "expected a text, got list"),
        ),
        (
            "gqa",
            "train",
            {
                "train_balanced_questions.json": json.dumps(
                    {"7": {"question": "What?", "imageId": "n1"}}
                )
            },
            ("train_balanced_questions.json: question '7'", "no 'answer'"),
        ),
        (
            "caption",
            "train",
            {
                "dataset_coco.json": json.dumps(
                    {
                        "images": [
                            {
                                "split": "train",
                                "filename": "a.jpg",
                                "cocoid": 1,
                                "sentences": [{"tokens": ["a"]}],
                            }
                        ]
                    }
                )
            },
            ("dataset_coco.json: images[0]", "no 'raw'"),
        ),
        (
            "vqa-text",
            "train",
            {
                "v2_OpenEnded_mscoco_train2014_questions.json": json.dumps(
                    {"questions": [{"question_id": 1, "image_id": 5, "question": "What?"}]}
                ),
                "v2_mscoco_train2014_annotations.json": json.dumps({"annotations": []}),
                "captions_train2014.json": json.dumps(
                    {"annotations": [{"image_id": 5, "caption": None}]}
                ),
            },
            ("captions_train2014.json: annotations[0]", "expected a text, got NoneType"),
        ),
        (
            "caption",
            "train",
            {"dataset_coco.json": json.dumps({"images": {"a": 1}})},
            ("dataset_coco.json", "'images' is a list"),
        ),
    ],
)
def test_multiple_choice_and_image_question_records_are_checked(
    tmp_path, task, split, files, words
):
    """A record without a key its format has, or with a value of another type, is one DataError naming the file
    and the line (JSON lines, CSV) or the record's index, not a KeyError from the reader."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as err:
        catalog.task(task).load(split, "en", str(tmp_path))
    assert all(w in str(err.value) for w in words), str(err.value)


def test_cosmos_csv_rows_are_read_with_quoted_line_breaks(tmp_path):
    (tmp_path / "train.csv").write_text(
        COSMOS_HEAD + '1,"two\nlines",q,a,b,c,d,2\n2,c,"q, r",a,b,c,d,0\n'
    )
    ds = catalog.task("cosmosqa").load("train", "en", str(tmp_path))
    assert (ds["context"], ds["question"], ds["label"]) == (
        ["two\nlines", "c"],
        ["q", "q, r"],
        [2, 0],
    )
