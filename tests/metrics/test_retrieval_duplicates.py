"""Duplicate sentences in retrieval: xSIM compares texts as LASER does, BUCC de-duplicates as XTREME does.

xSIM: facebookresearch/LASER@74bc6ae7 ``source/xsim.py`` ``calculate_error`` (lines 149-164: ``lines[ex] !=
lines[closest_neighbor[ex, 0]]`` unless ``--index-comparison``, ``source/eval.py`` lines 136 and 298-302).
BUCC: google-research/xtreme@838c13b6 ``third_party/utils_retrieve.py`` (``text_load_unify`` 93-114,
``unique_embeddings`` 117-120, ``mine_bitext`` 131-228, ``read_sent2id`` 266-280, ``read_candidate2score``
283-301).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmxfer import catalog
from mmxfer.config import RetrievalConfig
from mmxfer.evaluation import retrieval as retrieval_evaluation
from mmxfer.evaluation.scoring import score_file_rows
from mmxfer.metrics import retrieval


def _embedder(table: dict[str, np.ndarray]):
    def embed(sentences):
        return (
            np.stack([table[s] for s in sentences]) if sentences else np.zeros((0, 4), np.float32)
        )

    return embed


# --- xSIM by text ------------------------------------------------------------------------------------------

# four English sentences, the last a repeat of the second (FLORES devtest has such lines); a sentence's embedding
# depends on its text only, so the repeat retrieves as its twin and ties go to the lower row
ENGLISH = ["one", "two", "three", "two"]
SOURCES = ["uno", "dos", "tres", "dos."]
VECTORS = {
    "one": [1, 0, 0, 0],
    "two": [0, 1, 0, 0],
    "three": [0, 0, 1, 0],
    "uno": [1, 0.1, 0, 0],
    "dos": [0.1, 1, 0, 0],
    "tres": [0, 0.1, 1, 0],
    "dos.": [0, 1, 0.1, 0],
}
TABLE = {k: np.asarray(v, np.float32) for k, v in VECTORS.items()}


def test_xsim_counts_a_retrieved_duplicate_of_the_gold_as_found():
    x, y = _embedder(TABLE)(SOURCES), _embedder(TABLE)(ENGLISH)
    # "dos." (row 3) retrieves English row 1, whose text equals that of its gold row 3
    assert retrieval.retrieve(x, y, "absolute")[0].tolist() == [0, 1, 2, 1]
    assert retrieval.xsim(x, y, margin="absolute", texts=ENGLISH)["errors"] == 0  # LASER's default
    assert retrieval.xsim(x, y, margin="absolute")["errors"] == 1  # --index-comparison


@pytest.mark.parametrize("comparison, errors", [("text", 0), ("index", 1)])
def test_pair_predictions_and_the_xsim_metric_compare_by_the_configured_unit(comparison, errors):
    cfg = RetrievalConfig(
        normalize=True, margin="absolute", direction="xx-en", comparison=comparison
    )
    rows = retrieval_evaluation.pair_predictions(
        SOURCES, ENGLISH, ["a", "b", "c", "d"], _embedder(TABLE), cfg, "xsim"
    )
    assert [r["pred"] for r in rows] == [0, 1, 2, 1]
    assert [r["gold"] for r in rows] == (
        [0, [1, 3], 2, [1, 3]] if comparison == "text" else [0, 1, 2, 3]
    )
    settings = retrieval_evaluation.settings_of(cfg, layer=None)
    out = score_file_rows(
        "flores200", "devtest", "spa_Latn", rows, metric="xsim", settings=settings
    )
    assert out[0]["scores"]["errors"] == errors and out[0]["settings"]["comparison"] == comparison
    # the same rows read back by the bootstrap's per-example scorer
    metric = catalog.METRICS.get("xsim")
    assert sum(metric.score([r["gold"]], [r["pred"]])["errors"] for r in rows) == errors


def test_both_directions_compare_the_text_of_the_searched_side():
    # a repeated source sentence: English queries search the sources (en-xx)
    sources, english = ["uno", "dos", "uno"], ["one", "two", "one."]
    table = {**TABLE, "one.": np.asarray([1, 0, 0.1, 0], np.float32)}
    cfg = RetrievalConfig(margin="absolute", direction="both")
    rows = retrieval_evaluation.pair_predictions(
        sources, english, [0, 1, 2], _embedder(table), cfg, "xsim"
    )
    en_xx = [r for r in rows if r["direction"] == "en-xx"]
    assert [r["gold"] for r in en_xx] == [[0, 2], 1, [0, 2]]
    assert [r["pred"] for r in en_xx] == [0, 1, 0]
    xx_en = [r for r in rows if r["direction"] == "xx-en"]
    assert [r["gold"] for r in xx_en] == [0, 1, 2]  # English lines are distinct
    assert (
        catalog.METRICS.get("xsim").score([r["gold"] for r in en_xx], [r["pred"] for r in en_xx])[
            "errors"
        ]
        == 0
    )


def test_xtremes_tatoeba_is_scored_by_index():
    from mmxfer.config import load_suite

    for suite in ("xtreme", "xtreme-retrieval"):
        tatoeba = next(t for t in load_suite(suite).tasks if t.task == "tatoeba")
        # XTREME evaluate.py: accuracy of predicted vs gold lines
        assert tatoeba.params["comparison"] == "index"
    assert RetrievalConfig().comparison == "text"


# --- BUCC mining de-duplicated as XTREME --------------------------------------------------------------------


def _bucc_split(
    src: list[tuple[str, str]], eng: list[tuple[str, str]], gold: dict[str, str]
) -> list[dict]:
    return [{"side": "source", "id": i, "text": t, "gold": gold.get(i, "")} for i, t in src] + [
        {"side": "target", "id": i, "text": t, "gold": ""} for i, t in eng
    ]


def test_bucc_mines_each_sentence_once_and_drops_a_repeated_one():
    # "dup" is on two source lines (two ids): XTREME mines it once and finds no id to map it back to
    table = {
        t: np.asarray(v, np.float32)
        for t, v in {
            "a": [1, 0, 0, 0],
            "b": [0, 1, 0, 0],
            "dup": [0, 0, 1, 0],
            "A": [1, 0.1, 0, 0],
            "B": [0, 1, 0.1, 0],
            "D": [0.1, 0, 1, 0],
        }.items()
    }
    test = _bucc_split(
        [("s0", "a"), ("s1", "b"), ("s2", "dup"), ("s3", "dup")],
        [("e0", "A"), ("e1", "B"), ("e2", "D")],
        {"s0": "e0", "s1": "e1", "s2": "e2"},
    )
    cfg = RetrievalConfig(margin="ratio", k=2, threshold_source="test-oracle")
    rows, _ = retrieval_evaluation.mining_predictions(None, test, _embedder(table), cfg)
    assert {r["id"]: r["pred"] for r in rows} == {
        "s0": ["s0", "e0"],
        "s1": ["s1", "e1"],
        "s2": None,
        "s3": None,
    }
    f1 = catalog.METRICS.get("bucc_f1").score([r["gold"] for r in rows], [r["pred"] for r in rows])
    assert f1["recall"] == pytest.approx(200 / 3) and f1["precision"] == 100.0


def _xtreme_mined(src, eng, table, k, margin):
    """XTREME's text_load_unify + unique_embeddings + mine_bitext (retrieval 'max', threshold 0) + read_sent2id +
    read_candidate2score, over (id, text) lines, transcribed."""

    def unify(lines):
        inds, sents, sent2ind = [], [], {}
        for _, text in lines:
            new = len(sent2ind)
            inds.append(sent2ind.setdefault(text, new))
            if inds[-1] == new:
                sents.append(text)
        return inds, sents

    def unique_embeddings(emb, ind):
        aux = {j: i for i, j in enumerate(ind)}  # the last line of each sentence
        return emb[[aux[i] for i in range(len(aux))]]

    def sent2id(lines):
        repeated, out = set(), {}
        for sid, text in lines:
            sent = text.strip()
            if sent in out:
                repeated.add(sent)
            else:
                out[sent] = sid
        for sent in repeated:
            del out[sent]
        return out

    src_inds, src_sents = unify(src)
    trg_inds, trg_sents = unify(eng)
    x = unique_embeddings(np.stack([table[t] for _, t in src]), src_inds)
    y = unique_embeddings(np.stack([table[t] for _, t in eng]), trg_inds)
    written = [
        (sc, src_sents[s], trg_sents[t]) for s, t, sc in retrieval.mine(x, y, k, margin) if sc > 0
    ]
    src_ids, trg_ids = sent2id(src), sent2id(eng)
    cand2score = {}
    for sc, s, t in written:
        if s.strip() in src_ids and t.strip() in trg_ids:
            key = (src_ids[s.strip()], trg_ids[t.strip()])
            cand2score[key] = max(sc, cand2score.get(key, sc))
    return cand2score


@pytest.mark.parametrize("margin", ["ratio", "distance", "absolute"])
def test_random_duplicates_are_mined_as_xtreme(margin):
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    # repeats, and lines that differ only by surrounding spaces (distinct when mined, one sentence when mapped)
    texts = words + [w + " " for w in words[:5]]
    table = {t: rng.normal(size=8).astype(np.float32) for t in texts}
    for w in words[:5]:
        table[w + " "] = table[w] + rng.normal(scale=0.01, size=8).astype(np.float32)
    src = [(f"s{i}", str(rng.choice(texts))) for i in range(60)]
    eng_texts = {t: table[t] + rng.normal(scale=0.3, size=8).astype(np.float32) for t in texts}
    eng_table = {f"E{t}": v for t, v in eng_texts.items()}
    eng = [(f"e{i}", f"E{rng.choice(texts)}") for i in range(50)]
    all_table = {**table, **eng_table}
    expected = _xtreme_mined(src, eng, all_table, 4, margin)
    cfg = RetrievalConfig(margin=margin, k=4)
    got = retrieval_evaluation.mine_ids(
        [i for i, _ in src],
        [t for _, t in src],
        [i for i, _ in eng],
        [t for _, t in eng],
        _embedder(all_table),
        cfg,
    )
    assert len({t for _, t in src}) < len(src) and len(expected) > 5
    assert {(s, t): sc for s, t, sc in got} == pytest.approx(expected)
    assert len(got) == len(expected)  # each id pair once


def test_bucc_candidates_need_a_positive_score():
    # mine_bitext writes a candidate only when its score exceeds its threshold 0 (utils_retrieve.py line 227)
    table = {
        t: np.asarray(v, np.float32)
        for t, v in {"a": [1, 0], "z": [-1, -0.2], "A": [1, 0.1], "B": [0.9, 0.3]}.items()
    }
    cfg = RetrievalConfig(margin="absolute")
    got = retrieval_evaluation.mine_ids(
        ["s0", "s1"], ["a", "z"], ["e0", "e1"], ["A", "B"], _embedder(table), cfg
    )
    assert [(s, t) for s, t, _ in got] == [("s0", "e0")]
    # mining itself pairs z with B, at a negative cosine
    mined = retrieval.mine(
        np.stack([table["a"], table["z"]]), np.stack([table["A"], table["B"]]), 4, "absolute"
    )
    assert [(s, t) for s, t, _ in mined] == [(0, 0), (1, 1)] and mined[1][2] < 0
