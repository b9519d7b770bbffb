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
        return np.stack([table[s] for s in sentences]) if sentences else np.zeros((0, 4), np.float32)
    return embed


# --- xSIM by text ------------------------------------------------------------------------------------------

# four English sentences, the last a repeat of the second (FLORES devtest has such lines); a sentence's embedding
# depends on its text only, so the repeat retrieves as its twin and ties go to the lower row
ENGLISH = ["one", "two", "three", "two"]
SOURCES = ["uno", "dos", "tres", "dos."]
VECTORS = {"one": [1, 0, 0, 0], "two": [0, 1, 0, 0], "three": [0, 0, 1, 0], "uno": [1, 0.1, 0, 0],
           "dos": [0.1, 1, 0, 0], "tres": [0, 0.1, 1, 0], "dos.": [0, 1, 0.1, 0]}
TABLE = {k: np.asarray(v, np.float32) for k, v in VECTORS.items()}


def test_xsim_counts_a_retrieved_duplicate_of_the_gold_as_found():
    x, y = _embedder(TABLE)(SOURCES), _embedder(TABLE)(ENGLISH)
    # "dos." (row 3) retrieves English row 1, whose text equals that of its gold row 3
    assert retrieval.retrieve(x, y, "absolute")[0].tolist() == [0, 1, 2, 1]
    assert retrieval.xsim(x, y, margin="absolute", texts=ENGLISH)["errors"] == 0  # LASER's default
    assert retrieval.xsim(x, y, margin="absolute")["errors"] == 1  # --index-comparison


@pytest.mark.parametrize("comparison, errors", [("text", 0), ("index", 1)])
def test_pair_predictions_and_the_xsim_metric_compare_by_the_configured_unit(comparison, errors):
    cfg = RetrievalConfig(normalize=True, margin="absolute", direction="xx-en", comparison=comparison)
    rows = retrieval_evaluation.pair_predictions(SOURCES, ENGLISH, ["a", "b", "c", "d"], _embedder(TABLE), cfg,
                                                 "xsim")
    assert [r["pred"] for r in rows] == [0, 1, 2, 1]
    assert [r["gold"] for r in rows] == ([0, [1, 3], 2, [1, 3]] if comparison == "text" else [0, 1, 2, 3])
    settings = retrieval_evaluation.settings_of(cfg, layer=None)
    out = score_file_rows("flores200", "devtest", "spa_Latn", rows, metric="xsim", settings=settings)
    assert out[0]["scores"]["errors"] == errors and out[0]["settings"]["comparison"] == comparison
    # the same rows read back by the bootstrap's per-example scorer
    metric = catalog.METRICS.get("xsim")
    assert sum(metric.score([r["gold"]], [r["pred"]])["errors"] for r in rows) == errors


def test_both_directions_compare_the_text_of_the_searched_side():
    # a repeated source sentence: English queries search the sources (en-xx)
    sources, english = ["uno", "dos", "uno"], ["one", "two", "one."]
    table = {**TABLE, "one.": np.asarray([1, 0, 0.1, 0], np.float32)}
    cfg = RetrievalConfig(margin="absolute", direction="both")
    rows = retrieval_evaluation.pair_predictions(sources, english, [0, 1, 2], _embedder(table), cfg, "xsim")
    en_xx = [r for r in rows if r["direction"] == "en-xx"]
    assert [r["gold"] for r in en_xx] == [[0, 2], 1, [0, 2]]
    assert [r["pred"] for r in en_xx] == [0, 1, 0]
    xx_en = [r for r in rows if r["direction"] == "xx-en"]
    assert [r["gold"] for r in xx_en] == [0, 1, 2]  # English lines are distinct
    assert catalog.METRICS.get("xsim").score([r["gold"] for r in en_xx], [r["pred"] for r in en_xx])["errors"] == 0


def test_xtremes_tatoeba_is_scored_by_index():
    from mmxfer.config import load_suite

    for suite in ("xtreme", "xtreme-retrieval"):
        tatoeba = next(t for t in load_suite(suite).tasks if t.task == "tatoeba")
        assert tatoeba.params["comparison"] == "index"  # XTREME evaluate.py: accuracy of predicted vs gold lines
    assert RetrievalConfig().comparison == "text"
