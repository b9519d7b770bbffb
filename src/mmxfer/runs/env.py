"""Provenance: versions, git commit, device, host and command line of a run."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mmxfer

# torch is imported when the environment of a run is recorded, not with the run store

_PACKAGES = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "open_clip_torch",
    "tokenizers",
    "sacrebleu",
    "numpy",
    "pandas",
)


@functools.cache  # the process runs the packages it imported at start: ask importlib.metadata once
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the mmxfer source tree, with '+dirty' if it has local changes; None if not a checkout."""
    where = path or Path(mmxfer.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _source_commit() -> str | None:
    """:func:`git_commit` of the source tree this process imported (asked once: two git calls a run add up)."""
    return git_commit()


@functools.cache
def cpu_bf16_native() -> bool:
    """True when the CPU computes bf16 matrix products natively (AVX512-BF16 or AMX-BF16), as torch reports it."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        try:
            caps = capabilities()
            return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
        except (RuntimeError, AttributeError):  # pragma: no cover - a torch build without cpuinfo
            pass
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # pragma: no cover - older torch
    return bool(probe and probe())  # pragma: no cover


def resolve_precision(precision: str, device: str | None = None) -> str:
    """The mixed precision a run uses: ``auto`` becomes ``bf16`` on a CUDA GPU with bf16 or a CPU with native
    bf16 (:func:`cpu_bf16_native`), else ``no`` (fp32); other values are returned as they are."""
    if precision != "auto":
        return precision
    import torch

    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if kind == "cpu" and cpu_bf16_native() else "no"


def precision_text(precision: str, device: str | None = None) -> str:
    """``precision`` as printed: ``auto -> bf16`` when it resolves to something else on ``device``."""
    resolved = resolve_precision(precision, device)
    return precision if resolved == precision else f"{precision} -> {resolved}"


def precision_record(precision: str) -> dict[str, str]:
    """What env.json says about precision: the configured value and what it resolved to on this machine."""
    return {"configured": precision, "resolved": resolve_precision(precision)}


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cuda": False}
    try:
        import torch

        info["cpu_bf16_native"] = cpu_bf16_native()
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["cuda_version"] = torch.version.cuda
            info["devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return info


def environment(seed: int | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "mmxfer_version": mmxfer.__version__,
        "git_commit": _source_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": dict(package_versions()),
        "device": device_info(),
        "seed": seed,
        "command_line": sys.argv,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
