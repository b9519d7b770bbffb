"""TaskSpec: everything mmxfer knows about one task, declared in one place.

Each task declares its modality, kind, category, source, languages, metric and version;
nothing else in mmxfer switches on task names. Loaders return a ``datasets.Dataset`` in the
*canonical schema* of the task's kind, so featurisation, heads and metrics never see the
source's column names:

================  =============================================================================
kind              canonical columns
================  =============================================================================
classification    id, text_a, text_b (str or None), label (int index into ``label_names``)
multiple_choice   id, context, question, choices (list[str]), label (int)
span_qa           id, context, question, answers {"text": [str], "answer_start": [int]}
tagging           id, tokens (list[str]), tags (list[str], names from ``label_names``)
vqa               id, image (path or PIL image), question, answers (list[str], the human answers)
                  (the text twin has ``context`` - the scene's captions - instead of ``image``)
captioning        id, image (path or PIL image), caption (the text twin has no ``image``)
retrieval         id, source (sentence in ``lang``), target (its English counterpart)
                  mining tasks (:attr:`TaskSpec.mining`, BUCC): id, side ("source" | "target"), text,
                  gold (id of the aligned sentence on the other side, "" for distractors)
translation       id, source, target
================  =============================================================================

Loaders are built by :func:`mmxfer.tasks.common.make_loader`: ``data_dir`` given -> the official
release files (``local_format`` says which), else the hub source. Featurisation for every kind
lives in :mod:`mmxfer.kinds` (one adapter per kind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import datasets

Kind = Literal[
    "classification",
    "multiple_choice",
    "span_qa",
    "tagging",
    "vqa",
    "captioning",
    "retrieval",
    "translation",
    "bitext",
]
Modality = Literal["text", "image-text"]
#: how a task's example ids align across its languages (:mod:`mmxfer.compare.draws`): ``parallel`` - every
#: language has the same items (ids equal once a leading ``<lang>-`` is stripped), ``partial`` - some items are
#: shared (MLQA), ``independent`` - each language has its own items (TyDiQA, PAN-X, UDPOS, BUCC, Tatoeba's pairs)
Alignment = Literal["parallel", "partial", "independent"]
Category = Literal["classification", "structured", "qa", "retrieval", "generation", "intermediate"]

CATEGORIES: tuple[str, ...] = ("classification", "structured", "qa", "retrieval", "generation")


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the Hugging Face Hub. ``config`` may contain ``{lang}``.

    ``revision`` pins the commit whose files were checked against the task's loader (id, configs,
    splits, columns, types); where each pin was checked is recorded in
    ``mmxfer/resources/hub_contracts.json``. ``loading_script`` marks a hub repository that is a
    loading script (which current ``datasets`` refuses to run) and says what to use instead: loading
    it fails with that one line.
    """

    path: str
    config: str | None = None
    revision: str | None = None
    splits: dict[str, str] = field(default_factory=dict)  # mmxfer split -> hub split
    gated: bool = False
    loading_script: str | None = None


Loader = Callable[["TaskSpec", str, str, "str | None"], "datasets.Dataset"]


@dataclass(frozen=True)
class Sizes:
    """How many examples each split of a task holds as released, per language: what ``mmxfer study --dry-run``
    costs a study from (no data is read for it).

    ``counts``: split (mmxfer's split names) -> one count for every language of the split, or ``{lang: count}``.
    An example is what the task's loader yields: a sentence pair, a question (span QA: before its context is cut
    into windows; multiple choice: with all its choices), a caption, a tagged sentence, an aligned sentence pair.
    ``source``: where the numbers come from (a dataset card, a paper's table, the shipped files).
    """

    counts: Mapping[str, int | Mapping[str, int]]
    source: str

    def count(self, split: str, lang: str) -> int | None:
        """Examples of ``split`` in ``lang``; None when the split or the language is not recorded."""
        value = self.counts.get(split)
        if isinstance(value, Mapping):
            return value.get(lang)
        return value


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: Kind
    modality: Modality
    category: Category
    version: str
    description: str
    languages: tuple[str, ...]  # evaluation languages, codes as the task's source names them
    metric: str  # primary metric, a name in catalog.METRICS
    source: HubSource | None = None
    train_language: str = "en"
    label_names: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)  # canonical column -> source column
    splits: tuple[str, ...] = ("train", "validation", "test")
    train_task: str | None = (
        None  # e.g. XNLI is trained on MNLI; None = its own English train split
    )
    # phase 3: keep the weights of the best score on the *training task's* English dev split (``train_task``'s
    # validation, else the task's own); False = no dev selection, the final weights are kept (XTREME's QA
    # recipe, google-research/xtreme scripts/train_qa.sh: no --evaluate_during_training, --save_steps -1)
    dev_selection: bool = True
    head: str | None = None  # default head name in catalog.HEADS
    local_format: str = ""  # one line: which official release files --data-dir expects
    intermediate: bool = False  # usable as a phase-2 task
    loader: Loader | None = field(default=None, compare=False, repr=False)
    # further properties of the task, read through the typed properties below; other keys are free (plugins,
    # notes on the source such as ``dataset`` or ``hub_lang``)
    extra: dict[str, Any] = field(default_factory=dict)
    # parallel/partial: the bootstrap draws each item once for all languages (their scores are correlated)
    example_alignment: Alignment = "independent"
    sizes: Sizes | None = (
        None  # examples per split and language as released (the cost estimate reads them)
    )

    def load(
        self, split: str, lang: str | None = None, data_dir: str | None = None
    ) -> datasets.Dataset:
        """The canonical-schema dataset for one split and language (from the hub or ``data_dir``)."""
        if self.loader is None:  # pragma: no cover - every registered task has one
            raise NotImplementedError(self.name)
        return self.loader(self, split, lang or self.train_language, data_dir)

    @property
    def has_image(self) -> bool:
        """Whether the task's examples carry an image (an image-text task; its text twin has none)."""
        return self.modality == "image-text"

    # --- the properties ``extra`` holds, typed; a task that does not declare one gets the default ---------

    @property
    def twin_of(self) -> str | None:
        """The image-text task this text task is the twin of (same items, the image described in words): the
        gap analysis pairs the two arms."""
        value = self.extra.get("twin_of")
        return str(value) if value else None

    @property
    def control(self) -> bool:
        """A positive control: an intermediate task known to move the targets, there to show that the design
        detects an effect (compared with the baseline, never pooled with the arms whose modality is the
        question)."""
        return bool(self.extra.get("control"))

    @property
    def synthetic(self) -> bool:
        """The data are procedurally generated, not a benchmark (reports say so)."""
        return bool(self.extra.get("synthetic"))

    @property
    def mining(self) -> bool:
        """Bitext mining (BUCC): each language's rows are both sides' sentences, distractors included, not
        aligned pairs (see the schema table above)."""
        return bool(self.extra.get("mining"))

    @property
    def hub_caveat(self) -> str | None:
        """What the hub copy lacks against the release files; written into every metric row scored from it."""
        value = self.extra.get("hub_caveat")
        return str(value) if value else None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the task's predictions are scored with: ``extra["metrics"]`` (translation: chrF++ and
        spBLEU), else the primary ``metric`` alone."""
        return tuple(self.extra.get("metrics") or (self.metric,))

    @property
    def open_languages(self) -> bool:
        """Local copies may hold languages beyond ``languages`` (Tatoeba's 112), evaluated when asked for."""
        return bool(self.extra.get("open_languages"))

    @property
    def text_prefix(self) -> str:
        """Text put before every sentence the trunk reads (e5's ``query: ``); empty for none."""
        return str(self.extra.get("text_prefix") or "")

    @property
    def shipped(self) -> str | None:
        """Where in the installed package the task's data ship (``mmxfer/resources/sib200``); None: they
        do not."""
        value = self.extra.get("shipped")
        return str(value) if value else None

    @property
    def english_pool(self) -> tuple[str, ...]:
        """Retrieval: the splits whose English sentences all join the candidates (a larger pool than the
        split's pairs)."""
        return tuple(self.extra.get("english_pool") or ())

    @property
    def paired(self) -> tuple[str, ...]:
        """The languages whose sentences are each paired with their translation in the task's own language
        (the positive control's bitext)."""
        return tuple(self.extra.get("paired") or ())

    @property
    def rounds(self) -> tuple[int, ...]:
        """The rounds a multi-round release is read from (ANLI's R1, R2, R3)."""
        return tuple(int(r) for r in self.extra.get("rounds") or ())

    @property
    def data_seed(self) -> int:
        """The seed a generated task's examples are drawn with (the starter world, the CLDR items)."""
        return int(self.extra.get("seed") or 0)

    @property
    def allow_null(self) -> bool:
        """Span QA: an example may have no answer (SQuAD v2), so the decoder may predict the empty span."""
        return bool(self.extra.get("allow_null"))

    @property
    def closed_vocabulary(self) -> bool:
        """Captioning: the captions come from a closed language, so the head's softmax covers only their
        pieces (the starter world's captions)."""
        return bool(self.extra.get("closed_vocabulary"))

    @property
    def answer_vocab_size(self) -> int | None:
        """VQA: the size of the answer vocabulary as the benchmark fixes it (VQAv2's 3,129); None when the
        vocabulary comes from the training data alone."""
        value = self.extra.get("answer_vocab_size")
        return int(value) if value else None
