"""The training loop: one phase of training on ``accelerate``, resumable mid-epoch, bit for bit.

Shape of transformers' ``run_glue_no_trainer``: an :class:`~accelerate.Accelerator` prepares the
model and optimizer (DDP/FSDP/mixed precision come from ``accelerate launch`` and the profile's
``precision``), a linear warmup/decay schedule, gradient accumulation and clipping, evaluation
on the English dev set with early stopping, and ``save_state``/``load_state`` checkpoints.

Reproducibility contract:

* the batch order of epoch ``e`` is a pure function of ``(seed, e)`` (:mod:`mmxfer.train.sampling`),
  so resuming mid-epoch rebuilds the epoch's order and skips the batches already seen;
* dropout draws from torch's global generator, whose state is part of every checkpoint
  (``save_state`` stores the RNG states of every process) - the data loader is given its own
  generator so creating an iterator never advances the global one;
* gradient accumulation groups are aligned to the start of each epoch and checkpoints are only
  taken after an optimizer step, so no half-accumulated gradient ever needs saving.

Together these make ``interrupted + resume`` produce the same weights as one uninterrupted run.

Checkpoints never run code: resuming loads every file of a checkpoint with torch's ``weights_only``
unpickler (tensors, plain containers and numpy arrays only) before ``accelerate`` reads it, and the
schedule's state is JSON (``scheduler.json``). A file holding anything else is refused with one line. Best-weight
files load the same way.

SIGTERM (SLURM's time limit) during the loop: the current optimizer step finishes, a checkpoint is written,
and :class:`~mmxfer.runs.interrupt.Stopped` ends the process; ``--resume`` continues from that checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from accelerate.utils import DistributedDataParallelKwargs, send_to_device, set_seed
from accelerate.utils import imports as accelerate_imports
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mmxfer.config import PhaseConfig
from mmxfer.errors import ConfigError, RunStoreError, TrainingError
from mmxfer.runs import atomic, interrupt
from mmxfer.runs.env import resolve_precision
from mmxfer.train.sampling import epoch_batches

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"
SCHEDULER_FILE = "scheduler.json"  # the LR schedule's state (plain numbers)
PICKLE_SUFFIXES = (
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
)  # files of a checkpoint that torch/accelerate unpickle
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = (
    "best"  # best dev weights: best/step-<N>.pt; the trainer state's best_step names the valid one
)

Batches = list[list[int]]
EvalFn = Callable[[nn.Module, Accelerator], float]


@dataclass
class TrainState:
    """What a checkpoint records besides the accelerate state (also written as JSON)."""

    global_step: int = 0  # optimizer steps taken
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # micro-batches of the current epoch this process has consumed
    total_steps: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # eval results


@dataclass
class LoopResult:
    model: nn.Module  # the unwrapped model, with the selected (best dev) weights loaded
    state: TrainState
    resumed_from: str | None = None
    # under FSDP the unwrapped module's parameters are shards: the gathered full state dict (main process)
    full_state_dict: dict[str, torch.Tensor] | None = None
    best_path: Path | None = (
        None  # the full state dict of the selected (best dev) weights, when evaluated
    )


@dataclass(frozen=True)
class LoopOptions:
    """How one phase is run, besides its recipe (:class:`~mmxfer.config.PhaseConfig`).

    ``plan(epoch)`` gives the epoch's batches as lists of dataset indices (default: shuffled,
    length-grouped by ``lengths`` when the phase says so, from ``seed``). ``evaluate(model,
    accelerator)`` returns the English dev metric (higher is better), called on every process
    (gather inside it with ``accelerator.gather_for_metrics``); without it the last weights are
    kept. Checkpoints go to ``workdir/checkpoints``; with ``resume`` the newest one is continued.
    ``accelerator``: None = a new one from ``precision``, ``log_with`` and ``find_unused_parameters``.
    """

    workdir: str | Path
    seed: int
    name: str = "train"
    plan: Callable[[int], Batches] | None = None
    lengths: Sequence[int] | None = None
    evaluate: EvalFn | None = None
    resume: bool = False
    log_path: str | Path | None = None
    accelerator: Accelerator | None = None
    precision: str = "no"
    log_with: Sequence[str] = ()
    find_unused_parameters: bool = False
    num_workers: int = 0
    keep_checkpoints: int = 1
    nan_check: bool = True  # stop with a clear error when the loss is not finite


def make_accelerator(
    precision: str = "no",
    *,
    log_with: Sequence[str] = (),
    project_dir: str | Path | None = None,
    find_unused_parameters: bool = False,
    cpu: bool = False,
) -> Accelerator:
    """An Accelerator for one phase. Distribution (DDP/FSDP, nodes) comes from ``accelerate launch``;
    ``precision: auto`` is resolved here (:func:`mmxfer.runs.env.resolve_precision`)."""
    if precision not in ("no", "fp16", "bf16", "auto"):
        raise ConfigError(
            f"precision: {precision!r} is not allowed; allowed values: 'no', 'fp16', 'bf16', 'auto'"
        )
    precision = resolve_precision(precision, "cpu" if cpu else None)
    if precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError(
            "precision fp16 needs a GPU; use --set precision=bf16 or precision=no on CPU"
        )
    for tracker in log_with:
        _check_tracker(tracker)
    # without a GPU, accelerate only sets up multi-process CPU training (gloo) when told cpu=True
    cpu = cpu or not torch.cuda.is_available()
    handlers = (
        [DistributedDataParallelKwargs(find_unused_parameters=True)]
        if find_unused_parameters
        else []
    )
    return Accelerator(
        mixed_precision=precision,
        log_with=list(log_with) or None,
        project_dir=str(project_dir) if project_dir else None,
        kwargs_handlers=handlers,
        cpu=cpu,
    )


def _check_tracker(name: str) -> None:
    known = {
        "tensorboard": "tensorboard",
        "wandb": "wandb",
        "mlflow": "mlflow",
        "comet_ml": "comet_ml",
        "aim": "aim",
        "clearml": "clearml",
        "dvclive": "dvclive",
    }
    if name not in known:
        raise ConfigError(f"log_with: unknown tracker {name!r}; use one of {', '.join(known)}")
    check = getattr(accelerate_imports, f"is_{name}_available", None)
    if check is not None and not check():
        raise ConfigError(
            f"log_with: {name} is not installed (pip install {known[name]}) - or drop it from log_with"
        )


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 to the peak lr, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model: nn.Module, phase: PhaseConfig) -> torch.optim.Optimizer:
    """AdamW (``phase.adam_betas``); no weight decay on biases and LayerNorm weights (the usual BERT-style split)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        g
        for g in (
            {"params": decay, "weight_decay": phase.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        )
        if g["params"]
    ]
    betas = tuple(phase.adam_betas)
    try:  # the fused kernel (CPU and CUDA) is what transformers' Trainer uses by default, and faster
        return torch.optim.AdamW(groups, lr=phase.lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=phase.lr, betas=betas)


def local_batches(batches: Batches, num_processes: int, process_index: int) -> Batches:
    """This process's share: every ``num_processes``-th batch; short shares are topped up by
    cycling from the start so every process takes the same number of steps (DDP needs that)."""
    if num_processes == 1:
        return batches
    per = math.ceil(len(batches) / num_processes)
    padded = batches + [
        batches[i % len(batches)] for i in range(per * num_processes - len(batches))
    ]
    return padded[process_index::num_processes]


# ----------------------------------------------------------------------------- checkpoints


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (temp folders of a killed save are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :])) if done else None


def _safe_globals() -> list[Any]:
    """What a checkpoint may hold besides tensors and plain containers: numpy arrays (the RNG states)."""
    try:  # the list accelerate itself allows when it loads RNG states
        from accelerate.utils.other import TORCH_SAFE_GLOBALS

        return list(TORCH_SAFE_GLOBALS)
    except ImportError:  # pragma: no cover - older accelerate
        import codecs

        multiarray = getattr(getattr(np, "_core", None), "multiarray", None) or np.core.multiarray
        return [multiarray._reconstruct, np.ndarray, np.dtype, codecs.encode]


def safe_load(path: str | Path, *, mmap: bool = False) -> Any:
    """``torch.load`` that never unpickles code: tensors, plain containers and numpy arrays only; anything else
    is a :class:`~mmxfer.errors.RunStoreError` naming the file."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError as exc:
                if not mmap or "zipfile" not in str(exc):
                    raise
                # a legacy (non-zip) file
                return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, or any error torch raises on a crafted file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunStoreError(
            f"{path}: refused to load: it holds more than tensors and plain values, or is damaged "
            f"({first[:160]}); a checkpoint must come from mmxfer itself - delete it and rerun with "
            f"--force"
        ) from None


def check_checkpoint(folder: Path) -> None:
    """Open every pickled file of checkpoint ``folder`` with the safe loader (tensors memory-mapped, so this
    reads metadata only) before anything else reads it."""
    for path in sorted(folder.iterdir()):
        if path.name.startswith("custom_checkpoint_"):
            raise RunStoreError(
                f"{path}: mmxfer checkpoints hold no custom objects; refusing to resume from "
                f"{folder} - delete it and rerun with --force"
            )
        if path.suffix in PICKLE_SUFFIXES and path.is_file():
            safe_load(path, mmap=True)


def _load_scheduler(folder: Path, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    path = folder / SCHEDULER_FILE
    if not path.is_file():
        raise RunStoreError(
            f"{folder}: no {SCHEDULER_FILE}, so not a checkpoint this mmxfer wrote (or a damaged "
            f"one); it cannot be resumed - rerun with --force"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunStoreError(
            f"{path}: not valid JSON; the checkpoint is damaged - rerun with --force"
        ) from None
    if not isinstance(state, dict):
        raise RunStoreError(
            f"{path}: not a scheduler state; the checkpoint is damaged - rerun with --force"
        )
    scheduler.load_state_dict(state)


def _read_train_state(path: Path) -> TrainState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TrainState(**data)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        raise RunStoreError(
            f"{path}: not a trainer state; the checkpoint is damaged - rerun with --force"
        ) from None


def _save_checkpoint(
    accelerator: Accelerator,
    folder: Path,
    state: TrainState,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep: int = 1,
) -> Path:
    """``save_state`` into a temp folder, then rename: a checkpoint folder is either whole or absent."""
    final = folder / f"{CHECKPOINT_PREFIX}{state.global_step:09d}"
    tmp = folder / f".tmp-{final.name}"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=False)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic.write_json(tmp / SCHEDULER_FILE, scheduler.state_dict())
        # written last: marks the folder complete
        atomic.write_json(tmp / STATE_FILE, asdict(state))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        older = sorted(
            (p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if p != final),
            key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
        )
        for path in older[: max(0, len(older) - (keep - 1))]:
            shutil.rmtree(path, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def remove_training_state(workdir: str | Path) -> None:
    """Delete what only resuming needs: the checkpoints (optimizer state: GBs) and the best-weight files."""
    for name in (CHECKPOINTS_DIR, BEST_DIR):
        shutil.rmtree(Path(workdir) / name, ignore_errors=True)


def best_file(workdir: str | Path, step: int) -> Path:
    return Path(workdir) / BEST_DIR / f"{CHECKPOINT_PREFIX}{step:09d}.pt"


class BestWeights:
    """The best dev weights so far: one ``best/step-<N>.pt`` file per new best.

    Older bests stay until a checkpoint records the new one, so resuming from any checkpoint finds
    the best that checkpoint names; files are deleted by the main process only.
    """

    def __init__(self, workdir: Path, accelerator: Accelerator) -> None:
        self.workdir, self.accelerator = workdir, accelerator
        self.folder = workdir / BEST_DIR

    def save(self, model: nn.Module, step: int) -> None:
        """Write the weights of a new best at ``step`` into their own file."""
        state_dict = self.accelerator.get_state_dict(model)  # collective under FSDP
        if self.accelerator.is_main_process:
            path = best_file(self.workdir, step)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_open(path, "wb") as handle:
                torch.save(state_dict, handle)
        self.accelerator.wait_for_everyone()

    def keep_only(self, step: int | None) -> None:
        """Delete every best file but step ``step``'s (all of them when ``step`` is None)."""
        self._prune(lambda s: s != step)

    def drop_after(self, step: int) -> None:
        """Delete best files newer than ``step`` (on resume: the replay will redo them)."""
        self._prune(lambda s: s > step)

    def _prune(self, drop: Callable[[int], bool]) -> None:
        if not self.accelerator.is_main_process or not self.folder.is_dir():
            return
        for path in self.folder.glob(f"{CHECKPOINT_PREFIX}*.pt"):
            if drop(int(path.stem[len(CHECKPOINT_PREFIX) :])):
                path.unlink(missing_ok=True)

    def load_selected(self, model: nn.Module, step: int | None, name: str) -> Path | None:
        """Load the best weights of ``step`` into the unwrapped ``model`` and drop the others; their file."""
        if step is None:
            return None
        path = best_file(self.workdir, step)
        if not path.is_file():
            raise TrainingError(
                f"{name}: the best dev weights (step {step}) are missing from "
                f"{path.parent}; rerun with --force"
            )
        model.load_state_dict(safe_load(path))
        self.keep_only(step)
        return path


def _trim_log(path: Path | None, phase: str, step: int) -> None:
    """On resume, drop log rows of this phase written after the checkpoint (they will be redone)."""
    if path is None or not path.is_file():
        return
    rows = atomic.read_jsonl(path, skip_bad=True)
    atomic.write_jsonl(
        path, [r for r in rows if not (r.get("phase") == phase and r.get("step", 0) > step)]
    )


# ----------------------------------------------------------------------------- the loop


def train_phase(
    model: nn.Module,
    dataset: Any,
    collate_fn: Callable[[list[Any]], dict[str, Any]],
    phase: PhaseConfig,
    options: LoopOptions,
) -> LoopResult:
    """Train ``model`` for one phase and return it with the best dev weights loaded.

    ``model(**batch)`` must return a mapping with a scalar ``"loss"``. ``dataset[i]`` items are
    turned into batches by ``collate_fn``; ``options`` says how the phase runs (:class:`LoopOptions`).
    """
    run = _PhaseRun(model, dataset, collate_fn, phase, options)
    run.resume()
    run.train()
    return run.finish()


class _PhaseRun:
    """One :func:`train_phase` call: the prepared model, optimizer and schedule, and the loop's named steps."""

    def __init__(
        self,
        model: nn.Module,
        dataset: Any,
        collate_fn: Callable[[list[Any]], dict[str, Any]],
        phase: PhaseConfig,
        options: LoopOptions,
    ) -> None:
        self.phase, self.options, self.dataset, self.collate_fn = (
            phase,
            options,
            dataset,
            collate_fn,
        )
        self.name = options.name
        self.workdir = Path(options.workdir)
        self.ckpt_dir = self.workdir / CHECKPOINTS_DIR
        self.log_path = Path(options.log_path) if options.log_path else None
        if phase.grad_accum < 1:
            raise ConfigError(f"grad_accum must be at least 1, got {phase.grad_accum}")
        self.accelerator = options.accelerator or make_accelerator(
            options.precision,
            log_with=options.log_with,
            project_dir=self.workdir,
            find_unused_parameters=options.find_unused_parameters,
        )
        if len(dataset) == 0:
            raise TrainingError(f"{self.name}: no training examples")
        self.plan = options.plan or self._default_plan

        set_seed(options.seed)
        model.train()
        optimizer = make_optimizer(model, phase)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.main = self.accelerator.is_main_process

        n_local = len(local_batches(self.plan(0), self.world, self.rank))
        steps_per_epoch = math.ceil(n_local / phase.grad_accum)
        self.total = phase.max_steps or max(1, math.ceil(phase.epochs * steps_per_epoch))
        self.n_epochs = math.ceil(self.total / steps_per_epoch)
        warmup = int(phase.warmup_ratio * self.total)
        self.scheduler = linear_schedule(
            getattr(self.optimizer, "optimizer", self.optimizer), warmup, self.total
        )
        self.state = TrainState(total_steps=self.total)
        self.resumed_from: str | None = None
        self.best = BestWeights(self.workdir, self.accelerator)
        self.check_every = (
            phase.checkpoint_every
            if phase.checkpoint_every and phase.checkpoint_every > 0
            else None
        )
        self.log_every = max(1, phase.log_every)
        # summed loss since the last log row
        self.running = torch.zeros((), device=self.accelerator.device)
        self.running_n = 0

    def _default_plan(self, epoch: int) -> Batches:
        lengths = self.options.lengths
        return epoch_batches(
            len(self.dataset),
            self.phase.batch_size,
            self.options.seed,
            epoch,
            lengths=lengths,
            group_by_length=self.phase.group_by_length and lengths is not None,
        )

    # --- resume -------------------------------------------------------------------------------------

    def resume(self) -> None:
        """Continue from the newest checkpoint (with ``resume``): weights, optimizer, RNG states, schedule,
        trainer state; the log rows and best files after it are dropped. Otherwise start clean."""
        last = latest_checkpoint(self.ckpt_dir) if self.options.resume else None
        if last is not None:
            check_checkpoint(last)  # nothing below unpickles a file the safe loader refused
            self.accelerator.load_state(str(last))
            _load_scheduler(last, self.scheduler)
            self.state = _read_train_state(last / STATE_FILE)
            if self.state.total_steps != self.total:
                raise TrainingError(
                    f"{self.name}: checkpoint {last} was made for {self.state.total_steps} steps "
                    f"but this config gives {self.total}; the config changed - use --force to start "
                    f"over"
                )
            self.resumed_from = str(last)
            if self.main:
                _trim_log(self.log_path, self.name, self.state.global_step)
            self.best.drop_after(self.state.global_step)
        elif self.main:
            remove_training_state(self.workdir)
        self.accelerator.wait_for_everyone()

    # --- the epoch/step loop ------------------------------------------------------------------------

    def train(self) -> None:
        """Epochs until the step budget, the epoch budget or early stopping ends the phase."""
        options, state = self.options, self.state
        if options.log_with and not state.finished:
            self.accelerator.init_trackers(
                self.name.replace("/", "-"),
                config={
                    "lr": self.phase.lr,
                    "batch_size": self.phase.batch_size,
                    "total_steps": self.total,
                    "seed": options.seed,
                },
            )
        # creating iterators never advances torch's
        self.loader_gen = torch.Generator().manual_seed(options.seed)
        self.bar = tqdm(
            total=self.total,
            initial=state.global_step,
            desc=self.name,
            unit="step",
            disable=not self.main,
            dynamic_ncols=True,
        )
        self.started = time.time()
        self.saved_step: int | None = None  # the step of the last checkpoint this loop wrote
        # SIGTERM: finish the step, checkpoint, stop (see _stop_if_asked)
        with interrupt.deferred():
            while not state.finished:
                if (
                    state.epoch >= self.n_epochs
                    or state.global_step >= self.total
                    or state.stopped_early
                ):
                    state.finished = True
                    break
                self._run_epoch()
            self._stop_if_asked(None)
        self.bar.close()
        if options.log_with:
            self.accelerator.end_training()

    def _run_epoch(self) -> None:
        """The rest of the current epoch: its batch order is rebuilt from (seed, epoch), the batches a
        resumed run already saw are skipped; accumulation groups are aligned to the epoch's start."""
        state, accum = self.state, self.phase.grad_accum
        mine = local_batches(self.plan(state.epoch), self.world, self.rank)
        skip = state.batch_in_epoch
        loader = DataLoader(
            self.dataset,
            batch_sampler=mine[skip:],
            collate_fn=self.collate_fn,
            num_workers=self.options.num_workers,
            generator=self.loader_gen,
        )
        for i, batch in enumerate(loader, start=skip):
            group_start = (i // accum) * accum
            group_end = min(group_start + accum, len(mine))
            sync = i + 1 == group_end
            self._forward_backward(batch, sync=sync, group_size=group_end - group_start)
            state.batch_in_epoch = i + 1
            if not sync:
                continue
            self._optimizer_step()
            if self._after_step(len(mine)):
                break

    def _forward_backward(self, batch: dict[str, Any], *, sync: bool, group_size: int) -> None:
        """One micro-batch; gradients are synchronised across processes only at the group's last one."""
        batch = send_to_device(batch, self.accelerator.device)
        no_sync = (
            self.accelerator.no_sync(self.model)
            if (self.world > 1 and not sync)
            else contextlib.nullcontext()
        )
        with no_sync:
            out = self.model(**batch)
            loss = out["loss"] if isinstance(out, dict) else out.loss
            if self.options.nan_check:
                self._check_finite(loss)
            self.accelerator.backward(loss / group_size)
        self.running += loss.detach().float()
        self.running_n += 1

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop with one clear error when the loss is NaN/inf on any process (one sync: ``.item()``)."""
        # stays on device
        bad = (~torch.isfinite(loss.detach()).all()).float().to(self.accelerator.device)
        if self.world > 1:
            bad = self.accelerator.reduce(bad, "sum")
        if bad.item() > 0:
            kept = latest_checkpoint(self.ckpt_dir)
            where = (
                f"the last good checkpoint is kept at {kept}"
                if kept
                else "no checkpoint was written yet"
            )
            raise TrainingError(
                f"{self.name}: the loss became {loss.item()} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch + 1}); training stopped and {where}. Lower the learning "
                f"rate (--set ...lr=) or change precision, then rerun with --resume or --force"
            )

    def _optimizer_step(self) -> None:
        if self.phase.max_grad_norm and self.phase.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.phase.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.global_step += 1
        self.bar.update(1)

    def _after_step(self, n_batches: int) -> bool:
        """Log, evaluate and checkpoint as due after an optimizer step; True when the phase is finished."""
        state, phase = self.state, self.phase
        end_of_epoch = state.batch_in_epoch >= n_batches
        if end_of_epoch:
            state.epoch += 1
            state.batch_in_epoch = 0
        last_step = state.global_step >= self.total
        due_ckpt = bool(self.check_every and state.global_step % self.check_every == 0)
        # a checkpoint also flushes the running loss, so a resumed run logs the same rows
        if state.global_step % self.log_every == 0 or last_step or due_ckpt:
            self._log_loss(n_batches)
        due_eval = (
            (phase.eval_every and state.global_step % phase.eval_every == 0)
            or (not phase.eval_every and end_of_epoch)
            or last_step
        )
        if due_eval and not (state.history and state.history[-1]["step"] == state.global_step):
            self._evaluate()
        if last_step or state.stopped_early:
            state.finished = True
        if (state.finished and self.check_every) or due_ckpt:
            self._checkpoint()
        self._stop_if_asked(n_batches)
        return state.finished

    def _checkpoint(self) -> Path:
        path = _save_checkpoint(
            self.accelerator,
            self.ckpt_dir,
            self.state,
            self.scheduler,
            keep=self.options.keep_checkpoints,
        )
        self.best.keep_only(self.state.best_step)
        self.saved_step = self.state.global_step
        return path

    def _stop_if_asked(self, n_batches: int | None) -> None:
        """After an optimizer step: if any process got SIGTERM, all checkpoint this step and stop."""
        asked = interrupt.requested()
        stop = asked is not None
        # every process must stop at the same step (the checkpoint is collective)
        if self.world > 1:
            flag = torch.tensor(float(stop), device=self.accelerator.device)
            stop = bool(self.accelerator.reduce(flag, "sum").item() > 0)
        if not stop:
            return
        state = self.state
        if self.saved_step != state.global_step:
            if n_batches and self.running_n:
                self._log_loss(n_batches)  # the loss since the last row is kept, not lost
            path = self._checkpoint()
        else:
            path = latest_checkpoint(self.ckpt_dir)
        self.bar.close()
        interrupt.clear()
        raise interrupt.Stopped(
            asked or signal.SIGTERM,
            f"{self.name} stopped after step {state.global_step} of {self.total}; checkpoint {path}",
        )

    def _log(self, row: dict[str, Any]) -> None:
        if self.main and self.log_path is not None:
            atomic.append_jsonl(self.log_path, {"phase": self.name, **row})
        if self.options.log_with:
            self.accelerator.log(
                {f"{self.name}/{k}": v for k, v in row.items() if isinstance(v, (int, float))},
                step=self.state.global_step,
            )

    def _log_loss(self, n_batches: int) -> None:
        state = self.state
        mean_loss = self.accelerator.reduce(self.running / max(1, self.running_n), "mean").item()
        lr = self.scheduler.get_last_lr()[0]
        self._log(
            {
                "step": state.global_step,
                "epoch": round(state.epoch + state.batch_in_epoch / n_batches, 4),
                "loss": mean_loss,
                "lr": lr,
                "elapsed_s": round(time.time() - self.started, 2),
            }
        )
        self.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
        self.running.zero_()
        self.running_n = 0

    # --- best-weight tracking -----------------------------------------------------------------------

    def _evaluate(self) -> None:
        """Score the dev set; a new best saves its weights, else count towards early stopping."""
        evaluate, state = self.options.evaluate, self.state
        if evaluate is None:
            return
        self.model.eval()
        with torch.no_grad():
            metric = float(evaluate(self.model, self.accelerator))
        self.model.train()
        improved = state.best_metric is None or metric > state.best_metric
        state.history.append({"step": state.global_step, "epoch": state.epoch, "metric": metric})
        self._log({"step": state.global_step, "eval_metric": metric, "best": improved})
        if improved:
            state.best_metric, state.best_step, state.evals_without_improvement = (
                metric,
                state.global_step,
                0,
            )
            self.best.save(self.model, state.global_step)
            if not self.check_every:  # no checkpoint will name an older best: keep only this one
                self.best.keep_only(state.global_step)
        else:
            state.evals_without_improvement += 1
            patience = self.phase.early_stopping_patience
            if patience is not None and state.evals_without_improvement >= patience:
                state.stopped_early = True

    # --- the selected weights -----------------------------------------------------------------------

    def finish(self) -> LoopResult:
        """The unwrapped model with the selected (best dev) weights loaded, and what produced them."""
        unwrapped = self.accelerator.unwrap_model(self.model)
        best = (
            self.best.load_selected(unwrapped, self.state.best_step, self.name)
            if self.options.evaluate is not None
            else None
        )
        full = None
        # not exercised on CPU: needs several GPUs
        if str(self.accelerator.distributed_type).endswith("FSDP"):
            full = self.accelerator.get_state_dict(self.model)
        self.accelerator.wait_for_everyone()
        release_prepared(self.accelerator)
        return LoopResult(
            model=unwrapped,
            state=self.state,
            resumed_from=self.resumed_from,
            full_state_dict=full,
            best_path=best,
        )


def release_prepared(accelerator: Accelerator) -> None:
    """Drop the accelerator's references to what it prepared (``free_memory``). On a GPU, as ``free_memory``
    does, with its full ``gc.collect()`` and cache release; on CPU without them: there is no device cache, and
    the collection (about 0.5 s in a process that has imported torch, transformers and datasets) ran while
    the phase still held the model and optimizer, so it freed nothing they use."""
    if accelerator.device.type != "cpu":
        accelerator.free_memory()
        return
    for name in ("_schedulers", "_optimizers", "_models", "_dataloaders"):
        if isinstance(getattr(accelerator, name, None), list):
            setattr(accelerator, name, [])
    accelerator.step = 0


def eval_loader(
    accelerator: Accelerator, dataset: Any, collate_fn: Callable[[list[Any]], Any], batch_size: int
) -> DataLoader:
    """A sharded, in-order evaluation loader; use with :func:`gather_outputs`."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    return prepare_data_loader(
        loader,
        device=accelerator.device,
        num_processes=accelerator.num_processes,
        process_index=accelerator.process_index,
        put_on_device=True,
        even_batches=True,
    )


def gather_outputs(
    accelerator: Accelerator,
    model: nn.Module,
    loader: DataLoader,
    step: Callable[[nn.Module, dict[str, Any]], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Run ``step(model, batch)`` over ``loader`` on every process and gather the outputs in dataset
    order, with the padding ``even_batches`` adds dropped (``gather_for_metrics``)."""
    parts: dict[str, list[torch.Tensor]] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in loader:
            out = step(model, batch)
            out = (
                accelerator.pad_across_processes(out, dim=1, pad_index=-100)
                if any(v.ndim > 1 for v in out.values())
                else out
            )
            gathered = accelerator.gather_for_metrics(out)
            for key, value in gathered.items():
                parts.setdefault(key, []).append(value.cpu())
    model.train(was_training)
    return {k: _cat_padded(v) for k, v in parts.items()}


def _cat_padded(chunks: list[torch.Tensor]) -> torch.Tensor:
    if chunks[0].ndim < 2:
        return torch.cat(chunks)
    width = max(c.shape[1] for c in chunks)
    padded = [
        torch.nn.functional.pad(c, (0, 0) * (c.ndim - 2) + (0, width - c.shape[1]), value=-100)
        if c.shape[1] < width
        else c
        for c in chunks
    ]
    return torch.cat(padded)
