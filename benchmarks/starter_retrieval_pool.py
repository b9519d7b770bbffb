"""How hard is the starter's FLORES retrieval for the untrained starter trunk, by pool: the 204 test sentences both
ways (the target before), each test sentence among all 1,004 English sentences X->eng (the target now), and every
language's 1,004 sentences both ways (every sentence of SIB-200 a query).

Embeds all 1,004 SIB-200 sentences of the 33 starter languages (shipped files, e5's ``query: `` prefix, max length
64, fp32), then scores each pool with xSIM's ratio margin (k 4); accuracy = 100 - xSIM error rate.

    python benchmarks/starter_retrieval_pool.py --out benchmarks/results/starter_retrieval_pool.json \\
        [--embeddings /tmp/pool]   # keeps the embeddings there (one .npz per language); a rerun reads them
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def embeddings(folder: Path) -> dict[str, np.ndarray]:
    """Per language, the embeddings of its test sentences then its train and dev ones (each split in file order)."""
    from mmxfer import catalog
    from mmxfer.config import load_profile
    from mmxfer.models.embed import encode
    from mmxfer.models.trunk import load_profile_trunk
    from mmxfer.tasks.starter_flores import STARTER_LANGS

    profile = load_profile("starter")
    spec = catalog.task("starter-sib200")
    out, model = {}, None
    folder.mkdir(parents=True, exist_ok=True)
    for lang in STARTER_LANGS:
        path = folder / f"{lang}.npz"
        if not path.is_file():
            if model is None:
                model, tokenizer = load_profile_trunk(profile.trunk.name, profile.trunk, "no")
            texts = [
                t
                for split in ("test", "train", "validation")
                for t in spec.load(split, lang)["text_a"]
            ]
            started = time.perf_counter()
            emb = encode(
                model,
                tokenizer,
                texts,
                prefix=profile.retrieval.prefix,
                max_length=profile.trunk.max_length,
                batch_size=32,
                progress=False,
                precision="no",
            )
            np.savez(path, emb=emb)
            print(
                f"{lang}: {len(texts)} sentences in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        out[lang] = np.load(path)["emb"]
    return out


def score(emb: dict[str, np.ndarray], test: int = 204) -> dict:
    from mmxfer.metrics.retrieval import retrieve, retrieve_both
    from mmxfer.tasks.starter_flores import PIVOT

    english = emb[PIVOT]
    rows = {}
    for lang, x in emb.items():
        if lang == PIVOT:
            continue
        (f, _), (b, _) = retrieve_both(x[:test], english[:test], "ratio", 4)
        gold = np.arange(test)
        pooled, _ = retrieve(x[:test], english, "ratio", 4)
        (fa, _), (ba, _) = retrieve_both(x, english, "ratio", 4)
        every = np.arange(len(x))
        rows[lang] = {
            "test_204_both": round(50.0 * ((f == gold).mean() + (b == gold).mean()), 2),
            "test_204_to_english_1004": round(100.0 * (pooled == gold).mean(), 2),
            "all_1004_both": round(50.0 * ((fa == every).mean() + (ba == every).mean()), 2),
        }
    means = {
        k: round(float(np.mean([r[k] for r in rows.values()])), 2)
        for k in next(iter(rows.values()))
    }
    return {"mean_of_32_languages": means, "per_language": rows}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/starter_retrieval_pool.json")
    parser.add_argument("--embeddings", default="/tmp/mmxfer-starter-pool")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = {
        "benchmark": "starter FLORES retrieval by pool, untrained starter trunk (fp32, ratio margin k 4; "
        "accuracy = 100 - xSIM error rate)",
        **score(embeddings(Path(args.embeddings))),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["mean_of_32_languages"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
