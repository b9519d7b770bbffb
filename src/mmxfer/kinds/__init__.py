"""One adapter per task kind, between the task specs and the training/evaluation loops.

Layer: imports the core, :mod:`mmxfer.tasks`, :mod:`mmxfer.metrics` and :mod:`mmxfer.models`;
never :mod:`mmxfer.train`, :mod:`mmxfer.evaluation`, :mod:`mmxfer.compare`, the study or the CLI.
Importing this package registers every kind in :data:`mmxfer.catalog.KINDS`.

- ``base``: :class:`TaskKind` (the adapter interface), :class:`FeatureOptions`, :func:`kind_of`
  (the one lookup by ``spec.kind``), padding
- ``featurize``: :func:`featurize` - check images, encode with the kind, cache
- ``cache``: content-hash cache keys and the on-disk feature store
- ``images``: image decoding, checking, the default preprocessing
- ``collate``: :func:`collate_fn` - padded torch batches
- ``decode``: feature ids and the argmax decoding shared by single-label kinds
- ``progress``: the ``datasets`` progress bars around featurisation
- one module per kind: ``classification``, ``multiple_choice``, ``span_qa``, ``tagging``, ``vqa``,
  ``captioning``, ``retrieval`` (BUCC mining included), ``translation``, ``bitext``
"""

from mmxfer.kinds import (  # noqa: F401  (registration)
    bitext,
    captioning,
    classification,
    multiple_choice,
    retrieval,
    span_qa,
    tagging,
    translation,
    vqa,
)
from mmxfer.kinds.base import FeatureOptions, LabelSpace, TaskKind, kind_of
from mmxfer.kinds.collate import collate_fn
from mmxfer.kinds.featurize import featurize

__all__ = ["FeatureOptions", "LabelSpace", "TaskKind", "collate_fn", "featurize", "kind_of"]
