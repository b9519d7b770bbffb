"""Bootstrap cost of corpus-level metrics: recomputing the metric per resample vs summed statistics.

One cell of ``mmxfer compare`` (one task x language, two arms) with B resamples of n examples, for
PAN-X-style chunk F1 and FLORES-style chrF++. Both ways give the same replicate values (tested in
tests/compare/test_corpus_bootstrap.py); this measures the time.

    python benchmarks/corpus_bootstrap.py --n 1000 --bootstrap 1000 --out benchmarks/results/corpus_bootstrap.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from mmxfer import catalog
from mmxfer.compare.stats import resample_counts

TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
WORDS = "the a cat dog sat ran on under mat house big small red green river city".split()


def tag_data(rng: np.random.Generator, n: int) -> tuple[list, list]:
    golds = [
        [TAGS[i] for i in rng.integers(0, len(TAGS), int(rng.integers(5, 30)))] for _ in range(n)
    ]
    preds = [
        [t if rng.random() < 0.8 else TAGS[int(rng.integers(0, len(TAGS)))] for t in g]
        for g in golds
    ]
    return golds, preds


def text_data(rng: np.random.Generator, n: int) -> tuple[list, list]:
    golds = [
        " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), int(rng.integers(10, 30))))
        for _ in range(n)
    ]
    preds = [
        " ".join(
            w if rng.random() < 0.6 else WORDS[int(rng.integers(0, len(WORDS)))] for w in g.split()
        )
        for g in golds
    ]
    return golds, preds


def measure(name: str, golds: list, preds: list, n_boot: int, recompute_boot: int) -> dict:
    metric = catalog.METRICS.get(name)
    n = len(golds)
    counts = resample_counts(np.random.default_rng(0), n, n_boot).astype(np.float64)
    start = time.perf_counter()
    for _ in range(2):  # two arms
        metric.from_stats(counts @ metric.stats(golds, preds))
    stats_s = time.perf_counter() - start
    idx = np.random.default_rng(0).integers(0, n, size=(recompute_boot, n))
    start = time.perf_counter()
    for _ in range(2):
        for row in idx:
            metric.headline([golds[i] for i in row], [preds[i] for i in row])
    # scaled to n_boot resamples
    recompute_s = (time.perf_counter() - start) * n_boot / recompute_boot
    return {
        "metric": name,
        "n": n,
        "bootstrap": n_boot,
        "arms": 2,
        "summed_statistics_s": round(stats_s, 3),
        "recompute_per_resample_s": round(recompute_s, 2),
        "recompute_measured_on": recompute_boot,
        "speedup": round(recompute_s / stats_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument(
        "--recompute-bootstrap",
        type=int,
        default=50,
        help="resamples actually recomputed the slow way (the time is scaled to --bootstrap)",
    )
    ap.add_argument("--out", default="bench_corpus_bootstrap.json")
    args = ap.parse_args()
    catalog.load_plugins()
    rng = np.random.default_rng(1)
    rows = [
        measure("span_f1", *tag_data(rng, args.n), args.bootstrap, args.recompute_bootstrap),
        measure("chrf_pp", *text_data(rng, args.n), args.bootstrap, args.recompute_bootstrap),
    ]
    report = {
        "benchmark": "corpus_bootstrap",
        "results": rows,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
