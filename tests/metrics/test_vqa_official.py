"""VQA accuracy, soft scores and the answer vocabulary against the official VQA evaluation.

``_official_accuracy`` below is this test's own transcription of GT-Vision-Lab/VQA
``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (``evaluate`` lines 86-112, ``processPunctuation`` 130-140,
``processDigitArticle`` 142-155, the tables of lines 21-66), kept literal where the official code has quirks:
its period pattern, the count argument ``re.UNICODE``, the mixed-case contraction keys, the test on the unprocessed
answer and the normalisation only when the human answers differ.
"""

from __future__ import annotations

import random
import re

import pytest

from mmxfer import catalog
from mmxfer.metrics import vqa
from mmxfer.tasks.answers import build_answer_vocab, sparse_targets

# --- the official evaluation, transcribed -------------------------------------------------------

_CONTRACTIONS = dict(
    aint="ain't",
    arent="aren't",
    cant="can't",
    couldve="could've",
    couldnt="couldn't",
    didnt="didn't",
    doesnt="doesn't",
    dont="don't",
    hadnt="hadn't",
    hasnt="hasn't",
    havent="haven't",
    hed="he'd",
    hes="he's",
    howd="how'd",
    howll="how'll",
    hows="how's",
    Im="I'm",
    Ive="I've",
    isnt="isn't",
    itd="it'd",
    itll="it'll",
    maam="ma'am",
    mightnt="mightn't",
    mightve="might've",
    mustnt="mustn't",
    mustve="must've",
    neednt="needn't",
    notve="not've",
    oclock="o'clock",
    oughtnt="oughtn't",
    shant="shan't",
    shouldve="should've",
    shouldnt="shouldn't",
    somebodyll="somebody'll",
    somebodys="somebody's",
    someoned="someone'd",
    someonell="someone'll",
    someones="someone's",
    somethingd="something'd",
    somethingll="something'll",
    thats="that's",
    thered="there'd",
    therere="there're",
    theres="there's",
    theyd="they'd",
    theyll="they'll",
    theyre="they're",
    theyve="they've",
    twas="'twas",
    wasnt="wasn't",
    weve="we've",
    werent="weren't",
    whatll="what'll",
    whatre="what're",
    whats="what's",
    whatve="what've",
    whens="when's",
    whered="where'd",
    wheres="where's",
    whereve="where've",
    whod="who'd",
    wholl="who'll",
    whos="who's",
    whove="who've",
    whyll="why'll",
    whyre="why're",
    whys="why's",
    wont="won't",
    wouldve="would've",
    wouldnt="wouldn't",
    yall="y'all",
    youd="you'd",
    youll="you'll",
    youre="you're",
    youve="you've",
)
_CONTRACTIONS.update(
    {
        "couldn'tve": "couldn't've",
        "couldnt've": "couldn't've",
        "hadnt've": "hadn't've",
        "hadn'tve": "hadn't've",
        "hed've": "he'd've",
        "he'dve": "he'd've",
        "Id've": "I'd've",
        "I'dve": "I'd've",
        "itd've": "it'd've",
        "it'dve": "it'd've",
        "let's": "let's",
        "mightnt've": "mightn't've",
        "mightn'tve": "mightn't've",
        "ow's'at": "'ow's'at",
        "'ows'at": "'ow's'at",
        "'ow'sat": "'ow's'at",
        "shed've": "she'd've",
        "she'dve": "she'd've",
        "she's": "she's",
        "shouldnt've": "shouldn't've",
        "shouldn'tve": "shouldn't've",
        "somebody'd": "somebodyd",
        "somebodyd've": "somebody'd've",
        "somebody'dve": "somebody'd've",
        "someoned've": "someone'd've",
        "someone'dve": "someone'd've",
        "somethingd've": "something'd've",
        "something'dve": "something'd've",
        "thered've": "there'd've",
        "there'dve": "there'd've",
        "theyd've": "they'd've",
        "they'dve": "they'd've",
        "wed've": "we'd've",
        "we'dve": "we'd've",
        "whod've": "who'd've",
        "who'dve": "who'd've",
        "wouldnt've": "wouldn't've",
        "wouldn'tve": "wouldn't've",
        "yall'll": "y'all'll",
        "y'allll": "y'all'll",
        "yall'd've": "y'all'd've",
        "y'alld've": "y'all'd've",
        "y'all'dve": "y'all'd've",
        "youd've": "you'd've",
        "you'dve": "you'd've",
    }
)
_MANUAL_MAP = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = ["a", "an", "the"]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
_PUNCT = [
    ";",
    r"/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]


def _official_punctuation(in_text):
    out_text = in_text
    for p in _PUNCT:
        if (p + " " in in_text or " " + p in in_text) or (
            re.search(_COMMA_STRIP, in_text) is not None
        ):
            out_text = out_text.replace(p, "")
        else:
            out_text = out_text.replace(p, " ")
    return _PERIOD_STRIP.sub("", out_text, int(re.UNICODE))


def _official_digit_article(in_text):
    out_text = []
    for word in in_text.lower().split():
        word = _MANUAL_MAP.setdefault(word, word)
        if word not in _ARTICLES:
            out_text.append(word)
    for word_id, word in enumerate(out_text):
        if word in _CONTRACTIONS:
            out_text[word_id] = _CONTRACTIONS[word]
    return " ".join(out_text)


def _official_accuracy(res_ans, gt_answers):
    gts = [
        {"answer": a.replace("\n", " ").replace("\t", " ").strip(), "answer_id": i + 1}
        for i, a in enumerate(gt_answers)
    ]
    res_ans = res_ans.replace("\n", " ").replace("\t", " ").strip()
    if len(set(d["answer"] for d in gts)) > 1:
        for d in gts:
            d["answer"] = _official_digit_article(_official_punctuation(d["answer"]))
        res_ans = _official_digit_article(_official_punctuation(res_ans))
    gt_acc = []
    for datum in gts:
        others = [item for item in gts if item != datum]
        matching = [item for item in others if item["answer"] == res_ans]
        gt_acc.append(min(1, float(len(matching)) / 3))
    return float(sum(gt_acc)) / len(gt_acc)


# --- a table of cases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("black/white", "black white"),  # not touching a space: replaced by one
        ("black / white", "black white"),  # touching a space: deleted
        ("yes, 2 dogs", "yes 2 dogs"),
        ("10,000", "10000"),  # digit,digit: every mark deleted
        ("1,5 a/b", "15 ab"),
        ("3.5", "3.5"),
        ("5.", "5"),
        ("a.m.", "am"),  # periods go unless a digit follows
        ("." * 40, "." * 8),  # at most 32 periods are deleted
        ("it's", "it's"),
        ("10:30", "10:30"),
        ("#1", "#1"),
        ("50%", "50%"),
        ("a&b", "a&b"),  # not in the list
        ("x-ray", "x ray"),
        ("one-way", "1 way"),
        ("(a) dog", "dog"),
        ("dont", "don't"),
        ("Dont", "don't"),
        ("twas", "'twas"),
        ("somebody'd", "somebodyd"),
        ("im", "im"),
        ("ive", "ive"),  # the official keys Im / Ive never match a lower-cased word
        ("a dog", "dog"),
        ("The Two dogs", "2 dogs"),
        ("two", "2"),
        ("none", "0"),
        ("an apple", "apple"),
    ],
)
def test_normalisation_table(raw, expected):
    assert (
        vqa.normalize_answer(raw) == expected == _official_digit_article(_official_punctuation(raw))
    )


@pytest.mark.parametrize(
    "pred, answers, expected",
    [
        # the vocabulary entry "black white" scores when the humans' answers differ ...
        ("black white", ["black/white"] * 4 + ["black and white"] * 6, 1.0),
        # ... and not when all ten wrote "black/white": identical answers are compared as written
        ("black white", ["black/white"] * 10, 0.0),
        ("black/white", ["black/white"] * 10, 1.0),
        ("it's", ["it's"] * 3 + ["its"] * 7, 0.9),  # the apostrophe is kept: 3 matches
        ("10000", ["10,000"] * 2 + ["ten thousand"] * 8, 0.6),
        ("3.5", ["3.5"] * 2 + ["35"] * 8, 0.6),
        ("don't", ["dont"] + ["no"] * 9, 0.3),
        ("dog", ["a dog"] * 3 + ["the dog"] + ["cat"] * 6, 1.0),
        (
            "2",
            ["two"] * 2 + ["2"] + ["three"] * 7,
            0.9,
        ),  # 3 matches: 7 subsets keep 3, 3 subsets keep 2
        ("2", ["Two"] * 10, 0.0),
        ("Two", ["Two"] * 10, 1.0),  # all identical: no number mapping either
        ("Yes", ["yes"] * 10, 0.0),
        ("Yes", ["yes"] * 9 + ["Yes"], 1.0),
        (" yes\n", ["yes"] * 10, 1.0),
        ("dog", ["dog"], 1.0),
        ("Dog", ["dog"], 0.0),  # one reference answer: exact match
    ],
)
def test_accuracy_table(pred, answers, expected):
    assert vqa.vqa_score(pred, answers) == pytest.approx(expected)
    if len(answers) > 1:
        assert _official_accuracy(pred, answers) == pytest.approx(expected)


def test_soft_scores_are_the_accuracy_of_predicting_each_form():
    answers = ["black/white"] * 4 + ["black and white"] * 5 + ["grey"]
    assert vqa.soft_scores(answers) == pytest.approx(
        {"black white": 1.0, "black and white": 1.0, "grey": 0.3}
    )
    assert vqa.soft_scores(["Black/White"] * 10) == {"Black/White": 1.0}
    assert vqa.soft_scores(["red"] * 3 + ["blue"] * 7) == pytest.approx({"red": 0.9, "blue": 1.0})


def test_vocabulary_counts_the_compared_forms():
    questions = [
        ["black/white"] * 4 + ["black and white"] * 6,
        ["black/white"] * 10,
        ["Two"] * 3 + ["2"] * 7,
        ["it's"] * 5 + ["its"] * 5,
    ]
    vocab = build_answer_vocab(questions)
    assert set(vocab) == {"black white", "black and white", "black/white", "2", "it's", "its"}
    index = {a: i for i, a in enumerate(vocab)}
    for answers in questions:
        ids, scores = sparse_targets(answers, index)
        for i, score in zip(ids, scores):
            assert score == pytest.approx(_official_accuracy(vocab[i], answers))


# --- randomised: tricky answers against the transcription ---------------------------------------------------

_WORDS = [
    "dog",
    "Dog",
    "two",
    "2",
    "none",
    "0",
    "the",
    "a",
    "an",
    "dont",
    "don't",
    "its",
    "it's",
    "im",
    "Im",
    "yes",
    "Yes",
    "no",
    "black",
    "white",
    "10",
    "000",
    "3",
    "5",
    "am",
    "x",
    "ray",
    "oclock",
    "twas",
    "somebody'd",
    "let's",
    "wont",
]
_GLUE = [
    " ",
    " ",
    " ",
    "",
    "/",
    " / ",
    "-",
    " - ",
    ",",
    ", ",
    ".",
    ". ",
    ":",
    "'",
    "&",
    "#",
    "%",
    "(",
    ")",
    "?",
    "!",
    "\t",
    "\n",
    "  ",
]


def _tricky(rng: random.Random) -> str:
    parts = [rng.choice(_WORDS)]
    for _ in range(rng.randint(0, 3)):
        parts += [rng.choice(_GLUE), rng.choice(_WORDS)]
    text = "".join(parts)
    if rng.random() < 0.2:
        text = rng.choice(["", " ", "(", '"']) + text + rng.choice(["", ".", "?", " ", "!", ")"])
    return text


def _case(rng: random.Random) -> tuple[str, list[str]]:
    pool = [_tricky(rng) for _ in range(rng.randint(1, 4))]
    answers = [rng.choice(pool) for _ in range(10)]
    if rng.random() < 0.25:  # every human answer identical
        answers = [pool[0]] * 10
    normalised = _official_digit_article(_official_punctuation(rng.choice(pool).strip()))
    pred = rng.choice([rng.choice(pool), normalised, _tricky(rng)])
    return pred, answers


def test_random_tricky_answers_equal_the_official_evaluation():
    rng = random.Random(24)
    cases = [_case(rng) for _ in range(3000)]
    ours = [vqa.vqa_score(p, a) for p, a in cases]
    official = [_official_accuracy(p, a) for p, a in cases]
    differing = [
        (p, a, o, t)
        for (p, a), o, t in zip(cases, ours, official)
        if o != pytest.approx(t, abs=1e-12)
    ]
    assert not differing, f"{len(differing)} of 3000 differ, e.g. {differing[:3]}"
    # the cases are neither all right nor all wrong
    assert 0.05 < sum(official) / len(official) < 0.95
    preds, golds = [p for p, _ in cases], [a for _, a in cases]
    metric = catalog.METRICS.get("vqa_accuracy").score(golds, preds)["accuracy"]
    assert metric == pytest.approx(100 * sum(official) / len(official), abs=1e-9)


def test_random_soft_scores_are_what_the_official_evaluation_gives_the_form():
    rng = random.Random(7)
    for _ in range(500):
        _, answers = _case(rng)
        for form, score in vqa.soft_scores(answers).items():
            assert score == pytest.approx(_official_accuracy(form, answers), abs=1e-12), (
                form,
                answers,
            )


def test_real_textvqa_answers_score_as_the_official_evaluation(realdata):
    """Every human answer of the real TextVQA excerpt, and its normalised form, as a prediction."""
    import json

    questions = []
    for name in ("train", "val"):
        data = json.loads(
            (realdata / "images/textvqa" / f"TextVQA_0.5.1_{name}.json").read_text(encoding="utf-8")
        )
        questions += [q["answers"] for q in data["data"]]
    assert len(questions) == 10 and all(len(a) == 10 for a in questions)
    n = 0
    for answers in questions:
        for pred in {*answers, *(vqa.normalize_answer(a) for a in answers), "yes"}:
            assert vqa.vqa_score(pred, answers) == pytest.approx(
                _official_accuracy(pred, answers), abs=1e-12
            )
            n += 1
    assert n > 40
    # "ec-agg" is "ec agg" once the hyphen becomes a space: three humans agree (deleting it gave one)
    ec = next(a for a in questions if "ec-agg" in a and "ec agg" in a)
    assert vqa.vqa_score("ec agg", ec) == pytest.approx(0.9)
