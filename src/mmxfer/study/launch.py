"""The SLURM launcher of a study: one job per run. (Local runs are plain calls of
:func:`mmxfer.train.run.execute`, see :mod:`mmxfer.study.grid`.)

SLURM jobs run ``accelerate launch -m mmxfer train ...`` (one process per GPU of the node) through
``submitit``, each with its own log folder ``<runs_dir>/<study>/_slurm/<run_id>/``. Runs that share
an unfinished phase-2 trunk are chained: the first one trains it, the others wait for that job
(``--dependency=afterok``) instead of holding GPUs while they wait on the lock.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmxfer.config import SlurmConfig
from mmxfer.errors import ConfigError
from mmxfer.train.run import RunRequest


def train_argv(request: RunRequest, profile: str, overrides: Sequence[str]) -> list[str]:
    """The ``mmxfer train`` arguments of ``request`` for a new process: ``profile`` (a name or YAML path)
    and ``overrides`` are what that process resolves the request's profile from."""
    argv = [
        "train",
        "--arm",
        request.arm,
        "--intermediate",
        ",".join(request.tasks) or "none",
        "--profile",
        profile,
        "--seed",
        str(request.seed),
        "--study",
        request.study,
        "--runs-dir",
        str(request.runs_dir),
        "--resume",
    ]
    if request.target:
        argv += ["--target", request.target]
    if request.data_dir:
        argv += ["--data-dir", request.data_dir]
    if request.languages:
        argv += ["--languages", ",".join(request.languages)]
    for item in overrides:
        argv += ["--set", item]
    return argv


def accelerate_command(argv: list[str], slurm: SlurmConfig) -> list[str]:
    cmd = ["accelerate", "launch"]
    if slurm.gpus_per_node > 1 or slurm.nodes > 1:
        cmd += [
            "--multi_gpu",
            "--num_processes",
            str(slurm.gpus_per_node * slurm.nodes),
            "--num_machines",
            str(slurm.nodes),
        ]
    if slurm.nodes > 1:
        # every node runs this command once (srun below); rank and rendezvous come from SLURM
        cmd += [
            "--machine_rank",
            "$SLURM_NODEID",
            "--main_process_ip",
            "$MASTER_ADDR",
            "--main_process_port",
            "29500",
        ]
    return cmd + ["-m", "mmxfer"] + argv


def submit_slurm(
    argv: list[str],
    slurm: SlurmConfig,
    log_dir: Path,
    *,
    depends_on: Sequence[str] = (),
    name: str = "mmxfer",
) -> Any:
    """Submit one run as one SLURM job; returns the submitit job."""
    try:  # submitit is imported on submission only, like the other heavy packages
        import submitit
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "the slurm launcher needs the `submitit` package (pip install submitit)"
        ) from exc
    log_dir.mkdir(parents=True, exist_ok=True)
    executor = submitit.AutoExecutor(folder=str(log_dir))
    extra = dict(slurm.extra)
    if depends_on:
        extra["dependency"] = "afterok:" + ":".join(depends_on)
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": slurm.timeout_min,
        "nodes": slurm.nodes,
        "gpus_per_node": slurm.gpus_per_node,
        "cpus_per_task": slurm.cpus_per_task,
        "tasks_per_node": 1,
        "slurm_additional_parameters": extra,
    }
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if slurm.mem_gb:
        params["mem_gb"] = slurm.mem_gb
    if slurm.account:
        params["slurm_account"] = slurm.account
    executor.update_parameters(**params)
    cmd = accelerate_command(argv, slurm)
    if slurm.nodes > 1:
        script = (
            "export MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1); "
            + " ".join(c if c.startswith("$") else shlex.quote(c) for c in cmd)
        )
        function = submitit.helpers.CommandFunction(["bash", "-c", script])
    else:
        function = submitit.helpers.CommandFunction(cmd)
    return executor.submit(function)
