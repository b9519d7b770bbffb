"""Two CPU processes (gloo) under torchrun: same weights on both ranks, metrics gathered over all of dev."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toy import ToyDataset


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_USE_CPU": "true"}
    worker = Path(__file__).with_name("ddp_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", str(worker), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0["world"] == r1["world"] == 2
    dev = ToyDataset(21, seed=5)
    # gather_for_metrics drops the padding that even_batches adds: exactly the 21 dev examples, in order
    assert r0["n_gathered"] == r1["n_gathered"] == 21
    assert r0["gold"] == [x["labels"] for x in dev.items]
    # 40 examples / batch 4 = 10 batches, 5 per process per epoch, 2 epochs
    assert r0["steps"] == r1["steps"] == 10
    assert r0["digest"] == r1["digest"]  # DDP kept the replicas identical
    # the selected model's full-dev accuracy computed locally equals the gathered best metric
    assert r0["acc_full_dev_final"] == pytest.approx(r0["best"])
