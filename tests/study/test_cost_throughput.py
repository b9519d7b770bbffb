"""The throughput table: datasheet devices, assumed rates marked, measured rates imported from a GPU check."""

from __future__ import annotations

import json
import shutil

import pytest

from mmxfer.errors import ConfigError
from mmxfer.study import throughput


def test_gpu_kinds_and_precisions():
    d = throughput.device("h100", "auto")
    assert (d.kind, d.precision, d.peak_flops) == ("H100", "bf16", 989.4e12)
    assert set(d.assumed) == set(throughput.RATE_NAMES)
    assert throughput.device("A100", "no").precision == "fp32"
    with pytest.raises(ConfigError, match="unknown GPU kind 'V100'"):
        throughput.device("V100", "bf16")


def test_time_is_the_longer_of_compute_and_fixed_cost():
    d = throughput.device("H100", "bf16")
    compute = 1e15 / (d.peak_flops * d.rate("train_mfu"))
    assert d.train_seconds(1e15, 1, 24) == pytest.approx(compute)  # a big batch: compute-bound
    # launch-bound
    assert d.train_seconds(1e9, 10, 24) == pytest.approx(10 * 24 * d.rate("train_layer_ms") / 1e3)


def _report(**fit) -> dict:
    return {
        "device": {"type": "cuda", "name": "NVIDIA H100 80GB HBM3"},
        "torch": "2.14.1",
        "precision": "bf16",
        "finished": "2026-01-01T00:00:00",
        "fit": fit,
    }


def test_import_check_writes_measured_rates(tmp_path):
    table = tmp_path / "throughput.json"
    shutil.copy(throughput.TABLE, table)
    kind, precision, names = throughput.import_check(
        _report(train_mfu=0.52, train_layer_ms=0.11), table
    )
    assert (kind, precision, names) == ("H100", "bf16", ["train_layer_ms", "train_mfu"])
    data = json.loads(table.read_text())
    assert data["rates"]["H100"]["bf16"]["train_mfu"]["status"] == "measured"
    assert data["rates"]["H100"]["bf16"]["train_mfu"]["value"] == 0.52
    assert "NVIDIA H100" in data["rates"]["H100"]["bf16"]["train_mfu"]["source"]


@pytest.mark.parametrize(
    "report,message",
    [
        ({**_report(train_mfu=0.5), "error": "CUDA out of memory"}, "the GPU check failed"),
        ({**_report(train_mfu=0.5), "device": {"type": "cpu", "name": "x86_64"}}, "not a GPU"),
        (_report(), "no fitted rates"),
    ],
)
def test_import_check_refuses_what_is_no_gpu_measurement(tmp_path, report, message):
    table = tmp_path / "throughput.json"
    shutil.copy(throughput.TABLE, table)
    with pytest.raises(ConfigError, match=message):
        throughput.import_check(report, table)
