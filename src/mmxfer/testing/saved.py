"""The tiny models written to disk, so tests and the rehearsal use the real loading paths.

* :func:`tiny_trunk_dir` - the ``tiny`` trunk (random-init 2-layer XLM-R, hidden 32, XLM-R-shaped fast
  tokenizer) saved with ``save_pretrained`` as a Hugging Face folder: ``trunk.name=<folder>`` goes through
  ``AutoTokenizer``/``AutoModel.from_pretrained`` exactly as ``FacebookAI/xlm-roberta-large`` does.
* :func:`tiny_vision_checkpoint` - an open_clip-style checkpoint (``visual.*`` tensors, safetensors) for
  the shipped ``tiny-vit`` tower: ``vision.checkpoint=<file>`` goes through the checkpoint reader.
* :func:`tiny_spm_model` - a SentencePiece model trained on the tiny tokenizer's multilingual text, standing in
  for the FLORES-200 SentencePiece model of spBLEU (``MMXFER_FLORES200_SPM``) where the real one cannot be
  downloaded: spBLEU then runs its real code path on the fixtures.

All are made once into ``$MMXFER_CACHE/testing`` (atomically: a temporary folder, sealed, renamed into place)
under a key that hashes the code that builds them and the library versions that write them, and are
reused by every later call, in this process and others.

Both are registered by name, so a profile can use them anywhere (the ``rehearsal`` profile does):
``trunk.name: rehearsal-xlmr`` loads :func:`tiny_trunk_dir` through the folder path, and
``vision: {model: rehearsal-vit, pretrained: rehearsal}`` reads :func:`tiny_vision_checkpoint` through the
checkpoint reader; each is made on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from mmxfer import assets
from mmxfer.catalog import TRUNKS, VISION_TOWERS
from mmxfer.models.trunk import Trunk, TrunkEntry, load_trunk
from mmxfer.models.vision import TowerEntry
from mmxfer.runs import sealed

log = logging.getLogger(__name__)

FORMAT = "1"  # bump when what these folders hold changes in a way the source hash cannot see
TOWER_FILE = "open_clip_model.safetensors"
SPM_FILE = "flores200-rehearsal.model"


def _key(*parts: str) -> str:
    import transformers

    h = hashlib.sha256()
    for part in (FORMAT, torch.__version__, transformers.__version__, *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _source(module: str) -> str:
    import importlib

    return Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")


def _made_once(folder: Path, make: Callable[[Path], None]) -> Path:
    """``folder``, made by ``make(tmp)`` into a temporary sibling, sealed and renamed into place if absent; made
    again when it no longer matches its checksums (:mod:`mmxfer.runs.sealed`)."""
    problem = sealed.damage(folder)
    if problem is None:
        return folder
    if problem:
        log.warning("%s; making it again", problem)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        make(tmp)
        sealed.seal(tmp)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete or damaged folder
        try:
            os.replace(tmp, folder)
        except OSError:  # another process renamed its copy first: same content, use it
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def tiny_trunk_dir(root: str | os.PathLike | None = None) -> Path:
    """A Hugging Face folder (``config.json``, ``model.safetensors``, ``tokenizer.json``) of the ``tiny`` trunk.

    ``root``: where to keep it (default ``$MMXFER_CACHE/testing``). Same weights and tokenizer as
    :func:`mmxfer.testing.tiny.tiny_trunk`.
    """
    base = Path(root) if root is not None else assets.cache_dir("testing")

    def make(tmp: Path) -> None:
        from mmxfer.testing.tiny import tiny_trunk

        model, tokenizer = tiny_trunk()
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))

    return _made_once(base / f"tiny-xlmr-{_key(_source('mmxfer.testing.tiny'))}", make)


def tiny_vision_checkpoint(root: str | os.PathLike | None = None) -> Path:
    """An open_clip checkpoint file (``visual.*`` tensors, safetensors) for the shipped ``tiny-vit`` tower.

    The weights are a seeded random init, different from the tower's own init, so a test can tell
    that they were loaded.
    """
    base = Path(root) if root is not None else assets.cache_dir("testing")
    config = (
        Path(__file__).resolve().parent.parent / "resources" / "open_clip" / "tiny-vit.json"
    ).read_text("utf-8")

    def make(tmp: Path) -> None:
        from safetensors.torch import save_file

        from mmxfer.models.vision import VisionTower, tower_config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1234)
            tower = VisionTower("tiny-vit", tower_config("tiny-vit"))
            for p in tower.parameters():  # visibly not the default init
                torch.nn.init.normal_(p, std=0.05)
        state = {
            f"visual.{k}": v.detach().contiguous().clone()
            for k, v in tower.visual.state_dict().items()
        }
        save_file(state, str(tmp / TOWER_FILE), metadata={"format": "pt"})

    return (
        _made_once(base / f"tiny-vit-{_key(config, _source('mmxfer.models.vision'))}", make)
        / TOWER_FILE
    )


def tiny_spm_model(root: str | os.PathLike | None = None) -> Path:
    """A SentencePiece model file (unigram, 300 pieces) of the tiny tokenizer's text, which every fixture sentence
    is made of; deterministic (one training thread), so spBLEU scores repeat on every machine."""
    base = Path(root) if root is not None else assets.cache_dir("testing")

    def make(tmp: Path) -> None:
        import sentencepiece as spm

        from mmxfer.testing.tiny import _TEXT

        lines = [line for line in _TEXT.splitlines() if line.strip()]
        with (tmp / SPM_FILE).open("wb") as handle:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines * 3),
                model_writer=handle,
                vocab_size=300,
                hard_vocab_limit=False,
                character_coverage=1.0,
                num_threads=1,
                minloglevel=2,
            )

    import sentencepiece

    return (
        _made_once(
            base / f"tiny-spm-{_key(_source('mmxfer.testing.tiny'), sentencepiece.__version__)}",
            make,
        )
        / SPM_FILE
    )


def _saved_trunk(attn_implementation: str = "sdpa") -> Trunk:
    return load_trunk(str(tiny_trunk_dir()), attn_implementation=attn_implementation)


TRUNKS.add(
    TrunkEntry(
        "rehearsal-xlmr",
        builder=_saved_trunk,
        description="the tiny trunk saved as a Hugging Face folder, loaded from it (rehearsal)",
    ),
    "rehearsal-xlmr",
)
VISION_TOWERS.add(
    TowerEntry(
        "rehearsal-vit",
        "tiny-vit with a saved open_clip checkpoint, pretrained: rehearsal",
        architecture="tiny-vit",
        checkpoints={"rehearsal": lambda: tiny_vision_checkpoint()},
    ),
    "rehearsal-vit",
)
