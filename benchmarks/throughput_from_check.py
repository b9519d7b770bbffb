"""Puts what a GPU check measured into the planner's table (``src/mmxfer/resources/cost/throughput.json``).

    python benchmarks/throughput_from_check.py benchmarks/results/gpu_check.json

Reads the report's ``fit`` (the time model's rates: ``train_mfu``, ``train_layer_ms``, ``forward_mfu``,
``forward_layer_ms``, ``greedy_layer_ms``, ``beam_layer_ms``) and writes each, marked measured with the device,
torch version and date, under ``rates.<GPU kind>.bf16``; ``mmxfer study ... --dry-run --gpu <kind>`` then shows
them as measured. A report with an error, from a CPU, or without fitted rates is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mmxfer.errors import MmxferError  # noqa: E402
from mmxfer.study import throughput  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
        kind, precision, names = throughput.import_check(report)
    except (OSError, json.JSONDecodeError, MmxferError) as exc:
        print(f"throughput_from_check: {exc}", file=sys.stderr)
        return 2
    print(f"{throughput.TABLE}: {kind} {precision} measured {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
