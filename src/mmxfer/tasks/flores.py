"""FLORES-200 (xSIM bitext retrieval, 204 languages), SIB-200 topic classification, FLORES+ (gated).

``facebook/flores`` is a loading-script dataset, which current ``datasets`` no longer runs: from
the hub use ``flores_plus`` (Parquet, gated: needs ``HF_TOKEN``) or pass the release folder with
``--data-dir`` (``flores200_dataset/{dev,devtest}/<lang_Script>.<split>``, plain or ``.gz``).
FLORES+ renamed a few codes; :data:`FLORES_PLUS_RENAMES` maps FLORES-200 codes to its names,
and results stay keyed by the FLORES-200 code.

Three tracks, each its own task with its own predictions folder, metric and report section:
``flores200`` (xSIM on the trunk), ``sib200`` (fine-tuned on English, zero-shot elsewhere) and
``flores200-translate`` (zero-shot X->eng translation after training on one pair, ``wmt14-de-en``).

SIB-200 from the hub: ``Davlan/sib200`` still ships a loading script, which ``datasets>=4`` refuses, so its
Parquet export is read instead (revision ``refs/convert/parquet``, one folder per language with
``train``/``validation``/``test``); the columns ``index_id, category, text`` are checked on load.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mmxfer.errors import DataError
from mmxfer.languages import flores200_codes
from mmxfer.tasks import formats
from mmxfer.tasks.base import HubSource, Sizes, TaskSpec
from mmxfer.tasks.common import dataset_from_rows, find_file, load_hub, make_loader, register

FLORES_LANGS: tuple[str, ...] = flores200_codes()
PIVOT = "eng_Latn"
#: FLORES-200 code -> FLORES+ config name (Chinese split by variety; Twi variants carry glottocodes)
FLORES_PLUS_RENAMES = {
    "zho_Hans": "cmn_Hans",
    "zho_Hant": "cmn_Hant",
    "twi_Latn": "twi_Latn_akua1239",
    "aka_Latn": "twi_Latn_asan1239",
}
SIB_HUB_REVISION = "refs/convert/parquet"  # the hub's Parquet export (main has a loading script)
SIB_LABELS = (
    "science/technology",
    "travel",
    "politics",
    "sports",
    "health",
    "entertainment",
    "geography",
)
#: sentences per language: FLORES-200 dev 997, devtest 1012 (NLLB Team 2022); SIB-200 701 / 99 / 204 (Adelani et
#: al. 2024; the same in every language: the shipped files hold exactly these)
FLORES_SIZES = Sizes(
    {"dev": 997, "devtest": 1012}, "FLORES-200 (NLLB Team 2022): dev 997, devtest 1012 sentences"
)
SIB_SIZES = Sizes(
    {"train": 701, "validation": 99, "test": 204}, "SIB-200 (Adelani et al. 2024), every language"
)


def _flores_file(spec: TaskSpec, root: Path, split: str, lang: str) -> Path:
    name = f"{lang}.{split}"
    return find_file(
        root,
        [f"flores200_dataset/{split}/{name}", f"flores200/{split}/{name}", f"{split}/{name}", name],
        spec,
        f"FLORES file for {lang}",
    )


def _local_flores(spec: TaskSpec, split: str, lang: str, root: Path):
    src, trg = _flores_file(spec, root, split, lang), _flores_file(spec, root, split, PIVOT)
    rows = formats.aligned_pairs(src, trg)
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _hub_flores_plus(spec: TaskSpec, split: str, lang: str):
    def sentences(code: str) -> list[str]:
        ds = load_hub(spec, split, config=FLORES_PLUS_RENAMES.get(code, code))
        if "text" not in ds.column_names:
            raise DataError(
                f"{spec.source.path} ({code}) has no 'text' column; it has {', '.join(ds.column_names)}"
            )
        return list(ds["text"])

    src, trg = sentences(lang), sentences(PIVOT)
    if len(src) != len(trg):
        raise DataError(
            f"flores_plus {lang} has {len(src)} {split} sentences but {PIVOT} has {len(trg)}"
        )
    rows = [{"id": str(i), "source": s, "target": t} for i, (s, t) in enumerate(zip(src, trg))]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


_FLORES_LOCAL = "flores200_dataset/{dev,devtest}/<lang_Script>.{dev,devtest} (also .gz, or flores200/devtest/...)"
#: a loading script on the hub (its contract says so): without --data-dir, $MMXFER_LOCAL_DATA is read if set
_FLORES_SCRIPT = HubSource(
    "facebook/flores",
    "{lang}",
    loading_script=(
        f"use the task 'flores_plus' (gated, set HF_TOKEN) or pass the FLORES-200 release with --data-dir DIR "
        f"({_FLORES_LOCAL})"
    ),
)


def _hub_flores_script(spec: TaskSpec, split: str, lang: str):
    raise DataError(
        "facebook/flores is a loading-script dataset that datasets>=4 cannot run: use the task "
        "'flores_plus' (gated, set HF_TOKEN) or pass the FLORES-200 release with --data-dir DIR "
        f"({spec.local_format})"
    )


_FLORES_COMMON = dict(
    kind="retrieval",
    modality="text",
    category="retrieval",
    version="1.1",
    languages=FLORES_LANGS,
    metric="xsim",
    splits=("dev", "devtest"),
    train_language=PIVOT,
    fields={"source": "sentence", "target": "sentence"},
    example_alignment="parallel",
)  # line i is the same sentence in every language

register(
    TaskSpec(
        name="flores200",
        description="FLORES-200 dev/devtest: xSIM bitext retrieval, 204 languages vs eng_Latn",
        source=_FLORES_SCRIPT,
        local_format=_FLORES_LOCAL,
        sizes=FLORES_SIZES,
        loader=make_loader(_hub_flores_script, _local_flores),
        **_FLORES_COMMON,
    ),
    "flores",
    "flores-200",
)

register(
    TaskSpec(
        name="flores_plus",
        description="FLORES+ (OLDI) dev/devtest as xSIM retrieval; gated on the Hub (HF_TOKEN)",
        source=HubSource("openlanguagedata/flores_plus", "{lang}", gated=True),
        local_format="same layout as flores200: <split>/<lang_Script>.<split> (FLORES+ release files renamed to "
        "FLORES-200 codes)",
        extra={"code_renames": FLORES_PLUS_RENAMES},
        sizes=FLORES_SIZES,
        loader=make_loader(_hub_flores_plus, _local_flores),
        **_FLORES_COMMON,
    ),
    "floresplus",
    "flores+",
)


def _hub_sib(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split, data_dir=lang)  # the Parquet export keeps one folder per language
    for col in ("index_id", "category", "text"):
        if col not in ds.column_names:
            raise DataError(
                f"Davlan/sib200 ({lang}) has no column {col!r}; it has {', '.join(ds.column_names)}"
            )
    return dataset_from_rows(spec, _sib_rows(ds, lang, spec), split=split, lang=lang)


def _sib_rows(records, lang: str, spec: TaskSpec) -> list[dict]:
    rows = []
    for r in records:
        if r["category"] not in SIB_LABELS:
            raise DataError(f"sib200 {lang}: unknown category {r['category']!r}")
        rows.append(
            {
                "id": str(r["index_id"]),
                "text_a": r["text"],
                "text_b": None,
                "label": SIB_LABELS.index(r["category"]),
            }
        )
    return rows


def sib_records(spec: TaskSpec, split: str, lang: str, root: Path) -> list[dict[str, str]]:
    """The rows (``index_id``, ``category``, ``text``) of one SIB-200 release file under ``root``
    (``data/annotated/<lang>/{train,dev,test}.tsv``, plain or ``.gz``): every row with the three fields and a
    numeric ``index_id`` that no other row of the file has (the FLORES sentence it is; a repeated one would be
    scored twice), else one DataError naming the line."""
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    path = find_file(
        root,
        [f"data/annotated/{lang}/{name}.tsv", f"{lang}/{name}.tsv"],
        spec,
        f"SIB-200 {name} file for {lang}",
    )
    # the release TSVs use CSV quoting: a text with quotes is enclosed in quotes, its own quotes doubled
    raw = formats.read_tsv(
        path, quoting=csv.QUOTE_MINIMAL, columns=("index_id", "category", "text")
    )
    formats.check_integer_ids(raw, "index_id", path)
    formats.check_unique(raw, "index_id", path)
    return raw


def local_sib(spec: TaskSpec, split: str, lang: str, root: Path):
    """A SIB-200 classification split read from the release files under ``root``."""
    return dataset_from_rows(
        spec, _sib_rows(sib_records(spec, split, lang, root), lang, spec), split=split, lang=lang
    )


register(
    TaskSpec(
        name="sib200",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="SIB-200: 7-way topic classification of FLORES-200 sentences, train on English",
        languages=FLORES_LANGS,
        metric="accuracy",
        source=HubSource("Davlan/sib200", revision=SIB_HUB_REVISION),
        label_names=SIB_LABELS,
        fields={"id": "index_id", "text_a": "text", "label": "category"},
        train_language=PIVOT,
        head="classification",
        # the final weights, as SIB-200's own recipe keeps them: dadelani/sib-200 code/train_textclass.py:204 scores the
        # dev split only after 500 updates, and its recipe (code/xlmr_zero.sh) makes 440
        dev_selection=False,
        local_format="data/annotated/<lang_Script>/{train,dev,test}.tsv (index_id category text)",
        sizes=SIB_SIZES,
        loader=make_loader(_hub_sib, local_sib),
        example_alignment="parallel",  # index_id names the same FLORES sentence in every language
    ),
    "sib-200",
    "sib",
)


register(
    TaskSpec(
        name="flores200-translate",
        kind="translation",
        modality="text",
        category="generation",
        version="1.0",
        description="FLORES-200 devtest: zero-shot X->eng translation (SixT) after training on one pair; chrF++, spBLEU",
        source=_FLORES_SCRIPT,
        languages=tuple(code for code in FLORES_LANGS if code != PIVOT),
        metric="chrf_pp",
        splits=("dev", "devtest"),
        train_language=PIVOT,
        train_task="wmt14-de-en",
        local_format=_FLORES_LOCAL,
        # every predictions file is scored with each of these; the direction is X->eng (English references)
        extra={"metrics": ("chrf_pp", "spbleu"), "direction": "xx-en"},
        sizes=FLORES_SIZES,
        loader=make_loader(_hub_flores_script, _local_flores),
        example_alignment="parallel",
    ),
    "flores-translate",
    "flores200-mt",
)
