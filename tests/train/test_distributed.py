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
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "ACCELERATE_USE_CPU": "true",
    }
    worker = Path(__file__).with_name("ddp_worker.py")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            str(worker),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
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


def _pawsx_files(root: Path) -> None:
    rows = [
        ("The cat sat on the mat.", "A cat is on the mat.", 1),
        ("The cat sat on the mat.", "A dog runs.", 0),
        ("Ein Mann reitet am Strand.", "Ein Mann auf einem Pferd.", 1),
        ("Le chat dort.", "Il pleut.", 0),
    ]
    for lang in ("de", "en", "es", "fr", "ja", "ko", "zh"):
        folder = root / "x-final" / lang
        folder.mkdir(parents=True)
        lines = ["id\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(rows * 4)
        ]
        for name in ("train" if lang == "en" else "translated_train", "dev_2k", "test_2k"):
            (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_torchrun_phase3_on_an_xlmr_architecture_trunk_folder(tmp_path):
    """The XLM-R pooler takes no part in any loss: DDP must not wait for its gradients."""
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed")
    from mmxfer.testing.tiny import tiny_trunk

    model, tokenizer = tiny_trunk()
    # as in FacebookAI/xlm-roberta-*: the folder holds pooler weights
    assert model.pooler is not None
    trunk = tmp_path / "xlmr-tiny"
    model.save_pretrained(str(trunk))
    tokenizer.save_pretrained(str(trunk))
    _pawsx_files(tmp_path / "data")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "ACCELERATE_USE_CPU": "true",
        "MMXFER_CACHE": str(tmp_path / "cache"),
        "TQDM_DISABLE": "1",
    }
    worker = Path(__file__).with_name("ddp_phase3_worker.py")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            str(worker),
            str(tmp_path),
            str(trunk),
            str(tmp_path / "data"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # rank 0 writes the rows
    assert r0["langs"] == ["de", "en", "es", "fr", "ja", "ko", "zh"] and r1["rows"] == 0
    assert r0["steps"] == 4  # 16 examples / batch 4 / 2 processes x 2 epochs
