"""What a study costs before it runs: tokens, FLOPs and device time of every unfinished run of its plan.

Each planned run becomes pieces of work (:class:`Work`): phase 2 (once per phase-2 folder: trained once, shared
by every target), phase 3 (training, the dev evaluations of model selection, the zero-shot test evaluation of
every language), the translation target's two stages, dev generation and test generation, and the retrieval
run's embeddings. For each piece:

* **examples** come from the task specs' recorded split sizes (:class:`mmxfer.tasks.base.Sizes`), capped as the
  recipe caps them (``max_train_examples``, ``max_eval_examples``);
* **tokens** are the positions the trunk processes: example lengths drawn from the token-length table
  (:mod:`mmxfer.study.lengths`), truncated to the recipe's ``max_length`` (span QA: cut into doc-stride windows),
  batched as the loop batches them (:func:`mmxfer.train.sampling.epoch_batches` with the recipe's
  ``group_by_length``; evaluation longest first) and padded to each batch's longest, plus the visual tokens of
  image-text tasks;
* **steps** follow the loop: ``max_steps``, else ``epochs`` x optimizer steps an epoch (micro-batches / grad_accum);
  the dev evaluations every ``eval_every`` steps (or once an epoch) without early stopping, so an upper bound;
* **FLOPs** count every matrix the tokens pass through (:mod:`mmxfer.study.flops`: 6 N per trained position,
  4 N through a frozen layer above a trained one, 2 N forward only), the frozen vision tower, the heads (the
  250k-row MLM decoder of captioning), the decoder and every decoding step of generation;
* **time** is the device's time model (:mod:`mmxfer.study.throughput`).

What is not counted: data loading and featurisation (CPU), checkpoint writing, the kNN scoring of retrieval
(under 0.1 % of its embeddings at the hub's sizes), the frozen-layer state cache of a ``train_top_layers`` profile
(its frozen layers are counted at every epoch: an over-count there).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmxfer import catalog
from mmxfer.config import ExperimentConfig, PhaseConfig
from mmxfer.errors import ConfigError
from mmxfer.evaluation.retrieval import retrieval_max_length
from mmxfer.evaluation.suites import suite_tasks, uses_trunk
from mmxfer.kinds import kind_of
from mmxfer.study import flops as F
from mmxfer.study.lengths import QUANTILE_POINTS, TaskLengths, lengths_in, task_lengths
from mmxfer.study.throughput import Device
from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import evaluation_languages
from mmxfer.train.sampling import epoch_batches, task_probabilities

PHASE2, PHASE3, TRANSLATION, RETRIEVAL = "phase 2", "phase 3", "translation", "retrieval"
PHASES = (PHASE2, PHASE3, TRANSLATION, RETRIEVAL)
DOC_STRIDE = (
    128  # span QA: context pieces between window starts (kinds.base.FeatureOptions.doc_stride)
)
MAX_QUERY = 64  # span QA question cap (kinds.span_qa.MAX_QUERY_TOKENS)
SIM_EXAMPLES = 4096  # examples drawn per simulated epoch (more when a batch needs it: 200 batches)
#: the decoder's target vocabulary with ``target_vocab: train`` - the trunk's pieces in the English side of the
#: training pairs - which this estimate cannot count without the data
ASSUMED_TARGET_VOCAB = 80_000
TAG_LABELS = 400  # a tagging head's labels when the spec fixes none (CCG's supertags come from its training file)


@dataclass
class Work:
    """One costed piece of a study."""

    phase: str
    part: str
    arm: str
    target: str  # the target (phase 3, translation), the intermediate task(s) (phase 2), the suite task (retrieval)
    group: str  # intermediate | classification | structured | qa | retrieval | generation
    seed: int
    job: str  # the job it runs in (a phase-2 folder or a run folder): what --gpus schedules
    after: str | None = None  # the job it waits for (its phase-2 trunk)
    examples: float = 0.0
    train_tokens: float = 0.0
    eval_tokens: float = 0.0
    flops: float = 0.0
    seconds: float = 0.0


@dataclass
class Estimate:
    """Every piece of work of a plan, on one device, and what could not be costed."""

    device: Device
    works: list[Work]
    notes: list[str] = field(default_factory=list)
    # tasks whose token lengths are assumed
    assumed_lengths: list[str] = field(default_factory=list)
    # languages without a measured length ratio
    assumed_languages: list[str] = field(default_factory=list)

    def total(self, key: str) -> float:
        return sum(getattr(w, key) for w in self.works)

    @property
    def gpu_hours(self) -> float:
        return self.total("seconds") / 3600


# ----------------------------------------------------------------------------- one task's sequences


@dataclass(frozen=True)
class Costing:
    """How one task's examples become trunk positions and FLOPs under a profile."""

    spec: TaskSpec
    enc: F.Encoder
    lengths: TaskLengths
    max_length: int
    head: str
    num_labels: int
    trained_layers: int | None
    embeddings_train: bool
    vision: F.Vision | None = None
    visual_tokens: int = 0
    projector: str = "mlp"
    # trunk FLOPs by (width, training)
    _trunk: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def layers(self) -> int:
        return self.enc.layers + (self.vision.layers if self.vision else 0)

    def draw(self, n: int, lang: str, seed: int = 0) -> np.ndarray:
        """``n`` examples' features in ``lang``: truncated text lengths, one row a feature (span QA: a row per
        window), one column a sequence (multiple choice: a column per choice)."""
        dist, _ = lengths_in(self.lengths, lang)
        kind = kind_of(self.spec)
        if kind.windowed:  # span QA: each window holds the question and a stretch of the context
            return np.asarray(
                [w for length in dist.sample(n, seed) for w in self._windows(int(length))]
            )[:, None]
        if kind.per_choice:
            c = self.lengths.choices or 4
            return np.minimum(dist.sample(n * c, seed + 1).reshape(n, c), self.max_length)
        return np.minimum(dist.sample(n, seed), self.max_length)[:, None]

    def _windows(self, length: int) -> list[int]:
        """Doc-stride windows of one span-QA example of ``length`` pieces (question + context + 4 specials)."""
        m = self.max_length
        if length <= m:
            return [length]
        q = min(self.lengths.question or 12.0, MAX_QUERY, m // 2 - 2)
        capacity = m - q - 4
        # windows start DOC_STRIDE context pieces apart (XTREME, kinds.span_qa)
        step = min(DOC_STRIDE, capacity)
        context = length - q - 4
        n = 1 + math.ceil((context - capacity) / max(1.0, step))
        last = q + 4 + (context - (n - 1) * step)
        return [m] * (n - 1) + [int(min(m, max(q + 5, last)))]

    def pass_flops(
        self,
        features: np.ndarray,
        batches: Sequence[Sequence[int]] | None,
        batch_size: int,
        training: bool,
    ) -> tuple[float, float]:
        """``(FLOPs, trunk positions)`` of ``features`` collated into ``batches`` (lists of row indices; None =
        consecutive rows, ``batch_size`` at a time), each padded to its longest sequence."""
        longest = features.max(axis=1)
        if batches is None:
            starts = np.arange(0, len(features), batch_size)
            widths, sizes = (
                np.maximum.reduceat(longest, starts),
                np.diff(np.append(starts, len(features))),
            )
        else:
            widths = np.asarray([longest[b].max() for b in batches])
            sizes = np.asarray([len(b) for b in batches])
        widths = widths + self.visual_tokens
        sequences = sizes * features.shape[1]
        trunk = 0.0
        for width in np.unique(widths):
            key = (int(width), training)
            if key not in self._trunk:
                self._trunk[key] = F.trunk_sequence(
                    self.enc,
                    int(width),
                    training=training,
                    trained_layers=self.trained_layers,
                    grad_below=self.embeddings_train or self.vision is not None,
                )
            trunk += self._trunk[key] * float(sequences[widths == width].sum())
        lengths = features.astype(np.float64).ravel()
        head = F.head_sequence(
            self.head,
            self.enc,
            lengths,
            training=training,
            num_labels=self.num_labels,
            embeddings_train=self.embeddings_train,
        )
        total = trunk + float(np.sum(np.broadcast_to(head, lengths.shape)))
        if self.vision is not None:
            total += len(lengths) * (
                self.vision.forward()
                + F.projector_sequence(
                    self.vision,
                    self.enc.hidden,
                    self.visual_tokens,
                    self.projector,
                    training=training,
                )
            )
        return total, float((sequences * widths).sum())

    def trained_params(self) -> float:
        """Parameters AdamW updates (matrices; biases and norms are small)."""
        top = (
            self.enc.layers
            if self.trained_layers is None
            else min(self.enc.layers, self.trained_layers)
        )
        params = top * self.enc.layer_params + (
            self.enc.vocab * self.enc.hidden if self.embeddings_train else 0
        )
        if self.vision is not None:
            params += self.vision.width * self.enc.hidden + self.enc.hidden**2
        return float(params + self.enc.hidden * (self.enc.hidden + self.num_labels))


@dataclass(frozen=True)
class PassCost:
    """One pass over a dataset: micro-batches, padded positions, FLOPs (``examples``: features)."""

    batches: float
    tokens: float
    flops: float
    examples: float


def training_pass(costing: Costing, n: int, lang: str, phase: PhaseConfig) -> PassCost:
    """One training epoch over ``n`` examples, batched as the loop batches them."""
    drawn = min(n, max(SIM_EXAMPLES, 200 * phase.batch_size))
    features = costing.draw(drawn, lang)
    batches = epoch_batches(
        len(features),
        phase.batch_size,
        0,
        0,
        lengths=features.sum(axis=1).tolist(),
        group_by_length=phase.group_by_length,
    )
    flops, tokens = costing.pass_flops(features, batches, phase.batch_size, training=True)
    scale = n / drawn
    n_features = len(features) * scale
    return PassCost(
        math.ceil(n_features / phase.batch_size), tokens * scale, flops * scale, n_features
    )


def evaluation_pass(costing: Costing, n: int, lang: str, batch_size: int) -> PassCost:
    """A forward pass over ``n`` examples, longest first (as mmxfer predicts)."""
    if n <= 0:
        return PassCost(0, 0, 0, 0)
    drawn = min(n, max(SIM_EXAMPLES // 2, 20 * batch_size))
    features = costing.draw(drawn, lang, seed=1)
    features = features[np.argsort(-features.sum(axis=1), kind="stable")]
    flops, tokens = costing.pass_flops(features, None, batch_size, training=False)
    scale = n / drawn
    n_features = len(features) * scale
    return PassCost(math.ceil(n_features / batch_size), tokens * scale, flops * scale, n_features)


def loop_steps(micro_per_epoch: float, phase: PhaseConfig) -> tuple[int, int]:
    """``(optimizer steps, micro-batches)`` of a phase, as :func:`mmxfer.train.loop.train_phase` counts them."""
    nb = max(1, int(math.ceil(micro_per_epoch)))
    per_epoch = math.ceil(nb / phase.grad_accum)
    total = phase.max_steps or max(1, math.ceil(phase.epochs * per_epoch))
    full, rest = divmod(total, per_epoch)
    return total, full * nb + min(rest * phase.grad_accum, nb)


def evaluation_points(total_steps: int, phase: PhaseConfig, epochs: int) -> int:
    """How often a phase evaluates on dev: every ``eval_every`` steps and at the last, else once an epoch."""
    if phase.eval_every:
        return total_steps // phase.eval_every + (1 if total_steps % phase.eval_every else 0)
    return max(1, epochs)


# ----------------------------------------------------------------------------- the estimator


class Estimator:
    """Costs the runs of one profile on one device; identical pieces (same task, recipe, languages) are computed
    once and copied."""

    def __init__(
        self,
        profile: ExperimentConfig,
        device: Device,
        languages: Sequence[str] | None = None,
        data_dir: str | None = None,
    ) -> None:
        self.profile, self.device, self.languages, self.data_dir = (
            profile,
            device,
            languages,
            data_dir,
        )
        self.enc = F.trunk_shape(profile.trunk.name)
        self._vision: F.Vision | None = None
        self._memo: dict[Any, list[Work]] = {}
        self.notes: list[str] = []
        self.assumed_lengths: set[str] = set()
        self.assumed_languages: set[str] = set()

    # --- pieces ---------------------------------------------------------------------------------------

    def vision(self) -> F.Vision:
        if self._vision is None:
            self._vision = F.vision_shape(self.profile.vision)
        return self._vision

    def costing(
        self, spec: TaskSpec, max_length: int, *, label_source: TaskSpec | None = None
    ) -> Costing | None:
        entry = task_lengths(spec.name)
        if entry is None:
            self._note(
                f"{spec.name}: no token lengths recorded (resources/cost/token_lengths.json): not costed"
            )
            return None
        if entry.status != "measured":
            self.assumed_lengths.add(spec.name)
        trunk = self.profile.trunk
        image = spec.has_image
        vision = self.vision() if image else None
        visual = 0
        if vision is not None:
            visual = self.profile.vision.num_tokens or vision.out_tokens
        labels = label_source or spec
        num_labels = len(labels.label_names) or labels.answer_vocab_size or TAG_LABELS
        return Costing(
            spec,
            self.enc,
            entry,
            max_length,
            kind_of(spec).head,
            num_labels,
            trunk.train_top_layers,
            not trunk.freeze_embeddings and trunk.train_top_layers is None,
            vision,
            visual,
            self.profile.vision.projector,
        )

    def size(self, spec: TaskSpec, split: str, lang: str, cap: int | None = None) -> int | None:
        count = spec.sizes.count(split, lang) if spec.sizes else None
        if count is None:
            self._note(f"{spec.name}: no recorded size of {split}/{lang}: not costed")
            return None
        return min(count, cap) if cap else count

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _language(self, lang: str, entry: TaskLengths) -> None:
        _, measured = lengths_in(entry, lang)
        if not measured:
            self.assumed_languages.add(lang)

    def _time_train(self, c: Costing, flops: float, micro: float, steps: float) -> float:
        return self.device.train_seconds(flops, micro, c.layers) + self.device.optimizer_seconds(
            steps, c.trained_params()
        )

    # --- phase 2 --------------------------------------------------------------------------------------

    def phase2(self, tasks: tuple[str, ...], arm: str, seed: int, job: str) -> list[Work]:
        key = ("phase2", tasks)
        if key not in self._memo:
            self._memo[key] = self._phase2(tasks)
        return [dataclasses.replace(w, arm=arm, seed=seed, job=job) for w in self._memo[key]]

    def _phase2(self, tasks: tuple[str, ...]) -> list[Work]:
        phase = self.profile.intermediate
        max_length = phase.max_length or self.profile.trunk.max_length
        specs = [catalog.task(t) for t in tasks]
        parts = []
        for spec in specs:
            n = self.size(spec, "train", spec.train_language, phase.max_train_examples)
            c = self.costing(spec, max_length) if n is not None else None
            if c is None or n is None:
                return []
            parts.append((spec, c, n, training_pass(c, n, spec.train_language, phase)))
        label = "+".join(tasks)
        if len(parts) == 1:
            spec, c, n, p = parts[0]
            steps, micro = loop_steps(p.batches, phase)
            share = [1.0]
        else:  # one "epoch" = the capped sizes in batches; each batch one task, drawn with the mixing probabilities
            sizes = [n for _, _, n, _ in parts]
            cfg = self.profile.multitask
            capped = [
                min(s, cfg.cap) if (cfg.sampling == "proportional" and cfg.cap) else s
                for s in sizes
            ]
            steps, micro = loop_steps(math.ceil(sum(capped) / phase.batch_size), phase)
            share = list(task_probabilities(sizes, cfg))
        works = []
        for (spec, c, _, p), w in zip(parts, share):
            mb = micro * w
            flops = p.flops / max(p.batches, 1) * mb
            works.append(
                Work(
                    PHASE2,
                    "train",
                    "",
                    label,
                    "intermediate",
                    0,
                    "",
                    examples=p.examples / max(p.batches, 1) * mb,
                    train_tokens=p.tokens / max(p.batches, 1) * mb,
                    flops=flops,
                    seconds=self._time_train(c, flops, mb, steps * w),
                )
            )
            if phase.select_best:
                dev_n = self.size(spec, "validation", spec.train_language, phase.max_eval_examples)
                if dev_n:
                    points = evaluation_points(steps, phase, math.ceil(micro / max(p.batches, 1)))
                    works.append(
                        self._evaluation(
                            c,
                            dev_n,
                            spec.train_language,
                            phase.batch_size * 2,
                            points,
                            Work(PHASE2, "dev evaluation", "", label, "intermediate", 0, ""),
                        )
                    )
        return works

    def _evaluation(
        self, c: Costing, n: int, lang: str, batch_size: int, times: int, work: Work
    ) -> Work:
        p = evaluation_pass(c, n, lang, batch_size)
        work.examples += p.examples * times
        work.eval_tokens += p.tokens * times
        work.flops += p.flops * times
        work.seconds += self.device.forward_seconds(p.flops, p.batches, c.layers) * times
        return work

    # --- phase 3 --------------------------------------------------------------------------------------

    def target(self, target: str, arm: str, seed: int, job: str, after: str | None) -> list[Work]:
        key = ("target", target)
        if key not in self._memo:
            self._memo[key] = self._phase3(catalog.task(target))
        return [
            dataclasses.replace(w, arm=arm, seed=seed, job=job, after=after)
            for w in self._memo[key]
        ]

    def _phase3(self, spec: TaskSpec) -> list[Work]:
        """``spec``'s phase-3 work, costed by the model of the runner its kind names
        (:mod:`mmxfer.train.runners`)."""
        runner = kind_of(spec).runner
        cost = {"finetune": self._target, "translation": self._translation}.get(runner)
        if cost is None:
            self._note(f"{spec.name}: no cost model for its phase-3 runner {runner!r}: not costed")
            return []
        return cost(spec)

    def _target(self, spec: TaskSpec) -> list[Work]:
        from mmxfer.train.phases import target_dev_spec

        phase = self.profile.phase_for_target(spec.name)
        max_length = phase.max_length or self.profile.trunk.max_length
        train_spec = catalog.task(spec.train_task) if spec.train_task else spec
        group = spec.category
        n = self.size(train_spec, "train", train_spec.train_language, phase.max_train_examples)
        c = self.costing(train_spec, max_length, label_source=spec) if n is not None else None
        if c is None or n is None:
            return []
        train, steps, share = training_estimate(c, n, phase, self.device, train_spec.train_language)
        works = [dataclasses.replace(train, target=spec.name, group=group)]
        dev_spec = target_dev_spec(spec)
        if dev_spec is not None:
            dev_n = self.size(
                dev_spec, "validation", dev_spec.train_language, phase.max_eval_examples
            )
            if dev_n:
                points = evaluation_points(steps, phase, math.ceil(share))
                works.append(
                    self._evaluation(
                        c,
                        dev_n,
                        dev_spec.train_language,
                        phase.batch_size * 2,
                        points,
                        Work(PHASE3, "dev evaluation", "", spec.name, group, 0, ""),
                    )
                )
        test = self.costing(spec, max_length)
        split = "test" if "test" in spec.splits else "validation"
        evaluation = Work(PHASE3, "test evaluation", "", spec.name, group, 0, "")
        for lang in evaluation_languages(spec, self.languages, self.data_dir):
            count = self.size(spec, split, lang)
            if test is not None and count:
                self._language(lang, test.lengths)
                self._evaluation(test, count, lang, phase.batch_size * 2, 1, evaluation)
        return works + [evaluation]

    # --- translation ----------------------------------------------------------------------------------

    def _translation(self, spec: TaskSpec) -> list[Work]:
        from mmxfer.train.translation import pair_task, stages

        cfg = self.profile.translation
        pair = pair_task(spec, cfg)
        pair_lengths, test_lengths = task_lengths(pair.name), task_lengths(spec.name)
        if pair_lengths is None or test_lengths is None or pair_lengths.target is None:
            self._note(f"{spec.name}: no source/target token lengths recorded: not costed")
            return []
        for entry in (pair_lengths, test_lengths):
            if entry.status != "measured":
                self.assumed_lengths.add(entry.task)
        vocab = self.enc.vocab if cfg.target_vocab == "full" else ASSUMED_TARGET_VOCAB
        if cfg.target_vocab != "full":
            self._note(
                f"{spec.name}: decoder vocabulary assumed {ASSUMED_TARGET_VOCAB:,} pieces (target_vocab: "
                f"train - the trunk's pieces in the pair's English side)"
            )
        dec = F.Decoder(cfg.decoder_layers or self.enc.layers, self.enc.hidden, self.enc.ff, vocab)
        max_length = cfg.stage1.max_length or self.profile.trunk.max_length
        dev_n = self.size(pair, "validation", pair.train_language, cfg.stage1.max_eval_examples)
        works: list[Work] = []
        for stage, phase in stages(cfg):
            n = self.size(pair, "train", pair.train_language, phase.max_train_examples)
            if n is None:
                return []
            works.append(self._stage(spec, pair_lengths, dec, n, phase, stage, max_length, cfg))
            if not dev_n:
                continue
            if cfg.select_on != "chrf_pp":
                self._note(
                    f"{spec.name}: dev-loss selection (select_on: {cfg.select_on}) not costed"
                )
                continue
            nb = math.ceil(n / phase.batch_size)
            steps, micro = loop_steps(nb, phase)
            points = evaluation_points(steps, phase, math.ceil(micro / nb))
            works.append(
                self._generate(
                    spec,
                    pair_lengths,
                    pair.train_language,
                    dec,
                    dev_n,
                    cfg.dev_beams,
                    cfg,
                    max_length,
                    points,
                    f"stage {stage} dev generation",
                )
            )
        test = Work(TRANSLATION, "test generation", "", spec.name, spec.category, 0, "")
        split = "devtest" if "devtest" in spec.splits else spec.splits[-1]
        for lang in evaluation_languages(spec, self.languages, self.data_dir):
            count = self.size(spec, split, lang)
            if count:
                self._language(lang, test_lengths)
                self._generate(
                    spec,
                    test_lengths,
                    lang,
                    dec,
                    count,
                    cfg.num_beams,
                    cfg,
                    max_length,
                    1,
                    "",
                    test,
                )
        return works + [test]

    def _pairs(
        self, entry: TaskLengths, lang: str, n: int, max_length: int, seed: int
    ) -> tuple[np.ndarray, ...]:
        """Source and label lengths of ``n`` pairs (drawn together: a long source has a long translation)."""
        source, _ = lengths_in(entry, lang)
        u = np.random.default_rng(seed).random(n)
        src = np.maximum(2, np.rint(np.interp(u, QUANTILE_POINTS, source.quantiles))).astype(int)
        tgt = np.maximum(1, np.rint(np.interp(u, QUANTILE_POINTS, entry.target.quantiles))).astype(
            int
        )
        return np.minimum(src, max_length), np.minimum(tgt, max_length)

    def _stage(
        self,
        spec: TaskSpec,
        entry: TaskLengths,
        dec: F.Decoder,
        n: int,
        phase: PhaseConfig,
        stage: int,
        max_length: int,
        cfg: Any,
    ) -> Work:
        drawn = min(n, max(SIM_EXAMPLES, 200 * phase.batch_size))
        src, tgt = self._pairs(entry, entry.language, drawn, max_length, seed=stage)
        batches = epoch_batches(
            drawn,
            phase.batch_size,
            0,
            0,
            lengths=src.tolist(),
            group_by_length=phase.group_by_length,
        )
        flops = tokens = 0.0
        for b in batches:
            s, t = int(src[b].max()), int(tgt[b].max())
            flops += len(b) * F.seq2seq_pair(
                self.enc,
                dec,
                s,
                t,
                encoder_trains=stage == 2,
                embeddings_train=stage == 2 and cfg.train_decoder_embeddings,
            )
            tokens += len(b) * (s + t)
        nb = math.ceil(n / phase.batch_size)
        steps, micro = loop_steps(nb, phase)
        per_batch = n / drawn / nb  # the drawn epoch, scaled to one batch of the real one
        flops, tokens = flops * per_batch * micro, tokens * per_batch * micro
        enc_params = 0 if stage == 1 else self.enc.params
        trained = (
            enc_params
            + dec.layers * (dec.token_params + dec.cross_kv_params)
            + dec.hidden * dec.vocab
        )
        seconds = self.device.train_seconds(
            flops, micro, self.enc.layers + dec.layers
        ) + self.device.optimizer_seconds(steps, trained)
        return Work(
            TRANSLATION,
            f"stage {stage}",
            "",
            spec.name,
            spec.category,
            0,
            "",
            examples=micro * phase.batch_size,
            train_tokens=tokens,
            flops=flops,
            seconds=seconds,
        )

    def _generate(
        self,
        spec: TaskSpec,
        entry: TaskLengths,
        lang: str,
        dec: F.Decoder,
        n: int,
        beams: int,
        cfg: Any,
        max_length: int,
        times: int,
        part: str,
        work: Work | None = None,
    ) -> Work:
        work = work or Work(TRANSLATION, part, "", spec.name, spec.category, 0, "")
        if times <= 0:
            return work
        src, tgt = self._pairs(entry, lang, n, max_length, seed=7)
        order = np.argsort(-src, kind="stable")
        src, tgt = src[order], tgt[order]
        limit = int(cfg.max_len_a * int(src.max()) + cfg.max_len_b)
        flops = tokens = steps_total = 0.0
        batches = range(0, n, cfg.generate_batch_size)
        for start in batches:
            s, t = (
                src[start : start + cfg.generate_batch_size],
                tgt[start : start + cfg.generate_batch_size],
            )
            # the batch decodes until its longest hypothesis ends
            steps = min(limit, int(t.max()) + 1)
            flops += F.generation_batch(self.enc, dec, len(s), int(s.max()), steps, beams)
            tokens += len(s) * (int(s.max()) + beams * steps)
            steps_total += steps
        work.examples += n * times
        work.eval_tokens += tokens * times
        work.flops += flops * times
        work.seconds += times * (
            self.device.generate_seconds(flops, steps_total, dec.layers, beams)
            + len(batches) * self.enc.layers * self.device.rate("forward_layer_ms") / 1e3
        )
        return work

    # --- retrieval ------------------------------------------------------------------------------------

    def retrieval(self, arm: str, seed: int, job: str, after: str | None) -> list[Work]:
        key = ("retrieval",)
        if key not in self._memo:
            self._memo[key] = self._retrieval()
        return [
            dataclasses.replace(w, arm=arm, seed=seed, job=job, after=after)
            for w in self._memo[key]
        ]

    def _retrieval(self) -> list[Work]:
        cfg = self.profile.retrieval
        max_length = retrieval_max_length(self.profile)
        works = []
        for name in self.profile.suite.split(","):
            for item in suite_tasks(name.strip()) if name.strip() else ():
                if not uses_trunk(item):
                    continue
                spec = catalog.task(item.task)
                c = self.costing(spec, max_length)
                if c is None:
                    continue
                c = dataclasses.replace(c, trained_layers=0)
                splits = ("validation", "test") if spec.mining else (item.split,)
                if item.split not in spec.splits and not spec.mining:
                    splits = (spec.splits[-1],)
                work = Work(RETRIEVAL, "embedding", "", item.label or spec.name, "retrieval", 0, "")
                langs = [
                    x
                    for x in evaluation_languages(spec, self.languages, self.data_dir)
                    if not item.languages or x in item.languages
                ]
                for lang in langs:
                    for split in splits:
                        count = self.size(spec, split, lang)
                        # both sides: the sentences in `lang` and their English counterparts
                        if count:
                            self._language(lang, c.lengths)
                            self._evaluation(c, count, lang, cfg.batch_size, 1, work)
                            self._evaluation(c, count, spec.train_language, cfg.batch_size, 1, work)
                works.append(work)
        return works


def estimate(
    profile: ExperimentConfig,
    runs: Sequence[Any],
    device: Device,
    *,
    languages: Sequence[str] | None = None,
    data_dir: str | None = None,
) -> Estimate:
    """The cost of every unfinished run of a plan (:func:`mmxfer.study.grid.plan`), each phase-2 trunk once."""
    est = Estimator(profile, device, languages, data_dir)
    works: list[Work] = []
    trained: set[str] = set()
    for run in runs:
        if run.done:
            continue
        after = None
        if run.phase2 is not None and not run.phase2_done:
            after = str(run.phase2)
            if after not in trained:
                trained.add(after)
                works += est.phase2(run.tasks, run.arm, run.seed, after)
        job = str(run.path)
        if run.target is None:
            works += est.retrieval(run.arm, run.seed, job, after)
        else:
            works += est.target(run.target, run.arm, run.seed, job, after)
    if not works and any(not r.done for r in runs):
        raise ConfigError("nothing of this study could be costed: " + "; ".join(est.notes[:3]))
    return Estimate(
        device, works, est.notes, sorted(est.assumed_lengths), sorted(est.assumed_languages)
    )


def training_estimate(
    costing: Costing, n: int, phase: PhaseConfig, device: Device, lang: str | None = None
) -> tuple[Work, int, float]:
    """One phase-3 training on ``n`` examples of ``costing``'s task on ``device``, in ``lang`` (None: the language
    of its lengths): its work (named after that task), its optimizer steps and the passes over the data it makes."""
    p = training_pass(costing, n, lang or costing.lengths.language, phase)
    steps, micro = loop_steps(p.batches, phase)
    share = micro / max(p.batches, 1)
    flops = p.flops * share
    seconds = device.train_seconds(flops, micro, costing.layers) + device.optimizer_seconds(
        steps, costing.trained_params()
    )
    work = Work(
        PHASE3,
        "train",
        "",
        costing.spec.name,
        costing.spec.category,
        0,
        "",
        examples=p.examples * share,
        train_tokens=p.tokens * share,
        flops=flops,
        seconds=seconds,
    )
    return work, steps, share
