"""The prepared GPU check in its CPU mode (``--device cpu --tiny``): every part runs, the report has what a GPU
session reads (device, torch, the aims with a verdict slot), and a failure is loud (exit 1, the error in JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("train", "forward", "phase2_vision", "generation", "rehearsal")


def _check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "MMXFER_CACHE": os.environ.get("MMXFER_CACHE", str(tmp_path / "cache")),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_check.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return proc, json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_cpu_tiny_mode_runs_every_part(tmp_path):
    proc, report = _check(tmp_path, "--device", "cpu", "--tiny")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "error" not in report
    assert report["device"]["type"] == "cpu" and report["torch"] == torch.__version__
    assert set(report["parts"]) == set(PARTS)
    assert not [n for n, p in report["parts"].items() if "error" in p]
    train = report["parts"]["train"]
    for shape in ("xlmr-base", "xlmr-large"):
        assert (
            train[shape]["mmxfer"]["tokens_per_s"] > 0
            and train[shape]["trainer"]["tokens_per_s"] > 0
        )
    assert (
        report["parts"]["generation"]["beam5"]["output_tokens"]
        >= report["parts"]["generation"]["new_tokens"]
    )
    assert (
        report["parts"]["rehearsal"]["ran_on"] == "cpu"
        and report["parts"]["rehearsal"]["runs_done"] >= 3
    )
    assert [a["threshold"] for a in report["aims"]] == [1.0, 1.0, 0.45, 1000.0]
    # not judged on a CPU
    assert all(a["pass"] is None and a["measured"] is not None for a in report["aims"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_mode_without_a_gpu_fails_loudly(tmp_path):
    proc, report = _check(tmp_path, "--device", "cuda")
    assert proc.returncode == 1
    assert "torch sees no CUDA device" in report["error"] and "gpu check FAILED" in proc.stderr
