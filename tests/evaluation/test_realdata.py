"""Real benchmark excerpts (gated on MMXFER_REAL_DATA)."""

import gzip
import json

import numpy as np
import pytest

from mmxfer.config import RetrievalConfig, SuiteTaskConfig
from mmxfer.evaluation.runner import evaluate_retrieval
from mmxfer.metrics import qa, retrieval, tagging
from mmxfer.runs.store import read_predictions


def test_xquad_gold_as_prediction_and_perturbed(real_data):
    data = json.loads((real_data / "xquad" / "xquad.de.json").read_text(encoding="utf-8"))
    qas = [qa_ for art in data["data"] for p in art["paragraphs"] for qa_ in p["qas"]]
    assert len(qas) == 1190
    gold = {q["id"]: q["answers"][0]["text"] for q in qas}
    assert qa.squad_scores(gold, data) == {"exact_match": 100.0, "f1": 100.0}
    # drop every second prediction: those score 0, the rest 100
    half = {qid: text for n, (qid, text) in enumerate(gold.items()) if n % 2 == 0}
    assert qa.squad_scores(half, data)["exact_match"] == pytest.approx(100 * len(half) / 1190)
    # prefixing punctuation and an article changes nothing after normalisation
    noisy = {qid: f"the {text}!" for qid, text in gold.items()}
    assert qa.squad_scores(noisy, data)["exact_match"] == 100.0
    zh = json.loads((real_data / "xquad" / "xquad.zh.json").read_text(encoding="utf-8"))
    zh_gold = {
        q["id"]: q["answers"][0]["text"]
        for a in zh["data"]
        for p in a["paragraphs"]
        for q in p["qas"]
    }
    assert qa.mlqa_scores(zh_gold, zh, "zh")["f1"] == 100.0


def test_tatoeba_with_char_ngrams(real_data, tmp_path, ngram_embedder):
    char_ngram_embed = ngram_embedder[0]
    item = SuiteTaskConfig(
        task="tatoeba",
        languages=("fra", "deu", "cmn"),
        params={"margin": "absolute", "direction": "en-xx"},
    )
    rows = evaluate_retrieval(
        item,
        char_ngram_embed,
        RetrievalConfig(),
        tmp_path,
        layer=None,
        data_dir=str(real_data / "tatoeba"),
        progress=False,
    )
    scores = {r["lang"]: r["score"] for r in rows}
    # character n-grams share some names and cognates between French/German and English (50x chance:
    # 1000 candidates), almost nothing with Chinese
    assert scores["fra"] > 5 and scores["deu"] > 5 and scores["cmn"] < 3
    assert (
        rows[0]["settings"]["margin"] == "absolute" and rows[0]["settings"]["direction"] == "en-xx"
    )
    preds = read_predictions(tmp_path / "predictions" / "tatoeba" / "test-fra.jsonl")
    assert len(preds) == rows[0]["n"] and {"id", "pred", "gold", "direction"} <= set(preds[0])


def test_flores_xsim_with_char_ngrams(real_data, ngram_embedder):
    char_ngram_embed = ngram_embedder[0]

    def lines(code):
        with gzip.open(
            real_data / "flores200" / "devtest" / f"{code}.devtest.gz", "rt", encoding="utf-8"
        ) as f:
            return f.read().splitlines()

    eng, fra, zho = lines("eng_Latn"), lines("fra_Latn"), lines("zho_Hans")
    assert len(eng) == len(fra) == 1012
    e, f, z = char_ngram_embed(eng), char_ngram_embed(fra), char_ngram_embed(zho)
    fr_err = retrieval.xsim(f, e)["error_rate"]
    zh_err = retrieval.xsim(z, e)["error_rate"]
    assert fr_err < 60 < zh_err
    assert retrieval.xsim(e, e)["errors"] == 0  # identical sides: no errors


def test_flores_devtest_excerpt_has_no_duplicate_lines_so_text_and_index_agree(
    real_data, ngram_embedder
):
    """LASER compares texts (xsim.py calculate_error); on these six languages that changes no count."""
    embed = ngram_embedder[0]
    texts = {}
    for path in sorted((real_data / "flores200" / "devtest").glob("*.devtest.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts[path.name.split(".")[0]] = f.read().splitlines()
    assert len(texts) == 6 and all(len(t) == 1012 for t in texts.values())
    assert {lang: len(t) - len(set(t)) for lang, t in texts.items()} == dict.fromkeys(texts, 0)
    e = embed(texts["eng_Latn"])
    for lang in ("fra_Latn", "swh_Latn"):
        x = embed(texts[lang])
        assert retrieval.xsim(x, e, texts=texts["eng_Latn"]) == retrieval.xsim(x, e)


def test_udpos_conllu_scores_against_itself(real_data):
    sents, cur = [], []
    for line in (
        (real_data / "udpos" / "de_pud-ud-test.conllu").read_text(encoding="utf-8").splitlines()
    ):
        if not line.strip():
            if cur:
                sents.append(cur)
            cur = []
        elif not line.startswith("#"):
            cols = line.split("\t")
            if cols[0].isdigit():
                cur.append(cols[3])
    assert len(sents) == 1000
    assert tagging.f1(sents, sents) == 100.0
    shifted = [["NOUN"] * len(s) for s in sents]
    from seqeval.metrics import f1_score

    assert tagging.f1(sents, shifted) == pytest.approx(100 * f1_score(sents, shifted), abs=1e-9)
    assert tagging.token_accuracy(sents, shifted) < 30


def test_pawsx_dev_loads_and_scores(real_data):
    rows = (real_data / "pawsx" / "de_dev_2k.tsv").read_text(encoding="utf-8").splitlines()[1:]
    labels = [int(r.split("\t")[-1]) for r in rows if r.strip()]
    from mmxfer.metrics.classification import accuracy

    assert len(labels) == 2000
    majority = max(set(labels), key=labels.count)
    assert accuracy(labels, [majority] * len(labels)) == pytest.approx(
        100 * labels.count(majority) / 2000
    )
    assert np.isclose(accuracy(labels, labels), 100.0)
