"""The nine XTREME targets, from the ``google/xtreme`` Parquet configs or their release files.

Traps handled here:

* ``tydiqa`` is ONE config mixing nine languages; rows are filtered by the language name that
  prefixes every id (``arabic-...``). English training data only (the GoldP train split, ``english-``).
* ``bucc18.<lang>`` holds only the gold pairs, not the ~100k distractor sentences per side that
  BUCC mining F1 is defined over; from the hub the task is therefore an easy upper bound and
  ``hub_caveat`` ("upper bound, no distractors") is written into every metric row scored
  from it. Use the BUCC 2018 release with ``--data-dir`` for the real benchmark. Splits follow XTREME
  (``scripts/download_data.sh``): dev = the BUCC *sample* files, test = the BUCC *training* files (the
  official test gold is not public); both the raw release names
  (``bucc2018/<xx>-en/<xx>-en.{sample,training}.{<xx>,en,gold}``) and XTREME's renamed copy
  (``<xx>-en.{dev,test}.*``) are read. The hub copy uses the same mapping (validation = sample gold,
  test = training gold).
* QA targets (XQuAD, MLQA, TyDiQA-GoldP) follow XTREME's ``scripts/train_qa.sh``: no dev selection, the
  final weights are kept (``TaskSpec.dev_selection=False``); TyDiQA's reported split (GoldP dev) is never
  used for training decisions.
* Tatoeba uses LASER's three-letter codes (``tatoeba.kaz``), all others ISO 639-1.
* Every ``google/xtreme`` source is pinned to :data:`XTREME_REVISION`, the Parquet conversion merged on
  main (checked pages: ``mmxfer/resources/hub_contracts.json``).
"""

from __future__ import annotations

from pathlib import Path

from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.base import HubSource, Sizes, TaskSpec
from mmxfer.tasks.common import (
    QA_FIELDS,
    dataset_from_rows,
    find_file,
    hub_span_qa,
    load_hub,
    make_loader,
    register,
    rename_to_canonical,
)

XTREME = "google/xtreme"
#: 'Convert dataset to Parquet (#9)' on main; every earlier revision still holds the loading script xtreme.py
XTREME_REVISION = "ec5f1f46e9af79639a90684a7a70a956c4998f04"

XNLI_LANGS = (
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
)
PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
PANX_LANGS = (
    "af",
    "ar",
    "bg",
    "bn",
    "de",
    "el",
    "en",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "jv",
    "ka",
    "kk",
    "ko",
    "ml",
    "mr",
    "ms",
    "my",
    "nl",
    "pt",
    "ru",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "ur",
    "vi",
    "yo",
    "zh",
)
UDPOS_NAMES = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kk": "Kazakh",
    "ko": "Korean",
    "mr": "Marathi",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yo": "Yoruba",
    "zh": "Chinese",
}
UDPOS_LANGS = tuple(sorted(UDPOS_NAMES))
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
TYDIQA_NAMES = {
    "ar": "arabic",
    "bn": "bengali",
    "en": "english",
    "fi": "finnish",
    "id": "indonesian",
    "ko": "korean",
    "ru": "russian",
    "sw": "swahili",
    "te": "telugu",
}
TYDIQA_LANGS = tuple(sorted(TYDIQA_NAMES))
BUCC_LANGS = ("de", "fr", "ru", "zh")
HUB_CAVEAT_BUCC = "upper bound, no distractors"
TATOEBA_LANGS = (
    "afr",
    "ara",
    "ben",
    "bul",
    "cmn",
    "deu",
    "ell",
    "est",
    "eus",
    "fin",
    "fra",
    "heb",
    "hin",
    "hun",
    "ind",
    "ita",
    "jav",
    "jpn",
    "kat",
    "kaz",
    "kor",
    "mal",
    "mar",
    "nld",
    "pes",
    "por",
    "rus",
    "spa",
    "swh",
    "tam",
    "tel",
    "tgl",
    "tha",
    "tur",
    "urd",
    "vie",
)

UPOS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
PAWSX_LABELS = ("different", "paraphrase")

#: examples per split and language: the ``num_examples`` of the google/xtreme configs in the dataset card's
#: metadata (huggingface/datasets@d7dfbc83, datasets/xtreme/dataset_infos.json), under mmxfer's split names
XTREME_CARD = "huggingface/datasets@d7dfbc83 datasets/xtreme/dataset_infos.json (num_examples)"
PANX_SIZES = {
    "train": {
        "af": 5000,
        "ar": 20000,
        "bg": 20000,
        "bn": 10000,
        "de": 20000,
        "el": 20000,
        "en": 20000,
        "es": 20000,
        "et": 15000,
        "eu": 10000,
        "fa": 20000,
        "fi": 20000,
        "fr": 20000,
        "he": 20000,
        "hi": 5000,
        "hu": 20000,
        "id": 20000,
        "it": 20000,
        "ja": 20000,
        "jv": 100,
        "ka": 10000,
        "kk": 1000,
        "ko": 20000,
        "ml": 10000,
        "mr": 5000,
        "ms": 20000,
        "my": 100,
        "nl": 20000,
        "pt": 20000,
        "ru": 20000,
        "sw": 1000,
        "ta": 15000,
        "te": 1000,
        "th": 20000,
        "tl": 10000,
        "tr": 20000,
        "ur": 20000,
        "vi": 20000,
        "yo": 100,
        "zh": 20000,
    },
    "validation": {
        "af": 1000,
        "ar": 10000,
        "bg": 10000,
        "bn": 1000,
        "de": 10000,
        "el": 10000,
        "en": 10000,
        "es": 10000,
        "et": 10000,
        "eu": 10000,
        "fa": 10000,
        "fi": 10000,
        "fr": 10000,
        "he": 10000,
        "hi": 1000,
        "hu": 10000,
        "id": 10000,
        "it": 10000,
        "ja": 10000,
        "jv": 100,
        "ka": 10000,
        "kk": 1000,
        "ko": 10000,
        "ml": 1000,
        "mr": 1000,
        "ms": 1000,
        "my": 100,
        "nl": 10000,
        "pt": 10000,
        "ru": 10000,
        "sw": 1000,
        "ta": 1000,
        "te": 1000,
        "th": 10000,
        "tl": 1000,
        "tr": 10000,
        "ur": 1000,
        "vi": 10000,
        "yo": 100,
        "zh": 10000,
    },
    "test": {
        "af": 1000,
        "ar": 10000,
        "bg": 10000,
        "bn": 1000,
        "de": 10000,
        "el": 10000,
        "en": 10000,
        "es": 10000,
        "et": 10000,
        "eu": 10000,
        "fa": 10000,
        "fi": 10000,
        "fr": 10000,
        "he": 10000,
        "hi": 1000,
        "hu": 10000,
        "id": 10000,
        "it": 10000,
        "ja": 10000,
        "jv": 100,
        "ka": 10000,
        "kk": 1000,
        "ko": 10000,
        "ml": 1000,
        "mr": 1000,
        "ms": 1000,
        "my": 100,
        "nl": 10000,
        "pt": 10000,
        "ru": 10000,
        "sw": 1000,
        "ta": 1000,
        "te": 1000,
        "th": 10000,
        "tl": 1000,
        "tr": 10000,
        "ur": 1000,
        "vi": 10000,
        "yo": 100,
        "zh": 10000,
    },
}
UDPOS_SIZES = {
    "train": {
        "af": 1315,
        "ar": 6075,
        "bg": 8907,
        "de": 166849,
        "el": 28152,
        "en": 21253,
        "es": 28492,
        "et": 25749,
        "eu": 5396,
        "fa": 4798,
        "fi": 27198,
        "fr": 47308,
        "he": 5241,
        "hi": 13304,
        "hu": 910,
        "id": 4477,
        "it": 29685,
        "ja": 7125,
        "kk": 31,
        "ko": 27410,
        "mr": 373,
        "nl": 18051,
        "pt": 17992,
        "ru": 67435,
        "ta": 400,
        "te": 1051,
        "tr": 3664,
        "ur": 4043,
        "vi": 1400,
        "zh": 18998,
    },
    "validation": {
        "af": 194,
        "ar": 909,
        "bg": 1115,
        "de": 19233,
        "el": 2559,
        "en": 3974,
        "es": 3054,
        "et": 3125,
        "eu": 1798,
        "fa": 599,
        "fi": 3239,
        "fr": 5979,
        "he": 484,
        "hi": 1659,
        "hu": 441,
        "id": 559,
        "it": 2278,
        "ja": 511,
        "ko": 3016,
        "mr": 46,
        "nl": 1394,
        "pt": 1770,
        "ru": 9960,
        "ta": 80,
        "te": 131,
        "tr": 988,
        "ur": 552,
        "vi": 800,
        "zh": 3038,
    },
    "test": {
        "af": 425,
        "ar": 1680,
        "bg": 1116,
        "de": 22458,
        "el": 2809,
        "en": 5440,
        "es": 3147,
        "et": 3760,
        "eu": 1799,
        "fa": 600,
        "fi": 4422,
        "fr": 9465,
        "he": 491,
        "hi": 2684,
        "hu": 449,
        "id": 1557,
        "it": 3518,
        "ja": 2372,
        "kk": 1047,
        "ko": 4276,
        "mr": 47,
        "nl": 1471,
        "pt": 2681,
        "ru": 11336,
        "ta": 120,
        "te": 146,
        "th": 1000,
        "tl": 55,
        "tr": 4785,
        "ur": 535,
        "vi": 800,
        "yo": 100,
        "zh": 5528,
    },
}
PAWSX_SIZES = {
    "train": {
        "de": 49380,
        "en": 49175,
        "es": 49401,
        "fr": 49399,
        "ja": 49401,
        "ko": 49164,
        "zh": 49401,
    },
    "validation": {
        "de": 2000,
        "en": 2000,
        "es": 1961,
        "fr": 1988,
        "ja": 2000,
        "ko": 2000,
        "zh": 2000,
    },
    "test": {"de": 2000, "en": 2000, "es": 2000, "fr": 2000, "ja": 2000, "ko": 1999, "zh": 2000},
}
MLQA_SIZES = {
    "validation": {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504},
    "test": {"ar": 5335, "de": 4517, "en": 11590, "es": 5253, "hi": 4918, "vi": 5495, "zh": 5137},
}
BUCC_SIZES = {
    "validation": {"de": 1038, "fr": 929, "ru": 2374, "zh": 257},
    "test": {"de": 9580, "fr": 9086, "ru": 14435, "zh": 1899},
}
TATOEBA_SIZES = {
    "test": {
        "afr": 1000,
        "ara": 1000,
        "ben": 1000,
        "bul": 1000,
        "cmn": 1000,
        "deu": 1000,
        "ell": 1000,
        "est": 1000,
        "eus": 1000,
        "fin": 1000,
        "fra": 1000,
        "heb": 1000,
        "hin": 1000,
        "hun": 1000,
        "ind": 1000,
        "ita": 1000,
        "jav": 205,
        "jpn": 1000,
        "kat": 746,
        "kaz": 575,
        "kor": 1000,
        "mal": 687,
        "mar": 1000,
        "nld": 1000,
        "pes": 1000,
        "por": 1000,
        "rus": 1000,
        "spa": 1000,
        "swh": 390,
        "tam": 307,
        "tel": 234,
        "tgl": 1000,
        "tha": 548,
        "tur": 1000,
        "urd": 1000,
        "vie": 1000,
    },
}
#: TyDiQA-GoldP: the English training questions and the GoldP dev questions per language (the card gives only the
#: totals, 49,881 train in nine languages and 5,077 dev, which these per-language dev counts sum to)
TYDIQA_SIZES = {
    "train": {"en": 3696},
    "validation": {
        "ar": 921,
        "bn": 113,
        "en": 440,
        "fi": 782,
        "id": 565,
        "ko": 276,
        "ru": 812,
        "sw": 499,
        "te": 669,
    },
}


# --- XNLI ---------------------------------------------------------------------------------------


def _hub_xnli(spec: TaskSpec, split: str, lang: str):
    if split == "translate_train":
        raise DataError(
            "xnli: google/xtreme's XNLI config has only validation and test; translate-train is read "
            "from the XNLI-MT 1.0 release with --data-dir DIR (XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv)"
        )
    ds = load_hub(spec, split)
    ds = rename_to_canonical(spec, ds, split=split, lang=lang)
    ds = ds.filter(lambda ex: ex["language"] == lang, desc=f"xnli {lang}")
    rows = [
        {
            "id": f"{lang}-{i}",
            "text_a": ex["text_a"],
            "text_b": ex["text_b"],
            "label": formats.NLI_LABELS.index(ex["label"])
            if isinstance(ex["label"], str)
            else int(ex["label"]),
        }
        for i, ex in enumerate(ds)
    ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_xnli(spec: TaskSpec, split: str, lang: str, root: Path):
    if split == "translate_train":
        path = find_file(
            root,
            [
                f"XNLI-MT-1.0/multinli/multinli.train.{lang}.tsv",
                f"XNLI-MT-1.0_multinli_train/multinli.train.{lang}.tsv",
                f"multinli.train.{lang}.tsv",
            ],
            spec,
        )
        raw = formats.read_tsv(path, columns=("premise", "hypo", "label"))
        rows = [
            {
                "id": f"{lang}-train-{i}",
                "text_a": r["premise"],
                "text_b": r["hypo"],
                "label": formats.nli_label(r["label"], path),
            }
            for i, r in enumerate(raw)
        ]
        return dataset_from_rows(spec, rows, split=split, lang=lang)
    name = {"validation": "dev", "test": "test"}[split]
    path = find_file(
        root, [f"XNLI-1.0/xnli.{name}.tsv", f"xnli.{name}.tsv", f"xnli.{name}.jsonl"], spec
    )
    columns = ("language", "gold_label", "sentence1", "sentence2")
    raw = (
        formats.read_jsonl(path, columns=columns)
        if ".jsonl" in path.name
        else formats.read_tsv(path, columns=columns)
    )
    mine = [r for r in raw if r["language"] == lang]
    if mine and "pairID" in mine[0]:
        formats.check_unique(mine, "pairID", path, f"{lang} pairID")
    rows = [
        {
            "id": f"{lang}-{r.get('pairID', i)}",
            "text_a": r["sentence1"],
            "text_b": r["sentence2"],
            "label": formats.nli_label(r["gold_label"], path),
        }
        for i, r in enumerate(mine)
    ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


register(
    TaskSpec(
        name="xnli",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="XNLI: MNLI-style NLI in 15 languages (train on English MNLI)",
        languages=XNLI_LANGS,
        metric="accuracy",
        source=HubSource(XTREME, "XNLI", revision=XTREME_REVISION),
        label_names=formats.NLI_LABELS,
        train_task="mnli",
        fields={"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"},
        splits=("validation", "test", "translate_train"),
        head="classification",
        local_format="XNLI-1.0/xnli.{dev,test}.tsv (or .jsonl); translate-train: XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv",
        sizes=Sizes(
            {"validation": 2490, "test": 5010},
            XTREME_CARD + ": XNLI 37,350 / 75,150 over 15 languages",
        ),
        loader=make_loader(_hub_xnli, _local_xnli),
        example_alignment="parallel",  # one set of 5,010 pairs translated into every language (pairID)
    )
)


# --- PAWS-X -------------------------------------------------------------------------------------


def _hub_pawsx(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split, config=f"PAWS-X.{lang}")
    ds = rename_to_canonical(spec, ds, split=split, lang=lang)
    rows = [
        {
            "id": f"{lang}-{split}-{i}",
            "text_a": ex["text_a"],
            "text_b": ex["text_b"],
            "label": int(ex["label"]),
        }
        for i, ex in enumerate(ds)
    ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_pawsx(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {
        "train": "train" if lang == "en" else "translated_train",
        "validation": "dev_2k",
        "test": "test_2k",
    }[split]
    path = find_file(
        root, [f"x-final/{lang}/{name}.tsv", f"{lang}/{name}.tsv", f"{lang}_{name}.tsv"], spec
    )
    raw = formats.read_tsv(path, columns=("id", "sentence1", "sentence2", "label"))
    formats.check_unique(raw, "id", path)
    rows = [
        {
            "id": f"{lang}-{r['id']}",
            "text_a": r["sentence1"],
            "text_b": r["sentence2"],
            "label": int(r["label"]),
        }
        for r in raw
        if r["label"].strip() in ("0", "1")
    ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


register(
    TaskSpec(
        name="pawsx",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="PAWS-X: adversarial paraphrase identification in 7 languages",
        languages=PAWSX_LANGS,
        metric="accuracy",
        source=HubSource(XTREME, "PAWS-X.{lang}", revision=XTREME_REVISION),
        label_names=PAWSX_LABELS,
        fields={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
        head="classification",
        local_format="x-final/<lang>/{train,dev_2k,test_2k}.tsv (id sentence1 sentence2 label); also <lang>_dev_2k.tsv",
        sizes=Sizes(PAWSX_SIZES, XTREME_CARD),
        loader=make_loader(_hub_pawsx, _local_pawsx),
        example_alignment="parallel",  # the same 2,000 test pairs translated into each language
    ),
    "paws-x",
    "paws_x",
)


# --- tagging: UDPOS, PAN-X ----------------------------------------------------------------------


def _hub_tagging(config_of):
    def hub(spec: TaskSpec, split: str, lang: str):
        ds = load_hub(spec, split, config=config_of(lang))
        ds = rename_to_canonical(spec, ds, split=split, lang=lang)
        feat = ds.features["tags"]
        names = getattr(getattr(feat, "feature", None), "names", None) or spec.label_names
        rows = [
            {
                "id": f"{lang}-{split}-{i}",
                "tokens": list(ex["tokens"]),
                "tags": [t if isinstance(t, str) else names[t] for t in ex["tags"]],
            }
            for i, ex in enumerate(ds)
        ]
        return dataset_from_rows(spec, rows, split=split, lang=lang)

    return hub


def _local_udpos(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    files = sorted(p for p in root.rglob(f"{lang}_*-ud-{name}.conllu") if p.is_file())
    if not files:
        # raises with the expected name
        find_file(root, [f"{lang}_*-ud-{name}.conllu"], spec, "CoNLL-U file")
    rows = []
    for path in files:  # XTREME concatenates every treebank of the language
        rows.extend(formats.conllu_sentences(path, lang=lang))
    bad = sorted({t for r in rows for t in r["tags"] if t not in UPOS})
    if bad:
        raise DataError(f"udpos {lang}: tags outside the 17 UPOS tags: {', '.join(bad[:5])}")
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_panx(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    path = find_file(root, [f"{lang}/{name}", f"panx/{lang}/{name}"], spec)
    rows = formats.panx_sentences(path, lang)
    bad = sorted({t for r in rows for t in r["tags"] if t not in PANX_TAGS})
    if bad:
        raise DataError(f"{path}: tags outside {', '.join(PANX_TAGS)}: {', '.join(bad[:5])}")
    return dataset_from_rows(spec, rows, split=split, lang=lang)


register(
    TaskSpec(
        name="udpos",
        kind="tagging",
        modality="text",
        category="structured",
        version="1.1",
        description="Universal Dependencies POS tagging (17 UPOS tags), 33 languages",
        languages=UDPOS_LANGS,
        metric="token_f1",
        source=HubSource(XTREME, "udpos.{lang_name}", revision=XTREME_REVISION),
        label_names=UPOS,
        fields={"tokens": "tokens", "tags": "pos_tags"},
        head="tagging",
        extra={"hub_lang": UDPOS_NAMES},
        local_format="UD treebanks: <lang>_<treebank>-ud-{train,dev,test}.conllu anywhere under the dir (CoNLL-U)",
        sizes=Sizes(UDPOS_SIZES, XTREME_CARD + " (every UD 2.5 treebank of a language, as XTREME)"),
        loader=make_loader(_hub_tagging(lambda lang: f"udpos.{UDPOS_NAMES[lang]}"), _local_udpos),
    ),
    "ud-pos",
    "pos",
)

register(
    TaskSpec(
        name="panx",
        kind="tagging",
        modality="text",
        category="structured",
        version="1.1",
        description="PAN-X / WikiANN named entities (PER, ORG, LOC; IOB2), 40 languages",
        languages=PANX_LANGS,
        metric="span_f1",
        source=HubSource(XTREME, "PAN-X.{lang}", revision=XTREME_REVISION),
        label_names=PANX_TAGS,
        fields={"tokens": "tokens", "tags": "ner_tags"},
        head="tagging",
        local_format="<lang>/{train,dev,test} with 'lang:token<TAB>TAG' lines, blank line between sentences",
        sizes=Sizes(PANX_SIZES, XTREME_CARD),
        loader=make_loader(_hub_tagging(lambda lang: f"PAN-X.{lang}"), _local_panx),
    ),
    "pan-x",
    "wikiann",
    "ner",
)


# --- QA: XQuAD, MLQA, TyDiQA-GoldP -------------------------------------------------------------


def _local_xquad(spec: TaskSpec, split: str, lang: str, root: Path):
    path = find_file(root, [f"xquad.{lang}.json", f"xquad/xquad.{lang}.json"], spec)
    return dataset_from_rows(spec, formats.squad_rows(path), split=split, lang=lang)


def _local_mlqa(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"validation": "dev", "test": "test"}[split]
    rel = f"{name}-context-{lang}-question-{lang}.json"
    path = find_file(
        root, [f"MLQA_V1/{name}/{rel}", f"{name}/{rel}", f"mlqa.{lang}.{lang}/{rel}", rel], spec
    )
    return dataset_from_rows(spec, formats.squad_rows(path), split=split, lang=lang)


def _local_tydiqa(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "dev"}[split]
    path = find_file(
        root,
        [f"tydiqa-goldp-v1.1-{name}.json", f"tydiqa_goldp/tydiqa-goldp-v1.1-{name}.json"],
        spec,
    )
    rows = formats.squad_rows(path, id_prefix=f"{TYDIQA_NAMES[lang]}-")
    return dataset_from_rows(spec, rows, split=split, lang=lang)


# QA targets: no dev selection (dev_selection=False), as XTREME's scripts/train_qa.sh trains: fixed recipe,
# final weights. XQuAD and MLQA are trained on SQuAD v1.1 train; TyDiQA on its English GoldP train split.
register(
    TaskSpec(
        name="xquad",
        kind="span_qa",
        modality="text",
        category="qa",
        version="1.2",
        description="XQuAD: SQuAD v1.1 dev translated into 10 languages (train on SQuAD v1.1)",
        languages=XQUAD_LANGS,
        metric="squad",
        source=HubSource(
            XTREME, "XQuAD.{lang}", revision=XTREME_REVISION, splits={"test": "validation"}
        ),
        fields=QA_FIELDS,
        splits=("test",),
        train_task="squad",
        dev_selection=False,
        head="span_qa",
        local_format="xquad.<lang>.json (SQuAD v1.1 JSON)",
        sizes=Sizes({"test": 1190}, XTREME_CARD),
        loader=make_loader(hub_span_qa(lambda lang: f"XQuAD.{lang}"), _local_xquad),
        example_alignment="parallel",  # the same 1,190 SQuAD questions (same ids) in every language
    )
)

register(
    TaskSpec(
        name="mlqa",
        kind="span_qa",
        modality="text",
        category="qa",
        version="1.2",
        description="MLQA: extractive QA, context and question in the same language (train on SQuAD v1.1)",
        languages=MLQA_LANGS,
        metric="mlqa",
        source=HubSource(XTREME, "MLQA.{lang}.{lang}", revision=XTREME_REVISION),
        fields=QA_FIELDS,
        splits=("validation", "test"),
        train_task="squad",
        dev_selection=False,
        head="span_qa",
        local_format="MLQA_V1/{dev,test}/{dev,test}-context-<lang>-question-<lang>.json (SQuAD JSON)",
        sizes=Sizes(MLQA_SIZES, XTREME_CARD),
        loader=make_loader(hub_span_qa(lambda lang: f"MLQA.{lang}.{lang}"), _local_mlqa),
        example_alignment="partial",  # a question id names the same question in each language that has it
    )
)

register(
    TaskSpec(
        name="tydiqa",
        kind="span_qa",
        modality="text",
        category="qa",
        version="1.2",
        description="TyDiQA-GoldP: gold-passage QA in 9 languages; English training data only; the GoldP dev "
        "split is the reported test (XTREME), so it is never used for model selection",
        languages=TYDIQA_LANGS,
        metric="tydiqa",
        source=HubSource(XTREME, "tydiqa", revision=XTREME_REVISION),
        fields=QA_FIELDS,
        splits=("train", "validation"),
        dev_selection=False,
        head="span_qa",
        extra={"id_prefix": TYDIQA_NAMES, "train_languages": ("en",)},
        local_format="tydiqa-goldp-v1.1-{train,dev}.json (SQuAD JSON; ids prefixed by language name)",
        sizes=Sizes(
            TYDIQA_SIZES,
            "XTREME (Hu et al. 2020) TyDiQA-GoldP: 3,696 English training questions; "
            "GoldP dev per language, summing to the card's 5,077",
        ),
        loader=make_loader(
            hub_span_qa(lambda lang: "tydiqa", lambda lang: f"{TYDIQA_NAMES[lang]}-"), _local_tydiqa
        ),
    ),
    "tydiqa-goldp",
    "tydiqa_goldp",
)


# --- retrieval: BUCC, Tatoeba -------------------------------------------------------------------


def _hub_bucc(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split, config=f"bucc18.{lang}")
    ds = rename_to_canonical(spec, ds, split=split, lang=lang)
    rows = []
    for i, ex in enumerate(ds):
        sid, tid = f"{lang}-{i:09d}", f"en-{i:09d}"
        rows.append({"id": sid, "side": "source", "text": ex["source"], "gold": tid})
        rows.append({"id": tid, "side": "target", "text": ex["target"], "gold": sid})
    return dataset_from_rows(spec, rows, split=split, lang=lang)


#: mmxfer split -> (BUCC 2018 release name, XTREME's renamed copy); XTREME scripts/download_data.sh:
#: sample-gold -> dev, training-gold -> test (the official test gold is not public)
BUCC_FILES = {"validation": ("sample", "dev"), "test": ("training", "test")}


def _local_bucc(spec: TaskSpec, split: str, lang: str, root: Path):
    candidates = []
    for name in BUCC_FILES[split]:
        base = f"{lang}-en.{name}"
        candidates += [
            f"bucc2018/{lang}-en/{base}.{lang}",
            f"{lang}-en/{base}.{lang}",
            f"bucc2018/{base}.{lang}",
            f"{base}.{lang}",
        ]
    src = find_file(root, candidates, spec, f"BUCC {lang}-en {split} file")
    base = src.name.removesuffix(".gz").rsplit(".", 1)[0]
    trg = formats.english_sibling(src, f"{base}.en", f"bucc {lang}")
    gold = next(
        (
            p
            for p in (src.with_name(f"{base}.gold"), src.with_name(f"{base}.gold.gz"))
            if p.is_file()
        ),
        None,
    )
    if gold is None:
        raise DataError(
            f"bucc {lang} {split}: {src} has no gold file {base}.gold next to it; BUCC F1 needs gold "
            f"pairs (the official BUCC 2018 test gold is not public: XTREME scores the *training* files "
            f"as test and the *sample* files as dev)"
        )
    return dataset_from_rows(spec, formats.bucc_rows(src, trg, gold), split=split, lang=lang)


register(
    TaskSpec(
        name="bucc",
        kind="retrieval",
        modality="text",
        category="retrieval",
        version="1.2",
        description="BUCC 2018 bitext mining (de, fr, ru, zh vs en); F1 over mined pairs",
        languages=BUCC_LANGS,
        metric="bucc_f1",
        source=HubSource(XTREME, "bucc18.{lang}", revision=XTREME_REVISION),
        fields={"source": "source_sentence", "target": "target_sentence"},
        splits=("validation", "test"),
        extra={
            "mining": True,
            "hub_caveat": HUB_CAVEAT_BUCC,
        },  # google/xtreme bucc18: gold pairs, no distractors
        local_format="bucc2018/<xx>-en/<xx>-en.{sample,training}.{<xx>,en,gold} (sample = dev, training = test, as "
        "XTREME; or XTREME's renamed <xx>-en.{dev,test}.*; <id>\\t<sentence> lines)",
        sizes=Sizes(
            BUCC_SIZES,
            XTREME_CARD + ": gold pairs of the hub copy; the BUCC 2018 release adds "
            "tens to hundreds of thousands of distractor sentences a side",
        ),
        loader=make_loader(_hub_bucc, _local_bucc),
    ),
    "bucc18",
    "bucc2018",
)


def _hub_tatoeba(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split, config=f"tatoeba.{lang}")
    ds = rename_to_canonical(spec, ds, split=split, lang=lang)
    rows = [
        {"id": str(i), "source": ex["source"], "target": ex["target"]} for i, ex in enumerate(ds)
    ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_tatoeba(spec: TaskSpec, split: str, lang: str, root: Path):
    src = find_file(
        root,
        [
            f"tatoeba.{lang}-eng.{lang}",
            f"tatoeba/tatoeba.{lang}-eng.{lang}",
            f"v1/tatoeba.{lang}-eng.{lang}",
        ],
        spec,
        f"Tatoeba file for {lang}",
    )
    return dataset_from_rows(
        spec,
        formats.bitext_with_english_sibling(src, f"tatoeba.{lang}-eng.eng", f"tatoeba {lang}"),
        split=split,
        lang=lang,
    )


register(
    TaskSpec(
        name="tatoeba",
        kind="retrieval",
        modality="text",
        category="retrieval",
        version="1.0",
        description="Tatoeba similarity search (LASER v1 test pairs, xx <-> en), 36 XTREME languages",
        languages=TATOEBA_LANGS,
        metric="tatoeba_accuracy",
        source=HubSource(
            XTREME, "tatoeba.{lang}", revision=XTREME_REVISION, splits={"test": "validation"}
        ),
        fields={"source": "source_sentence", "target": "target_sentence"},
        splits=("test",),
        train_language="eng",
        extra={"open_languages": True},
        local_format="tatoeba.<xxx>-eng.<xxx> + tatoeba.<xxx>-eng.eng (LASER data/tatoeba/v1, any of its 112 languages)",
        sizes=Sizes(TATOEBA_SIZES, XTREME_CARD + " (hub split validation = mmxfer test)"),
        loader=make_loader(_hub_tatoeba, _local_tatoeba),
    )
)
