"""The one-pass chunked retrieval equals a straightforward full-matrix reference, bit for bit.

Integer-valued embeddings with ``normalize=False`` make every dot product exact whatever the BLAS kernel or
chunk shape, so indices *and* scores must be identical for every chunk size; they also produce many ties and
duplicate rows, which checks the lower-index-wins rule on both the row and the column side.
"""

import numpy as np
import pytest
import torch

from mmxfer.metrics import retrieval

MARGINS = ("ratio", "distance", "absolute")


def _nearest(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # stable: ties to the lower index
    return np.take_along_axis(sim, idx, 1), idx


def _reference(sim: np.ndarray, margin: str, k: int):
    """Both directions of margin retrieval from the full float32 matrix, candidate by candidate."""
    if margin == "absolute":
        k = 1
    fs, fi = _nearest(sim, min(k, sim.shape[1]))
    bs, bi = _nearest(sim.T, min(k, sim.shape[0]))
    f_mean, b_mean = fs.mean(axis=1), bs.mean(axis=1)

    def pick(s, ind, mean_q, mean_d):
        preds, scores = [], []
        for r in range(len(s)):
            best = None
            for j in range(s.shape[1]):
                if margin == "absolute":
                    sc = s[r, j]
                else:
                    b = (mean_q[r] + mean_d[ind[r, j]]) / np.float32(2)
                    sc = s[r, j] / b if margin == "ratio" else s[r, j] - b
                if best is None or sc > best[1]:
                    best = (ind[r, j], sc)
            preds.append(best[0])
            scores.append(best[1])
        return np.array(preds), np.array(scores)

    return (fs, fi, bs, bi), pick(fs, fi, f_mean, b_mean), pick(bs, bi, b_mean, f_mean)


def _reference_mine(sim: np.ndarray, margin: str, k: int) -> list[tuple[int, int, float]]:
    _, (fp, fsc), (bp, bsc) = _reference(sim, margin, k)
    cands = [(float(sc), s, int(t)) for s, (t, sc) in enumerate(zip(fp, fsc))]
    cands += [(float(sc), int(s), t) for t, (s, sc) in enumerate(zip(bp, bsc))]
    out, used_s, used_t = [], set(), set()
    for sc, s, t in sorted(cands, key=lambda c: -c[0]):  # stable: forward candidates first on ties
        if s not in used_s and t not in used_t:
            used_s.add(s)
            used_t.add(t)
            out.append((s, t, sc))
    return out


def _integer_pair(
    seed: int, nx: int = 23, ny: int = 19, d: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(nx, d)).astype(np.float32)
    y = rng.integers(0, 3, size=(ny, d)).astype(np.float32)
    x[:, 0] = y[:, 0] = 1  # every similarity >= 1: margins well defined
    x[5] = x[2]  # duplicate rows on both sides
    y[7] = y[3] = y[11]
    return x, y


def _assert_same(got, ref) -> None:
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype or (a.dtype.kind == b.dtype.kind == "f")
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("chunk", [1, 3, 5, 8, 64])
@pytest.mark.parametrize("k", [4, 30])
def test_integer_embeddings_equal_full_matrix_reference(chunk, k):
    x, y = _integer_pair(chunk + k)
    sim = (x.astype(np.float64) @ y.T.astype(np.float64)).astype(np.float32)  # exact
    opts = dict(normalize=False, chunk_size=chunk)
    (fs, fi, bs, bi), _, _ = _reference(sim, "ratio", k)
    _assert_same(retrieval.knn_both(x, y, k, **opts), (fs, fi, bs, bi))
    _assert_same(retrieval.knn(x, y, k, **opts), (fs, fi))
    _assert_same(retrieval.knn(y, x, k, **opts), (bs, bi))
    for margin in MARGINS:
        _, fwd, bwd = _reference(sim, margin, k)
        _assert_same(retrieval.retrieve(x, y, margin, k, **opts), fwd)
        _assert_same(retrieval.retrieve(y, x, margin, k, **opts), bwd)
        both = retrieval.retrieve_both(x, y, margin, k, **opts)
        _assert_same(both[0], fwd)
        _assert_same(both[1], bwd)
        assert retrieval.mine(x, y, k, margin, **opts) == _reference_mine(sim, margin, k)
        assert retrieval.xsim(x, y, margin, k, **opts)["errors"] == int(
            (fwd[0] != np.arange(len(x))).sum()
        )


def test_more_ties_than_candidates_go_to_the_lower_index():
    x, y = np.ones((20, 3), dtype=np.float32), np.ones((30, 3), dtype=np.float32)
    for chunk in (1, 3, 7, 64):
        fs, fi, bs, bi = retrieval.knn_both(x, y, 4, chunk_size=chunk)
        assert fi.tolist() == [[0, 1, 2, 3]] * 20 and bi.tolist() == [[0, 1, 2, 3]] * 30
        (p_xy, _), (p_yx, _) = retrieval.retrieve_both(x, y, "ratio", 4, chunk_size=chunk)
        assert p_xy.tolist() == [0] * 20 and p_yx.tolist() == [0] * 30


def test_normalized_gaussian_embeddings_equal_full_matrix_reference():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(70, 16)).astype(np.float32)
    y = (x[:50] + rng.normal(size=(50, 16)).astype(np.float32)).astype(np.float32)
    x[9] = x[4]
    y[20] = y[30]
    q = torch.nn.functional.normalize(torch.from_numpy(x), p=2, dim=1)
    d = torch.nn.functional.normalize(torch.from_numpy(y), p=2, dim=1)
    sim = (q @ d.T).numpy()  # the same single CPU matmul the chunked code does when chunk >= rows
    for margin in MARGINS:
        _, fwd, bwd = _reference(sim, margin, 4)
        both = retrieval.retrieve_both(x, y, margin, 4, device="cpu")
        _assert_same(both[0], fwd)
        _assert_same(both[1], bwd)
        assert retrieval.mine(x, y, 4, margin, device="cpu") == _reference_mine(sim, margin, 4)
        # smaller chunks (or a GPU): other kernels may round the last bit differently, the answers must not change
        for chunk in (3, 16, 33):
            other = retrieval.retrieve_both(x, y, margin, 4, chunk_size=chunk)
            for (p, s), (rp, rs) in zip(other, (fwd, bwd)):
                np.testing.assert_array_equal(p, rp)
                np.testing.assert_allclose(s, rs, rtol=1e-5)


def test_evaluation_uses_one_pass_without_changing_rows():
    from mmxfer.config import RetrievalConfig
    from mmxfer.evaluation import retrieval as retrieval_evaluation

    x, y = _integer_pair(3, nx=15, ny=15)
    table = {f"s{i}": v for i, v in enumerate(x)} | {f"e{i}": v for i, v in enumerate(y)}

    def embed(sentences):
        return (
            np.stack([table[s] for s in sentences]) if sentences else np.zeros((0, 6), np.float32)
        )

    src, eng, ids = (
        [f"s{i}" for i in range(15)],
        [f"e{i}" for i in range(15)],
        list(range(100, 115)),
    )
    for margin in MARGINS:
        cfg = RetrievalConfig(normalize=False, margin=margin, direction="both")
        rows = retrieval_evaluation.pair_predictions(src, eng, ids, embed, cfg, "xsim")
        expected = [
            (d, int(p))
            for d, (q, db) in (("xx-en", (x, y)), ("en-xx", (y, x)))
            for p in retrieval.retrieve(q, db, margin, 4, normalize=False)[0]
        ]
        assert [(r["direction"], r["pred"]) for r in rows] == expected
        one = retrieval_evaluation.pair_predictions(
            src,
            eng,
            ids,
            embed,
            RetrievalConfig(normalize=False, margin=margin, direction="en-xx"),
            "xsim",
        )
        assert one == [r for r in rows if r["direction"] == "en-xx"]
    test = [
        {"side": "source", "id": f"s{i}", "text": f"s{i}", "gold": f"e{i}" if i < 10 else None}
        for i in range(15)
    ] + [{"side": "target", "id": f"e{i}", "text": f"e{i}"} for i in range(15)]
    cfg = RetrievalConfig(normalize=False, threshold_source="test-oracle")
    rows, threshold = retrieval_evaluation.mining_predictions(None, test, embed, cfg)
    cands = retrieval.mine(x, y, 4, "ratio", normalize=False)
    named = [(f"s{s}", f"e{t}", sc) for s, t, sc in cands]
    assert threshold == retrieval.optimize_threshold(named, {(f"s{i}", f"e{i}") for i in range(10)})
    kept = {f"s{s}": [f"s{s}", f"e{t}"] for s, t, sc in cands if sc >= threshold}
    assert [r["pred"] for r in rows] == [kept.get(f"s{i}") for i in range(15)]


def test_english_candidates_without_a_source_enlarge_the_english_side_only():
    """xSIM with more English candidates (as xSIM++ adds them): each source is searched among every English
    sentence, each aligned English sentence among the sources; preds and golds are row indices."""
    from mmxfer.config import RetrievalConfig
    from mmxfer.evaluation import retrieval as retrieval_evaluation

    x, y = _integer_pair(5, nx=12, ny=20)
    table = {f"s{i}": v for i, v in enumerate(x)} | {f"e{i}": v for i, v in enumerate(y)}

    def embed(sentences):
        return np.stack([table[s] for s in sentences])

    src = [f"s{i}" for i in range(12)] + [None] * 8
    eng, ids = [f"e{i}" for i in range(20)], [f"id{i}" for i in range(20)]
    for margin in MARGINS:
        rows = retrieval_evaluation.pair_predictions(
            src,
            eng,
            ids,
            embed,
            RetrievalConfig(normalize=False, margin=margin, direction="both"),
            "xsim",
        )
        xx_en = [r for r in rows if r["direction"] == "xx-en"]
        en_xx = [r for r in rows if r["direction"] == "en-xx"]
        assert [r["pred"] for r in xx_en] == list(
            retrieval.retrieve(x, y, margin, 4, normalize=False)[0]
        )
        assert [r["gold"] for r in xx_en] == list(range(12)) and [r["id"] for r in xx_en] == ids[
            :12
        ]
        # en-xx: the 12 aligned English rows search the sources, with the margin of the whole English side
        (_, _), (back, _) = retrieval.retrieve_both(x, y, margin, 4, normalize=False)
        assert [r["pred"] for r in en_xx] == list(back[:12]) and len(en_xx) == 12
        one = retrieval_evaluation.pair_predictions(
            src,
            eng,
            ids,
            embed,
            RetrievalConfig(normalize=False, margin=margin, direction="xx-en"),
            "xsim",
        )
        assert one == xx_en
