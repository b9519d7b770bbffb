"""Sweep of the starter's phase-2 recipe (learning rate x steps): how much each setting trains the intermediate
task and how much of the trunk's cross-lingual retrieval it costs (forgetting), beside the SIB-200 margins.

For every (lr, steps) of the grid, the starter study is run on seed 1 (every arm: baseline, vqa, vqa-text,
caption, caption-text; phase 2 on ``steps`` x 32 shapes-world examples, one epoch, linear decay), and per arm it
records (the four shapes-world arms; the positive control's margins in a column of their own): the phase-2
training loss at the start and the end (first logged value, mean of the last two; the
captioning tasks have 1000 training examples, so at most 32 steps of one epoch), the FLORES
retrieval accuracy on the trunk and its change against the baseline (negative = forgetting) and the twin margins
(vqa - vqa-text, caption - caption-text). With ``--with-sib`` the SIB-200 target is trained and scored too (four
phase-3 runs more per grid point); without it, only the trunk is evaluated.

    python benchmarks/starter_phase2_sweep.py --out benchmarks/results/starter_phase2_sweep.json \\
        [--lr 1e-5,3e-5,1e-4,3e-4] [--steps 20,63] [--with-sib] [--runs-dir /tmp/sweep]

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
from dataclasses import replace
from pathlib import Path

import pandas as pd
import yaml

BASELINE = "sweep-baseline"
#: the study's positive control: shown beside the shapes-world arms, never in the means the rule reads
CONTROL = "bitext-control"


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
            out[task] = {
                "first": round(losses[0], 3),
                "last": round(sum(losses[-2:]) / len(losses[-2:]), 3),
                "steps": max(r.get("step", 0) for r in rows),
            }
    return out


def summarise(runs_dir: Path, study: str, baseline: str) -> dict:
    from mmxfer.compare.results import build_results

    results = build_results([runs_dir / study, runs_dir / baseline])
    results = results[~results["lang"].eq("eng_Latn")]
    means = results.groupby(["arm", "task"])["score"].mean().unstack("task")
    base = means.loc["baseline"]
    arms = {}
    for arm, row in means.iterrows():
        arms[arm] = {
            task: {
                "score": round(float(row[task]), 2),
                "vs_baseline": round(float(row[task] - base[task]), 2),
            }
            for task in means.columns
        }
    twins = {}
    for mm, text in (("vqa", "vqa-text"), ("caption", "caption-text")):
        if mm in means.index and text in means.index:
            twins[f"{mm} - {text}"] = {
                task: round(float(means.loc[mm, task] - means.loc[text, task]), 2)
                for task in means.columns
            }
    return {"arms": arms, "twins": twins}


def _task_cells(row: dict, task: str, arms: tuple[str, ...]) -> tuple[str, str]:
    if task not in row["arms"]["baseline"]:
        return "", ""
    values = [row["arms"][a][task]["vs_baseline"] for a in arms]
    return ", ".join(f"{x:+.2f}" for x in values), f"{sum(values) / len(values):+.2f}"


def markdown(rows: list[dict]) -> str:
    arms = ("vqa", "vqa-text", "caption", "caption-text")
    lines = [
        "| lr | steps | phase-2 loss first -> last (vqa, vqa-text, caption, caption-text) | "
        "retrieval vs baseline (same order) | mean | SIB-200 vs baseline (same order) | mean | "
        "twin margins: retrieval / SIB-200 | positive control vs baseline: retrieval / SIB-200 | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        loss = r["phase2_loss"]
        losses = ", ".join(
            f"{loss[t]['first']:.2f} -> {loss[t]['last']:.2f}"
            + (
                f" ({loss[t]['steps']} steps)"
                if loss[t].get("steps", r["steps"]) != r["steps"]
                else ""
            )
            for t in ("starter-vqa", "starter-vqa-text", "starter-caption", "starter-caption-text")
            if t in loss
        )
        ret, ret_mean = _task_cells(r, "starter-flores", arms)
        sib, sib_mean = _task_cells(r, "starter-sib200", arms)
        tw = "; ".join(
            f"{k} {v['starter-flores']:+.2f} / "
            + (f"{v['starter-sib200']:+.2f}" if "starter-sib200" in v else "-")
            for k, v in r["twins"].items()
        )
        control = r["arms"].get(CONTROL)
        ctl = (
            f"{control['starter-flores']['vs_baseline']:+.2f} / "
            + (
                f"{control['starter-sib200']['vs_baseline']:+.2f}"
                if "starter-sib200" in control
                else "-"
            )
            if control
            else "-"
        )
        lines.append(
            f"| {r['lr']:g} | {r['steps']} | {losses} | {ret} | {ret_mean} | {sib} | {sib_mean} | {tw} | "
            f"{ctl} | {r['minutes']:.1f} |"
        )
    base = rows[0]["arms"]["baseline"] if rows else {}
    if base:
        lines += [
            "",
            "Baseline (no phase 2): "
            + ", ".join(f"{task} {v['score']:.2f}" for task, v in base.items())
            + " (mean over 32 languages, English left out).",
        ]
    return "\n".join(lines) + "\n"


def _trunk_record(profile_name: str, overrides: tuple[str, ...]) -> dict:
    """The trunk settings the sweep ran with (which layers train decides how much phase 2 can forget)."""
    from mmxfer.config import load_profile

    trunk = load_profile(profile_name, overrides).trunk
    return {
        "name": trunk.name,
        "train_top_layers": trunk.train_top_layers,
        "freeze_embeddings": trunk.freeze_embeddings,
    }


def _commit() -> str | None:
    import subprocess

    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    return out.stdout.strip() or None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/starter_phase2_sweep.json")
    parser.add_argument("--lr", default="1e-5,3e-5,1e-4,3e-4")
    parser.add_argument("--steps", default="20,63")
    parser.add_argument(
        "--with-sib", action="store_true", help="also train and score the SIB-200 target"
    )
    parser.add_argument("--runs-dir", default="/tmp/mmxfer-phase2-sweep")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")

    from mmxfer.config import load_study, read_yaml, resolve_config_path
    from mmxfer.study.grid import run_study

    runs_dir = Path(args.runs_dir)
    base = load_study("starter")
    extra: dict = {}
    # the trunk only: a suite of the retrieval task alone, no fine-tuned target
    if not args.with_sib:
        suite = runs_dir / "retrieval-only.yaml"
        runs_dir.mkdir(parents=True, exist_ok=True)
        items = [
            t
            for t in read_yaml(resolve_config_path("suites", "starter"))["tasks"]
            if t["task"] == "starter-flores"
        ]
        suite.write_text(
            yaml.safe_dump(
                {"name": "starter-retrieval", "include_english_in_average": False, "tasks": items},
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        extra = {"targets": (), "suite": str(suite)}
    baseline = BASELINE + ("-sib" if args.with_sib else "")
    run_study(
        replace(
            base,
            name=baseline,
            seeds=(1,),
            arms=tuple(a for a in base.arms if not a.intermediate),
            **extra,
        ),
        runs_dir=runs_dir,
        compare=False,
    )
    rows = []
    for lr in _floats(args.lr):
        for steps in [int(x) for x in _floats(args.steps)]:
            name = f"sweep-lr{lr:g}-steps{steps}" + ("-sib" if args.with_sib else "")
            overrides = [
                f"intermediate.lr={lr}",
                f"intermediate.max_train_examples={steps * 32}",
                "intermediate.epochs=1",
            ]
            study = replace(
                base,
                name=name,
                seeds=(1,),
                arms=tuple(a for a in base.arms if a.intermediate),
                overrides=tuple(base.overrides) + tuple(overrides),
                **extra,
            )
            start = time.perf_counter()
            run_study(study, runs_dir=runs_dir, compare=False)
            minutes = (time.perf_counter() - start) / 60
            row = {
                "lr": lr,
                "steps": steps,
                "minutes": round(minutes, 2),
                "phase2_loss": phase2_losses(runs_dir / name),
                **summarise(runs_dir, name, baseline),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "benchmark": "starter phase-2 recipe sweep (seed 1, every arm, 32 languages"
        + (", SIB-200 trained and scored)" if args.with_sib else ", trunk retrieval only)"),
        "grid": {"lr": _floats(args.lr), "steps": [int(x) for x in _floats(args.steps)]},
        "batch_size": 32,
        "trunk": _trunk_record(base.profile, tuple(base.overrides)),
        "commit": _commit(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(rows), encoding="utf-8")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main())
