"""Writes ``src/mmxfer/resources/cost/token_lengths.json``: the token-length table the cost estimate reads.

    MMXFER_REAL_DATA=/path/to/shared/realdata python benchmarks/token_lengths.py [--out FILE]

Measured (:func:`mmxfer.study.lengths.measure`, the real XLM-R SentencePiece vocabulary from
``$MMXFER_REAL_DATA/xlmr_tokenizer``): every example of the real data on this machine, featurised by its task's
kind without truncation - SIB-200 (shipped with mmxfer; also the language ratios: the same FLORES-200 sentences in 61
languages), and the excerpts under ``$MMXFER_REAL_DATA``: XQuAD (en), PAWS-X (de dev), UD PUD (en), Tatoeba (English
side of 12 languages), FLORES-200 devtest (de -> en), Multi30K (en captions).

Assumed (no copy of the data here): ``ASSUMED`` below gives each task's typical length in words (or the measured
task it borrows the shape from); words become pieces at the English pieces-per-word ratio measured on FLORES-200
devtest, spread log-normal with a coefficient of variation of 0.5.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mmxfer import catalog  # noqa: E402
from mmxfer.study import lengths  # noqa: E402

OUT = lengths.TABLE
CV = 0.5  # assumed spread of every assumed length

#: task -> (words of one example, special tokens, choices, where the words come from); words None = borrow the
#: measured distribution of another task (``like``)
ASSUMED: dict[str, dict] = {
    "mnli": {
        "words": 33,
        "specials": 4,
        "source": "MultiNLI pair: premise ~22 + hypothesis ~11 words (typical)",
    },
    "xnli": {
        "words": 33,
        "specials": 4,
        "source": "XNLI = MultiNLI-style pairs: ~22 + ~11 words (typical)",
    },
    "anli": {
        "words": 67,
        "specials": 4,
        "source": "ANLI pair: a Wikipedia/story premise ~55 + hypothesis ~12 words",
    },
    "qqp": {"words": 22, "specials": 4, "source": "QQP: two questions of ~11 words"},
    "sst2": {"words": 10, "specials": 2, "source": "SST-2 (GLUE train holds phrases): ~10 words"},
    "hellaswag": {
        "words": 60,
        "specials": 4,
        "choices": 4,
        "source": "HellaSwag: context ~40 + ending ~20 words, per choice (4 choices)",
    },
    "commonsenseqa": {
        "words": 15,
        "specials": 4,
        "choices": 5,
        "source": "CommonsenseQA: question ~13 + choice ~2 words, per choice (5 choices)",
    },
    "cosmosqa": {
        "words": 88,
        "specials": 4,
        "choices": 4,
        "source": "Cosmos QA: context ~70 + question ~10 + answer ~8 words, per choice (4 choices)",
    },
    "ccg": {"words": 24, "specials": 2, "source": "CCGbank (WSJ) sentences: ~24 words"},
    "panx": {"words": 9, "specials": 2, "source": "PAN-X (WikiANN) sentences: ~9 words"},
    "vqa": {
        "words": 6.2,
        "specials": 2,
        "source": "VQAv2 questions: ~6.2 words (Antol et al. 2015)",
    },
    "vqa-text": {
        "words": 6.2 + 5 * 10.5,
        "specials": 4,
        "source": "VQAv2 question ~6.2 words + its image's five COCO captions of ~10.5 words",
    },
    "gqa": {"words": 8, "specials": 2, "source": "GQA questions: ~8 words"},
    "textvqa": {"words": 7, "specials": 2, "source": "TextVQA questions: ~7 words"},
    "squad_v2": {
        "like": "xquad",
        "source": "SQuAD v2.0: the distribution measured on XQuAD en (SQuAD v1.1 dev "
        "paragraphs), assumed the same",
    },
    "mlqa": {
        "like": "xquad",
        "source": "MLQA: the distribution measured on XQuAD en, assumed the same",
    },
    "tydiqa": {
        "like": "xquad",
        "source": "TyDiQA-GoldP: the distribution measured on XQuAD en, assumed the same",
    },
    "caption": {
        "like": "multi30k",
        "source": "COCO captions: the distribution measured on Multi30K en captions "
        "(Flickr30K), assumed the same",
    },
    "caption-text": {"like": "multi30k", "source": "COCO captions: as caption"},
    "flickr30k": {
        "like": "multi30k",
        "source": "Flickr30K captions: the Multi30K en captions (the same images)",
    },
    "bucc": {
        "like": "flores200",
        "source": "BUCC sentences: the FLORES-200 distribution, assumed the same",
    },
    "wmt14-de-en": {
        "like": "flores200-translate",
        "source": "WMT14 de-en pairs: the FLORES-200 de -> en devtest "
        "distribution (source and target), assumed the same",
    },
}


def _tokenizer(real: Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(real / "xlmr_tokenizer/tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def _entry(task: str, numbers: dict, language: str, source: str) -> dict:
    return {"status": lengths.MEASURED, "language": language, "source": source, **numbers}


def _sentences(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def measure_all(real: Path) -> tuple[dict, dict]:
    """(measured task entries, language ratios)."""
    from mmxfer.tasks.starter_flores import SHIPPED_LANGS, shipped_root

    tok = _tokenizer(real)
    sib, shipped = catalog.task("sib200"), shipped_root()
    out: dict[str, dict] = {}
    out["sib200"] = _entry(
        "sib200",
        lengths.measure(sib, sib.load("train", "eng_Latn", str(shipped)), tok),
        "eng_Latn",
        "SIB-200 train, English (701 sentences shipped with mmxfer)",
    )
    retrieval = catalog.task("flores200")
    sib_test = sib.load("test", "eng_Latn", str(shipped))
    eng = list(sib_test["text_a"])
    pairs = sib_test.map(
        lambda r: {"id": r["id"], "source": r["text_a"], "target": r["text_a"]},
        remove_columns=sib_test.column_names,
    )
    out["flores200"] = _entry(
        "flores200",
        lengths.measure(retrieval, pairs, tok),
        "eng_Latn",
        "FLORES-200 sentences of SIB-200 test, English (204, shipped with mmxfer)",
    )
    base = lengths.mean_pieces(tok, eng)
    ratios = {}
    for lang in SHIPPED_LANGS:
        ratios[lang] = round(
            lengths.mean_pieces(tok, list(sib.load("test", lang, str(shipped))["text_a"])) / base, 3
        )
    flores_dir = real / "flores200"
    translate = catalog.task("flores200-translate")
    out["flores200-translate"] = _entry(
        "flores200-translate",
        lengths.measure(translate, translate.load("devtest", "deu_Latn", str(flores_dir)), tok),
        "deu_Latn",
        "FLORES-200 devtest de -> en (1012 pairs, $MMXFER_REAL_DATA/flores200)",
    )
    xquad = catalog.task("xquad")
    out["xquad"] = _entry(
        "xquad",
        lengths.measure(xquad, xquad.load("test", "en", str(real / "xquad")), tok),
        "en",
        "XQuAD en (1190 questions on 240 SQuAD v1.1 dev paragraphs, $MMXFER_REAL_DATA/xquad)",
    )
    out["squad"] = {
        **out["xquad"],
        "source": "XQuAD en = SQuAD v1.1 dev paragraphs and questions (1190)",
    }
    pawsx = catalog.task("pawsx")
    out["pawsx"] = _entry(
        "pawsx",
        lengths.measure(pawsx, pawsx.load("validation", "de", str(real / "pawsx")), tok),
        "de",
        "PAWS-X de dev (2000 pairs, $MMXFER_REAL_DATA/pawsx)",
    )
    udpos = catalog.task("udpos")
    out["udpos"] = _entry(
        "udpos",
        lengths.measure(udpos, udpos.load("test", "en", str(real / "udpos")), tok),
        "en",
        "UD English PUD test (1000 sentences; not XTREME's UD 2.5 treebanks)",
    )
    tatoeba = catalog.task("tatoeba")
    english = [
        s
        for f in sorted((real / "tatoeba").glob("*.eng"))
        for s in f.read_text("utf-8").splitlines()
    ]
    tat_rows = {"id": [str(i) for i in range(len(english))], "source": english, "target": english}
    import datasets

    out["tatoeba"] = _entry(
        "tatoeba",
        lengths.measure(tatoeba, datasets.Dataset.from_dict(tat_rows), tok),
        "eng",
        f"Tatoeba English sides of 12 languages ({len(english)} sentences, $MMXFER_REAL_DATA)",
    )
    multi = catalog.task("multi30k")
    captions = (real / "multi30k/val.en").read_text("utf-8").splitlines()
    out["multi30k"] = _entry(
        "multi30k",
        lengths.measure(
            multi,
            datasets.Dataset.from_dict(
                {
                    "id": [str(i) for i in range(len(captions))],
                    "source": captions,
                    "target": captions,
                }
            ),
            tok,
        ),
        "en",
        "Multi30K val en captions (1014, $MMXFER_REAL_DATA/multi30k)",
    )
    for name in ("starter-sib200", "starter-flores"):
        out[name] = {**out["sib200" if name == "starter-sib200" else "flores200"]}
    eng_devtest = _sentences(flores_dir / "devtest/eng_Latn.devtest.gz")
    pieces_per_word = lengths.mean_pieces(tok, eng_devtest) / (
        sum(len(s.split()) for s in eng_devtest) / len(eng_devtest)
    )
    return out, {
        "ratios": ratios,
        "pieces_per_word_en": round(pieces_per_word, 3),
        "source": "mean pieces of SIB-200 test (the same 204 FLORES-200 sentences) in each language / in "
        "English; pieces per English word on FLORES-200 devtest (1012 sentences)",
    }


def assumed(measured: dict, pieces_per_word: float) -> dict:
    out = {}
    for task, a in ASSUMED.items():
        if "like" in a:
            borrowed = measured[a["like"]]
            out[task] = {k: v for k, v in borrowed.items() if k not in ("source", "status")}
            out[task].update(status=lengths.ASSUMED, source=a["source"])
            continue
        mean = round(a["words"] * pieces_per_word + a["specials"], 1)
        out[task] = {
            "status": lengths.ASSUMED,
            "language": "en",
            "tokens": {"mean": mean, "cv": CV},
            "source": f"{a['source']}; x {pieces_per_word} pieces a word + {a['specials']} specials, "
            f"log-normal cv {CV}",
        }
        if "choices" in a:
            out[task]["choices"] = a["choices"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    real = os.environ.get("MMXFER_REAL_DATA")
    if not real or not Path(real, "xlmr_tokenizer/tokenizer.json").is_file():
        sys.exit(
            "set MMXFER_REAL_DATA to the folder with xlmr_tokenizer/, xquad/, pawsx/, udpos/, tatoeba/, "
            "flores200/, multi30k/"
        )
    catalog.load_plugins()
    import datasets

    datasets.disable_progress_bars()
    measured, ratios = measure_all(Path(real))
    table = {
        "tokenizer": "XLM-R SentencePiece, 250,002 pieces ($MMXFER_REAL_DATA/xlmr_tokenizer/tokenizer.json)",
        "quantiles": "featurised length (special tokens included, untruncated) at 0, 5, ..., 100 %",
        "written_by": "benchmarks/token_lengths.py",
        "language_ratios": ratios,
        "tasks": dict(
            sorted({**measured, **assumed(measured, ratios["pieces_per_word_en"])}.items())
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out}: {len(measured)} measured, {len(ASSUMED)} assumed tasks, "
        f"{len(ratios['ratios'])} language ratios, {ratios['pieces_per_word_en']} pieces per English word"
    )


if __name__ == "__main__":
    main()
