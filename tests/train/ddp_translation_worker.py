"""Run by `torchrun --nproc_per_node N` in test_translation.py: translate 7 sentences with an untrained tiny
translation model, sharded over the processes, and write the gathered hypotheses to OUT/rank<k>.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mmxfer import catalog
from mmxfer.models.seq2seq import build_seq2seq
from mmxfer.models.trunk import load_trunk
from mmxfer.testing.flores import write_flores
from mmxfer.train import data as train_data
from mmxfer.train.loop import make_accelerator
from mmxfer.train.translation import generate_hypotheses


def main(out: Path) -> None:
    accelerator = make_accelerator("no")
    catalog.load_plugins()
    spec = catalog.task("flores200-translate")
    if accelerator.is_main_process:
        write_flores(out / "data", ["eng_Latn", "deu_Latn"], n=7)
    accelerator.wait_for_everyone()
    torch.manual_seed(0)
    trunk = load_trunk("tiny")
    model = build_seq2seq(trunk, layers=1).eval()
    data = train_data.task_data(
        spec,
        spec.load("devtest", "deu_Latn", str(out / "data")),
        trunk.tokenizer,
        32,
        split="devtest",
        lang="deu_Latn",
    )
    hyps = generate_hypotheses(
        accelerator,
        model,
        data,
        trunk.tokenizer,
        num_beams=2,
        batch_size=2,
        max_len_a=0.5,
        max_len_b=3,
    )
    (out / f"rank{accelerator.process_index}.json").write_text(
        json.dumps({"world": accelerator.num_processes, "hyps": hyps})
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
