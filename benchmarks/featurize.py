"""Featurisation throughput (examples/s) for XNLI-shaped and SQuAD-shaped data; writes JSON.

    python benchmarks/featurize.py [--out results.json] [--n-pairs 5000] [--n-qa 1000]

Uses the real XLM-R vocabulary from $MMXFER_REAL_DATA/xlmr_tokenizer when set (else the tiny
tokenizer). Text is generated from real CLDR names (babel) so the sub-word statistics are
multilingual; timings exclude the cache (``use_cache=False``) except the ``cache_hit_s`` entry.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path


def _tokenizer():
    root = os.environ.get("MMXFER_REAL_DATA")
    if root and (Path(root) / "xlmr_tokenizer/tokenizer.json").exists():
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(
            tokenizer_file=str(Path(root) / "xlmr_tokenizer/tokenizer.json"),
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        )
        return tok, "xlmr (250002 pieces)"
    from mmxfer.testing.tiny import tiny_tokenizer

    return tiny_tokenizer(), "tiny"


def _words(seed: int) -> list[str]:
    from babel import Locale

    words = []
    for loc in ("en", "de", "fr", "ru", "zh", "ar", "hi", "sw"):
        words += [w for name in Locale.parse(loc).territories.values() for w in name.split()]
    random.Random(seed).shuffle(words)
    return words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--n-pairs", type=int, default=5000)
    ap.add_argument("--n-qa", type=int, default=1000)
    args = ap.parse_args()

    import datasets

    from mmxfer import catalog
    from mmxfer.kinds import FeatureOptions, featurize
    from mmxfer.tasks.common import dataset_from_rows

    datasets.disable_progress_bars()
    catalog.load_plugins()
    tok, tok_name = _tokenizer()
    words = _words(0)
    rng = random.Random(0)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    xnli = catalog.task("xnli")
    pairs = dataset_from_rows(
        xnli,
        [
            {"id": str(i), "text_a": sentence(22), "text_b": sentence(11), "label": i % 3}
            for i in range(args.n_pairs)
        ],
        split="test",
        lang="de",
    )
    squad = catalog.task("squad")
    qa_rows = []
    for i in range(args.n_qa):
        ctx = sentence(140)
        answer = ctx.split()[70]
        qa_rows.append(
            {
                "id": str(i),
                "context": ctx,
                "question": sentence(10) + "?",
                "answers": {"text": [answer], "answer_start": [ctx.index(answer)]},
            }
        )
    qa = dataset_from_rows(squad, qa_rows, split="train", lang="en")

    results = {
        "tokenizer": tok_name,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "rayon_threads": os.environ.get("RAYON_NUM_THREADS"),
    }
    with tempfile.TemporaryDirectory() as cache:
        for label, spec, ds, kw in (
            ("xnli_shaped", xnli, pairs, {"max_length": 128}),
            ("squad_shaped", squad, qa, {"max_length": 384, "doc_stride": 128}),
        ):
            # warm-up
            featurize(spec, ds.select(range(50)), tok, FeatureOptions(use_cache=False, **kw))
            start = time.perf_counter()
            feats = featurize(spec, ds, tok, FeatureOptions(use_cache=False, **kw))
            seconds = time.perf_counter() - start
            featurize(spec, ds, tok, FeatureOptions(cache_dir=cache, **kw))
            start = time.perf_counter()
            stats: dict = {}
            featurize(spec, ds, tok, FeatureOptions(cache_dir=cache, **kw), stats=stats)
            hit = time.perf_counter() - start
            results[label] = {
                "examples": len(ds),
                "features": len(feats),
                "seconds": round(seconds, 3),
                "examples_per_s": round(len(ds) / seconds, 1),
                "cache": stats["cache"],
                "cache_hit_s": round(hit, 3),
                **kw,
            }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        from mmxfer.runs import atomic

        atomic.write_json(args.out, results)


if __name__ == "__main__":
    main()
