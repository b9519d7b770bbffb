"""The starter's real targets: SIB-200 topic classification and FLORES-200 sentence retrieval, from the
SIB-200 files shipped inside mmxfer (``mmxfer/resources/sib200``, gzipped; see its ``NOTICE.md``).

SIB-200 (Adelani et al. 2024) labels FLORES-200 sentences (NLLB Team 2022) with one of seven topics.
Every language's file holds the same FLORES sentences (same ``index_id``, same order), so the same files
give two targets:

* ``starter-sib200`` - 7-way classification, trained on English (701 sentences, 99 dev), evaluated
  zero-shot on the test split (204 sentences) of each of :data:`STARTER_LANGS`;
* ``starter-flores`` - retrieval of each test sentence's translation: the 204 sentences of a language
  against the same 204 English sentences (Tatoeba-style accuracy with the margin of xSIM), on the trunk.

Shipped: English train/dev/test, dev and test of 59 other languages, German train. With ``--data-dir``
both tasks read a full SIB-200 release instead (``data/annotated/<lang_Script>/{train,dev,test}.tsv``).
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import dataset_from_rows, find_file, make_loader, register

PIVOT = "eng_Latn"
LABELS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")
FILE_OF_SPLIT = {"train": "train", "validation": "dev", "test": "test"}
#: the 60 languages whose dev and test files are shipped (English and German also with train)
SHIPPED_LANGS: tuple[str, ...] = (
    "afr_Latn", "amh_Ethi", "arb_Arab", "ayr_Latn", "ben_Beng", "bul_Cyrl", "ces_Latn", "cym_Latn", "deu_Latn",
    "ell_Grek", "eng_Latn", "est_Latn", "eus_Latn", "fin_Latn", "fon_Latn", "fra_Latn", "gle_Latn", "grn_Latn",
    "hau_Latn", "heb_Hebr", "hin_Deva", "hun_Latn", "ibo_Latn", "ind_Latn", "ita_Latn", "jav_Latn", "jpn_Jpan",
    "kat_Geor", "kaz_Cyrl", "khm_Khmr", "kor_Hang", "lao_Laoo", "mal_Mlym", "mar_Deva", "mya_Mymr", "nld_Latn",
    "npi_Deva", "pes_Arab", "pol_Latn", "por_Latn", "quy_Latn", "ron_Latn", "rus_Cyrl", "sin_Sinh", "spa_Latn",
    "swh_Latn", "tam_Taml", "tel_Telu", "tgl_Latn", "tha_Thai", "tir_Ethi", "tur_Latn", "ukr_Cyrl", "urd_Arab",
    "uzn_Latn", "vie_Latn", "wol_Latn", "yor_Latn", "zho_Hans", "zsm_Latn", "zul_Latn")
#: the starter's evaluation languages: English plus 32 chosen to span XLM-R's resource levels (languages.tsv:
#: 12 high, 9 mid, 6 low, 5 unseen by XLM-R) and 18 scripts; the other shipped languages are read by the
#: ``sib200`` task with ``--data-dir <mmxfer>/resources/sib200``
STARTER_LANGS: tuple[str, ...] = (
    "eng_Latn",
    "deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "arb_Arab", "zho_Hans", "jpn_Jpan", "kor_Hang", "hin_Deva",
    "tha_Thai", "heb_Hebr", "ell_Grek",  # high
    "ben_Beng", "kat_Geor", "kaz_Cyrl", "khm_Khmr", "tel_Telu", "urd_Arab", "swh_Latn", "sin_Sinh", "tgl_Latn",  # mid
    "amh_Ethi", "mya_Mymr", "lao_Laoo", "hau_Latn", "cym_Latn", "jav_Latn",  # low
    "yor_Latn", "wol_Latn", "quy_Latn", "tir_Ethi", "zul_Latn")  # unseen
LOCAL_FORMAT = "data/annotated/<lang_Script>/{train,dev,test}.tsv[.gz] (index_id category text; shipped with mmxfer)"


def shipped_root() -> Path:
    """The SIB-200 folder inside the installed package."""
    return Path(str(resources.files("mmxfer").joinpath("resources/sib200")))


def sib_records(spec: TaskSpec, split: str, lang: str, data_dir: str | None) -> list[dict[str, str]]:
    """The raw rows (index_id, category, text) of one language and split: ``data_dir`` or the shipped copy."""
    root = Path(data_dir) if data_dir is not None else shipped_root()
    name = FILE_OF_SPLIT[split]
    path = find_file(root, [f"data/annotated/{lang}/{name}.tsv", f"{lang}/{name}.tsv"], spec,
                     f"SIB-200 {name} file for {lang}")
    # the release TSVs use CSV quoting: a text with quotes is enclosed in quotes, its own quotes doubled
    rows = formats.read_tsv(path, quoting=csv.QUOTE_MINIMAL)
    if not rows:
        raise DataError(f"{path} holds no rows")
    formats.require(rows[0], ("index_id", "category", "text"), path)
    return rows


def _classification(spec: TaskSpec, split: str, lang: str, data_dir: str | None):
    rows = []
    for r in sib_records(spec, split, lang, data_dir):
        if r["category"] not in LABELS:
            raise DataError(f"{spec.name} {lang} {split}: unknown category {r['category']!r}")
        rows.append({"id": r["index_id"], "text_a": r["text"], "text_b": None, "label": LABELS.index(r["category"])})
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _retrieval(spec: TaskSpec, split: str, lang: str, data_dir: str | None):
    src, eng = sib_records(spec, split, lang, data_dir), sib_records(spec, split, PIVOT, data_dir)
    if [r["index_id"] for r in src] != [r["index_id"] for r in eng]:
        raise DataError(f"{spec.name}: the {split} sentences of {lang} and {PIVOT} are not the same FLORES ids in the "
                        f"same order; retrieval needs parallel files")
    rows = [{"id": s["index_id"], "source": s["text"], "target": e["text"]} for s, e in zip(src, eng)]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _shipped_loader(build):
    """The same reader with and without ``--data-dir`` (the shipped copy is the default source)."""

    def local(spec: TaskSpec, split: str, lang: str, root=None):
        return build(spec, split, lang, None if root is None else str(root))

    return make_loader(lambda spec, split, lang: local(spec, split, lang), local)


_SHARED = dict(modality="text", version="1.0", source=None, train_language=PIVOT, local_format=LOCAL_FORMAT,
               extra={"shipped": "mmxfer/resources/sib200", "shipped_languages": SHIPPED_LANGS, "open_languages": True})

register(TaskSpec(
    name="starter-sib200", kind="classification", category="classification", metric="accuracy",
    description="SIB-200 (shipped): 7-way topic classification of FLORES-200 sentences, trained on English, "
                "zero-shot on 32 languages",
    languages=STARTER_LANGS, label_names=LABELS, head="classification_mean", loader=_shipped_loader(_classification),
    **_SHARED,
), "sib200-starter")

register(TaskSpec(
    name="starter-flores", kind="retrieval", category="retrieval", metric="tatoeba_accuracy",
    description="FLORES-200 sentences of SIB-200 (shipped): retrieve each sentence's English translation "
                "among the same split's English sentences; 32 languages",
    languages=tuple(code for code in STARTER_LANGS if code != PIVOT), splits=("validation", "test"),
    loader=_shipped_loader(_retrieval), **_SHARED,
), "flores-starter")
