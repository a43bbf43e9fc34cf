"""Atomic checkpoint files and RNG state capture.

A checkpoint is a dict of tensors and primitive containers only (str, int, float, bool,
None, list, tuple, dict), written with ``torch.save`` to a temporary file in the target's
directory, fsynced and renamed over the target (:func:`greenpath.records.atomic_path`), and
read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.

Checkpoint keys (``FORMAT`` = 1):

``format``, ``kind`` (``"checkpoint"`` or ``"state"``), ``epoch`` (completed epochs),
``model`` (state_dict), ``optimizer`` (state_dict), ``scaler`` (GradScaler state_dict or
None), ``scheduler`` (None: no scheduler is configured), ``rng`` (see :func:`rng_state`),
``data_order`` (scheme, seed, next epoch), ``early_stopping`` (state or None), ``diverged``
(epoch or None), ``frozen`` (frozen module names), ``meta`` (model name, sizes, config
hash); all built by :func:`checkpoint_dict`. Job state files add the keys of
:class:`greenpath.training.resume.ResumeState`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from greenpath.records import atomic_path
from greenpath.training.data import ORDER_SCHEME

FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or of another format (the message names it)."""


def rng_state() -> dict[str, Any]:
    """Global RNG states: torch (CPU, and CUDA if initialised), numpy, python ``random``.

    numpy's and python's states are stored as tensors/ints so the dict loads with
    ``weights_only=True``.
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "state": [int(v) for v in py_state[1]],
            "gauss_next": py_state[2],
        },
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["key"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` to ``path`` atomically (temp file, fsync, rename).

    Raises:
        greenpath.records.RecordsError: the directory is not writable or the disk is full;
            ``path`` is then left as it was and no temporary file remains.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def load_checkpoint(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Args:
        path: the file.
        kind: if given, the required ``kind`` entry (``"checkpoint"`` or ``"state"``).

    Raises:
        CheckpointError: missing file, unreadable/unsafe content, or another format/kind.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; run the job that writes it first")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise CheckpointError(
            f"checkpoint {path} is unreadable or not a greenpath checkpoint ({exc}); "
            "delete it and rerun the job that writes it"
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {obj.get('format') if isinstance(obj, dict) else None!r}, "
            f"this greenpath reads {FORMAT}; delete it and rerun the job that writes it"
        )
    if kind is not None and obj.get("kind") != kind:
        raise CheckpointError(f"{path} is a {obj.get('kind')!r} file, expected {kind!r}")
    return obj


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Delete temporary files an interrupted :func:`save_checkpoint` of ``path`` left.

    Returns the number removed. They are named ``.<name>.*.tmp`` (see ``atomic_path``).
    """
    path = Path(path)
    n = 0
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            try:
                tmp.unlink()
                n += 1
            except OSError:
                pass
    return n


def checkpoint_dict(
    *,
    kind: str,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    seed: int,
    meta: dict[str, Any],
    frozen: list[str],
    early_stopping: dict[str, Any] | None,
    diverged: int | None,
) -> dict[str, Any]:
    """The checkpoint of a model and its training state after ``epoch`` epochs.

    The one builder of the keys listed in the module docstring (``kind`` ``"checkpoint"``
    for the files later jobs start from, ``"state"`` for a job's resume state, which adds
    its own keys). The global RNG states are captured here (:func:`rng_state`).
    """
    return {
        "format": FORMAT,
        "kind": kind,
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "scheduler": None,
        "rng": rng_state(),
        "data_order": {"scheme": ORDER_SCHEME, "seed": int(seed), "next_epoch": int(epoch) + 1},
        "early_stopping": early_stopping,
        "diverged": diverged,
        "frozen": list(frozen),
        "meta": dict(meta),
    }
