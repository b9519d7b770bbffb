"""Run by `torchrun --nproc_per_node 2` in test_distributed.py: train the toy model on 2 CPU processes
(gloo), gather dev predictions, and write what each rank saw to OUT/rank<k>.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy import ToyClassifier, ToyDataset, collate  # noqa: E402

from mmxfer.config import PhaseConfig  # noqa: E402
from mmxfer.train.loop import (
    LoopOptions,
    eval_loader,
    gather_outputs,
    make_accelerator,
    train_phase,
)  # noqa: E402


def main(out: Path) -> None:
    accelerator = make_accelerator("no")
    torch.manual_seed(0)
    model = ToyClassifier()
    train, dev = (
        ToyDataset(40, seed=0),
        ToyDataset(21, seed=5),
    )  # 21: uneven over 2 processes on purpose
    seen: dict = {}

    def evaluate(m, acc):
        out_ = gather_outputs(
            acc,
            m,
            eval_loader(acc, dev, collate, batch_size=4),
            lambda mm, b: {
                "pred": mm(**b)["logits"].argmax(-1),
                "gold": b["labels"],
                "idx": b["input_ids"][:, 0],
            },
        )
        seen["n"] = len(out_["pred"])
        seen["gold"] = out_["gold"].tolist()
        return (out_["pred"] == out_["gold"]).float().mean().item()

    phase = PhaseConfig(lr=1e-2, batch_size=4, epochs=2, checkpoint_every=3)
    result = train_phase(
        model,
        train,
        collate,
        phase,
        LoopOptions(workdir=out / "work", seed=1, evaluate=evaluate, accelerator=accelerator),
    )
    final = result.model.eval()
    with torch.no_grad():
        local = collate([dev[i] for i in range(len(dev))])
        acc_local = (final(**local)["logits"].argmax(-1) == local["labels"]).float().mean().item()
    digest = float(sum(p.detach().double().sum() for p in final.parameters()))
    (out / f"rank{accelerator.process_index}.json").write_text(
        json.dumps(
            {
                "world": accelerator.num_processes,
                "n_gathered": seen["n"],
                "gold": seen["gold"],
                "best": result.state.best_metric,
                "steps": result.state.global_step,
                "acc_full_dev_final": acc_local,
                "digest": digest,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
