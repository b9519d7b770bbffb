"""Run by `torchrun --nproc_per_node 2` in test_distributed.py: phase 3 (PAWS-X from release files) on a tiny
XLM-R-architecture trunk loaded from a Hugging Face folder, on 2 CPU processes (gloo); each rank writes
OUT/rank<k>.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mmxfer import catalog
from mmxfer.config import load_profile
from mmxfer.runs.store import Run
from mmxfer.train import phases
from mmxfer.train.loop import make_accelerator


def main(out: Path, trunk: str, data: str) -> None:
    catalog.load_plugins()
    profile = load_profile(
        "starter",
        [
            f"trunk.name={trunk}",
            "trunk.freeze_embeddings=false",
            "target.batch_size=4",
            "target.epochs=2",
            "target.max_train_examples=16",
            "target.max_eval_examples=8",
            "target.checkpoint_every=0",
            "target.lr=1e-3",
        ],
    )
    run = Run(out / "run")
    run.path.mkdir(parents=True, exist_ok=True)
    rows = phases.run_target(run, profile, "pawsx", trunk=trunk, seed=1, data_dir=data)
    # the state phase 3 set up (precision auto: bf16 or no)
    accelerator = make_accelerator(profile.precision)
    selection = (
        json.loads((run.path / "selection.json").read_text()) if accelerator.is_main_process else {}
    )
    (out / f"rank{accelerator.process_index}.json").write_text(
        json.dumps(
            {
                "world": accelerator.num_processes,
                "rows": len(rows),
                "steps": (selection.get("history") or [{}])[-1].get("step"),
                "langs": sorted(r["lang"] for r in rows),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
