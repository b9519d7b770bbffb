"""An open_clip *vision* tower, built without open_clip's text tower, and its preprocessing.

The tower is built from the model's architecture JSON (open_clip's ``model_configs`` or the
ones mmxfer ships in ``resources/open_clip``) with open_clip's vision-tower builder; only
``visual.*`` weights are read from a checkpoint. So no text tower is ever constructed (open_clip's
XLM-R text towers reach the hub even with ``pretrained=None``). A timm tower built without pooling
(``timm_pool: ""``, ``timm_proj: none``: open_clip's timm adapter) returns its feature map, read as one token
per position, or per cell of a ``token_grid`` x ``token_grid`` average pooling of it (a key of mmxfer's JSON).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmxfer import assets
from mmxfer.catalog import VISION_TOWERS
from mmxfer.config import VisionConfig
from mmxfer.errors import AssetError, UnknownNameError, suggest
from mmxfer.models import efficientnet

# open_clip, safetensors and huggingface_hub are imported when a tower is built: registering it stays fast

log = logging.getLogger(__name__)

RESOURCE_DIR = Path(__file__).resolve().parent.parent / "resources" / "open_clip"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TowerEntry:
    """A tower mmxfer ships: an open_clip-style architecture JSON in ``resources/open_clip`` (``architecture``,
    default the tower's name) and, optionally, named checkpoints: ``vision.pretrained: <tag>`` reads the file
    that ``checkpoints[tag]()`` returns (made on first use) as ``vision.checkpoint`` would; ``convert`` maps a
    checkpoint that names its tensors otherwise to open_clip's ``visual.*`` names."""

    name: str
    description: str
    architecture: str | None = None
    checkpoints: Mapping[str, Callable[[], Path]] = field(
        default_factory=dict, compare=False, repr=False
    )
    convert: Callable[[dict[str, torch.Tensor], str], dict[str, torch.Tensor]] | None = field(
        default=None, compare=False, repr=False
    )

    def model_config(self) -> dict[str, Any]:
        return json.loads(
            (RESOURCE_DIR / f"{self.architecture or self.name}.json").read_text("utf-8")
        )


VISION_TOWERS.add(
    TowerEntry("tiny-vit", "32px ViT, patch 16, width 48, 1 layer (tests)"), "tiny-vit"
)
VISION_TOWERS.add(
    TowerEntry("starter-vit", "64px ViT, patch 16, width 128, 4 layers, trained from scratch"),
    "starter-vit",
)
VISION_TOWERS.add(
    TowerEntry(
        "efficientnet-lite0",
        f"EfficientNet-Lite0, 224px, 1280-dim 7x7 map pooled to 3x3 tokens; pretrained: imagenet = "
        f"{efficientnet.PROVENANCE}",
        checkpoints={"imagenet": efficientnet.weights_path},
        convert=efficientnet.as_visual_state,
    ),
    "efficientnet-lite0",
)


def tower_config(name: str) -> dict[str, Any]:
    """The open_clip model config (``embed_dim``, ``vision_cfg``, ...) of a shipped or open_clip tower."""
    if name in VISION_TOWERS:
        return VISION_TOWERS.get(name).model_config()
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        choices = [*VISION_TOWERS.all_names(), *open_clip.list_models()]
        raise UnknownNameError(
            f"unknown vision tower {name!r}{suggest(name, choices)}; "
            f"run `mmxfer ls towers` or see open_clip.list_models()"
        )
    return cfg


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise AssetError(
            f"vision checkpoint not found: {path} (set vision.checkpoint to an open_clip checkpoint file)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AssetError(
            f"cannot read vision checkpoint {path}: {str(exc).splitlines()[0][:200]}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AssetError(f"vision checkpoint {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _pretrained_file(model: str, tag: str) -> Path:
    from open_clip import pretrained as oc_pretrained

    cfg = oc_pretrained.get_pretrained_cfg(model, tag)
    if not cfg:
        tags = oc_pretrained.list_pretrained_tags_by_model(model)
        raise UnknownNameError(
            f"open_clip model {model!r} has no pretrained tag {tag!r}{suggest(tag, tags)}; "
            f"known tags: {', '.join(tags) or 'none'}"
        )
    where = cfg.get("hf_hub") or cfg.get("url") or "?"
    try:
        if assets.is_offline() and cfg.get("hf_hub"):
            from huggingface_hub import hf_hub_download

            repo = cfg["hf_hub"].rstrip("/")
            last: Exception | None = None
            for fname in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
                try:
                    return Path(hf_hub_download(repo, fname, local_files_only=True))
                except Exception as exc:  # not in the local cache
                    last = exc
            raise last or FileNotFoundError(repo)
        path = oc_pretrained.download_pretrained(cfg)
        if not path:
            raise FileNotFoundError(where)
        return Path(path)
    except Exception:
        mode = (
            "offline (HF_HUB_OFFLINE is set) and not cached"
            if assets.is_offline()
            else "not reachable"
        )
        raise AssetError(
            f"open_clip weights {model}/{tag} ({where}) are {mode}; download the checkpoint file "
            f"(open_clip_model.safetensors) on a connected machine and pass it with "
            f"`--set vision.checkpoint=/path/to/open_clip_model.safetensors`"
        ) from None


class VisionTower(nn.Module):
    """An open_clip vision tower that returns patch tokens ``[B, N, D]``."""

    def __init__(self, name: str, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        from open_clip.model import CLIPVisionCfg, _build_vision_tower

        vcfg = dict(model_cfg["vision_cfg"])
        self.name = name
        timm = "timm_model_name" in vcfg
        # a timm trunk without pooling or projection gives its feature map [B, C, H, W]
        self.feature_map = timm and vcfg.get("timm_pool") == "" and vcfg.get("timm_proj") == "none"
        self.token_grid = model_cfg.get("token_grid")
        self.tokens_supported = self.feature_map or (
            not timm and not isinstance(vcfg.get("layers"), (list, tuple))
        )
        if self.tokens_supported and not timm:
            vcfg["output_tokens"] = True
        self.visual = _build_vision_tower(
            model_cfg["embed_dim"],
            CLIPVisionCfg(**vcfg),
            quick_gelu=bool(model_cfg.get("quick_gelu", False)),
        )
        self.image_size = vcfg.get("image_size", 224)
        if self.feature_map:
            self.width = int(self.visual.trunk.num_features)
        else:
            self.width = (
                int(vcfg["width"]) if self.tokens_supported else int(model_cfg["embed_dim"])
            )
        pre = model_cfg.get("preprocess_cfg", {})
        self.mean = tuple(pre.get("mean", OPENAI_MEAN))
        self.std = tuple(pre.get("std", OPENAI_STD))

    @property
    def hidden_size(self) -> int:
        return self.width

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.visual(pixel_values)
        if self.feature_map:
            if self.token_grid:
                out = torch.nn.functional.adaptive_avg_pool2d(out, int(self.token_grid))
            return out.flatten(2).transpose(1, 2)  # one token per position, row by row
        if self.tokens_supported:
            return out[1]
        return out.unsqueeze(1)  # towers without token output give their pooled vector as one token

    def load_visual_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
        if not visual:
            raise AssetError(
                f"{source} has no `visual.*` weights; is it an open_clip CLIP checkpoint?"
            )
        result = self.visual.load_state_dict(visual, strict=False)
        if result.missing_keys:
            raise AssetError(
                f"{source} does not fit vision tower {self.name!r}: missing "
                f"{', '.join(result.missing_keys[:5])}"
            )
        if result.unexpected_keys:
            log.info(
                "vision tower %s: ignored %d checkpoint keys",
                self.name,
                len(result.unexpected_keys),
            )

    def transform(self, is_train: bool = False):
        """open_clip's own image preprocessing for this tower."""
        import open_clip

        return open_clip.image_transform(
            self.image_size, is_train=is_train, mean=self.mean, std=self.std
        )


def _shipped_checkpoint(cfg: VisionConfig) -> Path:
    """The checkpoint file of a shipped tower's named checkpoint ``cfg.pretrained``."""
    entry: TowerEntry = VISION_TOWERS.get(cfg.model)
    if cfg.pretrained not in entry.checkpoints:
        tags = ", ".join(entry.checkpoints)
        raise AssetError(
            f"vision tower {cfg.model!r} has no pretrained weights {cfg.pretrained!r}"
            f"{'; it has: ' + tags if tags else ''}; set vision.pretrained to "
            f"{'one of them or ' if tags else ''}null, or pass vision.checkpoint"
        )
    return entry.checkpoints[cfg.pretrained]()


def build_vision_tower(cfg: VisionConfig) -> VisionTower:
    """Build the tower of ``cfg.model``; load ``cfg.checkpoint`` or ``cfg.pretrained`` weights; freeze if asked."""
    model_cfg = tower_config(cfg.model)
    if cfg.model not in VISION_TOWERS:
        from open_clip import pretrained as oc_pretrained

        pcfg = oc_pretrained.get_pretrained_cfg(cfg.model, cfg.pretrained) if cfg.pretrained else {}
        if pcfg:
            model_cfg = {
                **model_cfg,
                "preprocess_cfg": {
                    "mean": pcfg.get("mean", OPENAI_MEAN),
                    "std": pcfg.get("std", OPENAI_STD),
                },
            }
    tower = VisionTower(cfg.model, model_cfg)
    convert = VISION_TOWERS.get(cfg.model).convert if cfg.model in VISION_TOWERS else None
    path = None
    if cfg.checkpoint:
        path = Path(cfg.checkpoint).expanduser()
    elif cfg.pretrained:
        path = (
            _shipped_checkpoint(cfg)
            if cfg.model in VISION_TOWERS
            else _pretrained_file(cfg.model, cfg.pretrained)
        )
    if path is not None:
        state = _read_checkpoint(path)
        if convert is not None and not any(k.startswith("visual.") for k in state):
            state = convert(state, str(path))
        tower.load_visual_state(state, str(cfg.checkpoint or path))
    if cfg.freeze:
        tower.requires_grad_(False)
        tower.eval()
    return tower
