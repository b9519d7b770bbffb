"""The FLOP floor of `mmxfer study starter`: what its trained and frozen layers, heads and vision tower must compute
at the least, and the time that takes at this host's measured matrix-product speed.

Counted from the study's own data (the featurised inputs the runs train and evaluate on, the starter tokenizer)
and the starter profile (which layers train, steps, epochs, arms, seeds); every sequence at its own length (no
padding), every product once:

* frozen lower layers (``trunk.train_top_layers``): once per distinct token sequence in the process - SIB-200's
  English training sentences, every evaluated sentence (SIB-200 test and the retrieval sentences, the same
  prefixed ids), the text twins' inputs (the masked captions once per seed);
* the trained top layers: forward and backward (3 forward passes) per training example and epoch; forward per
  evaluated sentence, once per trunk or fine-tuned model that reads it;
* multimodal phase 2: the fused sequence (visual tokens + text) through every layer forward, back through every
  layer to the projector (input gradients: 1 pass), weight gradients of the top layers (1 pass more);
* heads: the captioning head's decoder per masked token (forward + input gradient; the tied decoder is frozen)
  over the vocabulary it scores
  (the pieces of the world's captions: a closed vocabulary, :mod:`mmxfer.kinds.captioning`); VQA, SIB-200 and
  projector layers are counted too;
* the vision tower: one forward per distinct image (a frozen tower's tokens are computed once);
* a layer of hidden size H, feed-forward size I on T tokens: 2T(4H^2 + 2HI) + 4T^2 H (attention scores and sum).

    python benchmarks/starter_floor.py [--wall-s 552] [--out benchmarks/results/starter_floor.json]

Prints a table per component and, with ``--wall-s``, measured wall time over floor time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from starter_study import host_speed  # noqa: E402


def layer_flops(lengths: list[int], hidden: int, ff: int) -> float:
    """Forward FLOPs of one transformer layer over sequences of these lengths."""
    return float(
        sum(2 * t * (4 * hidden * hidden + 2 * hidden * ff) + 4 * t * t * hidden for t in lengths)
    )


def _lengths(data) -> list[int]:
    return [len(x) for x in data.features["input_ids"]]


def count(profile_name: str, study_name: str) -> dict:
    from mmxfer import catalog
    from mmxfer.config import load_profile, load_study
    from mmxfer.evaluation.suites import suite_tasks, uses_trunk
    from mmxfer.models.build import visual_token_count
    from mmxfer.models.image_features import image_digest
    from mmxfer.models.trunk import load_profile_trunk
    from mmxfer.train import data as train_data
    from mmxfer.train.phases import _load_split, target_text_prefix

    study = load_study(study_name)
    profile = load_profile(profile_name, list(study.overrides))
    model, tokenizer = load_profile_trunk(profile.trunk.name, profile.trunk, profile.precision)
    cfg = model.config
    hidden, ff, layers, vocab = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_hidden_layers,
        cfg.vocab_size,
    )
    top = profile.trunk.train_top_layers or layers
    frozen = layers - top
    max_length = profile.trunk.max_length
    seeds = list(study.seeds)
    flops: dict[str, float] = defaultdict(float)
    tokens: dict[str, int] = {}
    frozen_seqs: set[tuple[int, ...]] = set()

    def frozen_once(ids_list) -> None:
        frozen_seqs.update(tuple(x) for x in ids_list)

    # phase 2
    visual = visual_token_count(profile.vision)
    caption_pieces: set[int] = set()
    images: set[bytes] = set()
    for arm in study.arms:
        for task in arm.intermediate:
            spec = catalog.task(profile.resolve_task(task))
            for seed in seeds:
                raw = _load_split(
                    spec,
                    "train",
                    spec.train_language,
                    None,
                    profile.intermediate.max_train_examples,
                )
                data = train_data.task_data(
                    spec,
                    raw,
                    tokenizer,
                    profile.intermediate.max_length or max_length,
                    split="train",
                    lang=spec.train_language,
                    seed=seed,
                )
                lengths = _lengths(data)
                epochs = profile.intermediate.epochs
                tokens[f"phase 2 {spec.name} s{seed}"] = sum(lengths)
                if spec.has_image:
                    fused = [t + visual for t in lengths]
                    passes = (
                        2 * layers + top
                    ) * epochs  # forward all, input gradients all, weight gradients top
                    flops["phase 2 multimodal: trunk (all layers, back to the projector)"] += (
                        passes * layer_flops(fused, hidden, ff)
                    )
                    images.update(image_digest(v) for v in data.features["image"])
                    d_in = hidden  # the projector MLP on the visual tokens: in -> H -> H
                    flops["phase 2 heads and projector"] += (
                        3 * epochs * len(lengths) * visual * 2 * (1280 * d_in + d_in * d_in)
                    )
                else:
                    frozen_once(data.features["input_ids"])
                    label = "phase 2 text twins: top layers"
                    if spec.kind == "bitext":  # both sides of each pair through the trunk
                        frozen_once(data.features["target_input_ids"])
                        lengths = lengths + [len(x) for x in data.features["target_input_ids"]]
                        label = "phase 2 positive control (bitext): top layers"
                    flops[label] += 3 * top * epochs * layer_flops(lengths, hidden, ff)
                if spec.kind == "captioning":
                    labels = data.features["mlm_labels"]
                    masked = sum(sum(1 for x in row if x != -100) for row in labels)
                    caption_pieces.update(
                        x for row in tokenizer(list(raw["caption"]))["input_ids"] for x in row
                    )
                    tokens[f"masked pieces {spec.name} s{seed}"] = masked
                    # the head's softmax
                    scored = len(data.label_space.get("caption_vocabulary") or ()) or vocab
                    flops["phase 2 caption head: decoder over the vocabulary"] += (
                        epochs * masked * 2 * (2 * hidden * scored + 3 * hidden * hidden)
                    )
                elif spec.kind == "vqa":
                    answers = data.num_labels
                    flops["phase 2 heads and projector"] += (
                        3 * epochs * len(lengths) * 2 * (hidden * 2 * hidden + 2 * hidden * answers)
                    )
    # phase 3: SIB-200 on every arm and seed
    targets = [catalog.task(profile.resolve_task(t)) for t in study.targets]
    # the untrained trunk, each phase-2 trunk
    trunks = 1 + sum(1 for a in study.arms if a.intermediate) * len(seeds)
    runs = len(study.arms) * len(seeds)
    eval_seqs: set[tuple[int, ...]] = set()
    for spec in targets:
        prefix = target_text_prefix(profile, spec)
        phase = profile.phase_for_target(spec.name)
        train = train_data.task_data(
            spec,
            _load_split(spec, "train", spec.train_language, None, phase.max_train_examples, prefix),
            tokenizer,
            max_length,
            split="train",
            lang=spec.train_language,
        )
        lengths = _lengths(train)
        frozen_once(train.features["input_ids"])
        tokens[f"phase 3 {spec.name} train"] = sum(lengths)
        flops["phase 3 training: top layers"] += (
            runs * 3 * top * phase.epochs * layer_flops(lengths, hidden, ff)
        )
        test_lengths = []
        for lang in spec.languages:
            ds = _load_split(spec, "test", lang, None, None, prefix)
            ids = tokenizer(list(ds["text_a"]), truncation=True, max_length=max_length)["input_ids"]
            eval_seqs.update(tuple(x) for x in ids)
            test_lengths += [len(x) for x in ids]
        tokens[f"phase 3 {spec.name} test"] = sum(test_lengths)
        flops["phase 3 prediction: top layers"] += (
            runs * top * layer_flops(test_lengths, hidden, ff)
        )
    # retrieval on the trunk: each distinct sentence embedded once per trunk (English sides repeat across languages)
    sentences: dict[str, None] = {}
    for name in profile.suite.split(","):
        for item in suite_tasks(name.strip()):
            if uses_trunk(item):
                spec = catalog.task(item.task)
                split = item.split if item.split in spec.splits else spec.splits[-1]
                for lang in item.languages or spec.languages:
                    ds = spec.load(split, lang, None)
                    sentences.update(
                        dict.fromkeys(
                            profile.retrieval.prefix + x
                            for x in list(ds["source"]) + list(ds["target"])
                            if x
                        )
                    )
    ret_ids = tokenizer(
        list(sentences), truncation=True, max_length=profile.retrieval.max_length or max_length
    )["input_ids"]
    frozen_once(ret_ids)
    eval_seqs.update(tuple(x) for x in ret_ids)
    tokens["retrieval sentences (distinct)"] = sum(len(x) for x in ret_ids)
    tokens["evaluated sentences (distinct, SIB-200 test and retrieval)"] = len(eval_seqs)
    flops["retrieval: top layers, every trunk"] += (
        trunks * top * layer_flops([len(x) for x in ret_ids], hidden, ff)
    )
    frozen_seqs |= eval_seqs
    flops["frozen lower layers: once per distinct sequence"] = frozen * layer_flops(
        [len(s) for s in frozen_seqs], hidden, ff
    )
    tokens["frozen: distinct sequences"] = len(frozen_seqs)
    tokens["frozen: their tokens"] = sum(len(s) for s in frozen_seqs)
    # the vision tower: once per distinct image
    tower_flops = 0.0
    if images:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from mmxfer.models.vision import build_vision_tower

        tower = build_vision_tower(profile.vision)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            tower(torch.zeros(1, 3, tower.image_size, tower.image_size))
        tower_flops = float(counter.get_total_flops())
        flops["vision tower: once per distinct image"] = tower_flops * len(images)
        tokens["distinct images"] = len(images)
    return {
        "trunk": {
            "hidden": hidden,
            "ff": ff,
            "layers": layers,
            "trained_top_layers": top,
            "vocab": vocab,
        },
        "vision": {
            "model": profile.vision.model,
            "visual_tokens": visual,
            "gflop_per_image": tower_flops / 1e9,
        },
        "caption_pieces": len(caption_pieces),
        "arms": len(study.arms),
        "seeds": seeds,
        "trunks_evaluated": trunks,
        "tokens": tokens,
        "tflop": {k: round(v / 1e12, 3) for k, v in sorted(flops.items(), key=lambda kv: -kv[1])},
        "tflop_total": round(sum(flops.values()) / 1e12, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="starter")
    parser.add_argument("--study", default="starter")
    parser.add_argument(
        "--wall-s", type=float, help="a measured wall time of the study, for the ratio"
    )
    parser.add_argument(
        "--gflops", type=float, help="the host's fp32 GFLOP/s (default: measured now)"
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = count(args.profile, args.study)
    speed = {"fp32_matmul_gflops": args.gflops} if args.gflops else host_speed()
    gflops = speed.get("fp32_matmul_gflops")
    result["host_speed"] = speed
    if gflops:
        result["floor_s_fp32"] = round(result["tflop_total"] * 1e3 / gflops, 1)
        result["floor_s_by_component"] = {
            k: round(v * 1e3 / gflops, 1) for k, v in result["tflop"].items()
        }
        if args.wall_s:
            result["wall_s"] = args.wall_s
            result["wall_over_floor"] = round(args.wall_s / result["floor_s_fp32"], 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
