"""Per-run overhead of a tiny ``mmxfer train`` on the rehearsal's fixtures: where the seconds go.

Not a test. Writes JSON (stdout, or ``--out``)::

    python benchmarks/rehearsal_overhead.py --out benchmarks/results/rehearsal_overhead.json

The rehearsal (``configs/studies/rehearsal.yaml``) runs ~11 arms x ~10 targets x 2 seeds in one process
on 2 CPU cores within 5 minutes, so what matters is the fixed cost of one run, not training speed. This
probe runs that shape in one process: the tiny XLM-R-architecture trunk saved as a Hugging Face folder
(``trunk.name=<folder>``) and the tiny open_clip tower (``vision.checkpoint=<file>``), the fixtures'
release form (``--data-dir``), a text and an image-text phase 2 (``mnli``, ``vqa``; one per arm and seed,
shared by its targets), phase 3 on a classification, a tagging and a QA target, and prediction on three
languages, plus the baseline arm (phase 3 only). (Until ``mmxfer train --languages`` exists, the targets'
language lists are cut to three here.)

Each run's wall time is split into stages, by wrapping the functions that do them; a stage's time is
its own (time spent in a nested stage is counted there; ``other`` is the rest of the run):

* ``accelerate`` - ``Accelerator`` set-up and ``prepare``; ``trunk_load`` - ``load_trunk`` from the folder;
* ``data_load`` - ``spec.load`` (release files -> canonical dataset); ``featurize`` - tokenisation and
  the feature cache; ``model_build`` - heads (and towers);
* ``train_steps`` - the optimisation loop; ``evaluation`` - dev scoring and test prediction;
* ``checkpoint`` - resumable checkpoints and best-weight files; ``writing`` - run folder, predictions,
  metrics, the phase-2 trunk; ``release_memory`` - the end-of-phase memory release.

The first run of each arm in the process (imports, kernels) is reported apart as ``warmup_s``;
``--cold`` also times one ``mmxfer train`` in a fresh interpreter. ``results_sha256`` hashes every run's
predictions, metric rows and losses: a speed change must leave it as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

STAGES = (
    "accelerate",
    "trunk_load",
    "data_load",
    "featurize",
    "model_build",
    "train_steps",
    "evaluation",
    "checkpoint",
    "writing",
    "release_memory",
)
LANGUAGES = ("en", "de", "zh")


class StageTimer:
    """Exclusive wall time per stage: nested stages pause the enclosing one."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []  # [stage, started]

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            now = time.perf_counter()
            if self.stack:
                top = self.stack[-1]
                self.totals[top[0]] += now - top[1]
            self.stack.append([stage, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                name, started = self.stack.pop()
                self.totals[name] += end - started
                if self.stack:
                    self.stack[-1][1] = end

        return timed

    def take(self) -> dict[str, float]:
        out, self.totals = dict(self.totals), defaultdict(float)
        return out


def instrument(timer: StageTimer) -> None:
    """Wrap the functions of each stage where the training code looks them up."""
    import accelerate

    from mmxfer.evaluation import scoring
    from mmxfer.runs import store
    from mmxfer.tasks.base import TaskSpec
    from mmxfer.train import data, loop, phases, run

    patches = [
        (phases, "make_accelerator", "accelerate"),
        (accelerate.Accelerator, "prepare", "accelerate"),
        (run, "PartialState", "accelerate"),
        (phases, "load_trunk", "trunk_load"),
        (TaskSpec, "load", "data_load"),
        (data, "featurize", "featurize"),
        (phases, "build_task_model", "model_build"),
        (phases, "train_phase", "train_steps"),
        (phases, "predict", "evaluation"),
        (loop, "_save_checkpoint", "checkpoint"),
        (loop.BestWeights, "save", "checkpoint"),
        (loop.BestWeights, "load_selected", "checkpoint"),
        (run, "open_run", "writing"),
        (store.Run, "write_predictions", "writing"),
        (store.Run, "log_metric", "writing"),
        (store.Run, "write_metrics", "writing"),
        (store.Run, "mark_done", "writing"),
        (phases, "save_trunk", "writing"),
        (run, "remove_training_state", "writing"),
        (phases, "score_file_rows", "writing"),
        (scoring, "score_predictions", "evaluation"),
        (accelerate.Accelerator, "free_memory", "release_memory"),
        (loop, "release_prepared", "release_memory"),
    ]
    for owner, name, stage in patches:
        if hasattr(owner, name):  # older code may lack a function
            setattr(owner, name, timer.wrap(stage, getattr(owner, name)))


def profile_config(trunk: Path, checkpoint: Path, data_dir: Path, runs_dir: Path) -> dict:
    phase = {
        "lr": 1e-4,
        "batch_size": 8,
        "epochs": 1,
        "checkpoint_every": 1000,
        "group_by_length": False,
    }
    return {
        "name": "rehearsal-probe",
        "trunk": {"name": str(trunk), "max_length": 64},
        "vision": {
            "model": "tiny-vit",
            "pretrained": None,
            "checkpoint": str(checkpoint),
            "num_tokens": 4,
        },
        "intermediate": phase,
        "target": phase,
        "precision": "no",
        "suite": "xtreme-retrieval",
        "runs_dir": str(runs_dir),
        "study": "probe",
        "data_dir": str(data_dir),
        "retrieval": {"layer": -1},
    }


def cut_languages(targets: list[str]) -> None:
    """Evaluate the targets on :data:`LANGUAGES` only (what ``--languages`` will do)."""
    from mmxfer import catalog

    catalog.load_plugins()
    for name in targets:
        spec = catalog.task(name)
        catalog.TASKS._items[spec.name] = dataclasses.replace(
            spec, languages=tuple(lang for lang in LANGUAGES if lang in spec.languages)
        )


def child(args: argparse.Namespace) -> None:
    """One ``mmxfer train`` in this (fresh) interpreter, for ``--cold``."""
    cut_languages([args.target])
    from mmxfer.cli import main

    sys.exit(
        main(
            [
                "train",
                "--config",
                args.child,
                "--intermediate",
                "mnli",
                "--target",
                args.target,
                "--seed",
                "99",
            ]
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--arms",
        default="mnli,vqa",
        help="intermediate tasks of the timed arms (a text and an image one)",
    )
    ap.add_argument("--targets", default="pawsx,panx,mlqa", help="targets of every arm")
    ap.add_argument(
        "--seeds", type=int, default=2, help="seeds: each arm trains one phase 2 per seed"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (the rehearsal runs one process)"
    )
    ap.add_argument(
        "--cold", action="store_true", help="also time one `mmxfer train` in a fresh interpreter"
    )
    ap.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--target", default="pawsx", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        child(args)
        return
    with contextlib.ExitStack() as stack:
        work = (
            Path(args.work)
            if args.work
            else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        os.environ["MMXFER_CACHE"] = str(work / "cache")
        print(
            json.dumps(measure(args, work), indent=2),
            file=open(args.out, "w") if args.out else sys.stdout,
        )


def measure(args: argparse.Namespace, work: Path) -> dict:
    started = time.perf_counter()
    import datasets
    import open_clip  # noqa: F401  (imported here so that their cost is not the warm-up run's)
    import torch
    import transformers  # noqa: F401
    import yaml

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    from mmxfer.config import ExperimentConfig, load
    from mmxfer.testing.fixtures import fixture_set
    from mmxfer.testing.saved import tiny_trunk_dir, tiny_vision_checkpoint
    from mmxfer.train.run import execute, resolve_request

    imports = time.perf_counter() - started
    t = time.perf_counter()
    fixtures = fixture_set(work / "fixtures")
    fixture_s = time.perf_counter() - t
    t = time.perf_counter()
    trunk, checkpoint = tiny_trunk_dir(work / "models"), tiny_vision_checkpoint(work / "models")
    models_s = time.perf_counter() - t
    targets = args.targets.split(",")
    cut_languages(targets)
    shutil.rmtree(work / "runs", ignore_errors=True)  # finished runs would be skipped
    config = profile_config(trunk, checkpoint, fixtures.data_dir, work / "runs")
    profile = load(ExperimentConfig, None, [], base=config)
    timer = StageTimer()
    instrument(timer)

    def one(arm: str, target: str, seed: int) -> dict:
        timer.take()
        t = time.perf_counter()
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            execute(resolve_request(profile, arm, target, seed=seed))
        total = time.perf_counter() - t
        stages = timer.take()
        row = {"arm": arm, "target": target, "seed": seed, "seconds": round(total, 3)}
        row["stages"] = {s: round(stages.get(s, 0.0), 3) for s in STAGES}
        row["stages"]["other"] = round(total - sum(stages.values()), 3)
        return row

    arms = args.arms.split(",")
    warmup = [
        one(arm, targets[0], 1000) for arm in arms
    ]  # first use of each path: imports, kernels
    runs = []
    # as a study orders them: a seed's phase 2 is shared by its targets
    for seed in range(1, args.seeds + 1):
        for arm in arms:
            runs += [
                {**one(arm, target, seed), "phase2": "trained" if i == 0 else "reused"}
                for i, target in enumerate(targets)
            ]
    baseline = [
        one("none", target, seed) for seed in range(1, args.seeds + 1) for target in targets
    ]
    result = {
        "setup": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "arms": arms,
            "targets": targets,
            "languages": LANGUAGES,
            "seeds": args.seeds,
            "imports_s": round(imports, 2),
            "fixtures_s": round(fixture_s, 2),
            "models_s": round(models_s, 2),
        },
        "warmup_s": {r["arm"]: r["seconds"] for r in warmup},
        "warmup_stages_s": {r["arm"]: r["stages"] for r in warmup},
        "per_run_s": {
            "median": _median(runs),
            "mean": round(statistics.mean(r["seconds"] for r in runs), 3),
            "phase2_trained": _median([r for r in runs if r["phase2"] == "trained"]),
            "phase2_reused": _median([r for r in runs if r["phase2"] == "reused"]),
            "baseline_arm": _median(baseline),
            **{f"arm_{arm}": _median([r for r in runs if r["arm"] == arm]) for arm in arms},
        },
        "stages_median_s": {
            s: round(statistics.median(r["stages"][s] for r in runs), 3) for s in (*STAGES, "other")
        },
        "runs": runs + baseline,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results_sha256": results_digest(work / "runs"),
    }
    if args.cold:
        path = work / "probe.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--target", targets[0]],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        result["cold_process_s"] = round(time.perf_counter() - t, 2)
    return result


def results_digest(runs_dir: Path) -> str:
    """A hash of every run's predictions and metric rows (by run label, not folder name): equal before and
    after a speed change means the change left the results alone."""
    import hashlib

    h = hashlib.sha256()
    for run in sorted(runs_dir.glob("*/*"), key=lambda p: p.name.rsplit("-", 1)[0]):
        if not (run / "DONE").is_file():
            continue
        h.update(run.name.rsplit("-", 1)[0].encode())
        for path in sorted((run / "predictions").rglob("*.jsonl")) + [run / "metrics.jsonl"]:
            h.update(str(path.relative_to(run)).encode())
            h.update(path.read_bytes())
        # losses, not timings
        for line in (run / "train_log.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            h.update(
                json.dumps(
                    {k: v for k, v in row.items() if k not in ("elapsed_s", "shared_from")},
                    sort_keys=True,
                ).encode()
            )
    return h.hexdigest()


def _median(rows: list[dict]) -> float | None:
    return round(statistics.median(r["seconds"] for r in rows), 3) if rows else None


if __name__ == "__main__":
    main()
