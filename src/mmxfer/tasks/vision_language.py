"""Multimodal intermediate tasks (captioning, VQA) and their text twins.

* ``caption`` = COCO captions, Karpathy split (``yerevann/coco-karpathy``: annotations only, the
  images come from a local COCO 2014 folder: ``--data-dir`` or ``$MMXFER_COCO_IMAGES``).
  Alternative: ``flickr30k`` (Karpathy split JSON). Train = Karpathy ``train`` + ``restval`` (113,287
  images, the usual Karpathy training set) in both modes: the hub split ``train+restval`` and the
  release JSON's ``train``/``restval`` images.
* ``vqa`` = VQAv2, 10 human answers per question, 3129-answer vocabulary and official soft scores
  (:mod:`mmxfer.tasks.answers`). ``HuggingFaceM4/VQAv2`` is a loading script that current ``datasets``
  cannot run, and its only Parquet copy seen (``lmms-lab/VQAv2``) has no train split: pass the VQAv2
  release with ``--data-dir``. Alternatives: ``gqa`` (release JSON), ``textvqa`` (``lmms-lab/textvqa``
  Parquet, or the TextVQA release JSON).
* ``vqa-text``: the same VQAv2 questions, answers and scoring, but the model reads the image's
  COCO captions (joined on the COCO image id) instead of its pixels.
* ``caption-text``: the captioning twin is masked-language modelling over the very same COCO
  captions without the image (same text, same ``caption_mlm`` objective, no pixels).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.answers import VQAV2_VOCAB_SIZE
from mmxfer.tasks.base import HubSource, Sizes, TaskSpec
from mmxfer.tasks.common import dataset_from_rows, find_file, load_hub, make_loader, register

EN = ("en",)
#: yerevann/coco-karpathy: Parquet, splits train/validation/test/restval; only a short main hash (448fdb1) was seen,
#: so it is not pinned
COCO_KARPATHY = HubSource("yerevann/coco-karpathy")
COCO_KARPATHY_TRAIN = HubSource("yerevann/coco-karpathy", splits={"train": "train+restval"})
COCO_SPLIT = {"train": "train2014", "validation": "val2014"}  # VQAv2 split -> COCO image folder
#: captions (rows of the caption tasks): the Karpathy split's 113,287 training images (train + restval) and
#: 5,000 each for validation and test, with about five captions an image (dataset_coco.json)
COCO_CAPTION_SIZES = Sizes(
    {"train": 566747, "validation": 25010, "test": 25010},
    "Karpathy split of COCO 2014 (dataset_coco.json): 113,287 / 5,000 / 5,000 images, about 5 captions each",
)
#: questions of VQAv2 train2014 and val2014 (Goyal et al. 2017; visualqa.org v2.0); the text twin asks the same
VQAV2_SIZES = Sizes(
    {"train": 443757, "validation": 214354},
    "VQAv2 questions, train2014 / val2014 (Goyal et al. 2017)",
)


# --- captions -----------------------------------------------------------------------------------


def _coco_image_root() -> Path:
    root = os.environ.get("MMXFER_COCO_IMAGES")
    if not root:
        raise DataError(
            "COCO Karpathy captions come from the hub without pixels: set MMXFER_COCO_IMAGES to the "
            "folder holding train2014/ and val2014/, or pass the release with --data-dir"
        )
    return Path(root).expanduser()


def _hub_karpathy(spec: TaskSpec, split: str, lang: str, *, with_image: bool):
    ds = load_hub(spec, split)
    for col in ("sentences", "filepath", "filename", "cocoid"):
        if col not in ds.column_names:
            raise DataError(
                f"{spec.source.path}: missing column {col!r}; it has {', '.join(ds.column_names)}"
            )
    root = _coco_image_root() if with_image else None
    rows = []
    for ex in ds:
        for k, sent in enumerate(ex["sentences"]):
            row = {
                "id": f"{ex['cocoid']}-{k}",
                "caption": sent if isinstance(sent, str) else sent["raw"],
            }
            if root is not None:
                row["image"] = formats.image_path(
                    root, f"{ex['filepath']}/{ex['filename']}", ex["filename"]
                )
            rows.append(row)
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_karpathy(json_name: str):
    def local(spec: TaskSpec, split: str, lang: str, root: Path):
        path = find_file(root, [json_name, f"annotations/{json_name}"], spec, "Karpathy split JSON")
        rows = list(formats.karpathy_rows(path, root, split))
        if not spec.has_image:  # the text twin
            rows = [{"id": r["id"], "caption": r["caption"]} for r in rows]
        return dataset_from_rows(spec, rows, split=split, lang=lang)

    return local


_CAPTION_COMMON = dict(
    kind="captioning",
    category="intermediate",
    version="1.0",
    languages=EN,
    metric="accuracy",
    splits=("train", "validation", "test"),
    intermediate=True,
)

register(
    TaskSpec(
        name="caption",
        modality="image-text",
        head="caption_mlm",
        description="COCO captions (Karpathy split), masked-LM over caption tokens conditioned on the image",
        source=COCO_KARPATHY_TRAIN,
        fields={"caption": "sentences"},
        local_format="dataset_coco.json (Karpathy split) + COCO images under the same dir (train2014/, val2014/)",
        extra={
            "dataset": "coco-karpathy",
            "alternatives": ("flickr30k",),
            "image_root_env": "MMXFER_COCO_IMAGES",
        },
        sizes=COCO_CAPTION_SIZES,
        loader=make_loader(
            lambda s, sp, la: _hub_karpathy(s, sp, la, with_image=True),
            _local_karpathy("dataset_coco.json"),
        ),
        **{**_CAPTION_COMMON, "version": "1.1"},
    ),
    "captioning",
    "coco",
    "coco-captions",
)

register(
    TaskSpec(
        name="caption-text",
        modality="text",
        head="caption_mlm",
        description="text twin of caption: masked-LM over the same COCO captions, no image",
        source=COCO_KARPATHY_TRAIN,
        fields={"caption": "sentences"},
        local_format="dataset_coco.json (Karpathy split; images not needed)",
        extra={"dataset": "coco-karpathy", "twin_of": "caption"},
        sizes=COCO_CAPTION_SIZES,
        loader=make_loader(
            lambda s, sp, la: _hub_karpathy(s, sp, la, with_image=False),
            _local_karpathy("dataset_coco.json"),
        ),
        **{**_CAPTION_COMMON, "version": "1.1"},
    ),
    "captioning-text",
    "coco-text",
)

register(
    TaskSpec(
        name="flickr30k",
        modality="image-text",
        head="caption_mlm",
        description="Flickr30K captions (Karpathy split), alternative captioning task",
        source=None,
        fields={"caption": "sentences"},
        local_format="dataset_flickr30k.json (Karpathy split) + flickr30k-images/ under the same dir",
        extra={"dataset": "flickr30k-karpathy"},
        sizes=Sizes(
            {"train": 145000, "validation": 5070, "test": 5000},
            "Karpathy split of Flickr30K: 29,000 / 1,014 / 1,000 images, 5 captions each",
        ),
        loader=make_loader(None, _local_karpathy("dataset_flickr30k.json")),
        **_CAPTION_COMMON,
    ),
    "flickr",
)


# --- VQA ----------------------------------------------------------------------------------------


def _answers_of(value: Any) -> list[str]:
    if not value:
        return []
    return [a["answer"] if isinstance(a, dict) else str(a) for a in value]


def _hub_vqav2(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split)
    for col in ("question_id", "question", "answers", "image"):
        if col not in ds.column_names:
            raise DataError(
                f"{spec.source.path}: missing column {col!r}; it has {', '.join(ds.column_names)}"
            )
    ds = ds.map(
        lambda ex: {"id": str(ex["question_id"]), "answers": _answers_of(ex["answers"])},
        remove_columns=[c for c in ds.column_names if c not in ("question", "image")],
        desc="vqav2",
    )
    return ds


def _vqa_dataset(spec: TaskSpec, rows: list[dict], split: str, lang: str):
    return dataset_from_rows(
        spec,
        [{k: r[k] for k in ("id", "image", "question", "answers")} for r in rows],
        split=split,
        lang=lang,
    )


def _textvqa_local_rows(spec: TaskSpec, split: str, root: Path) -> list[dict]:
    name = {"train": "train", "validation": "val", "test": "test"}[split]
    path = find_file(
        root,
        [f"TextVQA_0.5.1_{name}.json", f"textvqa/TextVQA_0.5.1_{name}.json"],
        spec,
        "TextVQA JSON",
    )
    return formats.textvqa_rows(path, path.parent)


def _local_vqa(spec: TaskSpec, split: str, lang: str, root: Path):
    """VQAv2 release JSON (+ COCO images); falls back to TextVQA JSON (+ train_images/, test_images/)."""
    rows = _vqav2_local_rows(spec, split, root, required=False)
    return _vqa_dataset(
        spec, rows if rows is not None else _textvqa_local_rows(spec, split, root), split, lang
    )


def _local_textvqa(spec: TaskSpec, split: str, lang: str, root: Path):
    """TextVQA JSON only: a data dir that also holds VQAv2 files still gives TextVQA's questions."""
    return _vqa_dataset(spec, _textvqa_local_rows(spec, split, root), split, lang)


def _vqav2_local_rows(
    spec: TaskSpec, split: str, root: Path, *, required: bool
) -> list[dict] | None:
    coco = COCO_SPLIT.get(split)
    qname = f"v2_OpenEnded_mscoco_{coco}_questions.json"
    try:
        qpath = find_file(root, [qname, f"vqav2/{qname}"], spec, "VQAv2 questions JSON")
    except DataError:
        if required:
            raise
        return None
    aname = f"v2_mscoco_{coco}_annotations.json"
    apath = qpath.with_name(aname)
    if not apath.exists():
        raise DataError(f"{spec.name}: {qpath} has no answers file {aname} next to it")
    return formats.vqa_v2_rows(qpath, apath, qpath.parent, coco)


def _captions_by_image(spec: TaskSpec, root: Path, split: str) -> dict[str, list[str]]:
    """COCO captions per image id, from Karpathy ``dataset_coco.json`` or ``captions_<split>.json``."""
    coco = COCO_SPLIT.get(split, split)
    path = find_file(
        root,
        ["dataset_coco.json", f"annotations/captions_{coco}.json", f"captions_{coco}.json"],
        spec,
        "COCO captions JSON",
    )
    data = formats.load_json(path)
    out: dict[str, list[str]] = defaultdict(list)
    key = "annotations" if isinstance(data, dict) and "annotations" in data else "images"
    for i, item in enumerate(formats.record_list(data, key, path)):
        with formats.record(f"{path}: {key}[{i}]"):
            if key == "annotations":
                out[str(item["image_id"])].append(formats.text_value(item["caption"]).strip())
            else:
                out[str(item.get("cocoid", item.get("imgid")))].extend(
                    formats.text_value(s["raw"]).strip() for s in item.get("sentences", [])
                )
    return out


def _twin_rows(spec: TaskSpec, rows: list[dict], captions: dict[str, list[str]]) -> list[dict]:
    out, missing = [], 0
    for r in rows:
        caps = captions.get(str(r["image_id"]))
        if not caps:
            missing += 1
            continue
        out.append(
            {
                "id": r["id"],
                "context": " ".join(caps),
                "question": r["question"],
                "answers": r["answers"],
            }
        )
    if missing and not out:
        raise DataError(
            f"{spec.name}: none of the questions' images has a caption; check the captions file"
        )
    return out


def _local_vqa_text(spec: TaskSpec, split: str, lang: str, root: Path):
    rows = _vqav2_local_rows(spec, split, root, required=True)
    return dataset_from_rows(
        spec, _twin_rows(spec, rows, _captions_by_image(spec, root, split)), split=split, lang=lang
    )


def _hub_vqa_text(spec: TaskSpec, split: str, lang: str):
    ds = load_hub(spec, split)
    caps_spec = TaskSpec(
        name=spec.name,
        kind="captioning",
        modality="text",
        category="intermediate",
        version="",
        description="",
        languages=EN,
        metric="",
        source=COCO_KARPATHY,
    )
    captions: dict[str, list[str]] = defaultdict(list)
    for cap_split in ("train", "validation", "test", "restval"):
        for ex in load_hub(caps_spec, cap_split):
            captions[str(ex["cocoid"])].extend(
                s if isinstance(s, str) else s["raw"] for s in ex["sentences"]
            )
    rows = [
        {
            "id": str(ex["question_id"]),
            "image_id": str(ex["image_id"]),
            "question": ex["question"],
            "answers": _answers_of(ex["answers"]),
        }
        for ex in ds.remove_columns(["image"])
    ]
    return dataset_from_rows(spec, _twin_rows(spec, rows, captions), split=split, lang=lang)


_VQA_COMMON = dict(
    kind="vqa",
    category="intermediate",
    version="1.1",
    languages=EN,
    metric="vqa_accuracy",
    head="vqa",
    intermediate=True,
    splits=("train", "validation"),
)
_VQAV2 = HubSource(
    "HuggingFaceM4/VQAv2",
    loading_script=(
        "pass the VQAv2 release with --data-dir DIR (v2_OpenEnded_mscoco_*_questions.json, v2_mscoco_*_annotations.json, "
        "COCO train2014/ val2014/); its Parquet copy lmms-lab/VQAv2 has no train split"
    ),
)
_VQA_EXTRA = {
    "dataset": "vqav2",
    "answer_vocab_size": VQAV2_VOCAB_SIZE,
    "soft_score": "official: mean over 10 leave-one-out subsets of min(1, matches/3)",
}

register(
    TaskSpec(
        name="vqa",
        modality="image-text",
        description="VQAv2: open-ended VQA on COCO, 3129-answer vocabulary",
        source=_VQAV2,
        fields={
            "id": "question_id",
            "question": "question",
            "answers": "answers",
            "image": "image",
        },
        local_format="v2_OpenEnded_mscoco_{train2014,val2014}_questions.json + v2_mscoco_*_annotations.json + "
        "{train2014,val2014}/ images (or TextVQA_0.5.1_*.json + train_images/)",
        extra={**_VQA_EXTRA, "alternatives": ("gqa", "textvqa")},
        sizes=VQAV2_SIZES,
        loader=make_loader(_hub_vqav2, _local_vqa),
        **_VQA_COMMON,
    ),
    "vqav2",
    "vqa2",
)

register(
    TaskSpec(
        name="vqa-text",
        modality="text",
        description="text twin of vqa: the same VQAv2 questions answered from the image's COCO captions",
        source=_VQAV2,
        fields={
            "id": "question_id",
            "question": "question",
            "answers": "answers",
            "context": "coco-karpathy sentences",
        },
        local_format="VQAv2 questions/annotations JSON + dataset_coco.json (or annotations/captions_<split>.json)",
        extra={**_VQA_EXTRA, "twin_of": "vqa", "captions": "yerevann/coco-karpathy"},
        sizes=VQAV2_SIZES,
        loader=make_loader(_hub_vqa_text, _local_vqa_text),
        **_VQA_COMMON,
    ),
    "vqa_text",
    "vqav2-text",
)


def _hub_gqa(spec: TaskSpec, split: str, lang: str):
    raise DataError(
        "gqa: the hub copy (lmms-lab/GQA) keeps questions and images in separate configs; pass the "
        f"GQA release with --data-dir DIR ({spec.local_format})"
    )


def _local_gqa(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "val", "test": "testdev"}[split]
    path = find_file(
        root, [f"questions/{name}_balanced_questions.json", f"{name}_balanced_questions.json"], spec
    )
    data = formats.load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of questions by id")
    image_root = path.parent.parent if path.parent.name == "questions" else path.parent
    rows = []
    for qid, q in data.items():
        with formats.record(f"{path}: question {qid!r}"):
            rows.append(
                {
                    "id": str(qid),
                    "question": formats.text_value(q["question"]),
                    "answers": [formats.text_value(q["answer"])],
                    "image": formats.image_path(
                        image_root, f"images/{q['imageId']}.jpg", f"{q['imageId']}.jpg"
                    ),
                }
            )
    return dataset_from_rows(spec, rows, split=split, lang=lang)


register(
    TaskSpec(
        name="gqa",
        modality="image-text",
        description="GQA balanced: compositional VQA on Visual Genome images",
        source=HubSource(
            "lmms-lab/GQA",
            "train_balanced_instructions",
            revision="78e9ec37481de666feb0180c7b5a773741cb47ca",
        ),
        fields={"question": "question", "answers": "answer", "image": "imageId"},
        local_format="questions/{train,val,testdev}_balanced_questions.json + images/<imageId>.jpg",
        extra={"dataset": "gqa-balanced", "answer_vocab_size": 1842},
        sizes=Sizes(
            {"train": 943000, "validation": 132062, "test": 12578},
            "GQA balanced questions: train, val and testdev (Hudson and Manning 2019)",
        ),
        loader=make_loader(_hub_gqa, _local_gqa),
        **{**_VQA_COMMON, "splits": ("train", "validation", "test")},
    ),
    "gqa-balanced",
)

register(
    TaskSpec(
        name="textvqa",
        modality="image-text",
        description="TextVQA 0.5.1: questions that need reading text in images",
        # facebook/textvqa is a loading script; lmms-lab/textvqa is its Parquet copy (config default, splits
        # train/validation/test, columns question_id, question, answers: list[str], image); only a short hash was seen
        source=HubSource("lmms-lab/textvqa"),
        fields={
            "id": "question_id",
            "question": "question",
            "answers": "answers",
            "image": "image",
        },
        local_format="TextVQA_0.5.1_{train,val,test}.json + train_images/ test_images/",
        extra={"dataset": "textvqa", "answer_vocab_size": VQAV2_VOCAB_SIZE},
        sizes=Sizes(
            {"train": 34602, "validation": 5000, "test": 5734}, "TextVQA 0.5.1 (Singh et al. 2019)"
        ),
        loader=make_loader(_hub_vqav2, _local_textvqa),
        **{**_VQA_COMMON, "splits": ("train", "validation", "test")},
    ),
    "text-vqa",
)


# --- Multi30K: multilingual captions of Flickr30K images, as a caption-bitext target ---------------


def _local_multi30k(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"validation": "val", "test": "test_2016_flickr", "train": "train"}[split]
    src = find_file(
        root, [f"{name}.{lang}", f"multi30k/{name}.{lang}", f"data/task1/raw/{name}.{lang}"], spec
    )
    return dataset_from_rows(
        spec,
        formats.bitext_with_english_sibling(src, f"{name}.en", f"multi30k {lang}"),
        split=split,
        lang=lang,
    )


register(
    TaskSpec(
        name="multi30k",
        kind="retrieval",
        modality="text",
        category="retrieval",
        version="1.0",
        description="Multi30K task 1: the same Flickr30K image captioned in de/fr/cs, retrieval against English",
        languages=("cs", "de", "fr"),
        metric="tatoeba_accuracy",
        source=None,
        splits=("validation", "test"),
        local_format="{val,test_2016_flickr}.{de,fr,cs} + .en line-aligned (multi30k/dataset data/task1/raw)",
        sizes=Sizes(
            {"validation": 1014, "test": 1000}, "Multi30K task 1: val and test_2016_flickr"
        ),
        loader=make_loader(None, _local_multi30k),
    ),
    "multi30k-bitext",
)
