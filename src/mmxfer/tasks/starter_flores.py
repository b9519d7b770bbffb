"""The starter's real targets: SIB-200 topic classification and FLORES-200 sentence retrieval, read from the
SIB-200 release files shipped inside mmxfer (``mmxfer/resources/sib200``, gzipped, with the repository's LICENSE).

SIB-200 (Adelani et al. 2024) labels FLORES-200 sentences (NLLB Team 2022) with one of seven topics. Every
language's file holds the same FLORES sentences (same ``index_id``, same order), so the same files give two
targets:

* ``starter-sib200`` - the ``sib200`` task (same reader, same labels: :mod:`mmxfer.tasks.flores`) on the
  shipped files: trained on English (701 sentences, 99 dev), zero-shot on the test split (204 sentences) of each
  of :data:`STARTER_LANGS`;
* ``starter-flores`` - retrieval of each test sentence's English translation among all 1,004 English sentences
  (train, dev and test: xSIM's X->eng direction with a larger English side, as xSIM++ adds English candidates),
  on the trunk (accuracy = 100 - xSIM error; the suite sets xSIM's ratio margin). Its queries are test sentences,
  which no task trains on; the English train sentences that SIB-200's phase 3 trains on are candidates only.

Shipped (:data:`SHIPPED_LANGS`; attribution in the folder's ``NOTICE.md``): train/dev/test of the 33 starter
languages (:data:`STARTER_LANGS`), dev and test of 28 others.
With ``--data-dir`` both tasks read a full SIB-200 release instead (the ``sib200`` task reads the shipped folder
with ``--data-dir <mmxfer>/resources/sib200``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mmxfer.errors import DataError
from mmxfer.tasks.base import Sizes, TaskSpec
from mmxfer.tasks.common import dataset_from_rows, make_loader, register
from mmxfer.tasks.flores import PIVOT, SIB_LABELS, SIB_SIZES, local_sib, sib_records

#: the 61 languages whose dev and test files are shipped (English and German also with train)
SHIPPED_LANGS: tuple[str, ...] = (
    "afr_Latn",
    "amh_Ethi",
    "arb_Arab",
    "ayr_Latn",
    "ben_Beng",
    "bul_Cyrl",
    "ces_Latn",
    "cym_Latn",
    "deu_Latn",
    "ell_Grek",
    "eng_Latn",
    "est_Latn",
    "eus_Latn",
    "fin_Latn",
    "fon_Latn",
    "fra_Latn",
    "gle_Latn",
    "grn_Latn",
    "hau_Latn",
    "heb_Hebr",
    "hin_Deva",
    "hun_Latn",
    "ibo_Latn",
    "ind_Latn",
    "ita_Latn",
    "jav_Latn",
    "jpn_Jpan",
    "kat_Geor",
    "kaz_Cyrl",
    "khm_Khmr",
    "kor_Hang",
    "lao_Laoo",
    "mal_Mlym",
    "mar_Deva",
    "mya_Mymr",
    "nld_Latn",
    "npi_Deva",
    "pes_Arab",
    "pol_Latn",
    "por_Latn",
    "quy_Latn",
    "ron_Latn",
    "rus_Cyrl",
    "sin_Sinh",
    "spa_Latn",
    "swh_Latn",
    "tam_Taml",
    "tel_Telu",
    "tgl_Latn",
    "tha_Thai",
    "tir_Ethi",
    "tur_Latn",
    "ukr_Cyrl",
    "urd_Arab",
    "uzn_Latn",
    "vie_Latn",
    "wol_Latn",
    "yor_Latn",
    "zho_Hans",
    "zsm_Latn",
    "zul_Latn",
)
#: the starter's evaluation languages: English plus 32 chosen to span XLM-R's resource levels (languages.tsv:
#: 12 high, 9 mid, 6 low, 5 unseen by XLM-R) and 18 scripts
STARTER_LANGS: tuple[str, ...] = (
    "eng_Latn",
    "deu_Latn",
    "fra_Latn",
    "spa_Latn",
    "rus_Cyrl",
    "arb_Arab",
    "zho_Hans",
    "jpn_Jpan",
    "kor_Hang",
    "hin_Deva",
    "tha_Thai",
    "heb_Hebr",
    "ell_Grek",  # high
    "ben_Beng",
    "kat_Geor",
    "kaz_Cyrl",
    "khm_Khmr",
    "tel_Telu",
    "urd_Arab",
    "swh_Latn",
    "sin_Sinh",
    "tgl_Latn",  # mid
    "amh_Ethi",
    "mya_Mymr",
    "lao_Laoo",
    "hau_Latn",
    "cym_Latn",
    "jav_Latn",  # low
    "yor_Latn",
    "wol_Latn",
    "quy_Latn",
    "tir_Ethi",
    "zul_Latn",
)  # unseen
LOCAL_FORMAT = "data/annotated/<lang_Script>/{train,dev,test}.tsv[.gz] (index_id category text; shipped with mmxfer)"


def shipped_root() -> Path:
    """The SIB-200 release folder inside the installed package."""
    return Path(str(resources.files("mmxfer").joinpath("resources/sib200")))


def _classification(spec: TaskSpec, split: str, lang: str, root: Path | None = None):
    return local_sib(spec, split, lang, root or shipped_root())


def _retrieval(spec: TaskSpec, split: str, lang: str, root: Path | None = None):
    """The split's (sentence, English translation) pairs, then the English sentences of the other splits of
    ``spec.english_pool`` as candidates without a source (every English sentence is a candidate)."""
    root = root or shipped_root()
    src, eng = sib_records(spec, split, lang, root), sib_records(spec, split, PIVOT, root)
    if [r["index_id"] for r in src] != [r["index_id"] for r in eng]:
        raise DataError(
            f"{spec.name}: the {split} sentences of {lang} and {PIVOT} are not the same FLORES ids in "
            f"the same order; retrieval needs parallel files"
        )
    rows = [
        {"id": s["index_id"], "source": s["text"], "target": e["text"]} for s, e in zip(src, eng)
    ]
    for other in spec.english_pool:
        if other != split:
            rows += [
                {"id": e["index_id"], "source": None, "target": e["text"]}
                for e in sib_records(spec, other, PIVOT, root)
            ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


_SHARED = dict(
    modality="text",
    version="1.0",
    source=None,
    train_language=PIVOT,
    local_format=LOCAL_FORMAT,
    extra={"shipped": "mmxfer/resources/sib200", "shipped_languages": SHIPPED_LANGS},
)

register(
    TaskSpec(
        name="starter-sib200",
        kind="classification",
        category="classification",
        metric="accuracy",
        description="SIB-200 (shipped): 7-way topic classification of FLORES-200 sentences, trained on English, "
        "zero-shot on 32 languages",
        languages=STARTER_LANGS,
        label_names=SIB_LABELS,
        head="classification_mean",
        # a fixed recipe keeping its final weights (no dev pass, no best-weight copies of the trunk: the CPU budget);
        # on the starter recipe the English dev accuracy rose at every epoch (45, 72, 76 after epochs 1-3)
        dev_selection=False,
        sizes=SIB_SIZES,
        loader=make_loader(_classification, _classification),
        **_SHARED,
        example_alignment="parallel",
    ),
    "sib200-starter",
)

register(
    TaskSpec(
        name="starter-flores",
        kind="retrieval",
        category="retrieval",
        metric="tatoeba_accuracy",
        description="FLORES-200 sentences of SIB-200 (shipped): retrieve each test sentence's English translation "
        "among all 1,004 English sentences; 32 languages",
        languages=tuple(code for code in STARTER_LANGS if code != PIVOT),
        splits=("validation", "test"),
        # what the loader yields: the split's pairs, then the other splits' English sentences (1,004 rows either way)
        sizes=Sizes({"validation": 1004, "test": 1004}, SIB_SIZES.source),
        loader=make_loader(_retrieval, _retrieval),
        **{
            **_SHARED,
            "version": "1.1",  # 1.1: every English sentence is a candidate
            "extra": {**_SHARED["extra"], "english_pool": ("train", "validation", "test")},
        },
        example_alignment="parallel",
    ),
    "flores-starter",
)


#: the positive control pairs every starter language but English with German: it never trains on an English
#: sentence (every one is a retrieval candidate) nor on a test sentence (the queries and SIB-200's test set)
CONTROL_PIVOT = "deu_Latn"
CONTROL_LANGS: tuple[str, ...] = tuple(c for c in STARTER_LANGS if c not in (PIVOT, CONTROL_PIVOT))


def _pivot_bitext(spec: TaskSpec, split: str, lang: str, root: Path | None = None):
    """(sentence, German translation) of every language of ``spec.paired``, language by language."""
    root = root or shipped_root()
    pivot = sib_records(spec, split, lang, root)
    rows = []
    for other in spec.paired:
        records = sib_records(spec, split, other, root)
        if [r["index_id"] for r in records] != [r["index_id"] for r in pivot]:
            raise DataError(
                f"{spec.name}: the {split} sentences of {other} and {lang} are not the same FLORES ids "
                f"in the same order; the bitext needs parallel files"
            )
        rows += [
            {"id": f"{other}:{r['index_id']}", "source": r["text"], "target": p["text"]}
            for r, p in zip(records, pivot)
        ]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


register(
    TaskSpec(
        name="starter-pivot-bitext",
        kind="bitext",
        modality="text",
        category="intermediate",
        metric="accuracy",
        head="bitext_contrastive",
        intermediate=True,
        version="1.0",
        source=None,
        local_format=LOCAL_FORMAT,
        description="positive control: SIB-200 train sentences of 31 starter languages, each aligned with its German "
        "translation (contrastive); no English sentence, no test sentence",
        languages=(CONTROL_PIVOT,),
        train_language=CONTROL_PIVOT,
        splits=("train", "validation"),
        loader=make_loader(_pivot_bitext, _pivot_bitext),
        # control: known to move cross-lingual retrieval (translation-pair contrastive training, as LaBSE and e5's
        # own fine-tuning do), so the study shows it can detect an effect; text_prefix: e5's, as retrieval reads them
        extra={
            "control": True,
            "paired": CONTROL_LANGS,
            "text_prefix": "query: ",
            "shipped": "mmxfer/resources/sib200",
        },
    ),
    "bitext-control",
)
