"""Model definitions and the :func:`build_model` factory.

Shapes: every model maps a float32 batch ``(B, in_channels, image_size, image_size)`` to
logits ``(B, num_classes)`` (no softmax/sigmoid; the loss applies it).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

#: Model names accepted by :func:`build_model` (and by the config schema's ``model.name``).
MODEL_NAMES: tuple[str, ...] = ("small_cnn", "vgg16_head")

#: File name of torchvision's VGG16 ImageNet weights (``VGG16_Weights.IMAGENET1K_V1``).
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"
VGG16_WEIGHTS_URL = "https://download.pytorch.org/models/" + VGG16_WEIGHTS_FILE


class ModelError(ValueError):
    """A model cannot be built with the requested options (the message says how to fix it)."""


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks, global average pooling and one linear layer.

    Block i (i = 1, 2, 3) is ``Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU`` with
    ``width * 2**(i-1)`` channels; blocks 1 and 2 are followed by a 2x2 max-pool, block 3
    by adaptive average pooling to 1x1. Works for any ``image_size >= 4``.

    Module names: ``features.block{1,2,3}.{conv,bn,relu}``, ``features.pool{1,2}``,
    ``pool``, ``classifier`` (the last layer). The last block is ``features.block3`` plus
    ``classifier``.
    """

    last_layer: tuple[str, ...] = ("classifier",)
    last_block: tuple[str, ...] = ("features.block3", "classifier")
    always_frozen: tuple[str, ...] = ()

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(3):
            layers[f"block{i + 1}"] = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                    bn=nn.BatchNorm2d(chans[i + 1]),
                    relu=nn.ReLU(inplace=True),
                )
            )
            if i < 2:
                layers[f"pool{i + 1}"] = nn.MaxPool2d(2)
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` float -> logits ``(B, num_classes)``."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class _RepeatChannels(nn.Module):
    """Greyscale ``(B, 1, H, W)`` -> ``(B, 3, H, W)`` so an RGB base can read it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class VGG16Head(nn.Module):
    """The paper's model: VGG16 convolutional base (frozen) + a dense head.

    Head, as in the paper's Keras model: ``Flatten -> Dense(4096, relu) -> Dense(4096,
    relu) -> Dropout(0.5) -> Dense(num_classes)``. The base is torchvision's
    ``vgg16().features`` (13 conv layers, 5 max-pools, no BatchNorm), so the flattened
    feature size is ``512 * (image_size // 32) ** 2`` (512 at the paper's 32x32).

    Module names: ``adapt`` (greyscale -> RGB), ``base`` (always frozen),
    ``head.{flatten,fc1,relu1,fc2,relu2,dropout,out}``; the last layer is ``head.out``,
    the last block is ``head`` (the whole trainable head).
    """

    last_layer: tuple[str, ...] = ("head.out",)
    last_block: tuple[str, ...] = ("head",)
    always_frozen: tuple[str, ...] = ("base",)

    def __init__(self, base: nn.Module, num_classes: int, image_size: int) -> None:
        super().__init__()
        side = image_size // 32
        self.adapt = _RepeatChannels()
        self.base = base
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(512 * side * side, 4096),
                relu1=nn.ReLU(inplace=True),
                fc2=nn.Linear(4096, 4096),
                relu2=nn.ReLU(inplace=True),
                dropout=nn.Dropout(0.5),
                out=nn.Linear(4096, num_classes),
            )
        )
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` float -> logits ``(B, num_classes)``."""
        return self.head(self.base(self.adapt(x)))


def vgg16_weights_path() -> Path:
    """Where torchvision caches the VGG16 ImageNet weights: ``<torch hub dir>/checkpoints/``.

    The hub dir is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``); see
    ``torch.hub.get_dir``.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE


def _vgg16_base(pretrained: bool) -> nn.Module:
    """torchvision's VGG16 ``features`` (configuration "D"), optionally with ImageNet weights.

    Only the convolutional base is built (not the 120M-parameter ImageNet classifier); the
    pretrained file's ``features.*`` tensors are loaded into it.
    """
    from torchvision.models.vgg import cfgs, make_layers

    path = vgg16_weights_path()
    if pretrained and not path.is_file():
        raise ModelError(
            f"model.pretrained is true but the VGG16 ImageNet weights are not cached at "
            f"{path}. greenpath never downloads them during training. On a machine with "
            'network access run\n  python -c "import torchvision; '
            "torchvision.models.vgg16(weights='IMAGENET1K_V1')\"\n"
            f"(or download {VGG16_WEIGHTS_URL}) and copy the file to {path} "
            "(set TORCH_HOME to use another cache), or set model.pretrained: false."
        )
    features = make_layers(cfgs["D"], batch_norm=False)
    if pretrained:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            sub = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
            features.load_state_dict(sub)
        except Exception as exc:  # noqa: BLE001 - corrupt/foreign file
            raise ModelError(
                f"cannot load VGG16 weights from {path} ({exc}); delete the file and fetch "
                "it again as described for a missing file"
            ) from exc
    return features


def build_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    pretrained: bool = False,
    width: int = 16,
) -> nn.Module:
    """Build a model by name; parameters are float32 on the CPU.

    Initialisation uses torch's global RNG: seed it (``torch.manual_seed``) first for
    reproducible weights.

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: number of output logits K (>= 1).
        in_channels: input channels C (1 or 3).
        image_size: input side length in pixels (``small_cnn``: >= 4; ``vgg16_head``:
            >= 32, because the VGG16 base halves the side five times).
        pretrained: ``vgg16_head`` only: load ImageNet weights from the torch cache
            (:func:`vgg16_weights_path`); ignored by ``small_cnn``.
        width: ``small_cnn`` channels of the first block (doubles per block).

    Raises:
        ModelError: unknown name, bad sizes, or pretrained weights not cached.
    """
    if num_classes < 1:
        raise ModelError(f"num_classes = {num_classes}; a model needs at least one class")
    if in_channels not in (1, 3):
        raise ModelError(f"in_channels = {in_channels}; use 1 (greyscale) or 3 (RGB)")
    if name == "small_cnn":
        if image_size < 4:
            raise ModelError(f"image_size = {image_size}; small_cnn needs image_size >= 4")
        if width < 1:
            raise ModelError(f"width = {width}; use a positive number of channels")
        return SmallCNN(num_classes, in_channels=in_channels, width=width)
    if name == "vgg16_head":
        if image_size < 32:
            raise ModelError(
                f"image_size = {image_size}; vgg16_head needs image_size >= 32 (its base "
                "halves the side five times). Set data.image_size: 32 or use small_cnn."
            )
        return VGG16Head(_vgg16_base(pretrained), num_classes, image_size)
    raise ModelError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")


def layer_groups(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """Module-name prefixes of a model's ``last_layer``, ``last_block`` and ``always_frozen``.

    Raises:
        ModelError: the model was not built by :func:`build_model` (no such attributes).
    """
    try:
        return {
            "last_layer": tuple(model.last_layer),
            "last_block": tuple(model.last_block),
            "always_frozen": tuple(model.always_frozen),
        }
    except AttributeError as exc:
        raise ModelError(
            f"{type(model).__name__} does not name its last layer/block; build it with "
            "greenpath.models.build_model"
        ) from exc
