"""The one training pair of zero-shot translation targets: WMT14 German-English (SixT trains on De->En only).

Hub: ``wmt/wmt14``, config ``de-en``, Parquet on ``main`` since "Convert dataset to Parquet (#8)" (commit
``b199e40``: only this short hash was seen from here, so no revision is pinned; resolve and pin its full 40-hex
hash on a connected machine). Splits train (4,508,785 pairs), validation (newstest2013, 3000) and test
(newstest2014, 3003); one column ``translation`` holding ``{"de": ..., "en": ...}``; ids are row indices.

Local copies (``--data-dir``): line-aligned plain text ``train.de`` + ``train.en`` (also ``valid``/``dev`` and
``test``), or a TSV ``train.tsv`` with a header ``de<TAB>en`` (or two unnamed columns, German first). They may sit
in the data folder itself or in ``wmt14-de-en/`` or ``de-en/`` below it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.base import HubSource, Sizes, TaskSpec
from mmxfer.tasks.common import dataset_from_rows, load_hub, make_loader, read_text, register

SOURCE_LANG, TARGET_LANG = "de", "en"
HUB_COMMIT_SEEN = (
    "b199e40"  # "Convert dataset to Parquet (#8)"; the full hash was not visible from here
)
_SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("valid", "dev", "validation", "newstest2013"),
    "test": ("test", "newstest2014"),
}
_FOLDERS = ("", "wmt14-de-en/", "de-en/", "wmt14/")


def _hub_wmt(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split)
    if "translation" not in ds.column_names:
        raise DataError(
            f"{spec.source.path} (de-en, {split}) has no 'translation' column; it has "
            f"{', '.join(ds.column_names)}"
        )
    flat = ds.flatten()
    for col in (f"translation.{SOURCE_LANG}", f"translation.{TARGET_LANG}"):
        if col not in flat.column_names:
            raise DataError(
                f"{spec.source.path} (de-en, {split}): 'translation' has no {col.split('.')[1]!r} side"
            )
    flat = flat.select_columns([f"translation.{SOURCE_LANG}", f"translation.{TARGET_LANG}"])
    flat = flat.rename_columns(
        {f"translation.{SOURCE_LANG}": "source", f"translation.{TARGET_LANG}": "target"}
    )
    return flat.add_column("id", [str(i) for i in range(len(flat))]).select_columns(
        ["id", "source", "target"]
    )


def _tsv_rows(path: Path) -> list[dict[str, str]]:
    rows = [
        r
        for r in csv.reader(io.StringIO(read_text(path)), delimiter="\t", quoting=csv.QUOTE_NONE)
        if r
    ]
    if rows and SOURCE_LANG in rows[0] and TARGET_LANG in rows[0]:
        head, rows = rows[0], rows[1:]
        src, trg = head.index(SOURCE_LANG), head.index(TARGET_LANG)
    elif rows and len(rows[0]) == 2:
        src, trg = 0, 1
    else:
        raise DataError(f"{path}: expected a header de<TAB>en or two columns (German, English)")
    out = []
    for n, r in enumerate(rows):
        if len(r) <= max(src, trg):
            raise DataError(
                f"{path}: row {n + 1} has {len(r)} column(s); expected German<TAB>English"
            )
        out.append({"id": str(n), "source": r[src], "target": r[trg]})
    return out


def _local_wmt(spec: TaskSpec, split: str, lang: str, root: Path):
    """Only the named places are looked at (no recursive search: a data folder holds other tasks' ``train.tsv``)."""
    if not root.is_dir():
        raise DataError(f"data dir {str(root)!r} does not exist")
    names = _SPLIT_NAMES[split]
    for name in names:
        for folder in _FOLDERS:
            for suffix in ("", ".gz"):
                src_path = root / folder / f"{name}.{SOURCE_LANG}{suffix}"
                trg_path = root / folder / f"{name}.{TARGET_LANG}{suffix}"
                if src_path.is_file() and trg_path.is_file():
                    return dataset_from_rows(
                        spec, formats.aligned_pairs(src_path, trg_path), split=split, lang=lang
                    )
            for tsv in (f"{name}.tsv", f"{name}.de-en.tsv"):
                for suffix in ("", ".gz"):
                    path = root / folder / f"{tsv}{suffix}"
                    if path.is_file():
                        return dataset_from_rows(spec, _tsv_rows(path), split=split, lang=lang)
    where = ", ".join(f"{f or './'}" for f in _FOLDERS)
    raise DataError(
        f"task {spec.name!r}: no {split} pairs in {str(root)!r}: expected {names[0]}.de + {names[0]}.en "
        f"(or {'/'.join(names)}), or {names[0]}.tsv, in one of {where} ({spec.local_format})"
    )


register(
    TaskSpec(
        name="wmt14-de-en",
        kind="translation",
        modality="text",
        category="generation",
        version="1.0",
        description="WMT14 German->English parallel text: the one training pair of zero-shot translation (SixT)",
        languages=("deu_Latn",),
        train_language="deu_Latn",
        metric="chrf_pp",
        source=HubSource("wmt/wmt14", "de-en"),
        fields={"source": "translation.de", "target": "translation.en"},
        local_format="train.de + train.en line-aligned (also valid|dev and test), or train.tsv with a header de<TAB>en",
        extra={"hub_commit_seen": HUB_COMMIT_SEEN, "pair": "deu_Latn-eng_Latn"},
        sizes=Sizes(
            {"train": 4508785, "validation": 3000, "test": 3003},
            "huggingface/datasets@d7dfbc83 datasets/wmt14/dataset_infos.json, de-en (num_examples)",
        ),
        loader=make_loader(_hub_wmt, _local_wmt),
    ),
    "wmt14",
    "wmt14-deu-eng",
)
