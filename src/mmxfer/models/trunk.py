"""The one shared trunk: any Hugging Face encoder, saved and loaded as trunk weights only.

``load_trunk`` accepts a registered trunk name (``catalog.TRUNKS``), a hub id or a local folder
and returns a :class:`Trunk` (the encoder and its fast tokenizer) with ``output_hidden_states`` switched on and
without the pretraining pooler (unused by every head; DDP requires every parameter to reach the loss). ``save_trunk``
writes only the trunk (safetensors + config + tokenizer) atomically, so a phase-2 checkpoint
carries nothing of the heads, projector or vision tower into phase 3. The folder is sealed: its last file,
``CHECKSUMS.json``, holds the size and sha256 of every other (:mod:`mmxfer.runs.sealed`), and a folder that no
longer matches them is refused when it is loaded; hashing costs one read of the weights per process (measured in
``benchmarks/results/cache_checksum_cost.json``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from mmxfer.assets import resolve_model_dir
from mmxfer.catalog import TRUNKS, load_plugins
from mmxfer.errors import AssetError
from mmxfer.runs import sealed

if TYPE_CHECKING:  # pragma: no cover
    from mmxfer.config import TrunkConfig

# transformers is imported when a trunk is loaded: registering the trunks (`mmxfer ls`) stays fast

log = logging.getLogger(__name__)

#: the checksums :func:`save_trunk` writes last into a trunk folder (checked when the folder is loaded)
SEAL_FILE = "CHECKSUMS.json"


class Trunk(NamedTuple):
    """A loaded trunk: the encoder and the fast tokenizer that goes with it (they travel together)."""

    model: nn.Module  # a transformers.PreTrainedModel encoder, all hidden states returned
    tokenizer: Any  # its transformers.PreTrainedTokenizerFast


@dataclass(frozen=True)
class TrunkEntry:
    """A registered trunk: either a hub id or a builder that returns a :class:`Trunk`."""

    name: str
    hub_id: str | None = None
    builder: Callable[[str], Trunk] | None = field(default=None, compare=False, repr=False)
    description: str = ""


TRUNKS.add(
    TrunkEntry(
        "xlm-roberta-large",
        hub_id="FacebookAI/xlm-roberta-large",
        description="XLM-R Large (24 layers, 1024 hidden), the paper's trunk",
    ),
    "xlm-roberta-large",
)
TRUNKS.add(
    TrunkEntry(
        "xlm-roberta-base",
        hub_id="FacebookAI/xlm-roberta-base",
        description="XLM-R Base (12 layers, 768 hidden)",
    ),
    "xlm-roberta-base",
)


def _finish(model: nn.Module, tokenizer: Any) -> Trunk:
    model.config.output_hidden_states = True
    _drop_pooler(model)
    model.eval()
    return Trunk(model, tokenizer)


def _saved_keys(path: Path) -> set[str] | None:
    """The weight names of a safetensors trunk folder (read from the headers only), None when unknown."""
    import json

    index = path / "model.safetensors.index.json"
    if index.is_file():
        return set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
    single = path / "model.safetensors"
    if not single.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(single), "pt") as handle:
        return set(handle.keys())


def _no_pooler_kwargs(path: Path) -> dict[str, bool]:
    """``add_pooling_layer=False`` for a folder saved without pooler weights (a phase-2 trunk) whose model class
    takes it (BERT, RoBERTa, XLM-R): no pooler is built, so loading reports no missing weights. Folders with
    pooler weights (hub checkpoints) load as they are; :func:`_drop_pooler` removes it afterwards."""
    import inspect

    from transformers import AutoConfig, AutoModel

    keys = _saved_keys(path)
    if keys is None or any("pooler" in k.split(".") for k in keys):
        return {}
    try:
        cls = AutoModel._model_mapping[type(AutoConfig.from_pretrained(str(path)))]
    except (KeyError, ValueError, OSError):
        return {}
    return (
        {"add_pooling_layer": False}
        if "add_pooling_layer" in inspect.signature(cls.__init__).parameters
        else {}
    )


def _drop_pooler(model: nn.Module) -> None:
    """Remove the pretraining pooler (BERT/XLM-R ``pooler``): no mmxfer head reads ``pooler_output``, and
    parameters outside every loss make DDP fail ("Expected to have finished reduction"). Folders that hold
    pooler weights (hub checkpoints, older phase-2 trunks) still load; the weights are simply not used."""
    if isinstance(getattr(model, "pooler", None), nn.Module):
        model.pooler = None


#: small trunk folders (weights up to this size: tiny and test trunks) are kept in memory once loaded, and
#: every later load of the same, unchanged folder gets a deep copy: same weights, no disk read
CACHE_MAX_BYTES = 64 * 2**20
_CACHE_ENTRIES = 4
_loaded: OrderedDict[tuple, Trunk] = OrderedDict()


def _folder_key(path: Path, attn_implementation: str) -> tuple | None:
    """The folder's identity (path, attention, every file's name, size and mtime); None when it is too big to keep."""
    try:
        files = tuple(
            sorted(
                (p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in path.iterdir()
                if p.is_file()
            )
        )
    except OSError:
        return None
    if (
        sum(size for name, size, _ in files if name.endswith((".safetensors", ".bin")))
        > CACHE_MAX_BYTES
    ):
        return None
    return (str(path.resolve()), attn_implementation, files)


def _recall(cache: OrderedDict, key: Any) -> Any:
    """``cache[key]`` marked as most recently used; None when the key is None or absent."""
    if key is None or key not in cache:
        return None
    cache.move_to_end(key)
    return cache[key]


def _keep(cache: OrderedDict, key: Any, value: Any, entries: int) -> None:
    """Store ``value`` (not when the key is None), dropping the least recently used beyond ``entries``."""
    if key is None:
        return
    cache[key] = value
    while len(cache) > entries:
        cache.popitem(last=False)


def _copy(trunk: Trunk) -> Trunk:
    return Trunk(copy.deepcopy(trunk.model), copy.deepcopy(trunk.tokenizer))


def _load_dir(path: Path, attn_implementation: str) -> Trunk:
    key = _folder_key(path, attn_implementation)
    kept = _recall(_loaded, key)
    if kept is not None:
        return _copy(kept)
    trunk = _read_dir(path, attn_implementation)
    if key is not None:
        _keep(_loaded, key, _copy(trunk), _CACHE_ENTRIES)
    return trunk


#: tokenizers by the content of their files: a phase-2 trunk folder holds a copy of its trunk's tokenizer, and
#: reading a 250k-piece tokenizer.json takes about 1.5 s on a laptop CPU; the object is shared, as it holds no
#: per-run state (padding and truncation are set per call)
_TOKENIZER_ENTRIES = 4
_tokenizers: OrderedDict[str, Any] = OrderedDict()
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
)


#: tokenizer_config.json fields that say where and how a tokenizer was read, not what it does: ``save_pretrained``
#: writes some of them, so a phase-2 folder's copy of its trunk's tokenizer differs from the original only in these
#: (without leaving them out of the key, each study held a second 250k-piece tokenizer, about 0.23 GB)
_LOAD_ONLY_FIELDS = frozenset(
    {"is_local", "local_files_only", "cache_dir", "_commit_hash", "name_or_path"}
)


def _tokenizer_file_bytes(file: Path) -> bytes:
    if file.name != "tokenizer_config.json":
        return file.read_bytes()
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return file.read_bytes()
    if not isinstance(config, dict):
        return file.read_bytes()
    kept = {k: v for k, v in config.items() if k not in _LOAD_ONLY_FIELDS}
    return json.dumps(kept, sort_keys=True).encode()


def _tokenizer_key(path: Path) -> str | None:
    digest = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + _tokenizer_file_bytes(file) + b"\0")
    return digest.hexdigest() if (path / "tokenizer.json").is_file() else None


def _read_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    key = _tokenizer_key(path)
    tokenizer = _recall(_tokenizers, key)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
        _keep(_tokenizers, key, tokenizer, _TOKENIZER_ENTRIES)
    return tokenizer


def _read_dir(path: Path, attn_implementation: str) -> Trunk:
    from transformers import AutoModel

    if not (path / "config.json").is_file():
        raise AssetError(
            f"{path} is not a trunk folder (no config.json); pass a folder written by save_trunk "
            f"or a Hugging Face model folder"
        )
    check_sealed(path)
    try:
        tokenizer = _read_tokenizer(path)
    except Exception as exc:
        raise AssetError(
            f"cannot load the tokenizer in {path}: {str(exc).splitlines()[0][:200]}"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise AssetError(
            f"the tokenizer in {path} is not a fast tokenizer (tokenizer.json is missing)"
        )
    model = AutoModel.from_pretrained(
        str(path), attn_implementation=attn_implementation, **_no_pooler_kwargs(path)
    )
    model.mmxfer_source_dir = str(path)  # lets the MLM head find the checkpoint's LM-head weights
    return _finish(model, tokenizer)


def check_sealed(path: Path) -> None:
    """A trunk folder written by :func:`save_trunk` must still match its checksums (hub folders have none)."""
    problem = sealed.damage(path, SEAL_FILE)
    if problem:
        raise AssetError(f"the trunk folder {path} is damaged: {problem}")


def load_trunk(
    name_or_path: str, revision: str | None = None, *, attn_implementation: str = "sdpa"
) -> Trunk:
    """Load a trunk by registered name, local folder or hub id; all hidden states are returned."""
    load_plugins()
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return _load_dir(local, attn_implementation)
    if name_or_path in TRUNKS:
        entry: TrunkEntry = TRUNKS.get(name_or_path)
        if entry.builder is not None:
            built = entry.builder(attn_implementation)
            return _finish(built.model, built.tokenizer)
        name_or_path = entry.hub_id or entry.name
    elif "/" not in name_or_path:
        TRUNKS.canonical(name_or_path)  # raises UnknownNameError with close names
    hint = " (e.g. `--trunk /path/to/xlm-roberta-large` or `--set trunk.name=/path/to/folder`)"
    path = resolve_model_dir(name_or_path, revision, hint=hint)
    return _load_dir(path, attn_implementation)


def attention_for(trunk: TrunkConfig, precision: str) -> str:
    """The attention implementation a run uses: ``trunk.attn_implementation``; ``auto`` is eager where
    ``precision`` resolves to bf16 (:func:`mmxfer.runs.env.resolve_precision`), else sdpa."""
    if trunk.attn_implementation != "auto":
        return trunk.attn_implementation
    from mmxfer.runs.env import resolve_precision

    return "eager" if resolve_precision(precision) == "bf16" else "sdpa"


def load_profile_trunk(name_or_path: str, trunk: TrunkConfig, precision: str = "no") -> Trunk:
    """``name_or_path`` (a profile's trunk, or a phase-2 folder trained from it) read with the profile's ``trunk``
    settings (revision, attention implementation for the run's ``precision``). Every phase and the retrieval
    evaluation load it this way, so they compute the same states (and share the frozen-layer cache, whose key holds
    the attention implementation)."""
    return load_trunk(
        name_or_path, trunk.revision, attn_implementation=attention_for(trunk, precision)
    )


def forget_call_settings(tokenizer: Any) -> None:
    """Clear the truncation and padding that a fast tokenizer's backend keeps from its last call (every call sets
    its own): saved, they would make a folder's tokenizer.json differ from the one it was read from, and the
    tokenizer cache would hold the same 250k-piece tokenizer twice; hashed, they would make a feature-cache key
    depend on what the tokenizer did before."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()


def save_trunk(model: nn.Module, tokenizer, out_dir: str | os.PathLike) -> Path:
    """Write only the trunk (safetensors weights, config, tokenizer) to ``out_dir``, atomically."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        forget_call_settings(tokenizer)
        tokenizer.save_pretrained(str(tmp))
        sealed.seal(tmp, SEAL_FILE)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@dataclass
class LoadReport:
    """What :func:`load_state_partial` did: loaded keys, keys it dropped, keys the module kept as they were."""

    loaded: list[str]
    dropped: list[str]  # in the state dict but not in the module (e.g. an old head)
    missing: list[str]  # in the module but not in the state dict (kept at their current values)
    mismatched: list[str]  # same name, different shape (dropped)

    def summary(self) -> str:
        def short(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... (+{len(keys) - 5})" if len(keys) > 5 else "")

        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.dropped:
            parts.append(f"dropped {len(self.dropped)} unexpected: {short(self.dropped)}")
        if self.missing:
            parts.append(
                f"{len(self.missing)} missing (kept as initialised): {short(self.missing)}"
            )
        if self.mismatched:
            parts.append(
                f"{len(self.mismatched)} shape-mismatched (dropped): {short(self.mismatched)}"
            )
        return "; ".join(parts)


def load_state_partial(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, log_level: int = logging.INFO
) -> LoadReport:
    """Load the keys of ``state_dict`` that match ``module`` by name and shape; report the rest."""
    own = module.state_dict()
    loaded, dropped, mismatched = [], [], []
    usable = {}
    for key, value in state_dict.items():
        if key not in own:
            dropped.append(key)
        elif tuple(own[key].shape) != tuple(value.shape):
            mismatched.append(key)
        else:
            usable[key] = value
            loaded.append(key)
    missing = sorted(k for k in own if k not in usable and k not in mismatched)
    module.load_state_dict(usable, strict=False)
    report = LoadReport(sorted(loaded), sorted(dropped), missing, sorted(mismatched))
    log.log(log_level, "partial load into %s: %s", type(module).__name__, report.summary())
    return report
