"""Extractive-QA scores equal to the official scripts.

- :func:`squad_scores`: the SQuAD v1.1 evaluation script (XQuAD and TyDiQA-GoldP are scored with it
  in XTREME's ``evaluate.py``).
- :func:`mlqa_scores`: the MLQA v1 evaluation script: Unicode punctuation (every ``P*`` category plus
  ASCII punctuation), per-language articles, whitespace tokens, and for ``zh`` a mixed segmentation
  where every CJK character is its own token.

Both return ``{"exact_match", "f1"}`` in percent. A question without a prediction scores 0 (and
still counts in the denominator), as in the official scripts. The official scripts crash on a
question with no gold answers; we score it against the empty answer (SQuAD 2.0's convention).
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from mmxfer.errors import DataError, suggest
from mmxfer.metrics.base import register

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")

MLQA_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": _EN_ARTICLES,
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,  # no formal articles
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
    "zh": None,  # no formal articles
}
MIXED_SEGMENTATION_LANGS = ("zh",)
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=1)
def unicode_punctuation() -> frozenset[str]:
    """Every code point whose Unicode category starts with P, plus ASCII punctuation (MLQA's PUNCT)."""
    return (
        frozenset(
            chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
        )
        | _ASCII_PUNCT
    )


# --------------------------------------------------------------------------- SQuAD v1.1


def normalize_squad(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_f1(prediction: str, gold: str) -> float:
    return _token_f1(normalize_squad(prediction).split(), normalize_squad(gold).split())


def squad_em(prediction: str, gold: str) -> float:
    return float(normalize_squad(prediction) == normalize_squad(gold))


# --------------------------------------------------------------------------- MLQA


def mixed_segmentation(text: str) -> list[str]:
    """Whitespace tokens, except that every CJK character and punctuation mark is a token."""
    punct = unicode_punctuation()
    out: list[str] = []
    pending = ""
    for ch in text:
        if _CJK.search(ch) or ch in punct:
            if pending:
                out.extend(pending.split())
                pending = ""
            out.append(ch)
        else:
            pending += ch
    if pending:
        out.extend(pending.split())
    return out


def _check_lang(lang: str) -> None:
    if lang not in MLQA_ARTICLES:
        raise DataError(
            f"MLQA scoring: unknown language {lang!r}{suggest(lang, MLQA_ARTICLES)}; "
            f"the official script knows {', '.join(MLQA_ARTICLES)}"
        )


def normalize_mlqa(text: str, lang: str) -> str:
    _check_lang(lang)
    punct = unicode_punctuation()
    text = "".join(ch for ch in text.lower() if ch not in punct)
    articles = MLQA_ARTICLES[lang]
    if articles is not None:
        text = articles.sub(" ", text)
    tokens = mixed_segmentation(text) if lang in MIXED_SEGMENTATION_LANGS else text.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_f1(prediction: str, gold: str, lang: str) -> float:
    return _token_f1(normalize_mlqa(prediction, lang).split(), normalize_mlqa(gold, lang).split())


def mlqa_em(prediction: str, gold: str, lang: str) -> float:
    return float(normalize_mlqa(prediction, lang) == normalize_mlqa(gold, lang))


# --------------------------------------------------------------------------- aggregation


def _best(fn: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    return max(fn(prediction, g) for g in (list(golds) or [""]))


def _score_pairs(
    pairs: Iterable[tuple[str | None, Sequence[str]]],
    em_fn: Callable[[str, str], float],
    f1_fn: Callable[[str, str], float],
) -> dict[str, float]:
    em = f1 = 0.0
    total = 0
    for prediction, golds in pairs:
        total += 1
        if prediction is None:
            continue
        if isinstance(golds, str):
            golds = [golds]
        em += _best(em_fn, str(prediction), golds)
        f1 += _best(f1_fn, str(prediction), golds)
    if total == 0:
        raise DataError("QA scoring: the dataset has no questions")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def _articles(dataset: Any) -> list[dict[str, Any]]:
    if isinstance(dataset, Mapping):
        if "data" not in dataset:
            raise DataError("QA scoring: expected SQuAD-format JSON with a 'data' list")
        dataset = dataset["data"]
    if not isinstance(dataset, list):
        raise DataError(
            "QA scoring: expected SQuAD-format JSON (a list of articles with paragraphs/qas)"
        )
    return dataset


def _gold_pairs(
    predictions: Mapping[str, str], dataset: Any
) -> Iterable[tuple[str | None, list[str]]]:
    for article in _articles(dataset):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield predictions.get(qa["id"]), [a["text"] for a in qa["answers"]]


def squad_scores(predictions: Mapping[str, str], dataset: Any) -> dict[str, float]:
    """SQuAD v1.1 ``{"exact_match", "f1"}`` (0-100).

    ``predictions``: question id -> answer text; ``dataset``: parsed SQuAD JSON (the whole file or its
    ``data`` list). Questions missing from ``predictions`` score 0.
    """
    return _score_pairs(_gold_pairs(predictions, dataset), squad_em, squad_f1)


def mlqa_scores(predictions: Mapping[str, str], dataset: Any, lang: str) -> dict[str, float]:
    """MLQA ``{"exact_match", "f1"}`` (0-100) with ``lang``'s normalisation (en es hi vi de ar zh)."""
    _check_lang(lang)
    return _score_pairs(
        _gold_pairs(predictions, dataset),
        lambda p, g: mlqa_em(p, g, lang),
        lambda p, g: mlqa_f1(p, g, lang),
    )


def qa_average(scores: Mapping[str, float]) -> float:
    """XTREME's QA task score: (F1 + EM) / 2."""
    return (scores["f1"] + scores["exact_match"]) / 2


def _with_avg(scores: dict[str, float], n: int) -> dict[str, float]:
    return {**scores, "f1_em": qa_average(scores), "n": float(n)}


@register(
    "squad", primary="f1", description="SQuAD v1.1 exact match and F1 (XQuAD)", aliases=("xquad",)
)
def _squad_metric(golds: list, preds: list) -> dict[str, float]:
    return _with_avg(_score_pairs(zip(preds, golds), squad_em, squad_f1), len(golds))


@register(
    "tydiqa", primary="f1", description="TyDiQA-GoldP as XTREME scores it (SQuAD v1.1 script)"
)
def _tydiqa_metric(golds: list, preds: list) -> dict[str, float]:
    return _squad_metric(golds, preds)


@register(
    "mlqa", primary="f1", description="MLQA exact match and F1 with per-language normalisation"
)
def _mlqa_metric(golds: list, preds: list, lang: str = "en") -> dict[str, float]:
    _check_lang(lang)
    pairs = zip(preds, golds)
    return _with_avg(
        _score_pairs(pairs, lambda p, g: mlqa_em(p, g, lang), lambda p, g: mlqa_f1(p, g, lang)),
        len(golds),
    )
