"""Training throughput: mmxfer's loop vs transformers' ``Trainer`` on the same model, data, batch, precision.

Not a test. Writes JSON (stdout, or ``--out``)::

    python benchmarks/train_throughput.py --size small --steps 40 --out bench.json
    python benchmarks/train_throughput.py --size large --device cuda --precision bf16   # on a GPU

Each side runs in its own subprocess (so peak memory is its own): a randomly initialised
XLM-R-shaped sequence classifier, fixed-length random token sequences (every step processes
exactly ``batch x seq`` tokens on both sides, so tokens/s compare like for like), AdamW, linear
schedule, gradient clipping at 1.0, no checkpoints, no evaluation. The first ``--warmup`` steps
are excluded from the timing. On CUDA the model FLOPs utilisation (6 N tokens/s / peak) is added.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

SIZES = {  # hidden, layers, heads, intermediate, vocab
    "tiny": (128, 2, 2, 512, 8_000),
    "small": (256, 4, 4, 1024, 32_000),
    "base": (768, 12, 12, 3072, 250_002),
    "large": (1024, 24, 16, 4096, 250_002),
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def _model(size: str):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    hidden, layers, heads, inter, vocab = SIZES[size]
    cfg = XLMRobertaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=514,
        num_labels=3,
        attn_implementation="sdpa",
    )
    return XLMRobertaForSequenceClassification(cfg)


class _Data:
    def __init__(self, n: int, seq: int, vocab: int) -> None:
        import torch

        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, vocab, (n, seq), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "input_ids": self.ids[i],
            "attention_mask": self.ids[i].new_ones(self.ids.shape[1]),
            "labels": self.labels[i],
        }


def _collate(items: list[dict]) -> dict:
    import torch

    return {k: torch.stack([x[k] for x in items]) for k in items[0]}


def _worker(args: argparse.Namespace) -> dict:
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = _model(args.size)
    n_params = sum(p.numel() for p in model.parameters())
    data = _Data(args.batch * args.steps, args.seq, SIZES[args.size][4])
    marks: dict[int, float] = {}
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.impl == "mmxfer":
        from mmxfer.config import PhaseConfig
        from mmxfer.train.loop import LoopOptions, train_phase

        class Timed(torch.nn.Module):  # records the time after every `forward` that starts a step
            def __init__(self, inner):
                super().__init__()
                self.inner, self.calls = inner, 0

            def forward(self, **batch):
                if args.device == "cuda":
                    torch.cuda.synchronize()
                marks[self.calls] = time.perf_counter()
                self.calls += 1
                return self.inner(**batch)

        phase = PhaseConfig(
            lr=1e-5,
            warmup_ratio=0.1,
            batch_size=args.batch,
            epochs=1,
            checkpoint_every=0,
            group_by_length=False,
            log_every=10_000,
            max_grad_norm=1.0,
        )
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.setdefault("TQDM_DISABLE", "1")
            train_phase(
                Timed(model),
                data,
                _collate,
                phase,
                LoopOptions(workdir=tmp, seed=0, precision=args.precision),
            )
    else:
        from transformers import Trainer, TrainerCallback, TrainingArguments

        class Timer(TrainerCallback):
            def on_step_begin(self, a, state, control, **kw):
                if args.device == "cuda":
                    torch.cuda.synchronize()
                marks[state.global_step] = time.perf_counter()

        with tempfile.TemporaryDirectory() as tmp:
            targs = TrainingArguments(
                output_dir=tmp,
                per_device_train_batch_size=args.batch,
                max_steps=args.steps,
                learning_rate=1e-5,
                warmup_steps=0.1,
                weight_decay=0.01,
                max_grad_norm=1.0,
                lr_scheduler_type="linear",
                logging_steps=10_000,
                save_strategy="no",
                report_to=[],
                dataloader_num_workers=0,
                seed=0,
                disable_tqdm=True,
                bf16=args.precision == "bf16",
                fp16=args.precision == "fp16",
                use_cpu=args.device == "cpu",
            )
            Trainer(
                model=model,
                args=targs,
                train_dataset=data,
                data_collator=_collate,
                callbacks=[Timer()],
            ).train()
    # from the start of step `warmup` to the start of the last step: setup and teardown (the final
    # checkpoint, loading the best weights) are left out on both sides
    timed_steps = args.steps - 1 - args.warmup
    seconds = marks[args.steps - 1] - marks[args.warmup]
    tokens = timed_steps * args.batch * args.seq
    out = {
        "impl": args.impl,
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "timed_steps": timed_steps,
        "params": n_params,
    }
    if args.device == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak:
            out["mfu"] = 6 * n_params * out["tokens_per_s"] / (peak * 1e12)
        out["device_name"] = name
    else:
        out["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", choices=SIZES, default="small")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--precision", choices=("no", "bf16", "fp16"), default="no")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument(
        "--repeats", type=int, default=1, help="alternate the two sides this many times; best kept"
    )
    p.add_argument("--out", default=None)
    p.add_argument("--impl", choices=("mmxfer", "trainer"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.impl:  # worker mode
        print(json.dumps(_worker(args)))
        return
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    base = [
        sys.executable,
        __file__,
        "--size",
        args.size,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch",
        str(args.batch),
        "--seq",
        str(args.seq),
        "--precision",
        args.precision,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    results: dict[str, list[dict]] = {"mmxfer": [], "trainer": []}
    for _ in range(args.repeats):
        for impl in ("mmxfer", "trainer"):
            proc = subprocess.run(base + ["--impl", impl], env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{impl} failed:\n{proc.stderr[-3000:]}")
            results[impl].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in results.items()}
    report = {
        "setup": {k: v for k, v in vars(args).items() if k not in ("impl", "out")},
        "mmxfer": best["mmxfer"],
        "trainer": best["trainer"],
        "all_runs": results,
        "throughput_ratio_mmxfer_over_trainer": best["mmxfer"]["tokens_per_s"]
        / best["trainer"]["tokens_per_s"],
        "peak_memory_ratio_mmxfer_over_trainer": best["mmxfer"]["peak_memory_mb"]
        / best["trainer"]["peak_memory_mb"],
    }
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
