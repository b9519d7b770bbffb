"""Benchmark: xSIM (ratio margin, k=4, both directions) for N languages x M sentences of D-d embeddings.

Compares mmxfer's chunked top-k retrieval with a plain full-matrix NumPy baseline; writes JSON.
Usage: python benchmarks/retrieval.py [--langs 204] [--sents 1012] [--dim 1024] [--out bench_retrieval.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np

from mmxfer.metrics.retrieval import xsim


def numpy_xsim(x: np.ndarray, y: np.ndarray, k: int = 4) -> int:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    sim = x @ y.T
    idx = np.argsort(-sim, axis=1)[:, :k]
    cos = np.take_along_axis(sim, idx, 1)
    bwd = -np.sort(-sim.T, axis=1)[:, :k]
    score = cos / ((cos.mean(1)[:, None] + bwd.mean(1)[idx]) / 2)
    best = idx[np.arange(len(x)), score.argmax(1)]
    return int((best != np.arange(len(x))).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--langs", type=int, default=204)
    ap.add_argument("--sents", type=int, default=1012)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--out", default="bench_retrieval.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    eng = rng.normal(size=(args.sents, args.dim)).astype(np.float32)
    langs = [(eng + rng.normal(size=eng.shape).astype(np.float32) * 1.5) for _ in range(args.langs)]
    result = {"langs": args.langs, "sents": args.sents, "dim": args.dim}
    for name, fn in (("mmxfer", lambda a, b: xsim(a, b, "ratio", 4)["errors"]), ("numpy_full", numpy_xsim)):
        tracemalloc.start()
        t0 = time.perf_counter()
        errors = [fn(x, eng) + fn(eng, x) for x in langs]
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result[name] = {"seconds": round(seconds, 3), "peak_traced_mb": round(peak / 2**20, 1),
                        "total_errors": int(sum(errors))}
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["same_errors"] = result["mmxfer"]["total_errors"] == result["numpy_full"]["total_errors"]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
