"""The dataset registry: one interface to prepare any dataset once as uint8 arrays.

``prepare_dataset`` loads a dataset through its registry entry (checking raw files first,
see :mod:`greenpath.data.integrity`), picks the validation split (the official one, else a
seeded stratified split), an optional seeded stratified subset, decodes and resizes only
the chosen images (:mod:`greenpath.data.imaging`) and writes one ``.npz`` atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from greenpath.data.base import DatasetEntry, RawDataset
from greenpath.data.errors import DataError
from greenpath.data.imaging import convert_many
from greenpath.data.offline import (
    FONT_DEFAULTS,
    load_digits_raw,
    load_fashion_mnist_raw,
    load_font_digits_raw,
    load_lfw_faces_raw,
)
from greenpath.data.prepared import PreparedDataset, save_prepared
from greenpath.data.splits import (
    STREAM_SUBSET_TRAIN,
    STREAM_SUBSET_VAL,
    rng_for,
    split_train_val,
    stratified_sample,
)
from greenpath.data.torchvision_sets import SPECS, TorchvisionSpec, load_torchvision_raw

log = logging.getLogger(__name__)

# Paper's 12 datasets (EAT-IT study design), in the order of config/paper.yaml.
PAPER_DATASETS = (
    "cifar10", "cifar100", "fgvc_aircraft", "stanford_cars", "sun397", "food101", "dtd",
    "oxford_iiit_pet", "caltech101", "flowers102", "voc", "birdsnap",
)  # fmt: skip
# Offline datasets of the default config.
OFFLINE_DATASETS = ("digits", "lfw_faces", "fashion_mnist", "font_digits")
# Keys of a per-dataset config block that map onto prepare_dataset arguments.
COMMON_KEYS = frozenset({"image_size", "channels", "subset", "val_fraction"})

REGISTRY: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> None:
    """Add ``entry`` to the registry (name must be new)."""
    if entry.name in REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry


def _tv_loader(
    spec: TorchvisionSpec, data_root: Path, download: bool, options: dict[str, Any]
) -> RawDataset:
    return load_torchvision_raw(spec, data_root, download)


register(
    DatasetEntry(
        "digits",
        load_digits_raw,
        "scikit-learn handwritten digits, 1797 images 8x8, 10 classes",
        offline=True,
    )
)
register(
    DatasetEntry(
        "lfw_faces",
        load_lfw_faces_raw,
        "scikit-image lfw_subset, 200 images 25x25, face / non_face",
        offline=True,
    )
)
register(
    DatasetEntry(
        "fashion_mnist",
        load_fashion_mnist_raw,
        "Fashion-MNIST 70000 images 28x28 (Debian dataset-fashion-mnist)",
        offline=True,
    )
)
register(
    DatasetEntry(
        "font_digits",
        load_font_digits_raw,
        "SYNTHETIC digits rendered from matplotlib's TrueType fonts with seeded jitter and noise",
        options=frozenset(FONT_DEFAULTS),
        offline=True,
    )
)
for _spec in SPECS.values():
    if _spec.name != "fashion_mnist":
        register(
            DatasetEntry(
                _spec.name, partial(_tv_loader, _spec), f"{_spec.source} ({_spec.homepage})"
            )
        )


def list_datasets() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(REGISTRY)


def get_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; DataError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(list_datasets())}."
        ) from None


def _check_args(
    name: str, image_size: int, channels: int, val_fraction: float, subset: Mapping | None
) -> None:
    if (
        not isinstance(image_size, int | np.integer)
        or isinstance(image_size, bool)
        or image_size < 1
    ):
        raise DataError(
            f"Dataset {name!r}: image_size must be a positive integer, got {image_size!r}."
        )
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"Dataset {name!r}: channels must be 1 or 3, got {channels!r}.")
    if not isinstance(val_fraction, int | float) or not 0.0 < float(val_fraction) < 1.0:
        raise DataError(f"Dataset {name!r}: val_fraction must be in (0, 1), got {val_fraction!r}.")
    if subset is not None:
        if not isinstance(subset, Mapping):
            raise DataError(
                f"Dataset {name!r}: subset must be a mapping like {{train: 2000, val: 500}}, got {subset!r}."
            )
        bad = sorted(set(subset) - {"train", "val"})
        if bad:
            raise DataError(f"Dataset {name!r}: unknown subset key(s) {bad}; allowed: train, val.")
        for key, value in subset.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1
            ):
                raise DataError(
                    f"Dataset {name!r}: subset.{key} must be a positive integer, got {value!r}."
                )


def _subset(
    name: str,
    split: str,
    labels: np.ndarray,
    idx: np.ndarray,
    n: int | None,
    seed: int,
    stream: int,
) -> np.ndarray:
    if n is None:
        return idx
    if n > len(idx):
        raise DataError(
            f"Dataset {name!r}: subset.{split}={n} exceeds the {len(idx)} {split} images available; "
            f"lower subset.{split} to at most {len(idx)} or remove it."
        )
    pick = stratified_sample(labels[idx], n, rng_for(seed, stream))
    return idx[pick]


def prepare_dataset(
    name: str,
    *,
    data_root: Path,
    out_path: Path,
    image_size: int,
    channels: int,
    seed: int = 0,
    subset: dict | None = None,
    val_fraction: float = 0.2,
    download: bool = False,
    options: Mapping[str, Any] | None = None,
) -> PreparedDataset:
    """Decode, split, subset and resize a dataset once; write it to ``out_path`` (.npz).

    Args:
        name: registry name (see :func:`list_datasets`).
        data_root: directory of raw files (torchvision layouts); bad files are moved to
            ``<data_root>/quarantine``.
        out_path: the ``.npz`` to write (atomically: temp file, fsync, ``os.replace``).
        image_size: output side length in pixels (bilinear, antialiased when shrinking).
        channels: 1 (grey, ITU-R 601-2 luma) or 3 (RGB; grey is repeated).
        seed: seed of the split, the subsets and synthetic data (same seed, same arrays).
        subset: ``{"train": N, "val": M}`` (either optional): seeded stratified subsets
            taken after the split.
        val_fraction: validation share for datasets without an official split.
        download: let torchvision download missing data (never used when an offline copy
            is present).
        options: dataset-specific options (e.g. ``{"per_class": 150}`` for font_digits).

    Returns:
        The :class:`PreparedDataset` that was written.

    Raises:
        DataError: unknown dataset or option, bad argument, missing or corrupt files,
            subset larger than the split, unwritable output.
    """
    entry = get_entry(name)
    _check_args(name, image_size, channels, val_fraction, subset)
    options = dict(options or {})
    unknown = sorted(set(options) - entry.options)
    if unknown:
        allowed = ", ".join(sorted(entry.options)) or "none"
        raise DataError(
            f"Dataset {name!r}: unknown option(s) {unknown}; allowed options: {allowed}."
        )
    start = time.perf_counter()
    raw = entry.loader(Path(data_root), bool(download), {**options, "seed": int(seed)})
    if raw.val is None:
        train_idx, val_idx = split_train_val(raw.train.labels, float(val_fraction), int(seed))
        val_split, split_kind = raw.train, f"seeded stratified split (val_fraction={val_fraction})"
    else:
        train_idx, val_idx = np.arange(len(raw.train)), np.arange(len(raw.val))
        val_split, split_kind = raw.val, "official"
    subset = dict(subset or {})
    train_idx = _subset(
        name, "train", raw.train.labels, train_idx, subset.get("train"), seed, STREAM_SUBSET_TRAIN
    )
    val_idx = _subset(
        name, "val", val_split.labels, val_idx, subset.get("val"), seed, STREAM_SUBSET_VAL
    )
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(
            f"Dataset {name!r}: empty split (train {len(train_idx)}, val {len(val_idx)} images)."
        )
    x_train = convert_many(raw.train.image_at, train_idx, image_size, channels)
    x_val = convert_many(val_split.image_at, val_idx, image_size, channels)
    dataset = PreparedDataset(
        name=name,
        x_train=x_train,
        y_train=raw.train.labels[train_idx],
        x_val=x_val,
        y_val=val_split.labels[val_idx],
        class_names=list(raw.class_names),
        multilabel=raw.multilabel,
        synthetic=raw.synthetic,
        source=raw.source,
        meta={
            "seed": int(seed),
            "subset": subset,
            "val_fraction": float(val_fraction),
            "split": split_kind,
            "options": options,
            "data_root": str(Path(data_root)),
            "raw_train_size": len(raw.train),
            "raw_val_size": len(raw.val) if raw.val is not None else None,
            **{k: v for k, v in raw.info.items() if isinstance(v, str | int | float | bool | list)},
        },
    )
    save_prepared(dataset, Path(out_path))
    log.info(
        "prepared %s: %d train / %d val images %dx%dx%d (%s) in %.2f s -> %s",
        name, dataset.train_size, dataset.val_size, image_size, image_size, channels,
        split_kind, time.perf_counter() - start, out_path,
    )  # fmt: skip
    return dataset


def dataset_arguments(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Map a greenpath config onto :func:`prepare_dataset` keyword arguments.

    ``config["data"]`` gives the defaults (``root``, ``download``, ``image_size``,
    ``channels``, ``val_fraction``, optional ``seed``); ``config["datasets"][name]`` may
    override ``image_size``, ``channels``, ``subset``, ``val_fraction`` and carry
    dataset-specific options (e.g. ``per_class``).

    Raises:
        DataError: the dataset is not in the config or not registered.
    """
    entry = get_entry(name)
    datasets = config.get("datasets") or {}
    if name not in datasets:
        raise DataError(
            f"Dataset {name!r} is not listed under `datasets:` in the config (listed: {sorted(datasets)})."
        )
    data = dict(config.get("data") or {})
    per = dict(datasets.get(name) or {})
    if "root" not in data:
        raise DataError("The config has no `data.root` (directory of raw dataset files).")
    options = {k: v for k, v in per.items() if k not in COMMON_KEYS}
    unknown = sorted(set(options) - entry.options)
    if unknown:
        allowed = sorted(COMMON_KEYS | entry.options)
        raise DataError(
            f"datasets.{name}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}."
        )
    return {
        "data_root": Path(data["root"]),
        "image_size": int(per.get("image_size", data.get("image_size", 32))),
        "channels": int(per.get("channels", data.get("channels", 3))),
        "val_fraction": float(per.get("val_fraction", data.get("val_fraction", 0.2))),
        "subset": per.get("subset"),
        "seed": int(data.get("seed", 0)),
        "download": bool(data.get("download", False)),
        "options": options,
    }


def prepare_from_config(name: str, config: Mapping[str, Any], out_path: Path) -> PreparedDataset:
    """Prepare dataset ``name`` as the config says and write it to ``out_path``."""
    return prepare_dataset(name, out_path=Path(out_path), **dataset_arguments(name, config))
