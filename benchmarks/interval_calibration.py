"""Do mmxfer's 95 % intervals cover the truth 95 % of the time? A simulation with known truth.

For every regime of a grid - seeds per arm k, examples n, seed s.d. (points), per-item error correlation between
arms rho, number of arms, metric (accuracy, or corpus-level span F1 from per-sentence chunk counts) - it simulates
R studies in which no arm has any effect (arms are exchangeable: the population margin of every pair is 0), runs
the same code ``mmxfer compare`` runs on one cell (:func:`mmxfer.compare.draws.replicates`, then
:mod:`mmxfer.compare.variance`), and records:

* coverage: the share of nominal 95 % intervals of the study's comparisons (:func:`pairs`) that contain 0;
* width / oracle: the mean interval width over the width of the oracle interval, ``2 * 1.96 * sd`` with ``sd`` the
  margin's true standard deviation (its spread over the R simulated studies).

The model of a study: item i has a latent difficulty z_i; arm a's latent on it is sqrt(rho) z_i + sqrt(1 - rho) e_ai
(so arms err on the same items with correlation rho); run (a, s) adds a seed shift u_as (its s.d. set so that the
run's score moves by the regime's seed s.d. in points) and item-level noise nu_asi (two seeds of one arm disagree on
about 8 % of items, as fine-tuned models do). An item is right when the latent plus noise is below a threshold that
gives 70 % accuracy. Span F1: each sentence holds 1-4 gold chunks, each chunk right or wrong as an item above; a
wrong chunk is a false positive and a missed gold chunk.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/interval_calibration.py \
        --out benchmarks/results/interval_calibration.json
    python benchmarks/interval_calibration.py --quick   # a corner of the grid, for a look

One BLAS thread is much faster here: each bootstrap product is small, and threads only contend (6x on 2 busy cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

from mmxfer.compare import draws, variance
from mmxfer.compare.example_scores import Scorer
from mmxfer.metrics.tagging import f1_from_counts

ACCURACY = 0.7
FLIP = 0.08  # share of items on which two seeds of one arm disagree
ALPHA = 0.05
GRID = {
    "k": (1, 2, 3, 5),
    "n": (200, 1000, 5000),
    "seed_sd": (0.0, 1.0, 3.0),
    "rho": (0.0, 0.5, 0.9),
    "arms": (3, 16),
    "metric": ("accuracy", "span_f1"),
}
QUICK = {
    "k": (2, 3),
    "n": (200, 1000),
    "seed_sd": (0.0, 3.0),
    "rho": (0.5,),
    "arms": (3, 16),
    "metric": ("accuracy", "span_f1"),
}


def in_default_run(spec: dict) -> bool:
    """The regimes a default run simulates (the whole grid is hours on 2 cores): every k = 1 regime, and with
    k = 2-3 the regimes where the run variance matters (seed s.d. > 0) at the extremes of the correlation; a
    regime's random stream is its place in the whole grid either way, so ``--full`` repeats these figures."""
    return spec["k"] == 1 or (
        spec["k"] in (2, 3) and spec["seed_sd"] > 0 and spec["rho"] in (0.0, 0.9)
    )


MEAN = Scorer("accuracy", False, lambda g, p: float("nan"))
SPAN_F1 = Scorer(
    "span_f1", True, lambda g, p: float("nan"), stats=lambda g, p: None, from_stats=f1_from_counts
)


def item_noise() -> float:
    """The item-level run noise variance that makes two seeds disagree on FLIP of the items (at ACCURACY)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=400_000)
    lo, hi = 1e-4, 1.0
    for _ in range(40):
        lam = (lo + hi) / 2
        c = np.sqrt(1 + lam) * norm.ppf(ACCURACY)
        a = w + rng.normal(0, np.sqrt(lam), w.size) < c
        b = w + rng.normal(0, np.sqrt(lam), w.size) < c
        lo, hi = (lam, hi) if (a != b).mean() < FLIP else (lo, lam)
    return (lo + hi) / 2


def simulate(
    rng: np.random.Generator,
    k: int,
    units: int,
    seed_sd: float,
    rho: float,
    arms: int,
    lam: float,
    items_per_unit: np.ndarray | None,
) -> np.ndarray:
    """(arms, k, items) right/wrong of every run on every item (chunks for span F1, examples for accuracy)."""
    m = int(items_per_unit.sum()) if items_per_unit is not None else units
    c = np.sqrt(1 + lam) * norm.ppf(ACCURACY)
    slope = norm.pdf(c / np.sqrt(1 + lam)) / np.sqrt(1 + lam)  # d accuracy / d shift
    z = rng.normal(size=m)
    latent = np.sqrt(rho) * z[None] + np.sqrt(1 - rho) * rng.normal(size=(arms, m))
    shift = rng.normal(0, seed_sd / 100 / slope, size=(arms, k)) if seed_sd else np.zeros((arms, k))
    noise = rng.normal(0, np.sqrt(lam), size=(arms, k, m))
    return latent[:, None, :] + noise < c + shift[:, :, None]


def cell(right: np.ndarray, metric: str, items_per_unit: np.ndarray | None) -> draws.CellExamples:
    """The per-unit data of every run, as ``mmxfer compare`` holds it for one cell."""
    arms, k, _ = right.shape
    if metric == "accuracy":
        units = [str(i) for i in range(right.shape[2])]
        ex = draws.CellExamples("xx", units, MEAN)
        for a, s in itertools.product(range(arms), range(k)):
            ex.values[(str(a), s)] = right[a, s].astype(np.float32) * 100.0
        return ex
    sentence = np.repeat(np.arange(items_per_unit.size), items_per_unit)
    units = [str(i) for i in range(items_per_unit.size)]
    ex = draws.CellExamples("xx", units, SPAN_F1)
    for a, s in itertools.product(range(arms), range(k)):
        tp = np.bincount(sentence, weights=right[a, s], minlength=items_per_unit.size)
        # a wrong chunk is predicted with the wrong span: one false positive, one missed gold chunk
        ex.values[(str(a), s)] = np.stack(
            [tp, items_per_unit.astype(float), items_per_unit.astype(float)], axis=1
        )
    return ex


def point(ex: draws.CellExamples, key: tuple[str, int]) -> float:
    v = ex.values[key]
    return (
        float(ex.scorer.from_stats(v.sum(axis=0)))
        if ex.scorer.stats is not None
        else float(v.mean())
    )


def pairs(arms: int) -> list[tuple[int, int]]:
    """The comparisons scored in one study: every arm vs arm 0 with 3 arms; with more, disjoint pairs (1 - 0,
    3 - 2, ...), so that the coverage is counted over independent intervals (all still pool every arm's runs)."""
    return (
        [(a, 0) for a in range(1, arms)]
        if arms <= 3
        else [(a + 1, a) for a in range(0, arms - 1, 2)]
    )


def intervals(ex: draws.CellExamples, arms: int, k: int, n_boot: int, study: int) -> np.ndarray:
    """(comparisons, 3): margin, ci_low, ci_high of each of :func:`pairs`, as mmxfer computes them for one cell."""
    reps = draws.replicates({0: ex}, "independent", n_boot, ("calibration", study))[0]
    pts = {str(a): np.array([point(ex, (str(a), s)) for s in range(k)]) for a in range(arms)}
    rp = {str(a): np.stack([reps[(str(a), s)] for s in range(k)]) for a in range(arms)}
    runs = variance.pooled_run_variance(pts, rp)
    out = []
    for a, r in pairs(arms):
        w = {str(a): 1.0, str(r): -1.0}
        v_ex, _ = variance.example_variance({x: rp[x] for x in w}, w)
        margin = float(pts[str(a)].mean() - pts[str(r)].mean())
        run_weight = sum(wt * wt / k for x, wt in w.items() if x not in runs.fixed)
        e = variance.estimate(margin, v_ex, run_weight, runs, ALPHA)
        out.append((margin, e.ci_low, e.ci_high))
    return np.array(out)


def regime(
    k: int,
    n: int,
    seed_sd: float,
    rho: float,
    arms: int,
    metric: str,
    studies: int,
    n_boot: int,
    lam: float,
    seed: int,
) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for study in range(studies):
        per_unit = rng.integers(1, 5, size=n) if metric == "span_f1" else None
        right = simulate(rng, k, n, seed_sd, rho, arms, lam, per_unit)
        rows.append(intervals(cell(right, metric, per_unit), arms, k, n_boot, study))
    m, lo, hi = np.concatenate(rows).T
    oracle = 2 * norm.ppf(1 - ALPHA / 2) * float(np.sqrt(np.mean(m**2)))  # the true margin is 0
    return {
        "k": k,
        "n": n,
        "seed_sd": seed_sd,
        "rho": rho,
        "arms": arms,
        "metric": metric,
        "studies": studies,
        "intervals": int(m.size),
        "coverage": float(np.mean((lo <= 0) & (0 <= hi))),
        "width_over_oracle": float(np.mean(hi - lo) / oracle) if oracle > 0 else float("nan"),
        "n_boot": n_boot,
        "interval": variance.EXAMPLES_ONLY if k == 1 else variance.EXAMPLES_AND_RUNS,
    }


def host() -> dict:
    import torch

    speeds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(1024, 1024, dtype=dtype)
        a @ a
        t = time.perf_counter()
        for _ in range(3):
            a @ a
        speeds[str(dtype).replace("torch.", "")] = round(
            3 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9, 1
        )
    return {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "matmul_gflops_1024": speeds,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")
        or os.environ.get("OMP_NUM_THREADS")
        or "default",
    }


def mc_se(row: dict) -> float:
    """Monte Carlo standard error of a regime's coverage (binomial over its intervals; the intervals of one study
    share arm 0 with 3 arms, so this understates it there)."""
    c = row["coverage"]
    return float(np.sqrt(c * (1 - c) / row["intervals"]))


def markdown(rows: list[dict], meta: dict) -> str:
    k2 = [r for r in rows if r["k"] >= 2]
    below = [r for r in k2 if r["coverage"] + 2 * mc_se(r) < meta["aims"]["coverage_k2"]]
    lines = [
        "# Interval calibration",
        "",
        f"Generated by `benchmarks/interval_calibration.py` ({meta['studies_small']} studies per regime with 3 "
        f"arms, {meta['studies_large']} with 16, half of that with k = 1; {meta['n_boot']} bootstrap "
        f"resamples, {meta['n_boot_5000']} where n = 5000; {meta['seconds']:.0f} s on "
        f"{meta['host']['cpu_count']} cores (fp32 {meta['host']['matmul_gflops_1024'].get('float32')} GFLOP/s); "
        f"nominal {int((1 - ALPHA) * 100)} % intervals of every arm vs arm 0 with 3 arms, of 8 disjoint pairs "
        f"with 16; no arm has an effect). Regimes: {meta['regimes']}.",
        "",
        "Aim: coverage >= 93 % in every regime with k >= 2; width <= 1.3 x the oracle where k >= 3 with 16 arms. "
        "k = 1 intervals are the examples' alone (run variance cannot be estimated from one seed): the report "
        "labels them 'examples only'.",
        "",
        f"Worst coverage with k >= 2: {meta['worst_coverage_k2']:.3f}; mean coverage with k >= 2: "
        f"{np.mean([r['coverage'] for r in k2]):.3f} over {len(k2)} regimes; regimes whose coverage + 2 Monte "
        f"Carlo s.e. stays below the aim: {len(below)}; widest width/oracle with k >= 3 and 16 arms: "
        f"{meta['widest_k3_16arms']:.2f}.",
        "",
        "| metric | arms | k | n | seed s.d. | rho | coverage | MC s.e. | width / oracle |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | {r['arms']} | {r['k']} | {r['n']} | {r['seed_sd']:g} | {r['rho']:g} | "
            f"{r['coverage']:.3f} | {mc_se(r):.3f} | {r['width_over_oracle']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a corner of the grid")
    ap.add_argument(
        "--studies", type=int, default=200, help="simulated studies per regime with 3 arms"
    )
    ap.add_argument(
        "--studies-16", type=int, default=50, help="simulated studies per regime with 16 arms"
    )
    ap.add_argument("--bootstrap", type=int, default=1000)
    # with 5,000 examples the draws are most of the cost, and the run part most of the variance where k >= 2
    ap.add_argument(
        "--bootstrap-5000", type=int, default=250, help="bootstrap resamples where n = 5000"
    )
    ap.add_argument("--out", default="benchmarks/results/interval_calibration.json")
    ap.add_argument(
        "--full",
        action="store_true",
        help="every regime of the grid (hours), not the default subset",
    )
    ap.add_argument("--markdown-from", help="only rewrite the Markdown table from this JSON result")
    ap.add_argument(
        "--resume",
        help="a JSON-lines file: each finished regime is appended, and read back on restart",
    )
    args = ap.parse_args()
    if args.markdown_from:
        saved = json.loads(Path(args.markdown_from).read_text(encoding="utf-8"))
        Path(args.markdown_from).with_suffix(".md").write_text(
            markdown(saved["results"], saved), encoding="utf-8"
        )
        return
    grid = QUICK if args.quick else GRID
    lam = item_noise()
    rows = []
    start = time.perf_counter()
    keys = list(itertools.product(*grid.values()))
    done = {}
    if args.resume and Path(args.resume).exists():
        for line in Path(args.resume).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[tuple(row[name] for name in grid)] = row
    for i, values in enumerate(keys):
        spec = dict(zip(grid, values))
        if not (args.full or args.quick or in_default_run(spec)):
            continue
        studies = args.studies if spec["arms"] == 3 else args.studies_16
        # outside the aim (no run variance can be estimated): a rougher figure is enough
        if spec["k"] == 1:
            studies = max(studies // 2, 20)
        t = time.perf_counter()
        if tuple(values) in done and done[tuple(values)]["studies"] == studies:
            rows.append(done[tuple(values)])
            continue
        n_boot = args.bootstrap if spec["n"] < 5000 else args.bootstrap_5000
        rows.append(regime(**spec, studies=studies, n_boot=n_boot, lam=lam, seed=i))
        if args.resume:
            with open(args.resume, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rows[-1]) + "\n")
        print(
            f"[{i + 1}/{len(keys)}] {spec} coverage {rows[-1]['coverage']:.3f} "
            f"width/oracle {rows[-1]['width_over_oracle']:.2f} ({time.perf_counter() - t:.0f}s)",
            flush=True,
        )
    k2 = [r["coverage"] for r in rows if r["k"] >= 2]
    k3 = [r["width_over_oracle"] for r in rows if r["k"] >= 3 and r["arms"] == 16]
    meta = {
        "benchmark": "interval_calibration",
        "quick": args.quick,
        "n_boot": args.bootstrap,
        "n_boot_5000": args.bootstrap_5000,
        "studies_small": args.studies,
        "studies_large": args.studies_16,
        "alpha": ALPHA,
        "item_noise_variance": lam,
        "flip_share": FLIP,
        "accuracy": ACCURACY,
        "worst_coverage_k2": min(k2) if k2 else float("nan"),
        "widest_k3_16arms": max(k3) if k3 else float("nan"),
        "regimes": "the whole grid"
        if args.full or args.quick
        else "every k = 1 regime; k = 2, 3 with seed s.d. 1, 3 and rho 0, 0.9 (in_default_run)",
        "aims": {"coverage_k2": 0.93, "width_k3_16arms": 1.3},
        "seconds": round(time.perf_counter() - start, 1),
        "host": host(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, "results": rows}, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(rows, meta), encoding="utf-8")
    print(
        f"worst coverage (k >= 2) {meta['worst_coverage_k2']:.3f}; widest width/oracle (k >= 3, 16 arms) "
        f"{meta['widest_k3_16arms']:.2f}; wrote {out} and {out.with_suffix('.md')}"
    )


if __name__ == "__main__":
    main()
