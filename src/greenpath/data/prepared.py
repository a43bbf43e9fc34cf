"""The prepared (decoded, resized, uint8) dataset and its ``.npz`` cache file.

A prepared dataset is written once by :func:`greenpath.data.prepare_dataset` and read by
every training job with :func:`load_prepared`; training never decodes images per epoch.

File layout (``numpy.savez``, no pickled objects, ``allow_pickle=False`` on load):

=============== ============================================================
key             content
=============== ============================================================
``x_train``     uint8 (N, H, W, C), C in {1, 3}
``y_train``     int64 (N,) class index, or float32 (N, K) 0/1 (multi-label)
``x_val``       uint8 (M, H, W, C)
``y_val``       like ``y_train`` with M rows
``class_names`` unicode array (K,)
``meta``        unicode scalar: JSON with name, multilabel, synthetic, source,
                format_version, train_size, val_size, image_size, channels
                and the preparation arguments
=============== ============================================================
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenpath.data.errors import DataError

FORMAT_VERSION = 1
_KEYS = ("x_train", "y_train", "x_val", "y_val", "class_names", "meta")


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset decoded once into uint8 arrays.

    Attributes:
        name: registry name, e.g. ``"digits"``.
        x_train: uint8 array (N, H, W, C), C in {1, 3}, H == W == image_size.
        y_train: int64 (N,) class indices for single-label data; float32 (N, K) 0/1
            indicators for multi-label data (VOC).
        x_val: uint8 array (M, H, W, C).
        y_val: labels of ``x_val``, same kind as ``y_train``.
        class_names: K class names; index i names label i.
        multilabel: True when labels are (N, K) indicator rows.
        synthetic: True for generated data (``font_digits``).
        source: where the images came from, e.g. ``"sklearn.datasets.load_digits"``.
        meta: extra provenance (preparation arguments); not needed for training.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]
    multilabel: bool
    synthetic: bool
    source: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        """Number of training images N."""
        return int(self.x_train.shape[0])

    @property
    def val_size(self) -> int:
        """Number of validation images M."""
        return int(self.x_val.shape[0])

    @property
    def image_size(self) -> int:
        """Side length H (== W) of every image, in pixels."""
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        """Number of channels C (1 or 3)."""
        return int(self.x_train.shape[3])

    def validate(self) -> None:
        """Check dtypes and shapes; raise :class:`DataError` naming the first problem."""
        problems: list[str] = []
        for split in ("train", "val"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] not in (1, 3):
                problems.append(f"x_{split} must be uint8 (N, H, W, 1|3), got {x.dtype} {x.shape}")
            elif x.shape[1] != x.shape[2]:
                problems.append(f"x_{split} images must be square, got {x.shape[1:3]}")
            if self.multilabel:
                if y.dtype != np.float32 or y.ndim != 2 or y.shape[1] != self.num_classes:
                    problems.append(
                        f"y_{split} must be float32 (N, {self.num_classes}), got {y.dtype} {y.shape}"
                    )
            elif y.dtype != np.int64 or y.ndim != 1:
                problems.append(f"y_{split} must be int64 (N,), got {y.dtype} {y.shape}")
            elif y.size and (y.min() < 0 or y.max() >= self.num_classes):
                problems.append(f"y_{split} has labels outside [0, {self.num_classes})")
            if x.ndim >= 1 and y.ndim >= 1 and x.shape[0] != y.shape[0]:
                problems.append(f"x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]}")
        if (
            self.x_train.ndim == 4
            and self.x_val.ndim == 4
            and self.x_train.shape[1:] != self.x_val.shape[1:]
        ):
            problems.append(
                f"train images {self.x_train.shape[1:]} != val images {self.x_val.shape[1:]}"
            )
        if problems:
            raise DataError(
                f"Prepared dataset {self.name!r} is inconsistent: " + "; ".join(problems)
            )


def save_prepared(dataset: PreparedDataset, out_path: Path) -> Path:
    """Write ``dataset`` to ``out_path`` (.npz) atomically.

    The arrays go to a temporary file in the same directory, which is flushed, fsynced and
    renamed over ``out_path`` with :func:`os.replace` (never a half file). On any
    error the temporary file is removed and ``out_path`` is left as it was.

    Raises:
        DataError: the directory cannot be created or written (e.g. disk full).
    """
    dataset.validate()
    out_path = Path(out_path)
    meta = dict(dataset.meta)
    meta.update(
        name=dataset.name,
        multilabel=dataset.multilabel,
        synthetic=dataset.synthetic,
        source=dataset.source,
        format_version=FORMAT_VERSION,
        train_size=dataset.train_size,
        val_size=dataset.val_size,
        image_size=dataset.image_size,
        channels=dataset.channels,
        num_classes=dataset.num_classes,
    )
    tmp_name: str | None = None
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp"
        )
        os.chmod(tmp_name, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                x_train=dataset.x_train,
                y_train=dataset.y_train,
                x_val=dataset.x_val,
                y_val=dataset.y_val,
                class_names=np.asarray(dataset.class_names, dtype=str),
                meta=np.asarray(json.dumps(meta, sort_keys=True)),
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, out_path)
        tmp_name = None
        _fsync_dir(out_path.parent)
    except OSError as exc:
        raise DataError(
            f"Cannot write prepared dataset {dataset.name!r} to {out_path}: {exc}. "
            "Check that the results directory exists, is writable and has free space."
        ) from exc
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return out_path


def _default_mode() -> int:
    """0o666 minus the process umask (mkstemp creates 0o600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_prepared(path: Path) -> PreparedDataset:
    """Read a prepared ``.npz`` written by :func:`save_prepared`.

    Returns:
        The :class:`PreparedDataset` (arrays fully loaded into memory).

    Raises:
        DataError: the file is missing, truncated, not an npz, lacks a key, has another
            format version, or has inconsistent arrays. The message names the file and
            says to rerun the prepare step.
    """
    path = Path(path)
    fix = "Delete it and rerun the prepare_dataset step (scripts/prepare_dataset.py)."
    if not path.is_file():
        raise DataError(
            f"Prepared dataset file {path} does not exist. Run scripts/prepare_dataset.py first."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _KEYS if k not in npz.files]
            if missing:
                raise DataError(f"Prepared dataset file {path} lacks {missing}. {fix}")
            arrays = {k: npz[k] for k in _KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(
            f"Prepared dataset file {path} is corrupt or truncated ({exc}). {fix}"
        ) from exc
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise DataError(f"Prepared dataset file {path} has unreadable metadata. {fix}") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"Prepared dataset file {path} has format_version {meta.get('format_version')!r}, "
            f"this greenpath reads {FORMAT_VERSION}. {fix}"
        )
    dataset = PreparedDataset(
        name=str(meta["name"]),
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_val=arrays["x_val"],
        y_val=arrays["y_val"],
        class_names=[str(c) for c in arrays["class_names"].tolist()],
        multilabel=bool(meta["multilabel"]),
        synthetic=bool(meta["synthetic"]),
        source=str(meta["source"]),
        meta=meta,
    )
    dataset.validate()
    return dataset
