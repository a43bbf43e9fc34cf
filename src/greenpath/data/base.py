"""Internal representation of a loaded (not yet resized) dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ImageAt = Callable[[int], Image.Image | np.ndarray]


@dataclass
class RawSplit:
    """One split: labels known up front, images decoded on demand by ``image_at(i)``.

    ``labels`` is int64 (N,) or float32 (N, K) for multi-label data. Decoding on demand
    lets a subset be chosen from the labels before any image is decoded.
    """

    labels: np.ndarray
    image_at: ImageAt

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class RawDataset:
    """A dataset as its loader returns it. ``val is None``: no official split."""

    train: RawSplit
    val: RawSplit | None
    class_names: list[str]
    source: str
    multilabel: bool = False
    synthetic: bool = False
    info: dict[str, Any] = field(default_factory=dict)


# loader(data_root, download, options) -> RawDataset
Loader = Callable[[Path, bool, dict[str, Any]], RawDataset]


@dataclass(frozen=True)
class DatasetEntry:
    """A registry entry.

    Attributes:
        name: registry name (lower case, used in configs and file names).
        loader: returns the :class:`RawDataset`.
        description: one line for listings and docs.
        options: dataset-specific option names accepted in the config (e.g. ``per_class``).
        offline: True when no file under the data root is needed, or it ships with Debian.
    """

    name: str
    loader: Loader
    description: str
    options: frozenset[str] = frozenset()
    offline: bool = False
