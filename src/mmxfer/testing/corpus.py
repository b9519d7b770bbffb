"""Deterministic fixture text: sentences, QA paragraphs and tag sequences in any language.

Words come from the same built-in multilingual text as the tiny tokenizer (so they tokenise into
real pieces); a language without words there gets pseudo-words from Latin syllables. Everything is a
pure function of its arguments: the same call gives the same text on every machine.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from mmxfer.testing.tiny import _TEXT

# ISO 639-1 code of each line of the tiny text (the last line, digits and punctuation, is left out)
_LINE_LANGS = ("en", "en", "de", "fr", "es", "ru", "ja", "zh", "ar", "hi", "sw", "tr", "vi")
_NO_SPACES = {"ja", "zh", "th", "my", "km", "lo"}  # scripts written without spaces between words
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "su",
    "te",
    "na",
    "ri",
    "po",
    "da",
    "ve",
    "ko",
    "ba",
    "sa",
    "ul",
    "en",
    "or",
)
# FLORES/LASER codes -> the ISO 639-1 code whose words they use
_ALIASES = {
    "deu": "de",
    "fra": "fr",
    "spa": "es",
    "rus": "ru",
    "jpn": "ja",
    "cmn": "zh",
    "zho": "zh",
    "ara": "ar",
    "arb": "ar",
    "hin": "hi",
    "swh": "sw",
    "swa": "sw",
    "tur": "tr",
    "vie": "vi",
    "eng": "en",
}


def _word_table() -> dict[str, list[str]]:
    lines = [line for line in _TEXT.strip().splitlines() if line.strip()]
    table: dict[str, list[str]] = {}
    for code, line in zip(_LINE_LANGS, lines):
        words = [w.strip(".,?!¿。、।") for w in line.split()]
        table.setdefault(code, [])
        table[code] += [w for w in words if w and w not in table[code]]
    for code in ("ja", "zh"):  # no spaces: cut the line into two-character words
        line = "".join(table[code])
        table[code] = sorted({line[i : i + 2] for i in range(0, len(line) - 1, 2)} - {""})
    return table


WORDS = _word_table()


def base_language(lang: str) -> str:
    """The ISO 639-1 code whose words ``lang`` uses (``deu_Latn`` -> ``de``, ``kaz`` -> ``kaz``)."""
    code = lang.split("_")[0]
    return _ALIASES.get(code, code)


def rng(*key: object) -> random.Random:
    return random.Random(hashlib.sha256("\x1f".join(map(str, key)).encode()).hexdigest())


def vocabulary(lang: str) -> list[str]:
    """The words of ``lang``: the built-in ones, else 40 pseudo-words seeded by the language code."""
    base = base_language(lang)
    if base in WORDS:
        return WORDS[base]
    r = rng("pseudo", base)
    return sorted(
        {"".join(r.choice(_SYLLABLES) for _ in range(r.randint(1, 3))) for _ in range(60)}
    )[:40]


def joiner(lang: str) -> str:
    return "" if base_language(lang) in _NO_SPACES else " "


def words(lang: str, *key: object, n: int = 6) -> list[str]:
    vocab = vocabulary(lang)
    r = rng("words", lang, *key)
    return [r.choice(vocab) for _ in range(n)]


def sentence(lang: str, *key: object, n: int | None = None, end: str = ".") -> str:
    """One sentence of ``n`` words (4-9 when None) in ``lang``, ending with ``end``."""
    count = n if n is not None else rng("len", lang, *key).randint(4, 9)
    return joiner(lang).join(words(lang, *key, n=count)) + end


@dataclass(frozen=True)
class QAItem:
    """One extractive question: ``answer`` occurs in ``context`` at ``answer_start``."""

    question: str
    answer: str
    answer_start: int


@dataclass(frozen=True)
class Paragraph:
    context: str
    items: tuple[QAItem, ...]


def paragraph(lang: str, *key: object, questions: int = 2, sentences: int = 3) -> Paragraph:
    """A context of ``sentences`` sentences and ``questions`` questions whose answers are spans of it."""
    parts = [sentence(lang, *key, "s", i) for i in range(sentences)]
    context = " ".join(parts)
    items = []
    for q in range(questions):
        r = rng("qa", lang, *key, q)
        index = r.randrange(sentences)
        start_of_sentence = sum(len(p) + 1 for p in parts[:index])
        tokens = parts[index][:-1].split(joiner(lang)) if joiner(lang) else [parts[index][:-1]]
        answer = (
            r.choice([t for t in tokens if t])
            if joiner(lang)
            else parts[index][: min(4, len(parts[index]) - 1)]
        )
        offset = parts[index].find(answer)
        question = sentence(lang, *key, "q", q, n=4, end="?")
        items.append(QAItem(question, answer, start_of_sentence + offset))
    return Paragraph(context, tuple(items))


def tags(names: tuple[str, ...], *key: object, n: int) -> list[str]:
    """``n`` tags drawn from ``names``, every name used once before any repeats (when ``n`` allows)."""
    r = rng("tags", *key)
    order = list(names)
    r.shuffle(order)
    return [order[i % len(order)] for i in range(n)]


def iob_tags(*key: object, n: int, types: tuple[str, ...] = ("PER", "ORG", "LOC")) -> list[str]:
    """A valid IOB2 sequence of ``n`` tags with one or two entities."""
    r = rng("iob", *key)
    out = ["O"] * n
    pos = 0
    for _ in range(2):
        if pos >= n:
            break
        start = r.randrange(pos, n)
        length = min(r.randint(1, 2), n - start)
        kind = r.choice(types)
        out[start] = f"B-{kind}"
        for j in range(start + 1, start + length):
            out[j] = f"I-{kind}"
        pos = start + length + 1
    return out
