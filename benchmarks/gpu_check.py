"""One prepared GPU check: what mmxfer's GPU path does on one H100/H200-class GPU, against the aims, as JSON.

    bash benchmarks/gpu_check.sh                                  # a bare GPU machine: install, then this
    python benchmarks/gpu_check.py --device cuda --out benchmarks/results/gpu_check_H100.json
    python benchmarks/gpu_check.py --device cpu --tiny            # CI: the same code on tiny shapes, < 60 s

Offline: every model is randomly initialised from config shapes (nothing from the hub). Parts, in this order:

* ``train``: mmxfer's loop vs transformers' ``Trainer`` (``benchmarks/train_throughput.py``, each side its own
  process) on an XLM-R-base and an XLM-R-large-shaped classifier, bf16, sequence length 256: tokens/s, MFU (model
  FLOPs by :mod:`mmxfer.study.flops`, not 6 x every parameter: the embeddings are a lookup), peak memory; and
  mmxfer's loop at batch 4 x 32 tokens, where the fixed cost per layer shows;
* ``forward``: the large trunk's evaluation forward pass at batch 64 x 256 (and 1 x 32);
* ``phase2_vision``: phase 2 of an image-text task (VQA head) on the base trunk with an open_clip ViT-B-32-shaped
  tower (random init, frozen as the profiles freeze it), batch 32: images/s, MFU, peak memory;
* ``generation``: zero-shot translation's encoder-decoder (:func:`mmxfer.models.seq2seq.build_seq2seq`: the large
  trunk + a 12-layer decoder over an 80k-piece target vocabulary), batch 64, greedy and beam 5, every output 32
  tokens long: sentences/s;
* ``rehearsal``: ``mmxfer study rehearsal`` end to end (every arm kind and target in miniature) on the device.

Then ``fit``: the rates of the cost estimate's time model (:mod:`mmxfer.study.throughput`) that these numbers
measure, which ``benchmarks/throughput_from_check.py REPORT.json`` writes into the planner's table; and ``aims``,
each with its measured value and pass/fail. Any error fails the check loudly: the part's ``error`` in the JSON,
the report's ``error``, exit status 1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: (hidden, layers, heads, ff, vocab) as benchmarks/train_throughput.py names them
SHAPES = {"xlmr-base": "base", "xlmr-large": "large"}
TINY_SHAPES = {"xlmr-base": "tiny", "xlmr-large": "tiny"}
AIMS = {"trainer_ratio": 1.0, "mfu_large": 0.45, "greedy_sentences_s": 1000.0}
DECODER_VOCAB = (
    80_000  # the cost estimate's assumed target vocabulary (mmxfer.study.cost.ASSUMED_TARGET_VOCAB)
)


def _throughput_module():
    spec = importlib.util.spec_from_file_location(
        "train_throughput", ROOT / "benchmarks/train_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Check:
    """Runs the parts, each with its own error slot, within one time budget."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args, self.torch = args, torch
        self.cuda = args.device == "cuda"
        # tiny models: a second thread only waits on the first (and on the machine's other work)
        if args.tiny:
            torch.set_num_threads(1)
        self.precision = "bf16" if self.cuda else "no"
        self.started = time.perf_counter()
        self.report: dict = {
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "mode": "tiny" if args.tiny else "full",
            "precision": self.precision,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "parts": {},
        }
        if self.cuda and not torch.cuda.is_available():
            raise RuntimeError("--device cuda, but torch sees no CUDA device")
        name = (
            torch.cuda.get_device_name(0)
            if self.cuda
            else platform.processor() or platform.machine()
        )
        self.report["device"] = {
            "type": args.device,
            "name": name,
            "cuda": torch.version.cuda if self.cuda else None,
        }
        import transformers

        self.report["transformers"] = transformers.__version__
        from mmxfer.study import throughput

        self.peak = self._peak(throughput, name)

    def _peak(self, throughput, name: str) -> float:
        if not self.cuda:
            return throughput.cpu_matmul_flops("fp32")
        try:
            return throughput.device(throughput.gpu_kind_of(name), "bf16").peak_flops
        except Exception:  # noqa: BLE001 - a GPU kind the table lacks: MFU is left out, the rest still runs
            return 0.0

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.started)

    def part(self, name: str, fn) -> None:
        start = time.perf_counter()
        record: dict = {}
        try:
            if self.left() <= 0:
                raise TimeoutError(f"no time left of the {self.args.budget_s} s budget")
            record.update(fn())
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and fails the check
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()[-4000:]
        record["wall_s"] = round(time.perf_counter() - start, 2)
        self.report["parts"][name] = record
        if self.cuda:
            self.torch.cuda.empty_cache()
        print(
            f"{name}: {'ERROR ' + record['error'] if 'error' in record else 'ok'} ({record['wall_s']} s)",
            flush=True,
        )

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def reset_memory(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak_memory_mb(self) -> float:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated() / 2**20
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def mfu(self, flops: float, seconds: float) -> float | None:
        return flops / seconds / self.peak if self.peak and seconds > 0 else None

    # --- parts ----------------------------------------------------------------------------------------

    def train(self) -> dict:
        tt = _throughput_module()
        shapes = TINY_SHAPES if self.args.tiny else SHAPES
        seq, batch, steps = (32, 4, 6) if self.args.tiny else (256, 32, 30)
        out = {"seq": seq, "batch": batch, "steps": steps}
        for label, size in shapes.items():
            sides = {}
            for impl in ("mmxfer", "trainer"):
                sides[impl] = self._train_side(tt, impl, size, batch, seq, steps)
            flops_step = self._classifier_flops(tt, size, batch, seq)
            for side in sides.values():
                side["mfu"] = self.mfu(flops_step * side["timed_steps"], side["seconds"])
            out[label] = {
                "shape": dict(zip(("hidden", "layers", "heads", "ff", "vocab"), tt.SIZES[size])),
                "model_flops_per_step": flops_step,
                **sides,
                "ratio_mmxfer_over_trainer": sides["mmxfer"]["tokens_per_s"]
                / sides["trainer"]["tokens_per_s"],
            }
        size = shapes["xlmr-large"]
        small = self._train_side(tt, "mmxfer", size, 4, 32, steps)
        small["seconds_per_step"] = small["seconds"] / small["timed_steps"]
        out["xlmr-large-small-batch"] = {"batch": 4, "seq": 32, **small}
        return out

    def _train_side(self, tt, impl: str, size: str, batch: int, seq: int, steps: int) -> dict:
        args = argparse.Namespace(
            impl=impl,
            size=size,
            steps=steps,
            warmup=min(5, steps // 3),
            batch=batch,
            seq=seq,
            precision=self.precision,
            device=self.args.device,
            threads=1 if self.args.tiny else 0,
        )
        if self.args.tiny:  # in-process: CI's time budget has no room for four interpreter starts
            return tt._worker(args)
        cmd = [
            sys.executable,
            str(ROOT / "benchmarks/train_throughput.py"),
            "--impl",
            impl,
            "--size",
            size,
            "--steps",
            str(steps),
            "--warmup",
            str(args.warmup),
            "--batch",
            str(batch),
            "--seq",
            str(seq),
            "--precision",
            self.precision,
            "--device",
            self.args.device,
        ]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=max(30, self.left()),
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{impl} {size} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    @staticmethod
    def _classifier_flops(tt, size: str, batch: int, seq: int) -> float:
        from mmxfer.study import flops

        hidden, layers, _, ff, vocab = tt.SIZES[size]
        enc = flops.Encoder(layers, hidden, ff, vocab)
        per = flops.trunk_sequence(enc, seq, training=True, grad_below=True) + flops.head_sequence(
            "classification", enc, seq, training=True, num_labels=3
        )
        return batch * per

    def forward(self) -> dict:
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaModel

        from mmxfer.study import flops

        tt = _throughput_module()
        hidden, layers, heads, ff, vocab = tt.SIZES[
            TINY_SHAPES["xlmr-large"] if self.args.tiny else "large"
        ]
        config = XLMRobertaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=ff,
            max_position_embeddings=514,
            attn_implementation="sdpa",
        )
        model = XLMRobertaModel(config, add_pooling_layer=False).to(self.args.device).eval()
        enc = flops.Encoder(layers, hidden, ff, vocab)
        out = {}
        for batch, seq in ((8, 32), (1, 32)) if self.args.tiny else ((64, 256), (1, 32)):
            ids = torch.randint(5, vocab, (batch, seq), device=self.args.device)
            repeats = 3 if self.args.tiny else 20
            with (
                torch.no_grad(),
                torch.autocast(self.args.device, dtype=torch.bfloat16, enabled=self.cuda),
            ):
                model(input_ids=ids)
                self.sync()
                start = time.perf_counter()
                for _ in range(repeats):
                    model(input_ids=ids)
                self.sync()
            seconds = (time.perf_counter() - start) / repeats
            f = batch * flops.trunk_sequence(enc, seq, training=False)
            out[f"batch{batch}x{seq}"] = {
                "seconds": seconds,
                "tokens_per_s": batch * seq / seconds,
                "model_flops": f,
                "mfu": self.mfu(f, seconds),
                "layers": layers,
            }
        return out

    def phase2_vision(self) -> dict:
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaModel

        from mmxfer.config import PhaseConfig, VisionConfig
        from mmxfer.models.build import build_task_model
        from mmxfer.study import flops
        from mmxfer.train.loop import LoopOptions, train_phase

        tt = _throughput_module()
        hidden, layers, heads, ff, vocab = tt.SIZES["tiny" if self.args.tiny else "base"]
        tower = "tiny-vit" if self.args.tiny else "ViT-B-32"
        batch, text, steps, answers = (4, 16, 6, 50) if self.args.tiny else (32, 32, 25, 3129)
        config = XLMRobertaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=ff,
            max_position_embeddings=514,
        )
        vision_cfg = VisionConfig(
            model=tower, pretrained=None, freeze=True, projector="mlp", num_tokens=None
        )
        model = build_task_model(
            XLMRobertaModel(config, add_pooling_layer=False),
            "vqa",
            num_labels=answers,
            vision_cfg=vision_cfg,
        )
        size = model.vision.image_size
        g = torch.Generator().manual_seed(0)
        data = [
            {
                "input_ids": torch.randint(5, vocab, (text,), generator=g),
                "attention_mask": torch.ones(text, dtype=torch.long),
                "pixel_values": torch.randn(3, size, size, generator=g),
                "labels": torch.zeros(answers).index_fill_(0, torch.tensor([i % answers]), 1.0),
            }
            for i in range(batch * steps)
        ]
        marks = _timed(model, self)
        phase = PhaseConfig(
            lr=1e-5,
            batch_size=batch,
            epochs=1,
            checkpoint_every=0,
            group_by_length=False,
            log_every=10_000,
        )
        self.reset_memory()
        with tempfile.TemporaryDirectory() as tmp:
            train_phase(
                marks.module,
                data,
                _stack,
                phase,
                LoopOptions(workdir=tmp, seed=0, precision=self.precision),
            )
        warm = min(3, steps // 3)
        seconds = marks.times[steps - 1] - marks.times[warm]
        timed = steps - 1 - warm
        vision = flops.vision_shape(vision_cfg)
        enc = flops.Encoder(layers, hidden, ff, vocab)
        width = text + vision.out_tokens
        per = (
            flops.trunk_sequence(enc, width, training=True, grad_below=True)
            + vision.forward()
            + flops.projector_sequence(vision, hidden, vision.out_tokens, "mlp", training=True)
            + flops.head_sequence("vqa", enc, text, training=True, num_labels=answers)
        )
        return {
            "tower": tower,
            "trunk": {"hidden": hidden, "layers": layers},
            "batch": batch,
            "text_tokens": text,
            "visual_tokens": vision.out_tokens,
            "images_per_s": timed * batch / seconds,
            "tokens_per_s": timed * batch * width / seconds,
            "mfu": self.mfu(per * batch * timed, seconds),
            "peak_memory_mb": self.peak_memory_mb(),
        }

    def generation(self) -> dict:
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaModel

        from mmxfer.models.seq2seq import build_seq2seq
        from mmxfer.models.trunk import Trunk
        from mmxfer.study import flops
        from mmxfer.testing.tiny import tiny_tokenizer

        tt = _throughput_module()
        hidden, layers, heads, ff, vocab = tt.SIZES["tiny" if self.args.tiny else "large"]
        dec_layers, batch, source, new = (2, 8, 12, 8) if self.args.tiny else (12, 64, 40, 32)
        config = XLMRobertaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=ff,
            max_position_embeddings=514,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        tokenizer = tiny_tokenizer()
        target = min(DECODER_VOCAB, vocab)
        model = (
            build_seq2seq(
                Trunk(XLMRobertaModel(config, add_pooling_layer=False), tokenizer),
                vocab=list(range(target)),
                layers=dec_layers,
                init="random",
            )
            .to(self.args.device)
            .eval()
        )
        ids = torch.randint(5, min(vocab, len(tokenizer)), (batch, source), device=self.args.device)
        mask = torch.ones_like(ids)
        enc = flops.Encoder(layers, hidden, ff, vocab)
        dec = flops.Decoder(dec_layers, hidden, ff, target)
        out = {
            "encoder": {"hidden": hidden, "layers": layers},
            "decoder_layers": dec_layers,
            "batch": batch,
            "source_tokens": source,
            "new_tokens": new,
            "target_vocab": target,
        }
        for label, beams in (("greedy", 1), ("beam5", 5)):

            def run(beams: int = beams):
                with torch.autocast(self.args.device, dtype=torch.bfloat16, enabled=self.cuda):
                    return model.generate(
                        ids, mask, num_beams=beams, max_new_tokens=new, min_new_tokens=new
                    )

            self.reset_memory()
            run()
            self.sync()
            start = time.perf_counter()
            generated = run()
            self.sync()
            seconds = time.perf_counter() - start
            f = flops.generation_batch(enc, dec, batch, source, new, beams)
            out[label] = {
                "seconds": seconds,
                "sentences_per_s": batch / seconds,
                "steps": new,
                "output_tokens": int(generated.shape[1]),
                "seconds_per_step": seconds / new,
                "mfu": self.mfu(f, seconds),
                "peak_memory_mb": self.peak_memory_mb(),
            }
        return out

    def rehearsal(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "mmxfer",
                "study",
                "rehearsal",
                "--runs-dir",
                f"{tmp}/runs",
            ]
            # CI: two arms, one target, one seed (the whole rehearsal is what the GPU runs)
            if self.args.tiny:
                cmd += [
                    "--set",
                    "arms=[{name: baseline, intermediate: []}, {name: vqa, intermediate: [vqa]}]",
                    "--set",
                    "targets=[xnli]",
                    "--set",
                    "seeds=[1]",
                    "--set",
                    "suite=xtreme-retrieval",
                    "--no-compare",
                ]
            # a bare cache on the GPU (the assets are made as on a new machine); CI's tiny mode keeps its own
            cache = os.environ.get("MMXFER_CACHE") if self.args.tiny else None
            env = {
                **os.environ,
                "MMXFER_CACHE": cache or f"{tmp}/cache",
                "TQDM_DISABLE": "1",
                "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0")
                if self.cuda
                else "",
            }
            start = time.perf_counter()
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=max(30, self.left())
            )
            wall = time.perf_counter() - start
        tail = (proc.stdout + proc.stderr)[-3000:]
        if proc.returncode != 0:
            raise RuntimeError(f"mmxfer study rehearsal exited {proc.returncode}: {tail}")
        device = (
            "cuda"
            if " on cuda" in proc.stdout
            else "cpu"
            if " on cpu" in proc.stdout
            else "unknown"
        )
        if device != self.args.device:
            raise RuntimeError(f"the rehearsal ran on {device}, not {self.args.device}: {tail}")
        runs = proc.stdout.count("\ndone: ")
        return {
            "command": " ".join(cmd[1:]),
            "wall_s_inner": round(wall, 1),
            "runs_done": runs,
            "ran_on": device,
            "output_tail": tail[-800:],
        }

    # --- fit and aims ---------------------------------------------------------------------------------

    def fit(self) -> dict:
        """The time model's rates these numbers give (see mmxfer.study.throughput)."""
        from mmxfer.study import throughput

        parts, fit = self.report["parts"], {}
        train = parts.get("train", {})
        large = train.get("xlmr-large", {}).get("mmxfer")
        if self.cuda and large and not train.get("error"):
            device = throughput.device(
                throughput.gpu_kind_of(self.report["device"]["name"]), "bf16"
            )
            tt = _throughput_module()
            hidden, layers, _, ff, vocab = tt.SIZES[SHAPES["xlmr-large"]]
            params = layers * (4 * hidden * hidden + 2 * hidden * ff) + vocab * hidden
            # the model's, per step
            optimizer = params * device.rate("optimizer_bytes") / device.memory_bytes_s
            step = large["seconds"] / large["timed_steps"]
            flops_step = train["xlmr-large"]["model_flops_per_step"]
            fit["train_mfu"] = flops_step / max(step - optimizer, 1e-9) / self.peak
            small = train["xlmr-large-small-batch"]
            fit["train_layer_ms"] = max(0.0, small["seconds_per_step"] - optimizer) / layers * 1e3
            self.report[
                "where_time_goes"
            ] = {  # one xlmr-large step of mmxfer's loop at batch 32 x 256
                "step_s": step,
                "model_flops_at_peak_s": flops_step / self.peak,
                "adamw_memory_traffic_s (modelled: 28 B a parameter at the datasheet bandwidth)": optimizer,
                "small_batch_step_s (batch 4 x 32: the fixed cost of 24 layers)": small[
                    "seconds_per_step"
                ],
            }
        forward = parts.get("forward", {})
        if self.cuda and "batch64x256" in forward:
            fit["forward_mfu"] = forward["batch64x256"]["mfu"]
            fit["forward_layer_ms"] = (
                forward["batch1x32"]["seconds"] / forward["batch1x32"]["layers"] * 1e3
            )
        gen = parts.get("generation", {})
        if self.cuda and "greedy" in gen:
            fit["greedy_layer_ms"] = gen["greedy"]["seconds_per_step"] / gen["decoder_layers"] * 1e3
            fit["beam_layer_ms"] = gen["beam5"]["seconds_per_step"] / gen["decoder_layers"] * 1e3
            self.report.setdefault("where_time_goes", {}).update(
                {
                    "greedy_step_s": gen["greedy"]["seconds_per_step"],
                    "greedy_step_flops_at_peak_s": (gen["greedy"]["mfu"] or 0)
                    * gen["greedy"]["seconds_per_step"],
                }
            )
        return fit

    def aims(self) -> list[dict]:
        parts = self.report["parts"]
        applies = self.cuda and not self.args.tiny
        note = (
            None
            if applies
            else "tiny CPU mode: the shapes and device are not the aim's; not judged"
        )

        def aim(name: str, measured, threshold: float) -> dict:
            judged = applies and measured is not None
            return {
                "aim": name,
                "measured": measured,
                "threshold": threshold,
                "pass": (measured >= threshold) if judged else None,
                **({"note": note} if note else {}),
            }

        train, gen = parts.get("train", {}), parts.get("generation", {})
        return [
            aim(
                "mmxfer >= 1.0x Trainer tokens/s at xlmr-base (bf16, seq 256)",
                train.get("xlmr-base", {}).get("ratio_mmxfer_over_trainer"),
                AIMS["trainer_ratio"],
            ),
            aim(
                "mmxfer >= 1.0x Trainer tokens/s at xlmr-large (bf16, seq 256)",
                train.get("xlmr-large", {}).get("ratio_mmxfer_over_trainer"),
                AIMS["trainer_ratio"],
            ),
            aim(
                "MFU >= 45 % at xlmr-large bf16 (mmxfer's loop)",
                train.get("xlmr-large", {}).get("mmxfer", {}).get("mfu"),
                AIMS["mfu_large"],
            ),
            aim(
                "greedy >= 1,000 sentences/s at batch 64 with the 12-layer decoder",
                gen.get("greedy", {}).get("sentences_per_s"),
                AIMS["greedy_sentences_s"],
            ),
        ]


class _Marks:
    def __init__(self, module, times) -> None:
        self.module, self.times = module, times


def _timed(model, check: Check) -> _Marks:
    """``model`` wrapped so that each forward (one per step: no accumulation) records the time it starts."""
    import torch

    times: dict[int, float] = {}

    class Timed(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, **batch):
            check.sync()
            times[self.calls] = time.perf_counter()
            self.calls += 1
            return self.inner(**batch)

    return _Marks(Timed(model), times)


def _stack(items: list[dict]) -> dict:
    import torch

    return {k: torch.stack([x[k] for x in items]) for k in items[0]}


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (CI on CPU)")
    p.add_argument(
        "--out",
        default=None,
        help="JSON report [default: benchmarks/results/gpu_check_<device>.json]",
    )
    p.add_argument(
        "--budget-s", type=float, default=420.0, help="stop starting parts after this many seconds"
    )
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    out = Path(
        args.out
        or ROOT / f"benchmarks/results/gpu_check_{args.device}{'_tiny' if args.tiny else ''}.json"
    )
    report: dict = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "parts": {}}
    try:
        check = Check(args)
        report = check.report
        for name in ("train", "forward", "phase2_vision", "generation", "rehearsal"):
            check.part(name, getattr(check, name))
        report["fit"] = check.fit()
        report["aims"] = check.aims()
        failed = [n for n, r in report["parts"].items() if "error" in r]
        if failed:
            report["error"] = f"{len(failed)} part(s) failed: {', '.join(failed)}"
        report["wall_s"] = round(time.perf_counter() - check.started, 1)
    except Exception as exc:  # noqa: BLE001 - the check itself could not start: still a JSON report, loudly
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["traceback"] = traceback.format_exc()[-4000:]
    report["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    for a in report.get("aims", []):
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[a["pass"]]
        print(f"  [{verdict}] {a['aim']}: {a['measured']}")
    print(f"wrote {out}")
    if report.get("error"):
        print(f"gpu check FAILED: {report['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
