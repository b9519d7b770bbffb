"""Miniature FLORES-200, SIB-200 and WMT14 de-en releases in their official file layouts, for tests and rehearsals.

Sentences are made from a small word-aligned lexicon (English, German, French, Swahili; words the tiny
tokenizer knows), so every language holds the same sentences in the same order, as the real releases do:

- FLORES-200: ``flores200_dataset/{dev,devtest}/<lang_Script>.<split>``, one sentence a line;
- SIB-200: ``data/annotated/<lang_Script>/{train,dev,test}.tsv`` with ``index_id, category, text`` (English train
  and dev; test for every language); the category is signalled by one word of the sentence, so it is learnable;
- WMT14 de-en: ``wmt14-de-en/{train,valid}.{de,en}``, line-aligned German-English pairs.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mmxfer.tasks.flores import SIB_LABELS

# one row per concept: English, German, French, Swahili (aligned word for word)
_NOUNS = (
    ("cat", "Katze", "chat", "paka"),
    ("dog", "Hund", "chien", "mbwa"),
    ("man", "Mann", "homme", "mtu"),
    ("horse", "Pferd", "cheval", "farasi"),
    ("ball", "Ball", "balle", "mpira"),
    ("car", "Auto", "voiture", "gari"),
    ("house", "Haus", "maison", "nyumba"),
)
_COLOURS = (
    ("red", "rot", "rouge", "mwekundu"),
    ("blue", "blau", "bleu", "bluu"),
    ("small", "klein", "petit", "ndogo"),
)
_PLACES = (
    ("beach", "Strand", "plage", "ufukweni"),
    ("snow", "Schnee", "neige", "theluji"),
    ("mat", "Matte", "tapis", "mkeka"),
)
_FRAME = (("the", "on", "the"), ("die", "auf", "der"), ("le", "sur", "la"))
LANGUAGES = {"eng_Latn": 0, "deu_Latn": 1, "fra_Latn": 2, "swh_Latn": 3}
PAIR_LANGS = {"de": "deu_Latn", "en": "eng_Latn"}


def sentence(lang: str, i: int) -> str:
    """The ``i``-th sentence in ``lang`` (a FLORES-200 code of :data:`LANGUAGES`); the same meaning in every
    language. Its noun is ``i mod 7``: the SIB category of :func:`write_sib` follows it."""
    k = LANGUAGES[lang]
    noun, colour, place = (
        _NOUNS[i % len(_NOUNS)],
        _COLOURS[(i // 7) % len(_COLOURS)],
        _PLACES[(i // 3) % len(_PLACES)],
    )
    if k == 3:  # Swahili: noun, adjective, preposition, place
        words = [noun[k], colour[k], "kwenye", place[k]]
    else:
        det, prep, det2 = _FRAME[k]
        words = [det, colour[k], noun[k], prep, det2, place[k]]
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:] + "."


def write_flores(
    root: str | Path,
    languages: Sequence[str] = tuple(LANGUAGES),
    *,
    n: int = 12,
    splits: Sequence[str] = ("dev", "devtest"),
) -> Path:
    """``root/flores200_dataset/<split>/<lang>.<split>``: ``n`` aligned sentences per split (dev and devtest differ)."""
    root = Path(root)
    for split in splits:
        folder = root / "flores200_dataset" / split
        folder.mkdir(parents=True, exist_ok=True)
        offset = 0 if split == "dev" else 1000
        for lang in languages:
            (folder / f"{lang}.{split}").write_text(
                "\n".join(sentence(lang, offset + i) for i in range(n)) + "\n", encoding="utf-8"
            )
    return root


def write_sib(
    root: str | Path,
    languages: Sequence[str] = tuple(LANGUAGES),
    *,
    n_train: int = 28,
    n_dev: int = 7,
    n_test: int = 14,
) -> Path:
    """``root/data/annotated/<lang>/{train,dev,test}.tsv`` (SIB-200 release layout): English train/dev, test for all."""
    root = Path(root)

    def write(lang: str, name: str, start: int, n: int) -> None:
        folder = root / "data" / "annotated" / lang
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{name}.tsv").open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, delimiter="\t", lineterminator="\n")
            out.writerow(["index_id", "category", "text"])
            for i in range(start, start + n):
                out.writerow([i, SIB_LABELS[i % len(_NOUNS)], sentence(lang, i)])

    write("eng_Latn", "train", 0, n_train)
    write("eng_Latn", "dev", 500, n_dev)
    for lang in languages:
        write(lang, "test", 2000, n_test)
    return root


def write_pair(root: str | Path, *, n_train: int = 40, n_valid: int = 8) -> Path:
    """``root/wmt14-de-en/{train,valid}.{de,en}``: line-aligned German-English pairs."""
    folder = Path(root) / "wmt14-de-en"
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, n in (("train", 3000, n_train), ("valid", 4000, n_valid)):
        for short, lang in PAIR_LANGS.items():
            (folder / f"{name}.{short}").write_text(
                "\n".join(sentence(lang, start + i) for i in range(n)) + "\n", encoding="utf-8"
            )
    return Path(root)


def write_all(root: str | Path, languages: Sequence[str] = tuple(LANGUAGES)) -> Path:
    """Every file a FLORES-200 study reads locally (``--data-dir root``): FLORES, SIB-200 and the pair."""
    write_flores(root, languages)
    write_sib(root, languages)
    return write_pair(root)
