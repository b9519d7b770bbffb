"""Phase 3 of a zero-shot translation target (SixT): train an encoder-decoder on ONE pair, then translate every
evaluation language into English and score the hypotheses (chrF++, spBLEU).

The recipe is the profile's ``translation`` section (:class:`~mmxfer.config.TranslationConfig`): the pair's task
(the target's ``train_task`` unless ``translation.train_task`` names another), the decoder
(:mod:`mmxfer.models.seq2seq`), stage 1 (encoder frozen) and stage 2 (encoder trained, its embeddings frozen),
each a :class:`~mmxfer.config.PhaseConfig` run by :func:`~mmxfer.train.loop.train_phase` with model selection on
the pair's validation split (greedy chrF++, or minus the dev loss), and beam search for the test languages.

Resumable: each stage checkpoints like any phase (``checkpoints/stage<N>/``) and, once done, leaves its selected
weights in ``checkpoints/translation-stage<N>.pt`` so a resumed run goes straight to the next stage; a language
whose predictions file exists is scored again, not translated again. ``checkpoints/`` goes when the run is DONE.
The stages share the featurised pairs (length ``translation.stage1.max_length`` or ``trunk.max_length``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from mmxfer import catalog
from mmxfer.config import ExperimentConfig, PhaseConfig, TranslationConfig
from mmxfer.errors import ConfigError, DataError
from mmxfer.evaluation.scoring import score_file_metrics
from mmxfer.metrics.generation import chrf_pp
from mmxfer.models.build import check_sequence_length
from mmxfer.models.seq2seq import Seq2Seq, build_seq2seq, target_vocabulary
from mmxfer.models.trunk import load_profile_trunk
from mmxfer.runs import atomic
from mmxfer.runs.store import Run, read_predictions
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import evaluation_languages
from mmxfer.train import data as train_data
from mmxfer.train.data import TaskData
from mmxfer.train.loop import (
    CHECKPOINTS_DIR,
    EvalFn,
    LoopOptions,
    eval_loader,
    gather_outputs,
    make_accelerator,
    train_phase,
)
from mmxfer.train.phases import dev_loss_scorer

RECIPE_FILE = (
    "translation.json"  # what the run trained and how it selected (kept out of metrics.jsonl)
)


def stage_file(run_path: Path, stage: int) -> Path:
    """The selected weights of a finished stage (removed with the rest of ``checkpoints/`` at DONE)."""
    return run_path / CHECKPOINTS_DIR / f"translation-stage{stage}.pt"


def pair_task(spec: TaskSpec, cfg: TranslationConfig) -> TaskSpec:
    """The task of the one training pair: ``translation.train_task``, else the target's ``train_task``."""
    name = cfg.train_task or spec.train_task
    if not name:
        raise ConfigError(
            f"{spec.name} names no training pair: set translation.train_task (e.g. wmt14-de-en)"
        )
    pair = catalog.task(name)
    if pair.kind != "translation":
        raise ConfigError(
            f"translation.train_task: {pair.name} is a {pair.kind} task, not a translation pair"
        )
    return pair


def stages(cfg: TranslationConfig) -> list[tuple[int, PhaseConfig]]:
    return [(1, cfg.stage1)] + ([(2, cfg.stage2)] if cfg.stage2 is not None else [])


def _check(cfg: TranslationConfig) -> None:
    for key in ("num_beams", "dev_beams", "generate_batch_size"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"translation.{key} must be at least 1, got {getattr(cfg, key)}")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(
            f"translation.label_smoothing must be in [0, 1), got {cfg.label_smoothing}"
        )
    if cfg.max_len_a < 0 or cfg.max_len_b < 0:
        raise ConfigError("translation.max_len_a and max_len_b must not be negative")


# ----------------------------------------------------------------------------- generation


def generate_hypotheses(
    accelerator: Accelerator,
    model: Seq2Seq,
    data: TaskData,
    tokenizer: Any,
    *,
    num_beams: int,
    batch_size: int,
    max_len_a: float,
    max_len_b: int,
) -> dict[str, str]:
    """Translations of ``data``'s sources keyed by example id: batched beam search, longest sources first (less
    padding), sharded over the processes and gathered in order.

    Each sentence's search ends at its own bound, ``int(max_len_a * length + max_len_b)`` tokens before the end
    token (:meth:`~mmxfer.models.seq2seq.Seq2Seq.length_bounds`, enforced inside the search), so a sentence's
    translation never depends on which sentences share its batch (nor on the batch size or the processes).
    """
    lengths = [len(x) for x in data.features["input_ids"]]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    loader = eval_loader(accelerator, data.features.select(order), data.collate, batch_size)

    def step(m: Seq2Seq, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        bounds = m.length_bounds(batch["attention_mask"].sum(dim=1), max_len_a, max_len_b)
        with accelerator.autocast():
            ids = m.generate(
                batch["input_ids"], batch["attention_mask"], num_beams=num_beams, bounds=bounds
            )
        return {"sequences": ids}

    sequences = gather_outputs(accelerator, model, loader, step)["sequences"]
    sequences = sequences.masked_fill(sequences < 0, tokenizer.pad_token_id).tolist()
    texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
    in_feature_order = [""] * len(order)
    for text, position in zip(texts, order):
        in_feature_order[position] = text
    return data.kind.hypotheses(data.features, data.raw, in_feature_order)


def dev_bounds(cfg: TranslationConfig) -> dict[str, Any]:
    """The length bound of the dev translations (model selection): ``dev_max_len_a/b``, else the test bound."""
    return {
        "max_len_a": cfg.max_len_a if cfg.dev_max_len_a is None else cfg.dev_max_len_a,
        "max_len_b": cfg.max_len_b if cfg.dev_max_len_b is None else cfg.dev_max_len_b,
    }


def chrf_dev_scorer(data: TaskData, tokenizer: Any, cfg: TranslationConfig) -> EvalFn:
    """``evaluate(model, accelerator)``: corpus chrF++ of ``cfg.dev_beams``-beam translations of the dev pairs."""
    golds = train_data.golds(data)

    def evaluate(model: Any, accelerator: Accelerator) -> float:
        hyps = generate_hypotheses(
            accelerator,
            accelerator.unwrap_model(model),
            data,
            tokenizer,
            num_beams=cfg.dev_beams,
            batch_size=cfg.generate_batch_size,
            **dev_bounds(cfg),
        )
        rows = train_data.prediction_rows(data, hyps, golds, warn=False)
        return chrf_pp([r["pred"] for r in rows], [r["gold"] for r in rows])

    return evaluate


# ----------------------------------------------------------------------------- the run


def run_translation(
    run: Run,
    profile: ExperimentConfig,
    target: str,
    *,
    trunk: str,
    seed: int,
    data_dir: str | None = None,
    resume: bool = False,
    log_with: Sequence[str] = (),
    languages: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Train the translation model of ``target`` from ``trunk`` (two stages on one pair), translate every
    evaluation language (``languages``: a subset) into English, write predictions and metric rows into ``run``."""
    spec, cfg = catalog.task(target), profile.translation
    _check(cfg)
    pair = pair_task(spec, cfg)
    langs = evaluation_languages(spec, languages, data_dir)
    if not langs:
        raise ConfigError(
            f"none of the languages {', '.join(languages or [])} is a language of {spec.name}"
        )
    accelerator = make_accelerator(profile.precision, log_with=log_with, project_dir=run.path)
    # generation reads whole weights on every process
    if str(accelerator.distributed_type).endswith("FSDP"):
        raise ConfigError(
            f"{spec.name} trains with DDP (accelerate launch --multi_gpu), not FSDP: the "
            f"encoder-decoder fits on one GPU and beam search needs unsharded weights"
        )
    main = accelerator.is_main_process
    set_seed(seed)
    loaded = load_profile_trunk(trunk, profile.trunk, profile.precision)
    tokenizer = loaded.tokenizer
    max_length = cfg.stage1.max_length or profile.trunk.max_length
    check_sequence_length(
        loaded,
        0,
        max_length,
        length_key="translation.stage1.max_length" if cfg.stage1.max_length else "trunk.max_length",
    )
    if cfg.test_max_length:
        check_sequence_length(
            loaded, 0, cfg.test_max_length, length_key="translation.test_max_length"
        )
    plan = stages(cfg)
    with accelerator.main_process_first():
        trains, dev = _pair_data(pair, plan, tokenizer, max_length, data_dir, seed)
    largest = max(trains.values(), key=lambda d: len(d.features))
    vocab = (
        target_vocabulary(tokenizer, largest.features["labels"])
        if cfg.target_vocab == "train"
        else None
    )
    model = build_seq2seq(
        loaded,
        vocab=vocab,
        layers=cfg.decoder_layers,
        init=cfg.decoder_init,
        dropout=cfg.dropout,
        label_smoothing=cfg.label_smoothing,
        resdrop_layer=cfg.resdrop_layer,
    )
    evaluate = (
        chrf_dev_scorer(dev, tokenizer, cfg)
        if cfg.select_on == "chrf_pp"
        else dev_loss_scorer(dev, cfg.generate_batch_size)
    )
    record: dict[str, Any] = {
        "task": spec.name,
        "train_task": pair.name,
        "train_pairs": {str(n): len(d.raw) for n, d in trains.items()},
        "dev_pairs": len(dev.raw),
        "max_length": max_length,
        "target_vocab": cfg.target_vocab,
        "decoder": {
            "layers": model.decoder.config.num_hidden_layers,
            "init": cfg.decoder_init,
            "vocab_size": model.vocab_size,
        },
        "selection": {"split": "validation", "metric": f"{pair.name}:{cfg.select_on}"},
        "stages": {},
    }
    for n, phase in plan:
        model, record["stages"][str(n)] = _train_stage(
            run,
            spec,
            model,
            n,
            phase,
            trains[n],
            evaluate,
            cfg,
            accelerator,
            seed=seed,
            resume=resume,
            log_with=log_with,
        )
    model.to(accelerator.device)
    test_length = cfg.test_max_length or max_length
    rows = _translate_all(
        run, spec, model, tokenizer, langs, cfg, accelerator, test_length, data_dir, resume
    )
    if main:
        record.update(
            languages=langs,
            generation={
                "num_beams": cfg.num_beams,
                "max_len_a": cfg.max_len_a,
                "max_len_b": cfg.max_len_b,
                "source_max_length": test_length,
                "dev": {"num_beams": cfg.dev_beams, **dev_bounds(cfg)},
            },
            resdrop_layer=cfg.resdrop_layer,
        )
        atomic.write_json(run.path / RECIPE_FILE, record)
    accelerator.wait_for_everyone()
    return rows


def _pair_data(
    pair: TaskSpec,
    plan: list[tuple[int, PhaseConfig]],
    tokenizer: Any,
    max_length: int,
    data_dir: str | None,
    seed: int,
) -> tuple[dict[int, TaskData], TaskData]:
    """Each stage's featurised training pairs (its ``max_train_examples``) and the dev pairs (stage 1's
    ``max_eval_examples``); the raw pairs are read once."""
    caps = [phase.max_train_examples for _, phase in plan]
    raw = _load(pair, "train", data_dir, None if None in caps else max(caps))
    trains = {
        n: train_data.task_data(
            pair,
            train_data.subset(raw, phase.max_train_examples),
            tokenizer,
            max_length,
            split="train",
            lang=pair.train_language,
            seed=seed,
        )
        for n, phase in plan
    }
    dev_raw = _load(pair, "validation", data_dir, plan[0][1].max_eval_examples)
    dev = train_data.task_data(
        pair, dev_raw, tokenizer, max_length, split="validation", lang=pair.train_language
    )
    return trains, dev


def _load(spec: TaskSpec, split: str, data_dir: str | None, limit: int | None) -> Any:
    ds = train_data.capped(spec.load(split, spec.train_language, data_dir), split, limit)
    if len(ds) == 0:
        raise DataError(f"{spec.name} {split}: no pairs")
    return ds


def _train_stage(
    run: Run,
    spec: TaskSpec,
    model: Seq2Seq,
    stage: int,
    phase: PhaseConfig,
    train: TaskData,
    evaluate: EvalFn,
    cfg: TranslationConfig,
    accelerator: Accelerator,
    *,
    seed: int,
    resume: bool,
    log_with: Sequence[str],
) -> tuple[Seq2Seq, dict[str, Any]]:
    """One stage: its selected weights (loaded from its stage file when a resumed run finished it before)."""
    done = stage_file(run.path, stage)
    summary = done.with_suffix(".json")
    # also for a finished stage
    model.set_stage(stage, train_decoder_embeddings=cfg.train_decoder_embeddings)
    if resume and done.is_file() and summary.is_file():
        model.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
        if accelerator.is_main_process:
            print(f"  {spec.name} stage {stage}: finished before, weights from {done}")
        return model, json.loads(summary.read_text(encoding="utf-8"))
    trainable = model.trainable_parameters()
    result = train_phase(
        model,
        train.features,
        train.collate,
        phase,
        LoopOptions(
            workdir=run.path / CHECKPOINTS_DIR / f"stage{stage}",
            seed=seed,
            name=f"phase3:{spec.name}:stage{stage}",
            lengths=train.lengths,
            evaluate=evaluate,
            resume=resume,
            log_path=run.train_log_path,
            accelerator=accelerator,
            log_with=log_with,
        ),
    )
    model = result.model
    st = result.state
    info = {
        "stage": stage,
        "trainable_parameters": trainable,
        "encoder_frozen": stage == 1,
        "best": st.best_metric,
        "best_step": st.best_step,
        "total_steps": st.total_steps,
        "stopped_early": st.stopped_early,
        "history": st.history,
    }
    if accelerator.is_main_process:
        with atomic.atomic_open(done, "wb") as handle:
            torch.save(model.state_dict(), handle)
        atomic.write_json(summary, info)
    accelerator.wait_for_everyone()
    return model, info


def _translate_all(
    run: Run,
    spec: TaskSpec,
    model: Seq2Seq,
    tokenizer: Any,
    langs: list[str],
    cfg: TranslationConfig,
    accelerator: Accelerator,
    max_length: int,
    data_dir: str | None,
    resume: bool,
) -> list[dict[str, Any]]:
    """Predictions ``predictions/<task>/<split>-<lang>.jsonl`` (``{id, pred: hypothesis, gold: reference}``)
    and their metric rows, language by language."""
    main = accelerator.is_main_process
    split = "devtest" if "devtest" in spec.splits else spec.splits[-1]
    out: list[dict[str, Any]] = []
    if main:  # a resumed run scores every language again: no duplicate rows
        run.write_metrics([])
    bar = tqdm(langs, desc=f"translate {spec.name}", unit="lang", disable=not main)
    for lang in bar:
        bar.set_postfix_str(lang)
        path = run.predictions_path(spec.name, split, lang)
        if resume and path.is_file():
            rows = read_predictions(path)
        else:
            with accelerator.main_process_first():
                data = train_data.task_data(
                    spec,
                    spec.load(split, lang, data_dir),
                    tokenizer,
                    max_length,
                    split=split,
                    lang=lang,
                )
            hyps = generate_hypotheses(
                accelerator,
                model,
                data,
                tokenizer,
                num_beams=cfg.num_beams,
                batch_size=cfg.generate_batch_size,
                max_len_a=cfg.max_len_a,
                max_len_b=cfg.max_len_b,
            )
            rows = train_data.prediction_rows(data, hyps)
            if main:
                run.write_predictions(spec.name, split, lang, rows)
        if main:
            for m in score_file_metrics(spec.name, split, lang, rows, spm_model=cfg.spm_model):
                atomic.append_jsonl(run.metrics_path, m)
                out.append(m)
        accelerator.wait_for_everyone()
    return out
