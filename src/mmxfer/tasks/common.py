"""Shared plumbing for task loaders: registration, language checks, hub loading, canonical datasets.

A loader built with :func:`make_loader` checks the split and language, reads the local release
files when ``data_dir`` is given (else the hub), and verifies the result: canonical columns
present, split not empty. Every failure a user can cause is one :class:`MmxferError`.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmxfer import assets, languages
from mmxfer.catalog import TASKS
from mmxfer.errors import AssetError, DataError, MmxferError, UnknownNameError, suggest
from mmxfer.tasks.base import TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    import datasets

# datasets is imported by the functions that build datasets: registering the tasks (`mmxfer ls`) stays fast

#: canonical columns per kind (the contract documented in :mod:`mmxfer.tasks.base`)
CANONICAL: dict[str, tuple[str, ...]] = {
    "classification": ("id", "text_a", "text_b", "label"),
    "multiple_choice": ("id", "context", "question", "choices", "label"),
    "span_qa": ("id", "context", "question", "answers"),
    "tagging": ("id", "tokens", "tags"),
    "vqa": ("id", "question", "answers"),
    "captioning": ("id", "caption"),
    "retrieval": ("id", "source", "target"),
    "mining": ("id", "side", "text", "gold"),
    "translation": ("id", "source", "target"),
    "bitext": ("id", "source", "target"),
}


def register(spec: TaskSpec, *aliases: str) -> TaskSpec:
    """Add ``spec`` to ``catalog.TASKS`` under its name and ``aliases``."""
    return TASKS.add(spec, spec.name, *aliases)


def schema_of(spec: TaskSpec) -> str:
    """The canonical-schema key of ``spec`` (``mining`` for BUCC-style bitext mining)."""
    return "mining" if spec.mining else spec.kind


def canonical_schema(spec: TaskSpec) -> str:
    """The :func:`features_for` key of ``spec``'s datasets: text twins of image tasks use ``<kind>-text``."""
    schema = schema_of(spec)
    return schema + "-text" if spec.kind in ("vqa", "captioning") and not spec.has_image else schema


def check_language(spec: TaskSpec, lang: str, data_dir: str | None = None) -> str:
    """``lang`` if the task evaluates it; local copies may hold extra languages (Tatoeba's 112)."""
    if lang in spec.languages or lang == spec.train_language:
        return lang
    normalised = _normalise(spec, lang)
    if normalised is not None:
        return normalised
    if data_dir is not None and spec.open_languages:
        return lang
    raise UnknownNameError(
        f"task {spec.name!r} has no language {lang!r}{suggest(lang, spec.languages)}; "
        f"it has {len(spec.languages)}: {', '.join(spec.languages[:12])}{' ...' if len(spec.languages) > 12 else ''}"
    )


def evaluation_languages(
    spec: TaskSpec, subset: Sequence[str] | None = None, data_dir: str | None = None
) -> list[str]:
    """The languages a zero-shot evaluation of ``spec`` covers: all of them, or those of ``subset`` that the task
    has (written in any code system: ``de``, ``deu``, ``deu_Latn``), in the task's order; [] when it has none."""
    if not subset:
        return list(spec.languages)
    wanted = set()
    for lang in subset:
        try:
            wanted.add(check_language(spec, lang, data_dir))
        except UnknownNameError:
            continue
    extra = (
        [lang for lang in subset if lang in wanted and lang not in spec.languages]
        if data_dir is not None and spec.open_languages
        else []
    )  # local copies with more languages
    return [lang for lang in spec.languages if lang in wanted] + extra


def _normalise(spec: TaskSpec, lang: str) -> str | None:
    """``lang`` written in another code system (``de`` for ``deu_Latn``, ``deu`` for ``de``), if any."""
    try:
        info = languages.lookup(lang)
    except MmxferError:
        return None
    # aliases: Tatoeba's cmn, ara
    for code in (
        info.flores,
        info.iso639_1,
        info.iso639_3,
        *info.aliases,
    ):
        if code and (code in spec.languages or code == spec.train_language):
            return code
    return None


def check_split(spec: TaskSpec, split: str) -> str:
    if split not in spec.splits:
        raise DataError(
            f"task {spec.name!r} has no split {split!r}; it has: {', '.join(spec.splits)}"
        )
    return split


def load_hub(
    spec: TaskSpec,
    split: str,
    config: str | None = None,
    *,
    hub_split: str | None = None,
    **kwargs: Any,
) -> datasets.Dataset:
    """The hub split of ``spec.source`` (``config`` overrides the source's), with clear errors; ``kwargs`` go to
    ``datasets.load_dataset`` (``data_dir``: one folder of a Parquet export)."""
    src = spec.source
    if src is None:
        raise DataError(
            f"task {spec.name!r} has no hub source; pass a local copy with --data-dir ({spec.local_format})"
        )
    if src.loading_script:
        raise DataError(
            f"task {spec.name!r}: hub dataset {src.path!r} is a loading script, which current `datasets` "
            f"cannot run; {src.loading_script}"
        )
    name = config if config is not None else src.config
    hub_split = hub_split or src.splits.get(split, split)
    # a local copy: no token, no cache
    mirrored = assets.hub_mirror_dir(src.path, src.revision) is not None
    if src.gated and not mirrored and not assets.hub_token():
        raise AssetError(
            f"task {spec.name!r}: hub dataset {src.path!r} is gated: accept its terms on the Hub and "
            f"set HF_TOKEN, or pass a local copy with --data-dir DIR ({spec.local_format})"
        )
    try:
        return assets.load_hub_dataset(
            src.path, name, split=hub_split, revision=src.revision, gated=src.gated, **kwargs
        )
    except AssetError as exc:
        if mirrored or not assets.is_offline():
            raise
        raise AssetError(
            f"task {spec.name!r} needs hub dataset {src.path!r} ({name or 'default'}, split {hub_split}), which is "
            f"not in the local cache, and the hub is offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set); pass a "
            f"local copy with --data-dir DIR: {spec.local_format}"
        ) from exc


def find_file(
    data_dir: str | os.PathLike, candidates: Sequence[str], spec: TaskSpec, what: str = ""
) -> Path:
    """The first of ``candidates`` (paths relative to ``data_dir``; ``.gz`` variants too) that exists.

    Falls back to a recursive search for the candidates' base names, so a user may point
    ``--data-dir`` at the release folder itself or at a parent of several releases.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data dir {str(root)!r} does not exist")
    for rel in candidates:
        for suffix in ("", ".gz"):
            path = root / f"{rel}{suffix}"
            if path.is_file():
                return path
    for rel in candidates:
        base = Path(rel).name
        for suffix in ("", ".gz"):
            hits = sorted(
                p
                for p in root.rglob(base + suffix)
                if p.is_file() and str(p).endswith(rel + suffix)
            )
            if hits:
                return hits[0]
    raise DataError(
        f"task {spec.name!r}: no {what or 'data file'} in {str(root)!r}; expected one of "
        f"{', '.join(candidates[:4])} ({spec.local_format})"
    )


def read_text(path: Path) -> str:
    """UTF-8 text of ``path``, gunzipped when it ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


#: the longest line a line-based release file may have (a sentence, a TSV row, a CoNLL-U token): real ones are under
#: 10,000 characters; a longer line is a file of another format, or one whose line ends were lost
MAX_LINE_CHARS = 131_072


def check_line_lengths(text: str, path: Path) -> None:
    """One DataError naming the first line of ``text`` longer than :data:`MAX_LINE_CHARS`."""
    if len(text) <= MAX_LINE_CHARS:
        return
    for n, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE_CHARS:
            raise DataError(
                f"{path}:{n}: a line of {len(line):,} characters, more than the {MAX_LINE_CHARS:,} a line "
                f"of this format may have (is it the right file, with its line ends?)"
            )


def read_lines(path: Path) -> list[str]:
    """The lines of a line-based release file (``\r\n`` or ``\n``), each at most :data:`MAX_LINE_CHARS` long."""
    text = read_text(path)
    check_line_lengths(text, path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def features_for(schema: str, label_names: Sequence[str] = ()) -> datasets.Features:
    """Explicit Arrow types for a canonical schema (so None and empty lists stay well typed)."""
    from datasets import Features, Image, Value
    from datasets import Sequence as Seq

    s, i = Value("string"), Value("int64")
    table: dict[str, dict[str, Any]] = {
        "classification": {"id": s, "text_a": s, "text_b": s, "label": i},
        "multiple_choice": {"id": s, "context": s, "question": s, "choices": Seq(s), "label": i},
        "span_qa": {
            "id": s,
            "context": s,
            "question": s,
            "answers": {"text": Seq(s), "answer_start": Seq(i)},
        },
        "tagging": {"id": s, "tokens": Seq(s), "tags": Seq(s)},
        "vqa": {"id": s, "image": Image(), "question": s, "answers": Seq(s)},
        "vqa-text": {"id": s, "context": s, "question": s, "answers": Seq(s)},
        "captioning": {"id": s, "image": Image(), "caption": s},
        "captioning-text": {"id": s, "caption": s},
        "retrieval": {"id": s, "source": s, "target": s},
        "bitext": {"id": s, "source": s, "target": s},
        "mining": {"id": s, "side": s, "text": s, "gold": s},
        "translation": {"id": s, "source": s, "target": s},
    }
    return Features(table[schema])


def dataset_from_rows(
    spec: TaskSpec, rows: Iterable[dict[str, Any]], *, split: str, lang: str
) -> datasets.Dataset:
    """A canonical dataset for ``spec`` from plain dict rows (images as paths, bytes or PIL images)."""
    import datasets

    rows = list(rows)
    feats = features_for(canonical_schema(spec))
    if not rows:
        raise DataError(f"task {spec.name!r}: split {split!r} for language {lang!r} is empty")
    missing = [c for c in feats if c not in rows[0]]
    if missing:
        raise DataError(f"task {spec.name!r}: rows lack canonical column(s) {', '.join(missing)}")
    columns = {name: [row[name] for row in rows] for name in feats}
    if "image" in columns:
        columns["image"] = [_image_value(v) for v in columns["image"]]
    return datasets.Dataset.from_dict(columns, features=feats)


def _image_value(value: Any) -> Any:
    """What ``datasets.Image`` accepts: a path, bytes or a PIL image (kept lazy: never decoded here)."""
    if isinstance(value, (str, os.PathLike)):
        return {"path": str(value), "bytes": None}
    if isinstance(value, bytes):
        return {"path": None, "bytes": value}
    return value


def rename_to_canonical(
    spec: TaskSpec, ds: datasets.Dataset, *, split: str, lang: str
) -> datasets.Dataset:
    """Rename source columns to canonical ones (``spec.fields``: canonical -> source); missing = DataError."""
    missing = [src for src in spec.fields.values() if src not in ds.column_names]
    if missing:
        raise DataError(
            f"task {spec.name!r} ({spec.source.path if spec.source else 'local'}, split {split}, {lang}): "
            f"missing column(s) {', '.join(missing)}; the data has {', '.join(ds.column_names)}"
        )
    mapping = {src: canon for canon, src in spec.fields.items() if src != canon}
    return ds.rename_columns(mapping) if mapping else ds


def verify(spec: TaskSpec, ds: datasets.Dataset, *, split: str, lang: str) -> datasets.Dataset:
    """Check the canonical columns and that the split is not empty."""
    missing = [c for c in features_for(canonical_schema(spec)) if c not in ds.column_names]
    if missing:
        raise DataError(
            f"task {spec.name!r} ({split}, {lang}): missing column(s) {', '.join(missing)} "
            f"after loading; columns are {', '.join(ds.column_names)}"
        )
    if len(ds) == 0:
        raise DataError(f"task {spec.name!r}: split {split!r} for language {lang!r} is empty")
    return ds


HubFn = Callable[[TaskSpec, str, str], "datasets.Dataset"]
LocalFn = Callable[[TaskSpec, str, str, Path], "datasets.Dataset"]


#: a folder of release files for the tasks the hub cannot serve, read when no ``--data-dir`` is given
LOCAL_DATA_ENV = "MMXFER_LOCAL_DATA"


def hub_serves(spec: TaskSpec) -> bool:
    """False for a task without a hub source or whose hub dataset is a loading script (VQAv2, CCGbank, ...)."""
    return spec.source is not None and not spec.source.loading_script


GENERATED_FORMAT = (
    "(no files)"  # how the local_format of a task whose data is generated ends (the starter world)
)


def is_generated(spec: TaskSpec) -> bool:
    """True for a task whose data is made by code, not read from any folder or hub dataset."""
    return spec.source is None and spec.local_format.endswith(GENERATED_FORMAT)


def local_data_dir(spec: TaskSpec, data_dir: str | None) -> str | None:
    """The folder ``spec`` reads its release files from: ``data_dir`` when given (every task reads local files);
    without it, ``$MMXFER_LOCAL_DATA`` for a task the hub cannot serve (:func:`hub_serves`), so a study on the
    hub can still train on VQAv2 or CCGbank; else None: the hub."""
    if data_dir is not None or hub_serves(spec):
        return data_dir
    return os.environ.get(LOCAL_DATA_ENV) or None


def make_loader(hub: HubFn | None, local: LocalFn | None):
    """A :data:`~mmxfer.tasks.base.Loader` that dispatches to ``local`` (with ``data_dir``, or
    :func:`local_data_dir`'s folder for a task the hub cannot serve) or ``hub``."""

    def loader(spec: TaskSpec, split: str, lang: str, data_dir: str | None) -> datasets.Dataset:
        if local is not None:
            data_dir = local_data_dir(spec, data_dir)
        check_split(spec, split)
        lang = check_language(spec, lang, data_dir)
        if data_dir is not None:
            if local is None:
                raise DataError(f"task {spec.name!r} has no local-file mode")
            ds = local(spec, split, lang, Path(data_dir).expanduser())
        else:
            if hub is None:
                raise DataError(
                    f"task {spec.name!r} has no public source: pass a local copy with --data-dir DIR "
                    f"({spec.local_format})"
                )
            ds = hub(spec, split, lang)
        return verify(spec, ds, split=split, lang=lang)

    return loader


def hub_simple(spec: TaskSpec, split: str, lang: str) -> datasets.Dataset:
    """Hub split with ``spec.fields`` renamed to canonical names, ``id`` added when absent."""
    ds = load_hub(spec, split)
    ds = rename_to_canonical(spec, ds, split=split, lang=lang)
    if "id" not in ds.column_names:
        ds = ds.add_column("id", [f"{split}-{i}" for i in range(len(ds))])
    return ds


QA_FIELDS = {"id": "id", "context": "context", "question": "question", "answers": "answers"}


def hub_span_qa(
    config_of: Callable[[str], str | None] = lambda lang: None,
    id_filter: Callable[[str], str] | None = None,
) -> Callable[..., datasets.Dataset]:
    """Hub loader for SQuAD-format QA: the config per language (None = the source's), optionally only
    the ids starting with ``id_filter(lang)`` (TyDiQA-GoldP keeps every language in one config)."""

    def hub(spec: TaskSpec, split: str, lang: str) -> datasets.Dataset:
        ds = load_hub(spec, split, config=config_of(lang))
        ds = rename_to_canonical(spec, ds, split=split, lang=lang)
        if id_filter is not None:
            prefix = id_filter(lang)
            ds = ds.filter(lambda ex: str(ex["id"]).startswith(prefix), desc=f"{spec.name} {lang}")
        return ds.select_columns(["id", "context", "question", "answers"]).cast(
            features_for("span_qa")
        )

    return hub
