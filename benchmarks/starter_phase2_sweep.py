"""Sweep of the starter's phase-2 recipe (learning rate x steps): how much each setting trains the intermediate
task and how much of the trunk's cross-lingual retrieval it costs (forgetting), beside the SIB-200 margins.

For every (lr, steps) of the grid, the starter study is run on seed 1 (every arm: baseline, vqa, vqa-text,
caption, caption-text; phase 2 on ``steps`` x 32 shapes-world examples, one epoch, linear decay), and per arm it
records: the phase-2 training loss at the start and the end (mean of the first and of the last two logged
values), the FLORES retrieval accuracy and its change against the baseline (negative = forgetting), the SIB-200
accuracy and its change, and the twin margins (vqa - vqa-text, caption - caption-text) on both targets.

    python benchmarks/starter_phase2_sweep.py --out benchmarks/results/starter_phase2_sweep.json \\
        [--lr 1e-5,3e-5,1e-4] [--steps 16,32,63] [--runs-dir /tmp/sweep]

Writes JSON (every number) and a Markdown table next to it (same stem, ``.md``). The run folders are kept under
``--runs-dir`` (a rerun skips finished runs). The baseline arm does not depend on the phase-2 recipe: it is run
once, in its own study folder, and every grid point is compared with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd

BASELINE = "sweep-baseline"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def phase2_losses(study_dir: Path) -> dict[str, dict[str, float]]:
    """Per intermediate task: mean of the first logged loss and of the last two (one phase-2 folder each)."""
    out = {}
    for log in sorted((study_dir / "_intermediate").glob("*/train_log.jsonl")):
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        losses = [r["loss"] for r in rows if "loss" in r]
        if losses:
            task = rows[0]["phase"].split(":", 1)[1]
            out[task] = {"first": round(losses[0], 3), "last": round(sum(losses[-2:]) / len(losses[-2:]), 3)}
    return out


def summarise(runs_dir: Path, study: str) -> dict:
    from mmxfer.compare.results import build_results

    results = build_results([runs_dir / study, runs_dir / BASELINE])
    results = results[~results["lang"].eq("eng_Latn")]
    means = results.groupby(["arm", "task"])["score"].mean().unstack("task")
    base = means.loc["baseline"]
    arms = {}
    for arm, row in means.iterrows():
        arms[arm] = {task: {"score": round(float(row[task]), 2), "vs_baseline": round(float(row[task] - base[task]), 2)}
                     for task in means.columns}
    twins = {}
    for mm, text in (("vqa", "vqa-text"), ("caption", "caption-text")):
        if mm in means.index and text in means.index:
            twins[f"{mm} - {text}"] = {task: round(float(means.loc[mm, task] - means.loc[text, task]), 2)
                                       for task in means.columns}
    return {"arms": arms, "twins": twins}


def markdown(rows: list[dict]) -> str:
    head = ("| lr | steps | phase-2 loss first -> last (vqa, vqa-text, caption, caption-text) | "
            "retrieval vs baseline (vqa, vqa-text, caption, caption-text) | mean | "
            "SIB-200 vs baseline (same order) | mean | twin margins retrieval / SIB-200 | minutes |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    arms = ("vqa", "vqa-text", "caption", "caption-text")
    for r in rows:
        loss = r["phase2_loss"]
        losses = ", ".join(f"{loss[t]['first']:.2f}->{loss[t]['last']:.2f}" for t in
                           ("starter-vqa", "starter-vqa-text", "starter-caption", "starter-caption-text") if t in loss)
        ret = [r["arms"][a]["starter-flores"]["vs_baseline"] for a in arms]
        sib = [r["arms"][a]["starter-sib200"]["vs_baseline"] for a in arms]
        tw = "; ".join(f"{k} {v['starter-flores']:+.2f} / {v['starter-sib200']:+.2f}" for k, v in r["twins"].items())
        lines.append(f"| {r['lr']:g} | {r['steps']} | {losses} | {', '.join(f'{x:+.2f}' for x in ret)} | "
                     f"{sum(ret) / len(ret):+.2f} | {', '.join(f'{x:+.2f}' for x in sib)} | "
                     f"{sum(sib) / len(sib):+.2f} | {tw} | {r['minutes']:.1f} |")
    base = rows[0]["arms"]["baseline"] if rows else {}
    if base:
        lines.append("")
        lines.append(f"Baseline (no phase 2): FLORES retrieval {base['starter-flores']['score']:.2f}, "
                     f"SIB-200 {base['starter-sib200']['score']:.2f} (mean over 32 languages, English left out).")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/starter_phase2_sweep.json")
    parser.add_argument("--lr", default="1e-5,3e-5,1e-4")
    parser.add_argument("--steps", default="16,32,63")
    parser.add_argument("--runs-dir", default="/tmp/mmxfer-phase2-sweep")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")

    from mmxfer.config import load_study
    from mmxfer.study.grid import run_study

    base = load_study("starter")
    run_study(type(base)(**{**base.__dict__, "name": BASELINE, "seeds": (1,),
                            "arms": tuple(a for a in base.arms if not a.intermediate)}),
              runs_dir=args.runs_dir, compare=False)
    rows = []
    for lr in _floats(args.lr):
        for steps in [int(x) for x in _floats(args.steps)]:
            name = f"sweep-lr{lr:g}-steps{steps}"
            overrides = [f"intermediate.lr={lr}", f"intermediate.max_train_examples={steps * 32}",
                         "intermediate.epochs=1"]
            study = load_study("starter")
            study = type(study)(**{**study.__dict__, "name": name, "seeds": (1,),
                                   "arms": tuple(a for a in study.arms if a.intermediate),
                                   "overrides": tuple(study.overrides) + tuple(overrides)})
            start = time.perf_counter()
            run_study(study, runs_dir=args.runs_dir, compare=False)
            minutes = (time.perf_counter() - start) / 60
            row = {"lr": lr, "steps": steps, "minutes": round(minutes, 2),
                   "phase2_loss": phase2_losses(Path(args.runs_dir) / name), **summarise(Path(args.runs_dir), name)}
            rows.append(row)
            print(json.dumps(row))
    result = {"benchmark": "starter phase-2 recipe sweep (seed 1, every arm, 32 languages)",
              "grid": {"lr": _floats(args.lr), "steps": [int(x) for x in _floats(args.steps)]},
              "batch_size": 32, "cpu_count": os.cpu_count(), "platform": platform.platform(),
              "load_average_end": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(rows), encoding="utf-8")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main())
