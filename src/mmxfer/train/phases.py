"""The three phases of one arm: intermediate training (phase 2), target fine-tuning (phase 3), and
zero-shot prediction on every target language; or, without a target, retrieval on the trunk.

Phase-2 reuse: a phase-2 trunk is keyed by everything that determines it - the intermediate
task(s), the trunk, the vision tower (only for image-text tasks), the intermediate recipe, the
multi-task mixing (only for several tasks), the precision, the *phase-2 seed*, where the training
data comes from (per task: the resolved ``--data-dir``, the hub id, config and revision, or
"generated") and ``on_bad_image`` (image-text tasks) - and lives in
``<runs_dir>/<study>/_intermediate/<label>-<hash>/trunk`` with its own ``DONE``. Every target of
an arm reuses it. The ``DONE`` also records a content fingerprint of each task's training examples
(:func:`data_fingerprint`): a trunk is reused only when the data given now has the same fingerprint,
else the run stops with one line - a trunk other runs were made with is never replaced behind their
back (remove its folder to train it again). Fingerprinting reads the whole training split, so within
:func:`fingerprint_once` (a study's grid) each trunk's data is fingerprinted once, by the first run that
trains or reuses it. One process trains a phase-2 folder at a time
(:mod:`mmxfer.runs.lock`): others wait while it lives and take its lock over when it died.

Phase-2 seed policy: ``intermediate.seed: null`` (default) = the run's seed, so
each seed of a study trains its own phase-2 trunk and the seed-to-seed spread of the gap includes
phase-2 variance (the quantity being compared); ``intermediate.seed: N`` = one phase-2 trunk shared
by all seeds (cheaper; seeds then vary phase 3 only).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from mmxfer import catalog
from mmxfer.config import ExperimentConfig, PhaseConfig, config_hash, to_dict
from mmxfer.errors import ConfigError, DataError, RunStoreError, TrainingError
from mmxfer.evaluation.runner import evaluate_trunk
from mmxfer.evaluation.scoring import score_file_rows, score_predictions
from mmxfer.evaluation.suites import suite_tasks, uses_trunk
from mmxfer.kinds import kind_of
from mmxfer.kinds.images import open_image
from mmxfer.models.build import build_task_model, check_sequence_length, visual_token_count
from mmxfer.models.image_features import FrozenImageFeatures
from mmxfer.models.trunk import SEAL_FILE, Trunk, load_profile_trunk, save_trunk
from mmxfer.runs import atomic, sealed
from mmxfer.runs.lock import FileLock
from mmxfer.runs.store import Run, slug
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import evaluation_languages, is_generated, local_data_dir
from mmxfer.train import data as train_data
from mmxfer.train.data import MultiTaskDataset, MultiTaskModel, TaskData
from mmxfer.train.loop import (
    Batches,
    EvalFn,
    LoopOptions,
    LoopResult,
    eval_loader,
    gather_outputs,
    make_accelerator,
    remove_training_state,
    safe_load,
    train_phase,
)
from mmxfer.train.sampling import multitask_epoch_batches

log = logging.getLogger(__name__)

INTERMEDIATE_DIR = "_intermediate"
SELECTION_FILE = "selection.json"  # phase-2 model selection record (intermediate.select_best)
SELECTION_SUMMARY = (
    "metrics",
    "best",
    "best_step",
    "best_epoch",
)  # what a DONE record repeats of it
# 2: the key names the data source and on_bad_image; DONE records the data fingerprint
PHASE2_FORMAT = 2  # bump when phase-2 training changes in a way that invalidates stored trunks


def phase2_seed(profile: ExperimentConfig, seed: int) -> int:
    return profile.intermediate.seed if profile.intermediate.seed is not None else seed


def data_source(spec: TaskSpec, data_dir: str | None) -> dict[str, Any]:
    """Where a task's training data comes from: generated (the starter world), a local release folder (resolved;
    also for a task without a hub source such as CCGbank, so trunks trained on different copies never share a
    folder), or the hub."""
    if is_generated(spec):
        return {"generated": spec.version}
    data_dir = local_data_dir(spec, data_dir)
    if data_dir is not None:
        return {"data_dir": str(Path(data_dir).expanduser().resolve())}
    src = spec.source
    # no folder for a task that reads only local files: its loader says what to pass
    if src is None:
        return {"data_dir": None}
    return {"hub": src.path, "config": src.config, "revision": src.revision}


def phase2_key(
    profile: ExperimentConfig, tasks: Sequence[str], seed: int, data_dir: str | None = None
) -> dict[str, Any]:
    """Everything a phase-2 trunk depends on (hashed into its folder name)."""
    specs = [catalog.task(t) for t in tasks]
    names = [s.name for s in specs]
    image = any(s.has_image for s in specs)
    return {
        "format": PHASE2_FORMAT,
        "tasks": names,
        "trunk": to_dict(profile.trunk),
        "vision": to_dict(profile.vision) if image else None,
        "phase": to_dict(profile.intermediate),
        "multitask": to_dict(profile.multitask) if len(names) > 1 else None,
        "precision": profile.precision,
        "seed": phase2_seed(profile, seed),
        "versions": [s.version for s in specs],
        "data": [data_source(s, data_dir) for s in specs],
        "on_bad_image": profile.on_bad_image if image else None,
    }


def phase2_dir(
    profile: ExperimentConfig,
    tasks: Sequence[str],
    seed: int,
    runs_dir: str | Path,
    study: str,
    data_dir: str | None = None,
) -> Path:
    key = phase2_key(profile, tasks, seed, data_dir)
    label = slug("+".join(key["tasks"]) + f"-s{key['seed']}")
    return Path(runs_dir) / slug(study) / INTERMEDIATE_DIR / f"{label}-{config_hash(key)}"


def data_fingerprint(dataset: Any) -> str:
    """sha256 of a dataset's examples as Python values (row by row, in order): the same examples give the same
    fingerprint whatever the file layout or arrow chunking. Images stored as paths are fingerprinted by path."""
    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(dataset.column_names)).encode())
    for batch in dataset.with_format("arrow").iter(batch_size=4096):
        for row in batch.to_pylist():
            digest.update(repr(sorted(row.items())).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def training_data_fingerprint(
    profile: ExperimentConfig, tasks: Sequence[str], data_dir: str | None
) -> dict[str, str]:
    """Each task's fingerprint of the English training examples phase 2 trains on (after the example cap)."""
    out = {}
    for name in tasks:
        spec = catalog.task(name)
        out[spec.name] = data_fingerprint(
            _load_split(
                spec,
                "train",
                spec.train_language,
                data_dir,
                profile.intermediate.max_train_examples,
            )
        )
    return out


#: the fingerprints taken inside :func:`fingerprint_once`, by resolved phase-2 folder; None outside it
_FINGERPRINTS: contextvars.ContextVar[dict[Path, dict[str, str]] | None] = contextvars.ContextVar(
    "phase2_fingerprints", default=None
)


@contextlib.contextmanager
def fingerprint_once() -> Iterator[None]:
    """Within the block, the training data of each phase-2 trunk is fingerprinted once: the runs after the first
    compare the trunk's record with that fingerprint. For one sitting over one copy of the data (a study's local
    grid); data changed while the block runs is not seen, so a separate command checks again."""
    token = _FINGERPRINTS.set({})
    try:
        yield
    finally:
        _FINGERPRINTS.reset(token)


def _fingerprint_for(
    folder: Path, profile: ExperimentConfig, tasks: Sequence[str], data_dir: str | None
) -> dict[str, str]:
    """:func:`training_data_fingerprint` of the data of the trunk in ``folder``, taken once per
    :func:`fingerprint_once` block."""
    seen = _FINGERPRINTS.get()
    key = folder.resolve()
    if seen is not None and key in seen:
        return seen[key]
    fingerprint = training_data_fingerprint(profile, tasks, data_dir)
    if seen is not None:
        seen[key] = fingerprint
    return fingerprint


def _phase2_done(folder: Path) -> dict[str, Any]:
    path = folder / "DONE"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunStoreError(
            f"{path}: not valid JSON; the phase-2 folder is damaged - remove {folder} to train it again"
        ) from None
    if not isinstance(info, dict):
        raise RunStoreError(f"{path}: not a phase-2 record; remove {folder} to train it again")
    return info


def check_trunk_intact(folder: Path, info: dict[str, Any]) -> None:
    """The trunk of a finished phase-2 folder must be the one its DONE names: its checksums file unchanged (DONE
    records its sha256 as ``trunk_seal``) and every weight and tokenizer file matching it."""
    trunk, fix = (
        folder / "trunk",
        f"remove {folder} to train it again (runs made with it keep their results)",
    )
    recorded = info.get("trunk_seal")
    seal = trunk / SEAL_FILE
    if not seal.is_file() or sealed.sha256_file(seal) != recorded:
        raise RunStoreError(
            f"phase 2: the trunk in {folder} is damaged: {seal} is "
            f"{'missing' if not seal.is_file() else 'not the one DONE records'}; {fix}"
        )
    problem = sealed.damage(trunk, SEAL_FILE)
    if problem:
        raise RunStoreError(f"phase 2: the trunk in {folder} is damaged: {problem}; {fix}")


def check_reusable(
    folder: Path, profile: ExperimentConfig, tasks: Sequence[str], data_dir: str | None
) -> None:
    """A finished phase-2 trunk is reused only when it is intact (:func:`check_trunk_intact`) and on the data it
    was trained on (its DONE's fingerprint)."""
    info = _phase2_done(folder)
    missing = [key for key in ("data_fingerprint", "trunk_seal") if not info.get(key)]
    if missing:
        raise RunStoreError(
            f"phase 2: {folder / 'DONE'} records no {' or '.join(missing)}, so it is not a phase-2 "
            f"folder this mmxfer wrote (or it is damaged); remove {folder} to train it again"
        )
    check_trunk_intact(folder, info)
    recorded = info["data_fingerprint"]
    try:
        now = _fingerprint_for(folder, profile, tasks, data_dir)
    except DataError as exc:
        raise DataError(
            f"phase 2: cannot check the data the trunk in {folder} was trained on: {exc}"
        ) from None
    changed = [t for t in recorded if recorded.get(t) != now.get(t)]
    if changed:
        where = f"--data-dir {data_dir}" if data_dir else "its source"
        raise RunStoreError(
            f"phase 2: the trunk in {folder} was trained on other {', '.join(changed)} training data than "
            f"{where} gives now (content fingerprint {recorded[changed[0]][:12]} recorded, "
            f"{now.get(changed[0], 'none')[:12]} now); it is not reused: restore that data, or remove {folder} to "
            f"train it again (runs made with it keep their results)"
        )


def log_skipped(data: TaskData, phase_name: str, log_path: Path) -> int:
    """Put how many training examples ``data``'s kind left out (:attr:`TaskData.skipped`) into the training log
    (once, also on resume); returns the count."""
    if data.skipped:
        row = {
            "phase": phase_name,
            "step": 0,
            "event": "skipped_training_examples",
            "task": data.spec.name,
            "skipped": data.skipped,
            "kept": len(data.raw),
        }
        rows = atomic.read_jsonl(log_path, skip_bad=True) if log_path.is_file() else []
        if row not in rows:
            atomic.append_jsonl(log_path, row)
    return data.skipped


def _build(
    trunk: Trunk, spec: TaskSpec, data: TaskData, profile: ExperimentConfig, image: bool
) -> Any:
    kind = kind_of(spec)
    return build_task_model(
        trunk,
        kind.head,
        num_labels=data.num_labels,
        vision_cfg=profile.vision if image else None,
        freeze_embeddings=profile.trunk.freeze_embeddings,
        train_top_layers=profile.trunk.train_top_layers,
        **kind.head_options(data.label_space),
    )


def checked_max_length(
    trunk: Trunk,
    specs: Sequence[TaskSpec],
    profile: ExperimentConfig,
    phase_name: str,
    phase: PhaseConfig,
) -> int:
    """The phase's featurisation max length; fails fast - before any data is loaded - when a task's
    visual + text tokens exceed the trunk's positions (the phase's one length check)."""
    max_length = phase.max_length or profile.trunk.max_length
    length_key = f"{phase_name}.max_length" if phase.max_length else "trunk.max_length"
    visual = None  # counted once, for the first image-text task: it depends on profile.vision only
    for spec in specs:
        image = spec.has_image
        if image and visual is None:
            visual = visual_token_count(profile.vision)
        check_sequence_length(
            trunk,
            visual if image else 0,
            max_length,
            length_key=length_key,
            dual=catalog.HEADS.get(kind_of(spec).head).dual,
        )
    return max_length


def _load_split(
    spec: TaskSpec,
    split: str,
    lang: str,
    data_dir: str | None,
    limit: int | None,
    text_prefix: str = "",
) -> Any:
    ds = train_data.capped(spec.load(split, lang, data_dir), split, limit)
    if len(ds) == 0:
        raise DataError(f"{spec.name} {split}-{lang}: no examples")
    return train_data.with_text_prefix(ds, text_prefix)


def target_text_prefix(profile: ExperimentConfig, spec: TaskSpec) -> str:
    """The target's ``text_prefix``, which only classification targets (trained on classification) take."""
    prefix = profile.phase_for_target(spec.name).text_prefix
    train_spec = catalog.task(spec.train_task) if spec.train_task else spec
    for task in (spec, train_spec) if prefix else ():
        if task.kind != "classification":
            where = (
                f"target_overrides.{spec.name}.text_prefix"
                if "text_prefix" in profile.target_overrides.get(spec.name, {})
                else "target.text_prefix"
            )
            raise ConfigError(
                f"{where} is set ({prefix!r}), but {task.name} is a {task.kind} task: "
                f"only classification targets take a text prefix"
            )
    return prefix


class _Reordered(torch.utils.data.Dataset):
    """``base`` read in the order ``order`` (a view: nothing is copied)."""

    def __init__(self, base: Any, order: list[int]) -> None:
        self.base, self.order = base, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Any:
        return self.base[self.order[index]]


def predict(
    accelerator: Accelerator, model: Any, data: TaskData, batch_size: int
) -> dict[str, Any]:
    """Predictions keyed by example id (see :func:`mmxfer.train.data.decode`). Examples are batched longest
    first (less padding; each example's outputs do not depend on its batch) and put back in feature order."""
    order = None
    if data.lengths is not None and len(data.lengths) == len(data.features):
        order = sorted(range(len(data.lengths)), key=lambda i: -data.lengths[i])
    if order is None:
        features = data.features
    # a datasets.Dataset: an index mapping, still read in batches
    elif hasattr(data.features, "select"):
        features = data.features.select(order)
    else:
        features = _Reordered(data.features, order)
    loader = eval_loader(accelerator, features, data.collate, batch_size)

    def step(m: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = m(**{k: v for k, v in batch.items() if k not in _LABEL_KEYS})
        return {
            k: v
            for k, v in out.items()
            if isinstance(v, torch.Tensor) and k != "loss" and k != "hidden_states"
        }

    outputs = gather_outputs(accelerator, model, loader, step)
    if order is not None:
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.as_tensor(order)] = torch.arange(len(order))
        outputs = {k: v[inverse] for k, v in outputs.items()}
    return train_data.decode(data, outputs)


_LABEL_KEYS = (
    "labels",
    "start_positions",
    "end_positions",
    "mlm_labels",
    "answer_ids",
    "answer_weights",
)


def dev_scorer(spec: TaskSpec, data: TaskData, batch_size: int) -> EvalFn:
    """``evaluate(model, accelerator)`` for the loop: the task's primary metric on English dev."""
    metric = catalog.METRICS.get(spec.metric)
    gold = None  # read at the first evaluation; it and the examples dropped in featurisation never change

    def evaluate(model: Any, accelerator: Accelerator) -> float:
        nonlocal gold
        preds = predict(accelerator, model, data, batch_size)
        first = gold is None
        gold = train_data.golds(data) if first else gold
        rows = train_data.prediction_rows(data, preds, gold, warn=first)
        return float(score_predictions(spec, rows)[metric.primary])

    return evaluate


def dev_loss_scorer(data: TaskData, batch_size: int) -> EvalFn:
    """``evaluate(model, accelerator)``: minus the mean dev loss (higher is better), for task kinds whose
    predictions have no decoded metric (captioning: the masked-token / contrastive loss)."""

    def evaluate(model: Any, accelerator: Accelerator) -> float:
        loader = eval_loader(accelerator, data.features, data.collate, batch_size)
        total = torch.zeros((), device=accelerator.device)
        count = torch.zeros((), device=accelerator.device)
        for batch in loader:
            n = batch["input_ids"].shape[0]
            total += model(**batch)["loss"].detach().float() * n
            count += n
        return -float(
            accelerator.reduce(total, "sum") / accelerator.reduce(count, "sum").clamp(min=1)
        )

    return evaluate


def _routed(data: TaskData, task: str) -> TaskData:
    """``data`` whose batches name their task (a multi-task model routes on it)."""
    collate = data.collate
    return dataclasses.replace(data, collate=lambda items: {**collate(items), "task": task})


def phase2_scorer(
    specs: Sequence[TaskSpec], devs: Sequence[TaskData], batch_size: int, multi: bool
) -> tuple[EvalFn, list[str]]:
    """The phase-2 selection metric: each task's dev metric (its kind's: the primary English dev metric, or
    minus the dev loss for captioning), averaged over the tasks of a mix; returns ``(evaluate, metric names)``."""
    scorers, names = [], []
    for spec, dev in zip(specs, devs):
        dev = _routed(dev, spec.name) if multi else dev
        kind = kind_of(spec)
        scorers.append(
            dev_scorer(spec, dev, batch_size)
            if kind.dev_metric == "decoded"
            else dev_loss_scorer(dev, batch_size)
        )
        names.append(kind.dev_metric_name())

    def evaluate(model: Any, accelerator: Accelerator) -> float:
        return sum(f(model, accelerator) for f in scorers) / len(scorers)

    return evaluate, names


def selection_record(
    result: LoopResult, tasks: Sequence[str], metrics: list[str]
) -> dict[str, Any]:
    """Which evaluation point phase-2 selection kept (``best_epoch``: epochs completed at that step)."""
    st = result.state
    epoch = next((h["epoch"] for h in st.history if h["step"] == st.best_step), None)
    return {
        "tasks": list(tasks),
        "split": "validation",
        "metrics": metrics,
        "best": st.best_metric,
        "best_step": st.best_step,
        "best_epoch": epoch,
        "total_steps": st.total_steps,
        "last_step": st.global_step,
        "stopped_early": st.stopped_early,
        "history": st.history,
    }


# ----------------------------------------------------------------------------- phase 2


def run_intermediate(
    profile: ExperimentConfig,
    tasks: Sequence[str],
    *,
    seed: int,
    runs_dir: str | Path,
    study: str,
    data_dir: str | None = None,
    resume: bool = True,
    log_with: Sequence[str] = (),
) -> Path:
    """Train (or reuse) the phase-2 trunk for ``tasks``; returns the trunk folder."""
    folder = phase2_dir(profile, tasks, seed, runs_dir, study, data_dir)
    trunk_dir, done = folder / "trunk", folder / "DONE"
    if done.is_file():
        check_reusable(folder, profile, tasks, data_dir)
        print(f"phase 2: reusing {trunk_dir}")
        return trunk_dir
    accelerator = make_accelerator(
        profile.precision,
        log_with=log_with,
        project_dir=folder,
        find_unused_parameters=len(tasks) > 1,
    )
    main = accelerator.is_main_process
    lock = FileLock(folder, "phase-2 folder") if main else None
    try:
        # another job training this trunk is waited for while it lives; a dead one's lock is taken over
        todo = lock.acquire(wait=True, until=done.is_file) if lock is not None else True
        accelerator.wait_for_everyone()
        if not todo or done.is_file():
            check_reusable(folder, profile, tasks, data_dir)
            return trunk_dir
        fingerprint = None
        if main:
            atomic.write_yaml(folder / "phase2.yaml", phase2_key(profile, tasks, seed, data_dir))
            fingerprint = _fingerprint_for(folder, profile, tasks, data_dir)
        job = Phase2Job(
            profile,
            tuple(tasks),
            phase2_seed(profile, seed),
            folder,
            data_dir,
            resume,
            tuple(log_with),
            data_fingerprint=fingerprint,
        )
        _train_phase2(job, accelerator)
        accelerator.wait_for_everyone()
    finally:
        if lock is not None:
            lock.release()
    return trunk_dir


@dataclasses.dataclass(frozen=True)
class Phase2Job:
    """One phase-2 training: what :func:`run_intermediate` resolved before taking the lock."""

    profile: ExperimentConfig
    tasks: tuple[str, ...]
    seed: int  # the phase-2 seed (see the module docstring)
    folder: Path
    data_dir: str | None
    resume: bool
    log_with: tuple[str, ...]
    data_fingerprint: dict[str, str] | None = None  # recorded in DONE (main process)

    @property
    def phase(self) -> PhaseConfig:
        return self.profile.intermediate


@dataclasses.dataclass
class _Trainable:
    """What the loop trains: one task's model and features, or a multi-task mix of them."""

    model: Any
    dataset: Any
    collate: Callable[[list[Any]], dict[str, Any]]
    plan: Callable[[int], Batches] | None = None
    lengths: list[int] | None = None


def _train_phase2(job: Phase2Job, accelerator: Accelerator) -> None:
    """Load, train (selecting on dev with ``select_best``) and save the phase-2 trunk of ``job``."""
    specs = [catalog.task(t) for t in job.tasks]
    set_seed(job.seed)
    trunk = load_profile_trunk(job.profile.trunk.name, job.profile.trunk, job.profile.precision)
    tokenizer = trunk.tokenizer
    max_length = checked_max_length(trunk, specs, job.profile, "intermediate", job.phase)
    if job.phase.select_best:
        _check_selectable(specs)
    with accelerator.main_process_first():
        parts, devs = _phase2_data(job, specs, tokenizer, max_length)
    models = _phase2_models(job, trunk, specs, parts, devs, tokenizer)
    evaluate, metric_names = (
        phase2_scorer(specs, devs, job.phase.batch_size * 2, len(specs) > 1)
        if job.phase.select_best
        else (None, [])
    )
    trainable = _phase2_trainable(job, specs, models, parts)
    if accelerator.is_main_process:
        for part in parts:
            log_skipped(part, "phase2:" + "+".join(job.tasks), job.folder / "train_log.jsonl")
    prefix = next(n for n, m in trainable.model.named_modules() if m is trunk.model) + "."
    result = train_phase(
        trainable.model,
        trainable.dataset,
        trainable.collate,
        job.phase,
        LoopOptions(
            workdir=job.folder,
            seed=job.seed,
            name="phase2:" + "+".join(job.tasks),
            precision=job.profile.precision,
            plan=trainable.plan,
            lengths=trainable.lengths,
            resume=job.resume,
            evaluate=evaluate,
            log_path=job.folder / "train_log.jsonl",
            accelerator=accelerator,
            log_with=job.log_with,
        ),
    )
    if accelerator.is_main_process:
        _save_phase2(
            job,
            result,
            trunk,
            prefix,
            metric_names,
            {p.spec.name: p.skipped for p in parts if p.skipped},
        )


def _check_selectable(specs: Sequence[TaskSpec]) -> None:
    for s in specs:
        if "validation" not in s.splits:
            raise ConfigError(
                f"intermediate.select_best: {s.name} has no validation split to select on; "
                f"set intermediate.select_best=false"
            )


def _phase2_data(
    job: Phase2Job, specs: Sequence[TaskSpec], tokenizer: Any, max_length: int
) -> tuple[list[TaskData], list[TaskData]]:
    """Each task's featurised English training data and, with ``select_best``, its dev data (same label space)."""
    phase, bad = job.phase, job.profile.on_bad_image
    parts = [
        train_data.task_data(
            s,
            _load_split(s, "train", s.train_language, job.data_dir, phase.max_train_examples),
            tokenizer,
            max_length,
            split="train",
            lang=s.train_language,
            on_bad_image=bad,
            seed=job.seed,
        )
        for s in specs
    ]
    devs: list[TaskData] = []
    if phase.select_best:
        devs = [
            train_data.task_data(
                s,
                _load_split(
                    s, "validation", s.train_language, job.data_dir, phase.max_eval_examples
                ),
                tokenizer,
                max_length,
                split="validation",
                lang=s.train_language,
                space=p.label_space,
                on_bad_image=bad,
                seed=job.seed,
            )
            for s, p in zip(specs, parts)
        ]
    return parts, devs


def _phase2_models(
    job: Phase2Job,
    trunk: Trunk,
    specs: list[TaskSpec],
    parts: Sequence[TaskData],
    devs: Sequence[TaskData],
    tokenizer: Any,
) -> dict[str, Any]:
    """One model per task on the shared trunk; every image-text task of a mix shares one vision tower."""
    models = {}
    shared_vision = None
    build_profile = job.profile
    for spec, part in zip(specs, parts):
        image = spec.has_image
        m = _build(trunk, spec, part, build_profile, image)
        if image:
            if shared_vision is None:
                shared_vision = (m.vision, m.projector)
                # later towers are replaced by this one: still built (same RNG draws), but load no weights
                unloaded = dataclasses.replace(job.profile.vision, pretrained=None, checkpoint=None)
                build_profile = dataclasses.replace(job.profile, vision=unloaded)
            m.vision, m.projector = shared_vision  # one tower for every image-text task of the mix
            m.vision_frozen = not any(p.requires_grad for p in m.vision.parameters())
            transform = m.vision.transform(is_train=False)
            features = frozen_features(m.vision, transform) if m.vision_frozen else None
            train_data.with_images(part, transform, tokenizer, features)
            if devs:
                train_data.with_images(devs[specs.index(spec)], transform, tokenizer, features)
        models[spec.name] = m
    return models


def frozen_features(tower: Any, transform: Any) -> FrozenImageFeatures:
    """The cached tokens of a frozen ``tower`` for images decoded and preprocessed by ``transform``."""
    return FrozenImageFeatures(tower, lambda value: transform(open_image(value)), repr(transform))


def _phase2_trainable(
    job: Phase2Job, specs: Sequence[TaskSpec], models: dict[str, Any], parts: Sequence[TaskData]
) -> _Trainable:
    """A single task as it is; several as one routed model over one index space, batches mixed by
    ``profile.multitask`` (each batch holds one task)."""
    if len(specs) == 1:
        return _Trainable(
            models[specs[0].name], parts[0].features, parts[0].collate, lengths=parts[0].lengths
        )
    dataset = MultiTaskDataset(parts)
    sizes = [len(p.features) for p in parts]
    all_lengths = [p.lengths for p in parts] if all(p.lengths for p in parts) else None
    phase = job.phase

    def plan(epoch: int) -> Batches:
        mix = multitask_epoch_batches(
            sizes,
            phase.batch_size,
            job.seed,
            epoch,
            job.profile.multitask,
            lengths=all_lengths,
            group_by_length=phase.group_by_length,
        )
        return [[dataset.offsets[t] + i for i in b] for t, b in mix]

    return _Trainable(MultiTaskModel(models), dataset, dataset.collate, plan=plan)


def _save_phase2(
    job: Phase2Job,
    result: LoopResult,
    trunk: Trunk,
    prefix: str,
    metric_names: list[str],
    skipped: dict[str, int],
) -> None:
    """The trained trunk (with ``select_best``: the selected dev weights), its selection record and ``DONE`` (with
    the training examples each task's kind left out, where any were)."""
    trunk_model = trunk.model  # with select_best: train_phase loaded the best dev weights into it
    if result.full_state_dict is not None:  # FSDP: rebuild a whole trunk from the gathered weights
        full = result.full_state_dict if result.best_path is None else safe_load(result.best_path)
        trunk_model = load_profile_trunk(
            job.profile.trunk.name, job.profile.trunk, job.profile.precision
        ).model
        trunk_model.load_state_dict(
            {k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix)}
        )
    save_trunk(trunk_model, trunk.tokenizer, job.folder / "trunk")
    info: dict[str, Any] = {
        "tasks": list(job.tasks),
        "seed": job.seed,
        "format": PHASE2_FORMAT,
        **({"train_skipped": skipped} if skipped else {}),
        "data_fingerprint": job.data_fingerprint,
        "trunk_seal": sealed.sha256_file(job.folder / "trunk" / SEAL_FILE),
    }
    if job.phase.select_best:
        selection = selection_record(result, job.tasks, metric_names)
        atomic.write_json(job.folder / SELECTION_FILE, selection)
        info["selection"] = {k: selection[k] for k in SELECTION_SUMMARY}
    atomic.write_json(job.folder / "DONE", info)
    remove_training_state(job.folder)  # no longer needed


# ----------------------------------------------------------------------------- phase 3


def target_dev_spec(spec: TaskSpec) -> TaskSpec | None:
    """The task whose English validation split phase 3 selects on: the training task's (XNLI -> MNLI,
    XQuAD -> SQuAD v1.1), never a split the target reports; None when the target keeps its final weights
    (``dev_selection=False``: XTREME's QA recipe)."""
    if not spec.dev_selection:
        return None
    train_spec = catalog.task(spec.train_task) if spec.train_task else spec
    if "validation" not in train_spec.splits:
        raise ConfigError(
            f"{spec.name}: its training task {train_spec.name} has no validation split to select on"
        )
    if train_spec is spec and _eval_split(spec) == "validation":
        raise ConfigError(
            f"{spec.name}: model selection would use the split it reports (validation); "
            f"declare dev_selection=False for it"
        )
    return train_spec


def _eval_split(spec: TaskSpec) -> str:
    """The split a target reports for every language (its test split, else its validation split)."""
    return "test" if "test" in spec.splits else "validation"


def run_target(
    run: Run,
    profile: ExperimentConfig,
    target: str,
    *,
    trunk: str,
    seed: int,
    data_dir: str | None = None,
    resume: bool = False,
    log_with: Sequence[str] = (),
    languages: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tune ``trunk`` on the target's English training data (the training task's: XNLI on MNLI, XQuAD and
    MLQA on SQuAD v1.1), selecting on the training task's English dev split (:func:`target_dev_spec`; QA targets
    keep their final weights, as XTREME), then predict every target language (``languages``: a subset) on its
    full reported split (``max_eval_examples`` caps the dev split only); writes predictions and metric rows
    into ``run``."""
    spec = catalog.task(target)
    train_spec = catalog.task(spec.train_task) if spec.train_task else spec
    dev_spec = target_dev_spec(spec)
    phase = profile.phase_for_target(spec.name)
    accelerator = make_accelerator(profile.precision, log_with=log_with, project_dir=run.path)
    set_seed(seed)
    loaded = load_profile_trunk(trunk, profile.trunk, profile.precision)
    tokenizer = loaded.tokenizer
    max_length = checked_max_length(loaded, [spec], profile, "target", phase)
    prefix = target_text_prefix(profile, spec)
    with accelerator.main_process_first():
        train = train_data.task_data(
            train_spec,
            _load_split(
                train_spec,
                "train",
                train_spec.train_language,
                data_dir,
                phase.max_train_examples,
                prefix,
            ),
            tokenizer,
            max_length,
            split="train",
            lang=train_spec.train_language,
            seed=seed,
        )
        dev = (
            None
            if dev_spec is None
            else train_data.task_data(
                dev_spec,
                _load_split(
                    dev_spec,
                    "validation",
                    dev_spec.train_language,
                    data_dir,
                    phase.max_eval_examples,
                    prefix,
                ),
                tokenizer,
                max_length,
                split="validation",
                lang=dev_spec.train_language,
                space=train.label_space,
            )
        )
    if (
        spec.label_names
        and train_spec.label_names
        and tuple(spec.label_names) != tuple(train_spec.label_names)
    ):
        raise TrainingError(
            f"{spec.name} is trained on {train_spec.name} but their labels differ: "
            f"{list(train_spec.label_names)} vs {list(spec.label_names)}"
        )
    model = _build(loaded, spec, train, profile, image=False)
    skipped = (
        log_skipped(train, f"phase3:{spec.name}", run.train_log_path)
        if accelerator.is_main_process
        else 0
    )
    result = train_phase(
        model,
        train.features,
        train.collate,
        phase,
        LoopOptions(
            workdir=run.path,
            seed=seed,
            name=f"phase3:{spec.name}",
            precision=profile.precision,
            lengths=train.lengths,
            evaluate=None if dev is None else dev_scorer(dev_spec, dev, phase.batch_size * 2),
            resume=resume,
            log_path=run.train_log_path,
            accelerator=accelerator,
            log_with=log_with,
        ),
    )
    model = accelerator.prepare(result.model)
    split = _eval_split(spec)
    rows_out: list[dict[str, Any]] = []
    # a resumed run predicts every language again: no duplicate rows
    if accelerator.is_main_process:
        run.write_metrics([])
    for lang in target_languages(spec, languages, data_dir):
        with accelerator.main_process_first():
            data = train_data.task_data(
                spec,
                _load_split(spec, split, lang, data_dir, None, prefix),
                tokenizer,
                max_length,
                split=split,
                lang=lang,
                space=train.label_space,
            )
        preds = predict(accelerator, model, data, phase.batch_size * 2)
        if accelerator.is_main_process:
            rows = train_data.prediction_rows(data, preds)
            run.write_predictions(spec.name, split, lang, rows)
            for m in score_file_rows(spec.name, split, lang, rows):
                extra = {
                    k: v
                    for k, v in m.items()
                    if k not in ("task", "lang", "split", "metric", "score")
                }
                if skipped:  # the score comes from a model that did not train on every example
                    extra["train_skipped"] = skipped
                run.log_metric(m["task"], m["lang"], m["split"], m["metric"], m["score"], **extra)
                rows_out.append(m)
    # model selection record (kept out of metrics.jsonl: not a result)
    if accelerator.is_main_process:
        atomic.write_json(run.path / "selection.json", _target_selection(spec, dev_spec, result))
    accelerator.wait_for_everyone()
    return rows_out


def _target_selection(
    spec: TaskSpec, dev_spec: TaskSpec | None, result: LoopResult
) -> dict[str, Any]:
    """What phase 3 kept: the best training-task dev point, or the final weights (no dev selection)."""
    st = result.state
    if dev_spec is None:
        return {
            "task": spec.name,
            "selection": "none: final weights (XTREME recipe, no dev selection)",
            "last_step": st.global_step,
        }
    return {
        "task": dev_spec.name,
        "target": spec.name,
        "lang": dev_spec.train_language,
        "split": "validation",
        "metric": dev_spec.metric,
        "best": st.best_metric,
        "best_step": st.best_step,
        "stopped_early": st.stopped_early,
        "history": st.history,
    }


def target_languages(
    spec: TaskSpec, languages: Sequence[str] | None, data_dir: str | None = None
) -> list[str]:
    """The languages a target is evaluated on: all of its own, or those of the ``languages`` subset it has."""
    langs = evaluation_languages(spec, languages, data_dir)
    if not langs:
        raise ConfigError(
            f"none of the languages {', '.join(languages or [])} is a language of {spec.name} "
            f"({', '.join(spec.languages[:8])}{' ...' if len(spec.languages) > 8 else ''})"
        )
    return langs


def run_retrieval(
    run: Run,
    profile: ExperimentConfig,
    *,
    trunk: str,
    suite: str,
    data_dir: str | None = None,
    languages: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Without a target: evaluate the (phase-2) trunk on the suite's retrieval tasks (``languages``: a subset;
    a task that has none of them is left out, with a printed note)."""
    items = [
        i
        for name in suite.split(",")
        if name.strip()
        for i in suite_tasks(name.strip())
        if uses_trunk(i)
    ]
    if not items:
        raise TrainingError(
            f"suite {suite!r} has no retrieval tasks to evaluate the trunk on; pass --target"
        )
    if languages:
        limited = []
        for item in items:
            langs = [
                x
                for x in evaluation_languages(catalog.task(item.task), languages, data_dir)
                if not item.languages or x in item.languages
            ]
            if langs:
                limited.append(
                    dataclasses.replace(item, languages=tuple(langs), params=dict(item.params))
                )
            else:
                print(
                    f"  {item.label or item.task}: none of the languages {', '.join(languages)}; not evaluated"
                )
        items = limited
        if not items:
            raise ConfigError(
                f"no retrieval task of suite {suite!r} has any of the languages {', '.join(languages)}"
            )
    return evaluate_trunk(trunk, items, profile, run.path, data_dir=data_dir)
