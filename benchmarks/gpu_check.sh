#!/usr/bin/env bash
# The GPU check on a bare machine in one call: the project's own install, then benchmarks/gpu_check.py (JSON report).
#   bash benchmarks/gpu_check.sh [REPORT.json]
set -euo pipefail
cd "$(dirname "$0")/.." && pip install -q -c constraints.txt -e ".[dev]" && exec python benchmarks/gpu_check.py --device cuda --out "${1:-benchmarks/results/gpu_check.json}"
