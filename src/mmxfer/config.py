"""Configuration: frozen dataclasses, YAML files, dotted ``--set`` overrides, validation.

One layer only: a YAML file gives values for the dataclass fields below, ``--set a.b=c``
overrides individual values, and :func:`build` validates everything (types, allowed
values, unknown keys) with messages that name the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from mmxfer.errors import ConfigError, suggest  # noqa: F401  (suggest is re-exported)

C = TypeVar("C")

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"

#: ``auto``: bf16 autocast where the hardware computes in bf16 natively (a CUDA GPU with bf16; a CPU with AVX512-BF16
#: or AMX), full fp32 elsewhere - decided when a run starts and recorded in its env.json (mmxfer.runs.env)
Precision = Literal["no", "fp16", "bf16", "auto"]


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class TrunkConfig:
    """The shared multilingual text trunk (phase 1)."""

    name: str = "xlm-roberta-large"  # registered trunk, hub id, or local directory
    revision: str | None = None
    max_length: int = 128
    freeze_embeddings: bool = False
    # auto: eager where the run computes under bf16 autocast, sdpa in float32 (on 2 CPU cores with short
    # sentences eager is the faster one under bf16, sdpa the faster one in float32)
    attn_implementation: Literal["sdpa", "eager", "auto"] = "sdpa"
    # K: only the top K transformer layers are trained, in every phase; the embeddings and every layer below
    # them are frozen and run in eval mode (no dropout), and their output for a text input is computed once per
    # process (mmxfer.models.frozen). A trunk of K layers or fewer trains all of them. None: every layer trains.
    train_top_layers: int | None = None


@dataclass(frozen=True)
class VisionConfig:
    """The open_clip vision tower, attached only for image-text intermediate tasks."""

    model: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"  # open_clip pretrained tag
    checkpoint: str | None = None  # local checkpoint file; wins over `pretrained`
    freeze: bool = True
    projector: Literal["linear", "mlp"] = "mlp"
    num_tokens: int | None = None  # None = all patch tokens (+CLS); N = pooled to N tokens


@dataclass(frozen=True)
class PhaseConfig:
    """Optimisation recipe of one training phase."""

    lr: float = 1e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 32
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    epochs: float = 2.0
    max_steps: int | None = None
    max_length: int | None = None  # None = trunk.max_length
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_every: int | None = None  # steps; None = once per epoch
    checkpoint_every: int = 500
    early_stopping_patience: int | None = None
    group_by_length: bool = True
    log_every: int = 10  # steps between train_log.jsonl rows (loss, lr)
    seed: int | None = (
        None  # intermediate phase only: None = the run's seed; N = one phase-2 trunk for all seeds
    )
    # intermediate phase only (phase 3 follows TaskSpec.dev_selection): keep the trunk of the best English dev score
    # (the tasks' primary metric) over the evaluation points instead of the final weights
    select_best: bool = False
    # target phase, classification targets only: text put before every input sentence (training, dev and every
    # evaluation language), as the trunk was trained to read its input (e5: "query: ")
    text_prefix: str = ""
    # AdamW's (beta1, beta2): torch's and transformers' default; SixT's translation stages use (0.9, 0.98)
    adam_betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class MultiTaskConfig:
    """How several intermediate tasks are mixed (``--intermediate mnli,squad``)."""

    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    cap: int | None = 50_000  # examples-proportional mixing caps each task's size here
    temperature: float = 2.0


@dataclass(frozen=True)
class RetrievalConfig:
    """Settings recorded with every retrieval result (XTREME PR #104 is why).

    ``layer`` indexes the trunk's hidden states: 0 = embedding output, i = output of transformer layer
    i, -1 = the last layer. ``layer: null`` = XTREME's convention (:func:`mmxfer.evaluation.retrieval.
    resolve_layer`): ``hidden_states[14]`` of a 24-layer trunk (XLM-R Large, Tatoeba; jiant's BUCC and
    Tatoeba head), ``hidden_states[8]`` of a 12-layer one (XTREME's ``specific_layer 7`` of the last 12),
    the middle layer of any other depth. Mean pooling over every attended token. ``max_length``: None =
    ``trunk.max_length`` (XTREME and jiant embed up to 512 tokens). ``comparison`` (sentence-pair retrieval): a
    retrieval is wrong when the retrieved sentence's ``text`` differs from the true translation's (LASER's
    ``source/eval.py``, duplicate lines count as found), or when its ``index`` differs (LASER's
    ``--index-comparison``; XTREME's Tatoeba accuracy).
    """

    layer: int | None = None
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    margin: Literal["ratio", "distance", "absolute"] = "ratio"
    k: int = 4
    direction: Literal["xx-en", "en-xx", "both"] = "both"
    threshold_source: Literal["dev", "test-oracle"] = "dev"
    batch_size: int = 64
    prefix: str = ""
    max_length: int | None = None
    comparison: Literal["text", "index"] = "text"


@dataclass(frozen=True)
class TranslationConfig:
    """Zero-shot translation targets (SixT, Chen et al. 2021, arXiv 2104.08757): the trunk is the encoder of
    an encoder-decoder trained on ONE pair (stage 1: encoder frozen; stage 2: encoder trained, its embeddings
    frozen), then every language is translated into English (see :mod:`mmxfer.models.seq2seq`).

    The defaults are the CPU recipe of the starter profile (its YAML cites the measurement); the xlmr
    profiles set SixT's own numbers.
    """

    train_task: str | None = (
        None  # the pair's task; None = the target's declared train_task (wmt14-de-en)
    )
    decoder_layers: int | None = (
        2  # None = as many layers as the trunk; N = the decoder has N layers
    )
    # trunk: decoder layer i starts as trunk layer i (cross-attention new); random: only the embeddings come
    # from the trunk (SixT's randomly initialised decoder)
    decoder_init: Literal["trunk", "random"] = "trunk"
    # train: the decoder predicts only the trunk's pieces seen in the English side of the training pairs
    # (SixT's target dictionary); full: the trunk's whole vocabulary
    target_vocab: Literal["train", "full"] = "train"
    dropout: float | None = None  # decoder dropout; None = the trunk's
    label_smoothing: float = 0.1
    stage1: PhaseConfig = PhaseConfig(
        lr=5e-4,
        warmup_ratio=0.1,
        weight_decay=0.01,
        max_grad_norm=2.0,
        batch_size=16,
        epochs=4,
        max_eval_examples=100,
        checkpoint_every=200,
    )
    stage2: PhaseConfig | None = PhaseConfig(
        lr=1e-4,
        warmup_ratio=0.05,
        weight_decay=0.0,
        max_grad_norm=2.0,
        batch_size=16,
        epochs=2,
        max_eval_examples=100,
        checkpoint_every=200,
    )
    train_decoder_embeddings: bool = (
        True  # stage 2: False keeps the decoder's embeddings frozen too
    )
    num_beams: int = 1
    # test decoding: a hypothesis ends after at most int(a * source length + b) tokens, the end token forced inside
    # the search (fairseq's max_len_a/max_len_b; source length = its tokens with <s> and </s>)
    max_len_a: float = 1.2
    max_len_b: int = 10
    generate_batch_size: int = 16
    select_on: Literal["chrf_pp", "neg_loss"] = (
        "chrf_pp"  # dev selection: greedy chrF++ or minus the dev loss
    )
    dev_beams: int = 1
    # the same bound for the dev translations of model selection; None = max_len_a / max_len_b
    dev_max_len_a: float | None = None
    dev_max_len_b: int | None = None
    # test sources are cut at this many tokens; None = the training length (stage1.max_length or trunk.max_length)
    test_max_length: int | None = None
    # ResDrop (SixT's position-disentangled encoder): encoder layer N (0-based) adds no residual around its
    # self-attention, from stage 2 on (training, dev selection and test); None = every layer keeps it
    resdrop_layer: int | None = None
    spm_model: str | None = (
        None  # the FLORES-200 SentencePiece model for spBLEU (MMXFER_FLORES200_SPM wins)
    )


@dataclass(frozen=True)
class ConsoleConfig:
    """How ``mmxfer train`` introduces a profile on the console. It says nothing about what a run computes, so it
    is left out of the run's config (and of its id)."""

    note: str = ""  # one line under the run's header, e.g. what the profile is for
    data: str = ""  # where the data comes from without --data-dir; "" = the Hugging Face Hub (or its mirror)


@dataclass(frozen=True)
class ExperimentConfig:
    """A profile: everything one run needs except the arm, target and seed."""

    name: str = "custom"
    description: str = ""
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    intermediate: PhaseConfig = field(default_factory=PhaseConfig)
    target: PhaseConfig = field(default_factory=PhaseConfig)
    # per-target recipe overrides: {xnli: {epochs: 2}, udpos: {epochs: 10}, ...}
    target_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    multitask: MultiTaskConfig = field(default_factory=MultiTaskConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    suite: str = "xtreme"
    precision: Precision = "bf16"
    seed: int = 1
    data_dir: str | None = None
    runs_dir: str = "runs"
    study: str = "default"
    on_bad_image: Literal["skip", "fail"] = "skip"
    log_with: tuple[str, ...] = ()  # accelerate trackers for training curves: tensorboard, wandb
    # profile-level names for tasks, e.g. the starter profile maps `vqa` to its offline `starter-vqa`
    task_aliases: dict[str, str] = field(default_factory=dict)
    # torch threads of a run on CPU (None = torch's default, one per core); 1 suits tiny models, whose threads
    # wait on each other longer than they compute (the rehearsal: 3 ms a forward pass on 1 thread, 17-130 ms on 2
    # busy cores)
    cpu_threads: int | None = None
    # zero-shot translation targets only (left out of the run config of every other target)
    translation: TranslationConfig = field(default_factory=TranslationConfig)

    def resolve_task(self, name: str) -> str:
        """A task name as this profile means it (its alias target, else the name itself)."""
        return self.task_aliases.get(name, name)

    def check_phase_settings(self) -> None:
        """A setting that one phase alone reads, set on the other: one clear error."""
        if self.intermediate.text_prefix:
            raise ConfigError(
                "intermediate.text_prefix: only the target phase takes a text prefix (target.text_prefix)"
            )

    def phase_for_target(self, target: str) -> PhaseConfig:
        """The target recipe with that target's overrides applied."""
        overrides = self.target_overrides.get(target, {})
        return from_dict(
            PhaseConfig,
            {**dataclasses.asdict(self.target), **overrides},
            f"target_overrides.{target}",
        )


@dataclass(frozen=True)
class ArmConfig:
    """One arm of a study: the intermediate task(s); empty = the no-intermediate baseline."""

    name: str
    intermediate: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlurmConfig:
    partition: str | None = None
    gpus_per_node: int = 1
    nodes: int = 1
    cpus_per_task: int = 8
    timeout_min: int = 24 * 60
    mem_gb: int | None = None
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyConfig:
    """A grid: arms x targets x seeds, all on one profile."""

    name: str
    profile: str = "starter"
    arms: tuple[ArmConfig, ...] = ()
    targets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (1,)
    suite: str | None = None  # retrieval-only evaluation for arms when targets is empty
    launcher: Literal["local", "slurm"] = "local"
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    overrides: tuple[str, ...] = ()  # `--set`-style overrides applied to the profile
    # a registered data source the runs read (catalog.DATA_SOURCES, made on first use: `fixtures`), in hub form
    # (a local hub mirror) or release form (release files, as --data-dir); a --data-dir given to the study wins
    data: str | None = None
    data_form: Literal["hub", "release"] = "hub"
    languages: tuple[str, ...] | None = (
        None  # zero-shot evaluation limited to these languages (None = all)
    )


@dataclass(frozen=True)
class SuiteTaskConfig:
    """One task inside a suite, with the metric the suite averages."""

    task: str
    metric: str | None = None  # None = the task's own primary metric
    languages: tuple[str, ...] | None = None  # None = all the task's evaluation languages
    params: dict[str, Any] = field(default_factory=dict)
    score_key: str | None = (
        None  # key of the metric's dict that is averaged (None = its primary; QA: f1_em)
    )
    category: str | None = None  # None = the task's own category
    split: str = "test"
    mode: Literal["auto", "trunk", "finetune", "translation"] = (
        "auto"  # auto: retrieval kinds use the trunk
    )
    label: str | None = (
        None  # key in aggregates when one task appears twice (e.g. flores200 xsim and chrf_pp)
    )


@dataclass(frozen=True)
class SuiteConfig:
    """A named set of evaluation tasks with declared languages and averaging."""

    name: str
    description: str = ""
    tasks: tuple[SuiteTaskConfig, ...] = ()
    include_english_in_average: bool = True
    average: Literal["mean-of-tasks", "mean-of-categories"] = "mean-of-tasks"
    overall: bool = True  # False: no single overall number (tasks mix error rates and scores)
    languages: tuple[str, ...] | None = None  # default language list for tasks that declare none


# --------------------------------------------------------------------------- value ranges

SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit and non-negative


def _positive(v: float) -> bool:
    return v > 0


def _at_least_one(v: float) -> bool:
    return v >= 1


def _non_negative(v: float) -> bool:
    return v >= 0


def _fraction(v: float) -> bool:
    return 0 <= v < 1


def _seed(v: float) -> bool:
    return 0 <= v <= SEED_MAX


_RULE_TEXT = {
    _positive: "a number above 0",
    _at_least_one: "at least 1",
    _non_negative: "0 or more",
    _fraction: "at least 0 and below 1",
    _seed: f"from 0 to {SEED_MAX}",
}

#: (class, field) -> what its value must be (None stays allowed where the type allows it); every number
#: of a config must be finite
RANGES: dict[tuple[type, str], Any] = {
    (TrunkConfig, "max_length"): _at_least_one,
    (TrunkConfig, "train_top_layers"): _at_least_one,
    (VisionConfig, "num_tokens"): _at_least_one,
    (PhaseConfig, "lr"): _positive,
    (PhaseConfig, "warmup_ratio"): _fraction,
    (PhaseConfig, "weight_decay"): _non_negative,
    (PhaseConfig, "batch_size"): _at_least_one,
    (PhaseConfig, "grad_accum"): _at_least_one,
    (PhaseConfig, "max_grad_norm"): _non_negative,
    (PhaseConfig, "epochs"): _positive,
    (PhaseConfig, "max_steps"): _at_least_one,
    (PhaseConfig, "max_length"): _at_least_one,
    (PhaseConfig, "max_train_examples"): _at_least_one,
    (PhaseConfig, "max_eval_examples"): _at_least_one,
    (PhaseConfig, "eval_every"): _at_least_one,
    (PhaseConfig, "checkpoint_every"): _non_negative,
    (PhaseConfig, "early_stopping_patience"): _at_least_one,
    (PhaseConfig, "log_every"): _at_least_one,
    (PhaseConfig, "seed"): _seed,
    (MultiTaskConfig, "cap"): _at_least_one,
    (MultiTaskConfig, "temperature"): _positive,
    (RetrievalConfig, "k"): _at_least_one,
    (RetrievalConfig, "batch_size"): _at_least_one,
    (TranslationConfig, "dev_max_len_a"): _non_negative,
    (TranslationConfig, "dev_max_len_b"): _non_negative,
    (TranslationConfig, "test_max_length"): _at_least_one,
    (TranslationConfig, "resdrop_layer"): _non_negative,
    (ExperimentConfig, "seed"): _seed,
    (ExperimentConfig, "cpu_threads"): _at_least_one,
    (SlurmConfig, "gpus_per_node"): _at_least_one,
    (SlurmConfig, "nodes"): _at_least_one,
    (SlurmConfig, "cpus_per_task"): _at_least_one,
    (SlurmConfig, "timeout_min"): _at_least_one,
    (SlurmConfig, "mem_gb"): _at_least_one,
}


def check_value(key: str, value: Any, rule: Any) -> None:
    """One clear error naming ``key`` when the number ``value`` is not finite or breaks ``rule``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value) or not rule(value):
        raise ConfigError(f"{key}: {value!r} is not allowed; expected {_RULE_TEXT[rule]}")


def check_ranges(obj: Any, path: str = "") -> None:
    """Check the fields of config dataclass ``obj`` that have a range (:data:`RANGES`), naming the key."""
    for f in dataclasses.fields(obj):
        rule = RANGES.get((type(obj), f.name))
        value = getattr(obj, f.name)
        key = f"{path}.{f.name}" if path else f.name
        if rule is not None:
            check_value(key, value, rule)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not allowed; expected a finite number")
    if isinstance(obj, StudyConfig):
        for i, seed in enumerate(obj.seeds):
            check_value(f"{path + '.' if path else ''}seeds[{i}]", seed, _seed)
    if isinstance(obj, PhaseConfig):
        key = f"{path + '.' if path else ''}adam_betas"
        if len(obj.adam_betas) != 2:
            raise ConfigError(
                f"{key}: {list(obj.adam_betas)!r} is not allowed; expected two numbers (beta1, beta2)"
            )
        for i, beta in enumerate(obj.adam_betas):
            check_value(f"{key}[{i}]", beta, _fraction)


def check_seed(seed: int | None, key: str = "--seed") -> None:
    """A run seed: an integer from 0 to 2**32 - 1 (what numpy and torch accept alike)."""
    check_value(key, seed, _seed)


# --------------------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against annotation ``tp``; convert where lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool) and ("yes" if value else "no") in allowed:
            # YAML 1.1 reads an unquoted no/yes (precision: no) as a boolean
            value = "yes" if value else "no"
        if value not in allowed:
            hint = suggest(str(value), [str(a) for a in allowed])
            raise ConfigError(
                f"{path}: {value!r} is not allowed{hint}; allowed values: {', '.join(map(repr, allowed))}"
            )
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: null is not allowed; expected {_type_name(tp)}")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{path}: {value!r} is not {_type_name(tp)}"
        )
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _coerce(v, val_tp, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config annotation {tp!r} at {path}")


def from_dict(cls: type[C], data: Any, path: str = "") -> C:
    """Build dataclass ``cls`` from a mapping, naming the exact key of every problem."""
    if isinstance(data, cls):
        return data
    where = path or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{(path + '.') if path else ''}{key}: unknown key{suggest(str(key), fields)}; "
                f"allowed keys: {', '.join(fields)}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{path}.{key}" if path else key)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}")
    obj = cls(**kwargs)
    check_ranges(obj, path)
    return obj


def to_dict(obj: Any) -> Any:
    """A plain, YAML/JSON-safe dict of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def config_hash(obj: Any, length: int = 10) -> str:
    """Content hash of a config (canonical JSON), stable across runs and machines."""
    blob = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


#: the most a YAML config may hold: its size, and its values once every alias is expanded. ``yaml.safe_load`` has no
#: limit, and a few lines of nested anchors (billion laughs) expand to 10^9 values, which anything that walks the
#: config (validation, hashing, saving the run's config.yaml) would take minutes to hours over. The shipped configs
#: are under 5 KB and 250 values.
YAML_MAX_BYTES = 1 << 20
YAML_MAX_VALUES = 100_000


def load_yaml(text: str, where: str) -> Any:
    """The one YAML reader of mmxfer (configs, ``--set`` values, a run's config.yaml): ``yaml.safe_load`` with
    :data:`YAML_MAX_BYTES` and :data:`YAML_MAX_VALUES` enforced, and an alias inside its own anchor refused, each
    as one :class:`ConfigError` naming ``where`` before anything is built; syntax errors stay ``yaml.YAMLError``."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > YAML_MAX_BYTES:
        raise ConfigError(
            f"{where}: {size:,} bytes of YAML, more than the {YAML_MAX_BYTES:,} a config may have"
        )
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"{where}: YAML nested too deeply") from None
        if node is None:
            return None
        _expanded_values(node, where, {}, set(), ())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_values(
    node: yaml.Node, where: str, sizes: dict[int, int], open_nodes: set[int], keys: tuple[str, ...]
) -> int:
    """How many values ``node`` holds once its aliases are expanded (each shared node counted once per use, its
    size computed once); a ConfigError past :data:`YAML_MAX_VALUES` or for a node that contains itself."""
    ident = id(node)
    if ident in sizes:
        return sizes[ident]
    if ident in open_nodes:
        raise ConfigError(
            f"{where}: {'.'.join(keys) or 'top level'}: a YAML alias refers to the value that "
            f"contains it (a self-referencing anchor); write the value out"
        )
    if isinstance(node, yaml.ScalarNode):
        return 1
    open_nodes.add(ident)
    total = 1
    children = node.value if isinstance(node, yaml.MappingNode) else [(None, v) for v in node.value]
    for i, (key, value) in enumerate(children):
        label = str(key.value) if isinstance(key, yaml.ScalarNode) else str(i)
        if key is not None:
            total += _expanded_values(key, where, sizes, open_nodes, keys)
        total += _expanded_values(value, where, sizes, open_nodes, (*keys, label))
        if total > YAML_MAX_VALUES:
            raise ConfigError(
                f"{where}: more than {YAML_MAX_VALUES:,} values once its YAML aliases are expanded "
                f"(at {'.'.join((*keys, label))}); a config may hold at most {YAML_MAX_VALUES:,}: "
                f"write it without nested aliases"
            )
    open_nodes.discard(ident)
    sizes[ident] = total
    return total


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the file as UTF-8"
        ) from None
    try:
        data = load_yaml(text, str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], parsed value); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. target.lr=2e-5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = load_yaml(raw, f"override {text!r}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML reads 1e-5 as a string; numbers in scientific notation are common in recipes.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") and value.strip() else value
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=c`` override set (deep copy of touched levels)."""
    result = json.loads(json.dumps(data, default=str)) if data else {}
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = {}
                node[key] = child
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {key} is not a mapping")
            node = child
        node[keys[-1]] = value
    return result


def load(
    cls: type[C],
    path: str | Path | None = None,
    overrides: typing.Iterable[str] = (),
    base: dict[str, Any] | None = None,
) -> C:
    """Load ``cls`` from a YAML file (or ``base``), apply overrides, validate."""
    data = dict(base or {})
    if path is not None:
        file_data = read_yaml(path)
        data = {**data, **file_data}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise


# --------------------------------------------------------------------------- named configs


def config_dir(kind: str) -> Path:
    """Folder of shipped YAML configs of one kind (profiles, suites, studies)."""
    return CONFIG_ROOT / kind


def named_configs(kind: str) -> dict[str, Path]:
    folder = config_dir(kind)
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


_SINGULAR = {"profiles": "profile", "suites": "suite", "studies": "study"}


def resolve_config_path(kind: str, name_or_path: str) -> Path:
    """A shipped config by name (``xlmr-large``) or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"config file not found: {candidate}")
        return candidate
    known = named_configs(kind)
    if name_or_path not in known:
        raise ConfigError(
            f"unknown {_SINGULAR.get(kind, kind)} {name_or_path!r}{suggest(name_or_path, known)}; "
            f"shipped: {', '.join(known) or 'none'}"
        )
    return known[name_or_path]


def load_profile(name_or_path: str, overrides: typing.Iterable[str] = ()) -> ExperimentConfig:
    path = resolve_config_path("profiles", name_or_path)
    return load(ExperimentConfig, path, overrides)


def load_study(name_or_path: str, overrides: typing.Iterable[str] = ()) -> StudyConfig:
    path = resolve_config_path("studies", name_or_path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    return load(StudyConfig, None, overrides, base=data)


def load_suite(name_or_path: str) -> SuiteConfig:
    path = resolve_config_path("suites", name_or_path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    try:
        return from_dict(SuiteConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def detect_kind(path: str | Path) -> str:
    """Guess whether a YAML file is a profile, a suite or a study (for `mmxfer validate`)."""
    path = Path(path)
    parent = path.parent.name
    if parent in ("profiles", "suites", "studies"):
        return parent
    data = read_yaml(path)
    if "arms" in data or "seeds" in data:
        return "studies"
    if "tasks" in data:
        return "suites"
    return "profiles"
