"""Benchmark: sentences/s of a trunk through ``mmxfer.models.embed.encode`` on CPU (or --device).

Usage: python benchmarks/embed_throughput.py [--trunk starter] [--n 512] [--out bench_embed.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trunk", default="starter")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="bench_embed.json")
    args = ap.parse_args()
    from babel import Locale

    from mmxfer.models.embed import encode
    from mmxfer.models.trunk import load_trunk

    names = []
    for loc in ("de", "fr", "ja", "ru", "sw", "hi", "ar", "zh"):
        names.extend(f"query: {v}" for v in Locale.parse(loc).territories.values())
    sentences = (names * (args.n // len(names) + 1))[: args.n]
    model, tok = load_trunk(args.trunk)
    encode(
        model,
        tok,
        sentences[:32],
        batch_size=32,
        max_length=args.max_length,
        device=args.device,
        progress=False,
    )
    t0 = time.perf_counter()
    encode(
        model,
        tok,
        sentences,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    result = {
        "trunk": args.trunk,
        "device": args.device,
        "n": args.n,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 3),
        "sentences_per_s": round(args.n / seconds, 1),
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
