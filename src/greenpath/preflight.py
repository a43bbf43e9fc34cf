"""Pre-flight check of a config before any job: data, pretrained weights, device.

The workflow calls :func:`preflight_problems` once while it plans the jobs (also in a dry
run, where the problems are printed instead of stopping it), so every problem surfaces in
one message with its fix instead of one failed job at a time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: torchvision's VGG16 ImageNet weights file (``greenpath.models.build.VGG16_WEIGHTS_FILE``;
#: repeated here so that the check does not import torch).
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"


def dataset_problems(config: Mapping[str, Any]) -> list[str]:
    """A line per configured dataset that is neither on disk nor downloadable.

    A torchvision dataset is on disk when every path its loader requires exists under
    ``data.root``; it is downloadable when ``data.download`` is true and torchvision's
    download works (StanfordCars, SUN397 and Birdsnap never do: their line says where to
    place the files). The offline datasets come from installed packages.
    """
    from greenpath.data import OFFLINE_DATASETS
    from greenpath.data.torchvision_sets import SPECS

    root = Path(config["data"]["root"])
    download = bool(config["data"].get("download"))
    out = []
    for name in config["datasets"]:
        spec = SPECS.get(name)
        if name in OFFLINE_DATASETS or spec is None:
            continue
        missing = [r for r in spec.required if not (root / r).exists()]
        if not missing:
            continue
        if download and spec.can_download and not spec.broken_download:
            continue
        why = spec.broken_download if download and spec.broken_download else (
            "data.download is false" if not download else "it cannot be downloaded"
        )  # fmt: skip
        out.append(
            f"dataset {name}: {', '.join(str(root / m) for m in missing)} missing and {why}. "
            f"Fix: {spec.manual or 'place its files under ' + str(root)} ({spec.homepage})"
        )
    return out


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: ``$TORCH_HOME/hub``, where
    ``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch`` (``~/.cache/torch``)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def cuda_device_count() -> int:
    """CUDA devices NVML sees (0 without a driver); no torch import, so it is quick."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVIDIA driver / library: no CUDA device
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


def weights_problems(config: Mapping[str, Any]) -> list[str]:
    """A line when ``vgg16_head`` with ``pretrained: true`` finds no weights in the torch cache."""
    model = config.get("model") or {}
    if model.get("name") != "vgg16_head" or not model.get("pretrained"):
        return []
    path = torch_hub_dir() / "checkpoints" / VGG16_WEIGHTS_FILE
    if path.is_file():
        return []
    return [
        f"model.pretrained: the VGG16 ImageNet weights are not in the torch cache ({path}). "
        'Fix: on a machine with network run `python -c "import torchvision; '
        "torchvision.models.vgg16(weights='IMAGENET1K_V1')\"` and copy the file to that "
        "path (or set TORCH_HOME to a cache that has it), or set model.pretrained: false"
    ]


def device_problems(config: Mapping[str, Any]) -> list[str]:
    """A line when ``training.device`` is CUDA and this machine has no usable CUDA device."""
    device = str(config["training"].get("device", "cpu"))
    if not device.startswith("cuda"):
        return []
    index = int(device.split(":")[1]) if ":" in device else 0
    count = cuda_device_count()
    if index < count:
        return []
    return [
        f"training.device = {device!r} but this machine has {count} CUDA device(s). Fix: run "
        "on a GPU node (on SLURM, submit with the slurm profile: the check is then left to "
        "the compute node), or set training.device: cpu"
    ]


def preflight_problems(config: Mapping[str, Any], *, check_device: bool = True) -> list[str]:
    """Every problem of a checked config on this machine, each with its fix.

    Args:
        check_device: also check ``training.device``; false where the jobs run elsewhere
            (a SLURM login node submitting to GPU nodes).
    """
    problems = dataset_problems(config) + weights_problems(config)
    if check_device:
        problems += device_problems(config)
    return problems


def format_problems(problems: list[str]) -> str:
    """The one message listing ``problems``."""
    return "greenpath pre-flight: {} problem(s) before any job:\n  - {}".format(
        len(problems), "\n  - ".join(problems)
    )
