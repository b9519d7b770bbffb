"""Featurisation: a canonical dataset -> model inputs, cached under a content hash.

Output columns are the model contract:

================  ==============================================================================
kind              columns
================  ==============================================================================
all               ``input_ids``, ``attention_mask`` (+ ``image`` for image-text tasks; the batch
                  gets ``pixel_values`` from :func:`~mmxfer.kinds.collate.collate_fn`, or featurize
                  stores them when given ``image_preprocess``)
classification    ``labels`` (int)
multiple_choice   ``input_ids``/``attention_mask`` as [C, L] per example, ``labels``
span_qa           ``start_positions``/``end_positions`` (0 = CLS when the answer is not in the
                  window), ``example_id``, ``offset_mapping`` ([L, 2]; -1 outside the context), ``max_context``
                  ([L] bool: the token has its maximal context in this window, XTREME)
tagging           one row per word-boundary chunk of a sentence (:mod:`mmxfer.kinds.tagging`): ``labels``
                  on the FIRST sub-token of each word, -100 elsewhere; ``word_ids``
                  (-1 for special tokens), ``n_words``, ``example_id``
vqa               ``answer_ids`` + ``answer_scores`` (sparse); the batch's ``labels`` is the dense
                  float soft-score vector over the answer vocabulary
captioning        ``mlm_labels`` (-100 where not masked; static, seeded masking)
retrieval         source as ``input_ids``; English side as ``target_input_ids`` /
                  ``target_attention_mask`` (mining rows: ``text`` as ``input_ids``)
translation       source as ``input_ids``; ``labels`` = the English target's ids after its start token
================  ==============================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmxfer.errors import DataError
from mmxfer.kinds.base import FeatureOptions, LabelSpace, TaskKind, kind_of
from mmxfer.kinds.cache import cache_key, cache_path, load_cached, store
from mmxfer.kinds.images import check_images, open_image
from mmxfer.kinds.progress import PROGRESS_MIN_ROWS, progress_bars
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets


def feature_key(
    kind: TaskKind,
    dataset: datasets.Dataset,
    tokenizer: Any,
    options: FeatureOptions,
    space: LabelSpace,
) -> str:
    """The cache key of ``dataset`` featurised by ``kind`` with ``options`` and label ``space``."""
    extra = {
        "labels": None,
        "on_bad_image": options.on_bad_image,
        "mlm": None,
        **kind.cache_extra(options, space),
    }
    return cache_key(
        kind.spec,
        dataset,
        tokenizer,
        max_length=options.max_length,
        doc_stride=options.doc_stride if kind.windowed else None,
        split=options.split,
        lang=options.lang,
        answer_vocab=space.get("answer_vocab"),
        image_preprocess=options.image_preprocess,
        extra=extra,
    )


def featurize(
    spec: TaskSpec,
    dataset: datasets.Dataset,
    tokenizer: Any,
    options: FeatureOptions,
    *,
    space: LabelSpace | None = None,
    stats: dict[str, Any] | None = None,
) -> datasets.Dataset:
    """Model inputs for a canonical ``dataset`` of ``spec`` (see the module docstring for the columns).

    ``space``: the label space from the training data (``answer_vocab``, required for VQA;
    ``label_names``, overriding the spec's tag set, e.g. CCG supertags). Cached in
    ``options.cache_dir``; ``stats`` (if given) receives ``cache`` ("hit"/"miss"), ``cache_path``,
    ``bad_images``.
    """
    stats = {} if stats is None else stats
    space = {} if space is None else space
    if options.max_length < 8:
        raise DataError(f"max_length {options.max_length} is too small (at least 8)")
    kind = kind_of(spec)
    kind.check(space)
    key = feature_key(kind, dataset, tokenizer, options, space)
    path = cache_path(spec, key, options.cache_dir)
    stats["cache_path"] = str(path)
    if options.use_cache:
        cached = load_cached(path, stats)
        if cached is not None:
            return cached
    stats["cache"] = "miss"
    features = _encode(
        kind,
        check_images(dataset, on_bad_image=options.on_bad_image, stats=stats),
        tokenizer,
        options,
        space,
        key,
    )
    return store(features, path, stats) if options.use_cache else features


def _encode(
    kind: TaskKind,
    ds: datasets.Dataset,
    tokenizer: Any,
    options: FeatureOptions,
    space: LabelSpace,
    key: str,
) -> datasets.Dataset:
    spec = kind.spec
    if len(ds) == 0:
        raise DataError(
            f"task {spec.name!r} ({options.split}, {options.lang}): no examples left to featurize"
        )
    encode = kind.encoder(tokenizer, options, space)
    keep = kind.kept_columns(ds.column_names)
    remove = [c for c in ds.column_names if c not in keep]
    preprocess = options.image_preprocess
    with progress_bars(len(ds) >= PROGRESS_MIN_ROWS):
        out = ds.map(
            encode,
            batched=True,
            batch_size=options.batch_size,
            remove_columns=remove,
            load_from_cache_file=False,
            keep_in_memory=True,
            new_fingerprint=key,
            desc=f"featurize {spec.name} {options.split} {options.lang or ''}".rstrip(),
        )
        if preprocess is not None and "image" in out.column_names:
            out = out.map(
                lambda ex: {"pixel_values": np.asarray(preprocess(open_image(ex["image"])))},
                keep_in_memory=True,
                load_from_cache_file=False,
                new_fingerprint=f"{key}-px",
                desc="images",
            )
    return out
