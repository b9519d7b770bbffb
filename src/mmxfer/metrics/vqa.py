"""VQA accuracy as the official VQA evaluation computes it, and the soft scores trained on, from one normaliser.

Reference: GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (``evaluate``,
``processPunctuation``, ``processDigitArticle``). Per question:

1. every human answer and the prediction: newlines and tabs become spaces, then ``strip()``;
2. only when the human answers are not all identical (``len(set(answers)) > 1``, compared after step 1 and
   case-sensitively) are the answers *and the prediction* normalised (:func:`normalize_answer`); otherwise they
   are compared as they are, so ``Yes`` does not match ten ``yes``, nor ``black white`` ten ``black/white``;
3. accuracy = the mean over the leave-one-annotator-out subsets of ``min(1, matches / 3)``.

Normalisation, in the official order:

- punctuation (:data:`PUNCTUATION`: no apostrophe, colon, ``*``, ``#``, ``%``, ``&``, ``$``, ``|``, ``~`` or
  ``^``): each mark is deleted everywhere when it touches a space somewhere in the answer, or when the answer
  holds a digit-comma-digit pattern, and otherwise replaced by a space everywhere (``black/white`` ->
  ``black white``, ``10,000`` -> ``10000``, ``a - b`` -> ``a  b``); then every period not followed by a digit is
  deleted (``3.5`` stays), at most 32 of them (the official call passes ``re.UNICODE``, 32, as the count);
- lower case, split on whitespace, number words ``none``/``zero``..``ten`` to digits, the articles ``a``, ``an``,
  ``the`` dropped, then the contractions table (``dont`` -> ``don't``; its keys ``Im``, ``Ive``, ``Id've`` and
  ``I'dve`` hold capitals and never match a lower-cased word, so ``im`` stays ``im``).

:func:`soft_scores` (the training targets) is the accuracy that predicting each human answer's compared form
would score; the answer vocabulary counts the same forms (:mod:`mmxfer.tasks.answers`). A question with a single
reference answer (GQA) scores exact match; the official code, written for ten answers, would give 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmxfer.errors import DataError
from mmxfer.metrics.base import register

PUNCTUATION = (
    ";",
    "/",
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
)
_DIGIT_COMMA = re.compile(r"\d,\d")
# the official pattern "(?!<=\d)(\.)(?!\d)" opens with a look-ahead (not a look-behind) that never fails
# before a period, so it deletes every period not followed by a digit
_PERIOD = re.compile(r"\.(?!\d)")
_PERIOD_COUNT = 32  # re.UNICODE, passed as sub's count by the official call
NUMBERS = {
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
ARTICLES = frozenset({"a", "an", "the"})
#: the official contractions table without its four keys that hold capitals (they never match, see above);
#: "somebody'd" -> "somebodyd" is the official entry as it is
CONTRACTIONS = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hed": "he'd",
    "hed've": "he'd've",
    "he'dve": "he'd've",
    "hes": "he's",
    "howd": "how'd",
    "howll": "how'll",
    "hows": "how's",
    "isnt": "isn't",
    "itd": "it'd",
    "itd've": "it'd've",
    "it'dve": "it'd've",
    "itll": "it'll",
    "let's": "let's",
    "maam": "ma'am",
    "mightnt": "mightn't",
    "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've",
    "mightve": "might've",
    "mustnt": "mustn't",
    "mustve": "must've",
    "neednt": "needn't",
    "notve": "not've",
    "oclock": "o'clock",
    "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at",
    "shant": "shan't",
    "shed've": "she'd've",
    "she'dve": "she'd've",
    "she's": "she's",
    "shouldve": "should've",
    "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll",
    "somebodys": "somebody's",
    "someoned": "someone'd",
    "someoned've": "someone'd've",
    "someone'dve": "someone'd've",
    "someonell": "someone'll",
    "someones": "someone's",
    "somethingd": "something'd",
    "somethingd've": "something'd've",
    "something'dve": "something'd've",
    "somethingll": "something'll",
    "thats": "that's",
    "thered": "there'd",
    "thered've": "there'd've",
    "there'dve": "there'd've",
    "therere": "there're",
    "theres": "there's",
    "theyd": "they'd",
    "theyd've": "they'd've",
    "they'dve": "they'd've",
    "theyll": "they'll",
    "theyre": "they're",
    "theyve": "they've",
    "twas": "'twas",
    "wasnt": "wasn't",
    "wed've": "we'd've",
    "we'dve": "we'd've",
    "weve": "we've",
    "werent": "weren't",
    "whatll": "what'll",
    "whatre": "what're",
    "whats": "what's",
    "whatve": "what've",
    "whens": "when's",
    "whered": "where'd",
    "wheres": "where's",
    "whereve": "where've",
    "whod": "who'd",
    "whod've": "who'd've",
    "who'dve": "who'd've",
    "wholl": "who'll",
    "whos": "who's",
    "whove": "who've",
    "whyll": "why'll",
    "whyre": "why're",
    "whys": "why's",
    "wont": "won't",
    "wouldve": "would've",
    "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've",
    "yall": "y'all",
    "yall'll": "y'all'll",
    "y'allll": "y'all'll",
    "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've",
    "youd": "you'd",
    "youd've": "you'd've",
    "you'dve": "you'd've",
    "youll": "you'll",
    "youre": "you're",
    "youve": "you've",
}


def clean(text: str) -> str:
    """Newlines and tabs to spaces, then stripped: what the evaluation does to every answer first."""
    return str(text).replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str) -> str:
    digit_comma = _DIGIT_COMMA.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        # the test reads the answer as given, the replacement acts on the text as far as it has been processed
        touches_space = f"{mark} " in text or f" {mark}" in text
        out = out.replace(mark, "" if touches_space or digit_comma else " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    words = [NUMBERS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(text: str) -> str:
    """The official normalisation (punctuation, then digits, articles and contractions) of a cleaned answer."""
    return process_digit_article(process_punctuation(text))


def compared_forms(answers: Sequence[str]) -> tuple[list[str], bool]:
    """The human answers as the evaluation compares them, and whether predictions are normalised too."""
    forms = [clean(a) for a in answers]
    normalised = len(set(forms)) > 1
    return ([normalize_answer(a) for a in forms] if normalised else forms), normalised


def _accuracy(pred: str, forms: Sequence[str]) -> float:
    n = len(forms)
    if n == 1:
        return float(pred == forms[0])
    matches = sum(f == pred for f in forms)
    # each leave-one-out subset: `matches - 1` if it drops a matching answer, else `matches`
    return (matches * min(1.0, (matches - 1) / 3) + (n - matches) * min(1.0, matches / 3)) / n


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy of one prediction (0-1) against the human answers."""
    if not answers:
        raise DataError("vqa_accuracy: a question has no human answers")
    forms, normalised = compared_forms(answers)
    pred = clean(prediction)
    return _accuracy(normalize_answer(pred) if normalised else pred, forms)


def soft_scores(answers: Sequence[str]) -> dict[str, float]:
    """The training target of every distinct compared form of the human ``answers``: the accuracy that predicting
    exactly that string scores (:func:`vqa_score`)."""
    if not answers:
        return {}
    forms, normalised = compared_forms(answers)
    out = {}
    for form in dict.fromkeys(forms):
        # a form is normalised again when scored as a prediction (the normalisation is not idempotent everywhere)
        out[form] = _accuracy(normalize_answer(form) if normalised else form, forms)
    return out


@register(
    "vqa_accuracy",
    primary="accuracy",
    description="VQA accuracy as the official evaluation: min(1, #humans agreeing / 3), 0-100",
)
def _vqa_metric(golds: list, preds: list) -> dict[str, float]:
    if not golds:
        raise DataError("vqa_accuracy: nothing to score")
    total = sum(
        vqa_score("" if p is None else str(p), g if isinstance(g, list) else [g])
        for g, p in zip(golds, preds)
    )
    return {"accuracy": 100.0 * total / len(golds), "n": float(len(golds))}
