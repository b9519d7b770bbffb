"""The three phases of one arm: intermediate training (phase 2), target fine-tuning (phase 3), and
zero-shot prediction on every target language; or, without a target, retrieval on the trunk.

Phase-2 reuse: a phase-2 trunk is keyed by everything that determines it - the intermediate
task(s), the trunk, the vision tower (only for image-text tasks), the intermediate recipe, the
multi-task mixing (only for several tasks), the precision and the *phase-2 seed* - and lives in
``<runs_dir>/<study>/_intermediate/<label>-<hash>/trunk`` with its own ``DONE``. Every target of
an arm reuses it. Phase-2 seed policy: ``intermediate.seed: null`` (default) = the run's seed, so
each seed of a study trains its own phase-2 trunk and the seed-to-seed spread of the gap includes
phase-2 variance (the quantity being compared); ``intermediate.seed: N`` = one phase-2 trunk shared
by all seeds (cheaper; seeds then vary phase 3 only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from mmxfer import catalog
from mmxfer.config import ExperimentConfig, PhaseConfig, config_hash, to_dict
from mmxfer.errors import ConfigError, DataError, TrainingError
from mmxfer.evaluation.runner import evaluate_trunk
from mmxfer.evaluation.scoring import score_file_rows, score_predictions
from mmxfer.evaluation.suites import suite_tasks, uses_trunk
from mmxfer.kinds import kind_of
from mmxfer.models.build import build_task_model, check_sequence_length, visual_token_count
from mmxfer.models.trunk import load_trunk, save_trunk
from mmxfer.runs import atomic
from mmxfer.runs.store import Run, slug
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import evaluation_languages
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
    train_phase,
)
from mmxfer.train.sampling import multitask_epoch_batches

log = logging.getLogger(__name__)

INTERMEDIATE_DIR = "_intermediate"
SELECTION_FILE = "selection.json"  # phase-2 model selection record (intermediate.select_best)
SELECTION_SUMMARY = ("metrics", "best", "best_step", "best_epoch")  # what a DONE record repeats of it
PHASE2_FORMAT = 1  # bump when phase-2 training changes in a way that invalidates stored trunks


def phase2_seed(profile: ExperimentConfig, seed: int) -> int:
    return profile.intermediate.seed if profile.intermediate.seed is not None else seed


def phase2_key(profile: ExperimentConfig, tasks: Sequence[str], seed: int) -> dict[str, Any]:
    """Everything a phase-2 trunk depends on (hashed into its folder name)."""
    names = [catalog.task(t).name for t in tasks]
    image = any(catalog.task(t).modality == "image-text" for t in names)
    return {"format": PHASE2_FORMAT, "tasks": names, "trunk": to_dict(profile.trunk),
            "vision": to_dict(profile.vision) if image else None, "phase": to_dict(profile.intermediate),
            "multitask": to_dict(profile.multitask) if len(names) > 1 else None,
            "precision": profile.precision, "seed": phase2_seed(profile, seed),
            "versions": [catalog.task(t).version for t in names]}


def phase2_dir(profile: ExperimentConfig, tasks: Sequence[str], seed: int, runs_dir: str | Path, study: str) -> Path:
    key = phase2_key(profile, tasks, seed)
    label = slug("+".join(key["tasks"]) + f"-s{key['seed']}")
    return Path(runs_dir) / slug(study) / INTERMEDIATE_DIR / f"{label}-{config_hash(key)}"


@contextlib.contextmanager
def _lock(path: Path, wait_for: Path, poll: float = 10.0) -> Iterator[bool]:
    """An exclusive lock file; yields False if ``wait_for`` appeared while waiting (nothing to do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        if wait_for.is_file():
            yield False
            return
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, f"{os.getpid()}@{os.uname().nodename}".encode())
            os.close(fd)
            break
        except FileExistsError:
            if time.time() - path.stat().st_mtime > 7 * 24 * 3600:  # stale beyond any job's lifetime
                path.unlink(missing_ok=True)
                continue
            log.warning("waiting for %s (another job trains this phase-2 trunk)", path.parent)
            time.sleep(poll)
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)


def _load_trunk(name_or_dir: str, profile: ExperimentConfig) -> Any:
    return load_trunk(name_or_dir, profile.trunk.revision, attn_implementation=profile.trunk.attn_implementation)


def _build(trunk: Any, spec: TaskSpec, num_labels: int | None, profile: ExperimentConfig, image: bool) -> Any:
    return build_task_model(trunk, kind_of(spec).head, num_labels=num_labels,
                            vision_cfg=profile.vision if image else None,
                            freeze_embeddings=profile.trunk.freeze_embeddings)


def checked_max_length(trunk: Any, specs: Sequence[TaskSpec], profile: ExperimentConfig, phase_name: str,
                       phase: PhaseConfig) -> int:
    """The phase's featurisation max length; fails fast - before any data is loaded - when a task's
    visual + text tokens exceed the trunk's positions (the phase's one length check)."""
    max_length = phase.max_length or profile.trunk.max_length
    length_key = f"{phase_name}.max_length" if phase.max_length else "trunk.max_length"
    visual = None  # counted once, for the first image-text task: it depends on profile.vision only
    for spec in specs:
        image = spec.modality == "image-text"
        if image and visual is None:
            visual = visual_token_count(profile.vision)
        check_sequence_length(trunk, visual if image else 0, max_length, length_key=length_key,
                              dual=catalog.HEADS.get(kind_of(spec).head).dual)
    return max_length


def _load_split(spec: TaskSpec, split: str, lang: str, data_dir: str | None, limit: int | None) -> Any:
    ds = train_data.subset(spec.load(split, lang, data_dir), limit)
    if len(ds) == 0:
        raise DataError(f"{spec.name} {split}-{lang}: no examples")
    return ds


def predict(accelerator: Accelerator, model: Any, data: TaskData, batch_size: int) -> dict[str, Any]:
    """Predictions keyed by example id (see :func:`mmxfer.train.data.decode`)."""
    loader = eval_loader(accelerator, data.features, data.collate, batch_size)

    def step(m: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = m(**{k: v for k, v in batch.items() if k not in _LABEL_KEYS})
        return {k: v for k, v in out.items() if isinstance(v, torch.Tensor) and k != "loss" and k != "hidden_states"}

    return train_data.decode(data, gather_outputs(accelerator, model, loader, step))


_LABEL_KEYS = ("labels", "start_positions", "end_positions", "mlm_labels", "answer_ids", "answer_weights")


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
        return -float(accelerator.reduce(total, "sum") / accelerator.reduce(count, "sum").clamp(min=1))

    return evaluate


def _routed(data: TaskData, task: str) -> TaskData:
    """``data`` whose batches name their task (a multi-task model routes on it)."""
    collate = data.collate
    return dataclasses.replace(data, collate=lambda items: {**collate(items), "task": task})


def phase2_scorer(specs: Sequence[TaskSpec], devs: Sequence[TaskData], batch_size: int, multi: bool
                  ) -> tuple[EvalFn, list[str]]:
    """The phase-2 selection metric: each task's dev metric (its kind's: the primary English dev metric, or
    minus the dev loss for captioning), averaged over the tasks of a mix; returns ``(evaluate, metric names)``."""
    scorers, names = [], []
    for spec, dev in zip(specs, devs):
        dev = _routed(dev, spec.name) if multi else dev
        kind = kind_of(spec)
        scorers.append(dev_scorer(spec, dev, batch_size) if kind.dev_metric == "decoded"
                       else dev_loss_scorer(dev, batch_size))
        names.append(kind.dev_metric_name())

    def evaluate(model: Any, accelerator: Accelerator) -> float:
        return sum(f(model, accelerator) for f in scorers) / len(scorers)

    return evaluate, names


def selection_record(result: LoopResult, tasks: Sequence[str], metrics: list[str]) -> dict[str, Any]:
    """Which evaluation point phase-2 selection kept (``best_epoch``: epochs completed at that step)."""
    st = result.state
    epoch = next((h["epoch"] for h in st.history if h["step"] == st.best_step), None)
    return {"tasks": list(tasks), "split": "validation", "metrics": metrics, "best": st.best_metric,
            "best_step": st.best_step, "best_epoch": epoch, "total_steps": st.total_steps,
            "last_step": st.global_step, "stopped_early": st.stopped_early, "history": st.history}


# ----------------------------------------------------------------------------- phase 2


def run_intermediate(profile: ExperimentConfig, tasks: Sequence[str], *, seed: int, runs_dir: str | Path,
                     study: str, data_dir: str | None = None, resume: bool = True,
                     log_with: Sequence[str] = ()) -> Path:
    """Train (or reuse) the phase-2 trunk for ``tasks``; returns the trunk folder."""
    folder = phase2_dir(profile, tasks, seed, runs_dir, study)
    trunk_dir, done = folder / "trunk", folder / "DONE"
    if done.is_file():
        print(f"phase 2: reusing {trunk_dir}")
        return trunk_dir
    accelerator = make_accelerator(profile.precision, log_with=log_with, project_dir=folder,
                                   find_unused_parameters=len(tasks) > 1)
    main = accelerator.is_main_process
    with (_lock(folder / "LOCK", done) if main else contextlib.nullcontext(True)) as todo:
        accelerator.wait_for_everyone()
        if not todo or done.is_file():
            return trunk_dir
        if main:
            atomic.write_yaml(folder / "phase2.yaml", phase2_key(profile, tasks, seed))
        job = Phase2Job(profile, tuple(tasks), phase2_seed(profile, seed), folder, data_dir, resume, tuple(log_with))
        _train_phase2(job, accelerator)
        accelerator.wait_for_everyone()
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
    trunk = _load_trunk(job.profile.trunk.name, job.profile)
    tokenizer = trunk[1]
    max_length = checked_max_length(trunk, specs, job.profile, "intermediate", job.phase)
    if job.phase.select_best:
        _check_selectable(specs)
    with accelerator.main_process_first():
        parts, devs = _phase2_data(job, specs, tokenizer, max_length)
    models = _phase2_models(job, trunk, specs, parts, devs, tokenizer)
    evaluate, metric_names = phase2_scorer(specs, devs, job.phase.batch_size * 2, len(specs) > 1) \
        if job.phase.select_best else (None, [])
    trainable = _phase2_trainable(job, specs, models, parts)
    prefix = next(n for n, m in trainable.model.named_modules() if m is trunk[0]) + "."
    result = train_phase(trainable.model, trainable.dataset, trainable.collate, job.phase, LoopOptions(
        workdir=job.folder, seed=job.seed, name="phase2:" + "+".join(job.tasks), precision=job.profile.precision,
        plan=trainable.plan, lengths=trainable.lengths, resume=job.resume, evaluate=evaluate,
        log_path=job.folder / "train_log.jsonl", accelerator=accelerator, log_with=job.log_with))
    if accelerator.is_main_process:
        _save_phase2(job, result, trunk, prefix, metric_names)


def _check_selectable(specs: Sequence[TaskSpec]) -> None:
    for s in specs:
        if "validation" not in s.splits:
            raise ConfigError(f"intermediate.select_best: {s.name} has no validation split to select on; "
                              f"set intermediate.select_best=false")


def _phase2_data(job: Phase2Job, specs: Sequence[TaskSpec], tokenizer: Any, max_length: int
                 ) -> tuple[list[TaskData], list[TaskData]]:
    """Each task's featurised English training data and, with ``select_best``, its dev data (same label space)."""
    phase, bad = job.phase, job.profile.on_bad_image
    parts = [train_data.task_data(s, _load_split(s, "train", s.train_language, job.data_dir,
                                                 phase.max_train_examples),
                                  tokenizer, max_length, split="train", lang=s.train_language, on_bad_image=bad,
                                  seed=job.seed) for s in specs]
    devs: list[TaskData] = []
    if phase.select_best:
        devs = [train_data.task_data(s, _load_split(s, "validation", s.train_language, job.data_dir,
                                                    phase.max_eval_examples), tokenizer, max_length,
                                     split="validation", lang=s.train_language, space=p.label_space,
                                     on_bad_image=bad, seed=job.seed) for s, p in zip(specs, parts)]
    return parts, devs


def _phase2_models(job: Phase2Job, trunk: Any, specs: list[TaskSpec], parts: Sequence[TaskData],
                   devs: Sequence[TaskData], tokenizer: Any) -> dict[str, Any]:
    """One model per task on the shared trunk; every image-text task of a mix shares one vision tower."""
    models = {}
    shared_vision = None
    build_profile = job.profile
    for spec, part in zip(specs, parts):
        image = spec.modality == "image-text"
        m = _build(trunk, spec, part.num_labels, build_profile, image)
        if image:
            if shared_vision is None:
                shared_vision = (m.vision, m.projector)
                # later towers are replaced by this one: still built (same RNG draws), but load no weights
                unloaded = dataclasses.replace(job.profile.vision, pretrained=None, checkpoint=None)
                build_profile = dataclasses.replace(job.profile, vision=unloaded)
            m.vision, m.projector = shared_vision  # one tower for every image-text task of the mix
            train_data.with_images(part, m.vision.transform(is_train=False), tokenizer)
            if devs:
                train_data.with_images(devs[specs.index(spec)], m.vision.transform(is_train=False), tokenizer)
        models[spec.name] = m
    return models


def _phase2_trainable(job: Phase2Job, specs: Sequence[TaskSpec], models: dict[str, Any],
                      parts: Sequence[TaskData]) -> _Trainable:
    """A single task as it is; several as one routed model over one index space, batches mixed by
    ``profile.multitask`` (each batch holds one task)."""
    if len(specs) == 1:
        return _Trainable(models[specs[0].name], parts[0].features, parts[0].collate, lengths=parts[0].lengths)
    dataset = MultiTaskDataset(parts)
    sizes = [len(p.features) for p in parts]
    all_lengths = [p.lengths for p in parts] if all(p.lengths for p in parts) else None
    phase = job.phase

    def plan(epoch: int) -> Batches:
        mix = multitask_epoch_batches(sizes, phase.batch_size, job.seed, epoch, job.profile.multitask,
                                      lengths=all_lengths, group_by_length=phase.group_by_length)
        return [[dataset.offsets[t] + i for i in b] for t, b in mix]

    return _Trainable(MultiTaskModel(models), dataset, dataset.collate, plan=plan)


def _save_phase2(job: Phase2Job, result: LoopResult, trunk: Any, prefix: str, metric_names: list[str]) -> None:
    """The trained trunk (with ``select_best``: the selected dev weights), its selection record and ``DONE``."""
    trunk_model = trunk[0]  # with select_best: train_phase loaded the best dev weights into it
    if result.full_state_dict is not None:  # FSDP: rebuild a whole trunk from the gathered weights
        full = result.full_state_dict if result.best_path is None else \
            torch.load(result.best_path, map_location="cpu", weights_only=False)
        trunk_model = _load_trunk(job.profile.trunk.name, job.profile)[0]
        trunk_model.load_state_dict({k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)})
    save_trunk(trunk_model, trunk[1], job.folder / "trunk")
    info: dict[str, Any] = {"tasks": list(job.tasks), "seed": job.seed}
    if job.phase.select_best:
        selection = selection_record(result, job.tasks, metric_names)
        atomic.write_json(job.folder / SELECTION_FILE, selection)
        info["selection"] = {k: selection[k] for k in SELECTION_SUMMARY}
    atomic.write_json(job.folder / "DONE", info)
    remove_training_state(job.folder)  # no longer needed


# ----------------------------------------------------------------------------- phase 3


def run_target(run: Run, profile: ExperimentConfig, target: str, *, trunk: str, seed: int,
               data_dir: str | None = None, resume: bool = False, log_with: Sequence[str] = (),
               languages: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Fine-tune ``trunk`` on the target's English training data (model selection on English dev),
    then predict every target language (``languages``: a subset); writes predictions and metric rows into ``run``."""
    spec = catalog.task(target)
    train_spec = catalog.task(spec.train_task) if spec.train_task else spec
    phase = profile.phase_for_target(spec.name)
    accelerator = make_accelerator(profile.precision, log_with=log_with, project_dir=run.path)
    set_seed(seed)
    pair = _load_trunk(trunk, profile)
    tokenizer = pair[1]
    max_length = checked_max_length(pair, [spec], profile, "target", phase)
    with accelerator.main_process_first():
        train = train_data.task_data(
            train_spec, _load_split(train_spec, "train", train_spec.train_language, data_dir, phase.max_train_examples),
            tokenizer, max_length, split="train", lang=train_spec.train_language, seed=seed)
        dev = train_data.task_data(
            spec, _load_split(spec, "validation", spec.train_language, data_dir, phase.max_eval_examples),
            tokenizer, max_length, split="validation", lang=spec.train_language, space=train.label_space)
    if spec.label_names and train_spec.label_names and tuple(spec.label_names) != tuple(train_spec.label_names):
        raise TrainingError(f"{spec.name} is trained on {train_spec.name} but their labels differ: "
                            f"{list(train_spec.label_names)} vs {list(spec.label_names)}")
    model = _build(pair, spec, train.num_labels, profile, image=False)
    result = train_phase(model, train.features, train.collate, phase, LoopOptions(
        workdir=run.path, seed=seed, name=f"phase3:{spec.name}", precision=profile.precision, lengths=train.lengths,
        evaluate=dev_scorer(spec, dev, phase.batch_size * 2), resume=resume, log_path=run.train_log_path,
        accelerator=accelerator, log_with=log_with))
    model = accelerator.prepare(result.model)
    split = "test" if "test" in spec.splits else "validation"
    rows_out: list[dict[str, Any]] = []
    if accelerator.is_main_process:  # a resumed run predicts every language again: no duplicate rows
        run.write_metrics([])
    for lang in target_languages(spec, languages, data_dir):
        with accelerator.main_process_first():
            data = train_data.task_data(spec, _load_split(spec, split, lang, data_dir, phase.max_eval_examples),
                                        tokenizer, max_length, split=split, lang=lang, space=train.label_space)
        preds = predict(accelerator, model, data, phase.batch_size * 2)
        if accelerator.is_main_process:
            rows = train_data.prediction_rows(data, preds)
            run.write_predictions(spec.name, split, lang, rows)
            for m in score_file_rows(spec.name, split, lang, rows):
                extra = {k: v for k, v in m.items() if k not in ("task", "lang", "split", "metric", "score")}
                run.log_metric(m["task"], m["lang"], m["split"], m["metric"], m["score"], **extra)
                rows_out.append(m)
    if accelerator.is_main_process:  # model selection record (kept out of metrics.jsonl: not a result)
        atomic.write_json(run.path / "selection.json", {
            "task": spec.name, "lang": spec.train_language, "split": "validation", "metric": spec.metric,
            "best": result.state.best_metric, "best_step": result.state.best_step,
            "stopped_early": result.state.stopped_early, "history": result.state.history})
    accelerator.wait_for_everyone()
    return rows_out


def target_languages(spec: TaskSpec, languages: Sequence[str] | None, data_dir: str | None = None) -> list[str]:
    """The languages a target is evaluated on: all of its own, or those of the ``languages`` subset it has."""
    langs = evaluation_languages(spec, languages, data_dir)
    if not langs:
        raise ConfigError(f"none of the languages {', '.join(languages or [])} is a language of {spec.name} "
                          f"({', '.join(spec.languages[:8])}{' ...' if len(spec.languages) > 8 else ''})")
    return langs


def run_retrieval(run: Run, profile: ExperimentConfig, *, trunk: str, suite: str, data_dir: str | None = None,
                  languages: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Without a target: evaluate the (phase-2) trunk on the suite's retrieval tasks (``languages``: a subset;
    a task that has none of them is left out, with a printed note)."""
    items = [i for name in suite.split(",") if name.strip() for i in suite_tasks(name.strip()) if uses_trunk(i)]
    if not items:
        raise TrainingError(f"suite {suite!r} has no retrieval tasks to evaluate the trunk on; pass --target")
    if languages:
        limited = []
        for item in items:
            langs = [x for x in evaluation_languages(catalog.task(item.task), languages, data_dir)
                     if not item.languages or x in item.languages]
            if langs:
                limited.append(dataclasses.replace(item, languages=tuple(langs), params=dict(item.params)))
            else:
                print(f"  {item.label or item.task}: none of the languages {', '.join(languages)}; not evaluated")
        items = limited
        if not items:
            raise ConfigError(f"no retrieval task of suite {suite!r} has any of the languages {', '.join(languages)}")
    return evaluate_trunk(trunk, items, profile, run.path, data_dir=data_dir)
