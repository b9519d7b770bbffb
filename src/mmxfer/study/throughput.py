"""How fast a device turns FLOPs into seconds: the table ``mmxfer/resources/cost/throughput.json``.

Per GPU kind (H100, H200, A100) its datasheet peak (dense, per precision) and memory bandwidth; per kind and
precision the rates the time model uses, each marked **measured** (imported from a ``benchmarks/gpu_check.py``
report: ``python benchmarks/throughput_from_check.py REPORT.json``) or **assumed**:

* ``train_mfu`` / ``forward_mfu``: the share of the peak that a training step / a forward pass reaches once its
  batch is large enough (model FLOPs utilisation);
* ``train_layer_ms`` / ``forward_layer_ms``: a fixed cost per layer and micro-batch (kernel launches, Python),
  which dominates small batches - phase 2's batch of 4 sentences;
* ``greedy_layer_ms`` / ``beam_layer_ms``: the same per decoder layer and decoding step of ``generate``;
* ``optimizer_bytes``: bytes AdamW reads and writes per trained parameter and optimizer step, at the memory
  bandwidth.

Time of a piece of work: the longer of ``FLOPs / (peak x mfu)`` and ``micro-batches x layers x layer_ms`` - kernels
are queued ahead of the device, so the fixed cost hides behind the device's work until a batch is too small to
cover it - plus the optimizer's bytes / bandwidth per optimizer step. The ``cpu`` kind takes its peak from a matrix product timed on the machine itself
(:func:`cpu_matmul_flops`) with utilisation 1 and no fixed costs: a compute-bound floor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mmxfer.errors import ConfigError, suggest

TABLE = Path(__file__).resolve().parent.parent / "resources" / "cost" / "throughput.json"
MEASURED, ASSUMED = "measured", "assumed"
RATE_NAMES = (
    "train_mfu",
    "forward_mfu",
    "train_layer_ms",
    "forward_layer_ms",
    "greedy_layer_ms",
    "beam_layer_ms",
    "optimizer_bytes",
)
CPU = "cpu"


@dataclass(frozen=True)
class Rate:
    value: float
    status: str  # measured | assumed
    source: str


@dataclass(frozen=True)
class Device:
    """One GPU kind at one precision (or this machine's CPU) with the rates of the time model."""

    kind: str
    precision: str  # bf16 | fp16 | fp32
    peak_flops: float  # FLOP/s, dense
    memory_bytes_s: float
    rates: dict[str, Rate] = field(default_factory=dict)
    source: str = ""

    def rate(self, name: str) -> float:
        return self.rates[name].value

    @property
    def assumed(self) -> list[str]:
        return [n for n in RATE_NAMES if self.rates[n].status != MEASURED]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.precision}"

    def train_seconds(self, flops: float, micro_batches: float, layers: int) -> float:
        return max(
            flops / (self.peak_flops * self.rate("train_mfu")),
            micro_batches * layers * self.rate("train_layer_ms") / 1e3,
        )

    def forward_seconds(self, flops: float, batches: float, layers: int) -> float:
        return max(
            flops / (self.peak_flops * self.rate("forward_mfu")),
            batches * layers * self.rate("forward_layer_ms") / 1e3,
        )

    def generate_seconds(self, flops: float, steps: float, layers: int, beams: int) -> float:
        per = self.rate("beam_layer_ms" if beams > 1 else "greedy_layer_ms")
        return max(flops / (self.peak_flops * self.rate("forward_mfu")), steps * layers * per / 1e3)

    def optimizer_seconds(self, steps: float, trained_params: float) -> float:
        return steps * trained_params * self.rate("optimizer_bytes") / self.memory_bytes_s


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def kinds() -> list[str]:
    return [*table()["gpus"], CPU]


def table_precision(precision: str) -> str:
    """A profile's precision as the table names it (``auto`` is bf16 on every GPU kind listed; ``no`` is fp32)."""
    return {"no": "fp32", "auto": "bf16"}.get(precision, precision)


def _rates(kind: str, precision: str) -> dict[str, Rate]:
    data = table()
    merged = {
        **data["default_rates"].get(precision, {}),
        **data.get("rates", {}).get(kind, {}).get(precision, {}),
    }
    missing = [n for n in RATE_NAMES if n not in merged]
    if missing:
        raise ConfigError(f"{TABLE}: {kind} {precision} has no {', '.join(missing)}")
    return {
        n: Rate(float(merged[n]["value"]), merged[n]["status"], merged[n]["source"])
        for n in RATE_NAMES
    }


def check_kind(kind: str) -> str:
    """``kind`` as the table spells it (``cpu`` for this machine); one clear error for an unknown kind."""
    match = next((k for k in kinds() if k.lower() == kind.lower()), None)
    if match is None:
        raise ConfigError(
            f"unknown GPU kind {kind!r}{suggest(kind, kinds())}; the table has {', '.join(kinds())}"
        )
    return match


def device(kind: str, precision: str) -> Device:
    """The device ``kind`` (a GPU kind of the table, or ``cpu``) at a profile's ``precision``."""
    precision = table_precision(precision)
    match = check_kind(kind)
    if match == CPU:
        return cpu_device(precision)
    gpu = table()["gpus"][match]
    if precision not in gpu["peak_tflops"]:
        raise ConfigError(f"{match} has no {precision} peak in {TABLE}")
    return Device(
        match,
        precision,
        gpu["peak_tflops"][precision] * 1e12,
        gpu["memory_tb_s"] * 1e12,
        _rates(match, precision),
        gpu["source"],
    )


def cpu_matmul_flops(
    precision: str = "fp32",
    size: int = 512,
    seconds: float = 0.3,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """FLOP/s of a square matrix product on this machine's CPU at ``precision``: the best of short repeats, timed
    by ``clock`` (``time.process_time`` gives FLOPs per CPU-second, which other processes on the machine do not
    change)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == 0.0:
        start = clock()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * size**3 / max(clock() - start, 1e-9))
    return best


def cpu_device(precision: str = "fp32", flops: float | None = None) -> Device:
    """This machine's CPU: peak = a matrix product timed now (or ``flops``), utilisation 1, no fixed costs."""
    measured = cpu_matmul_flops(precision) if flops is None else flops
    note = f"{measured / 1e9:.0f} GFLOP/s: a {precision} 512-square matrix product timed on this machine"
    rates = {n: Rate(0.0, ASSUMED, "cpu: no fixed cost") for n in RATE_NAMES}
    rates.update(
        train_mfu=Rate(1.0, MEASURED, note),
        forward_mfu=Rate(1.0, MEASURED, note),
        optimizer_bytes=Rate(28.0, ASSUMED, "AdamW: 4 fp32 tensors read, 3 written"),
    )
    return Device(CPU, precision, measured, 10e9, rates, note)


# ----------------------------------------------------------------------------- measured rates from a GPU check


def gpu_kind_of(device_name: str) -> str:
    """The table's GPU kind in a CUDA device name (``NVIDIA H100 80GB HBM3`` -> ``H100``)."""
    for kind in table()["gpus"]:
        if kind.lower() in device_name.lower():
            return kind
    raise ConfigError(
        f"device {device_name!r} is none of the table's GPU kinds ({', '.join(table()['gpus'])})"
    )


def rates_from_check(report: dict[str, Any]) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """``(kind, precision, rates)`` that a ``benchmarks/gpu_check.py`` report measured (the ``fit`` it wrote)."""
    if report.get("error"):
        raise ConfigError(f"the GPU check failed ({report['error']}): nothing to import")
    device_name = report.get("device", {}).get("name", "")
    if report.get("device", {}).get("type") != "cuda":
        raise ConfigError(
            f"the report was made on {device_name or 'a CPU'}, not a GPU: nothing to import"
        )
    kind = gpu_kind_of(device_name)
    fit = report.get("fit") or {}
    source = f"benchmarks/gpu_check.py on {device_name}, torch {report.get('torch')}, {report.get('finished', '')}"
    rates = {
        name: {"value": float(value), "status": MEASURED, "source": source}
        for name, value in fit.items()
        if name in RATE_NAMES and value is not None
    }
    if not rates:
        raise ConfigError("the report has no fitted rates ('fit'): rerun benchmarks/gpu_check.py")
    return kind, report.get("precision", "bf16"), rates


def import_check(report: dict[str, Any], path: Path = TABLE) -> tuple[str, str, list[str]]:
    """Write the rates a GPU check measured into the table at ``path``; returns ``(kind, precision, names)``."""
    kind, precision, rates = rates_from_check(report)
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("rates", {}).setdefault(kind, {}).setdefault(precision, {}).update(rates)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if path == TABLE:
        table.cache_clear()
    return kind, precision, sorted(rates)
