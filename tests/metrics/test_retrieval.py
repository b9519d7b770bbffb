import numpy as np
import pytest

from mmxfer import catalog
from mmxfer.errors import DataError
from mmxfer.metrics import retrieval


def _laser_xsim_reference(x, y, margin, k):
    """LASER xsim.py's algorithm in plain numpy (full matrices, loops), for comparison."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    sim = x @ y.T
    if margin == "absolute":
        best = sim.argmax(axis=1)
    else:
        idx_xy = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        cos_xy = np.take_along_axis(sim, idx_xy, 1)
        cos_yx = -np.sort(-sim.T, axis=1)[:, :k]
        avg_xy, avg_yx = cos_xy.mean(1), cos_yx.mean(1)
        scores = np.zeros_like(cos_xy)
        for i in range(len(x)):
            for j in range(k):
                b = (avg_xy[i] + avg_yx[idx_xy[i, j]]) / 2
                scores[i, j] = cos_xy[i, j] / b if margin == "ratio" else cos_xy[i, j] - b
        best = idx_xy[np.arange(len(x)), scores.argmax(1)]
    return int((best != np.arange(len(x))).sum())


@pytest.mark.parametrize("margin", ["ratio", "distance", "absolute"])
def test_xsim_matches_laser_algorithm(margin):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 32)).astype(np.float32)
    y = x + 1.2 * rng.normal(size=x.shape).astype(np.float32)
    expected = _laser_xsim_reference(x.astype(np.float64), y.astype(np.float64), margin, 4)
    got = retrieval.xsim(x, y, margin=margin, k=4, chunk_size=37)  # odd chunks: same answer
    assert 0 < expected < 200
    assert got["errors"] == expected and got["n"] == 200
    assert got["error_rate"] == pytest.approx(100 * expected / 200)


def test_hub_sentence_fixed_by_ratio_margin():
    # a "hub" target close to every source: plain cosine retrieves it for source 1, the margin does not
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    y = np.array([[1.0, 0.0, 0.0], [0.3, 0.6, 0.74], [0.7, 0.7, 0.14]], dtype=np.float32)
    assert retrieval.xsim(x, y, margin="absolute")["errors"] == 1
    assert retrieval.xsim(x, y, margin="ratio", k=2)["errors"] == 0
    assert retrieval.xsim(x, y, margin="distance", k=2)["errors"] == 0


def test_ties_go_to_the_lower_index_and_chunking_does_not_matter():
    x = np.array([[1.0, 0.0]] * 3, dtype=np.float32)  # three identical sources
    y = np.array([[1.0, 0.0]] * 3, dtype=np.float32)  # three identical targets
    for chunk in (1, 2, 8):
        sims, inds = retrieval.knn(x, y, 3, chunk_size=chunk)
        assert inds.tolist() == [[0, 1, 2]] * 3
    assert retrieval.xsim(x, y, margin="absolute")["errors"] == 2  # everyone retrieves row 0
    assert retrieval.xsim(x, y, margin="ratio")["errors"] == 2


def test_fewer_sentences_than_k_and_gold_mapping():
    x = np.eye(3, dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[[2, 0, 1]]
    assert retrieval.xsim(x, y, k=4)["errors"] == 3  # k capped at 3; identity gold is wrong
    assert retrieval.xsim(x, y, k=4, gold=[1, 2, 0])["errors"] == 0
    assert retrieval.tatoeba_accuracy(x[:1], y[1:2]) == 100.0
    with pytest.raises(DataError):
        retrieval.xsim(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(DataError):
        retrieval.xsim(x, y, margin="cosine")


def test_tatoeba_direction_follows_xtreme():
    # src rows 0 and 1 are both nearest to english row 0; english row 1 is nearest to src row 1
    src = np.array([[1.0, 0.0], [0.8, 0.6]], dtype=np.float32)
    eng = np.array([[1.0, 0.1], [0.6, 0.8]], dtype=np.float32)
    assert retrieval.tatoeba_accuracy(src, eng) == 100.0  # queries = English (XTREME)
    assert retrieval.tatoeba_accuracy(src, eng, direction="xx-en") == 100.0
    eng2 = np.array([[1.0, 0.0], [1.0, 0.05]], dtype=np.float32)
    # xx-en: both src rows retrieve eng2 row 0 or 1 by cosine; en-xx: eng rows both retrieve src row 0
    assert retrieval.tatoeba_accuracy(src, eng2) == 50.0


def test_bucc_threshold_and_f1_hand_computed():
    cands = [("a", "1", 1.5), ("b", "2", 1.3), ("c", "9", 1.2), ("d", "4", 1.0)]
    gold = {("a", "1"), ("b", "2"), ("d", "4")}
    # F1 after 1: .5, after 2: .8, after 3: 2/3, after 4: 6/7 -> best at the end: last score
    assert retrieval.optimize_threshold(cands, gold) == pytest.approx(1.0)
    assert retrieval.optimize_threshold(cands[:3], {("a", "1"), ("b", "2")}) == pytest.approx(1.25)
    assert retrieval.pair_f1(gold, [("a", "1"), ("c", "9")]) == pytest.approx(
        {"f1": 100 * 0.4, "precision": 50.0, "recall": 100 / 3}
    )


def test_bucc_mining_recovers_parallel_pairs_among_distractors():
    rng = np.random.default_rng(0)
    d = 24
    src_par = rng.normal(size=(30, d))
    noise = rng.normal(size=(30, d)) * 0.3
    src = np.concatenate([src_par, rng.normal(size=(40, d))]).astype(np.float32)
    tgt = np.concatenate([src_par + noise, rng.normal(size=(50, d))]).astype(np.float32)
    gold = [(i, i) for i in range(30)]
    out = retrieval.bucc_f1(src, tgt, gold, src, tgt, gold)
    assert out["f1"] > 90 and out["threshold"] > 1.0
    assert catalog.METRICS.get("bucc_f1").score([[0, 0], [1, 1], None], [[0, 0], [1, 2], [3, 3]])[
        "f1"
    ] == pytest.approx(100 * 2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))


def test_registered_index_metrics():
    assert catalog.METRICS.get("xsim").score([0, 1, 2, 3], [0, 1, 3, 3])["error_rate"] == 25.0
    assert not catalog.METRICS.get("xsim").higher_is_better
    assert catalog.METRICS.get("tatoeba_accuracy").score([0, 1], [0, 0])["accuracy"] == 50.0
