"""The training engine: trunk segments and branches, per-epoch records, resumable jobs.

One (dataset, seed) tree is trained as (see :mod:`greenpath.grid`):

- :func:`init_checkpoint` -- epoch-0 checkpoint (model initialised from the seed);
- :func:`run_trunk_segment` -- trunk (method ``base``) epochs ``start+1..end`` from the
  checkpoint at ``start``, writing the checkpoint at ``end``;
- :func:`run_branch` -- method ``freeze`` or ``quant`` from the trunk checkpoint at the
  intervention epoch k, epochs ``k+1..E``.

Every job writes one records Parquet file (one row per epoch, ``RECORD_SCHEMA``) and saves
its full state after every epoch, so a killed job continues from its last complete epoch
on rerun without measuring any epoch twice (issue 7). See ``docs/training.md``.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

import greenpath
from greenpath.config import config_hash
from greenpath.models import build_model
from greenpath.records import RECORD_SCHEMA, write_records
from greenpath.training import checkpoint as ckpt_io
from greenpath.training.data import (
    ORDER_SCHEME,
    STREAM_EPOCH_RNG,
    STREAM_INIT,
    TensorData,
    epoch_order,
    mix_seed,
    tensor_data,
)
from greenpath.training.early_stopping import EarlyStopping
from greenpath.training.freezing import (
    freeze_all_but,
    freeze_modules,
    frozen_layer_names,
    rebuild_optimizer,
)
from greenpath.training.precision import Precision, full_precision, resolve_precision
from greenpath.training.warmup import warm_up

log = logging.getLogger("greenpath.training")

#: Methods that train (``stop`` reuses the trunk and trains nothing).
TRAINING_METHODS: tuple[str, ...] = ("base", "freeze", "quant")

#: ``evaluate_fn(model, epoch) -> (val_loss, val_accuracy)``: replaces the validation pass
#: (tests, controllers).
EvaluateFn = Callable[[nn.Module, int], tuple[float, float]]

#: Actions an epoch-end callback may return (``None`` = ``"continue"``); see
#: :class:`EpochCallback`.
CALLBACK_ACTIONS: tuple[str, ...] = ("continue", "freeze", "quant", "stop")


class EpochCallback(Protocol):
    """What ``train_epochs(callbacks=[...])`` calls (e.g. ``greenpath.control.Controller``).

    The engine calls the callback, never the reverse. Every method is optional except
    ``on_epoch_end``; each may return an action of :data:`CALLBACK_ACTIONS` (or ``None``):
    ``freeze`` freezes all but ``methods.freeze.trainable`` from the next epoch (the
    engine's freezing routine), ``quant`` switches to mixed precision from the next epoch,
    ``stop`` ends training after this epoch (records only for epochs that ran).
    ``state_dict()`` is saved in the job's resume state after every epoch and given back
    to ``load_state_dict`` when a killed job is rerun.
    """

    def on_epoch_end(
        self, epoch: int, row: Mapping[str, Any], model: nn.Module
    ) -> str | None: ...  # pragma: no cover


class TrainingError(RuntimeError):
    """A training job cannot run as configured (the message names the problem and fix)."""


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def versions_json() -> str:
    """JSON of the package versions stored in every record (greenpath, torch, python, numpy)."""
    return json.dumps(
        {
            "greenpath": greenpath.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        sort_keys=True,
    )


def _device(config: Mapping[str, Any]) -> torch.device:
    name = str(config["training"].get("device", "cpu"))
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            f"training.device = {name!r} but torch sees no CUDA device here "
            f"(torch {torch.__version__}); set training.device: cpu or run on a GPU node"
        )
    return dev


def _load_dataset(path: Path) -> Any:
    try:
        from greenpath.data import load_prepared
    except ImportError:  # the data package may not re-export it
        from greenpath.data.prepared import load_prepared
    return load_prepared(Path(path))


def _make_meter(config: Mapping[str, Any], device: torch.device) -> Any:
    try:
        from greenpath.energy import make_meter
    except ImportError:
        from greenpath.energy.factory import make_meter
    return make_meter(config.get("energy") or None, device=str(device))


def _energy_fields(meter: Any, measurement: Any) -> dict[str, Any]:
    if hasattr(meter, "record_fields"):
        return dict(meter.record_fields(measurement))
    return dict(measurement.record_fields(None))


def make_optimizer(config: Mapping[str, Any], params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The configured optimizer over ``params``.

    ``adam``: ``torch.optim.Adam(lr)`` with torch defaults (betas 0.9/0.999, eps 1e-8), the
    paper's optimizer (Keras Adam 1e-3; Keras' eps is 1e-7, a negligible difference).
    ``sgd``: ``torch.optim.SGD(lr, momentum=0.9)``.
    """
    t = config["training"]
    lr = float(t.get("lr", 1e-3))
    name = t.get("optimizer", "adam")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise TrainingError(f"training.optimizer = {name!r}; choose adam or sgd")


def _build(config: Mapping[str, Any], ds: Any) -> nn.Module:
    m = config["model"]
    return build_model(
        m["name"],
        num_classes=int(ds.num_classes),
        in_channels=int(ds.x_train.shape[3]),
        image_size=int(ds.x_train.shape[1]),
        pretrained=bool(m.get("pretrained", False)),
        width=int(m.get("width", 16)),
    )


def _loss_fn(multilabel: bool) -> nn.Module:
    return nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()


def _correct(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Number of correct predictions (single-label) or correct label bits (multi-label)."""
    if multilabel:
        return ((logits > 0).to(y.dtype) == y).sum()
    return (logits.argmax(dim=1) == y).sum()


def _units(y: torch.Tensor, multilabel: bool) -> int:
    return int(y.numel()) if multilabel else int(y.shape[0])


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, batch_size)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorData,
    order: torch.Tensor,
    *,
    batch_size: int,
    precision: Precision,
    scaler: torch.amp.GradScaler | None,
) -> dict[str, float]:
    """One pass over the training split in ``order``; returns the epoch's statistics.

    Calls ``model.train()`` first (frozen BatchNorm stays in eval, see
    :mod:`greenpath.training.freezing`). Losses are computed in fp32 on the autocast
    logits. With a GradScaler, a step whose update lowered the scale was skipped by the
    scaler (inf/NaN gradients) and is counted in ``amp_skipped_steps``.

    Returns:
        ``train_loss`` (mean per sample; NaN/inf if any batch was non-finite),
        ``train_accuracy`` (fraction), ``amp_skipped_steps``, ``optimizer_steps``,
        ``grad_scale_end`` (NaN without a scaler).
    """
    model.train()
    loss_fn = _loss_fn(data.multilabel)
    n = data.train_size
    order = order.to(data.x_train.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.x_train.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.x_train.device)
    units = 0
    skipped = 0
    skipped_t = torch.zeros((), dtype=torch.int64, device=data.x_train.device)
    steps = 0
    for start in _batches(n, batch_size):
        idx = order[start : start + batch_size]
        xb = data.x_train.index_select(0, idx)
        yb = data.y_train.index_select(0, idx)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(xb)
        logits = logits.float()
        loss = loss_fn(logits, yb)
        if scaler is not None:
            scaler.scale(loss).backward()
            # compare the scale tensor on the device (no host sync per step); the scaler
            # lowers it exactly when it skipped optimizer.step() for inf/NaN gradients
            scale_t = getattr(scaler, "_scale", None)
            if isinstance(scale_t, torch.Tensor):
                before = scale_t.detach().clone()
                scaler.step(optimizer)
                scaler.update()
                skipped_t += (scaler._scale < before).to(torch.int64).sum()
            else:  # pragma: no cover - scaler disabled or internals changed
                scale_before = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                skipped += int(scaler.get_scale() < scale_before)
            steps += 1
        else:
            loss.backward()
            optimizer.step()
            steps += 1
        loss_sum += loss.detach().double() * idx.numel()
        correct += _correct(logits.detach(), yb, data.multilabel)
        units += _units(yb, data.multilabel)
    skipped += int(skipped_t.item())
    return {
        "train_loss": float(loss_sum.item()) / n,
        "train_accuracy": float(correct.item()) / max(units, 1),
        "amp_skipped_steps": skipped,
        "optimizer_steps": steps - skipped,
        "grad_scale_end": float(scaler.get_scale()) if scaler is not None else math.nan,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module, data: TensorData, *, batch_size: int, precision: Precision
) -> tuple[float, float]:
    """Validation ``(mean loss, accuracy fraction)`` in eval mode, under the job's precision.

    Multi-label accuracy is the mean binary accuracy over all (image, label) pairs with
    threshold 0.5 on the sigmoid (Keras ``"accuracy"`` with binary cross-entropy).
    Returns ``(nan, nan)`` for an empty validation split.
    """
    model.eval()
    n = data.val_size
    if n == 0:
        return math.nan, math.nan
    loss_fn = _loss_fn(data.multilabel)
    dev = data.x_val.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    units = 0
    for start in _batches(n, batch_size):
        xb = data.x_val[start : start + batch_size]
        yb = data.y_val[start : start + batch_size]
        with precision.autocast():
            logits = model(xb)
        logits = logits.float()
        loss_sum += loss_fn(logits, yb).double() * xb.shape[0]
        correct += _correct(logits, yb, data.multilabel)
        units += _units(yb, data.multilabel)
    return float(loss_sum.item()) / n, float(correct.item()) / max(units, 1)


def default_state_path(out_records: Path, state_dir: Path | None = None) -> Path:
    """Where a job keeps its resume state: ``<state_dir or records dir>/.<records name>.state.pt``."""
    out_records = Path(out_records)
    return Path(state_dir or out_records.parent) / f".{out_records.name}.state.pt"


def _primitive(value: Any) -> Any:
    """A value the ``weights_only`` unpickler accepts (numpy scalars -> Python, datetimes -> ISO)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return _fmt_start(value)
    return value


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _fmt_start(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _tqdm(total: int, desc: str) -> Any:
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="epoch", leave=False)


def _checkpoint_dict(
    *,
    kind: str,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    seed: int,
    meta: dict[str, Any],
    frozen: list[str],
    early_stopping: EarlyStopping | None,
    diverged: int | None,
) -> dict[str, Any]:
    return {
        "format": ckpt_io.FORMAT,
        "kind": kind,
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "scheduler": None,
        "rng": ckpt_io.rng_state(),
        "data_order": {"scheme": ORDER_SCHEME, "seed": int(seed), "next_epoch": int(epoch) + 1},
        "early_stopping": early_stopping.state_dict() if early_stopping is not None else None,
        "diverged": diverged,
        "frozen": list(frozen),
        "meta": dict(meta),
    }


def _meta(config: Mapping[str, Any], ds: Any) -> dict[str, Any]:
    return {
        "model": config["model"]["name"],
        "num_classes": int(ds.num_classes),
        "in_channels": int(ds.x_train.shape[3]),
        "image_size": int(ds.x_train.shape[1]),
        "config_hash": config_hash(config),
    }


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def init_checkpoint(config: dict, *, dataset_path: Path, seed: int, out_checkpoint: Path) -> None:
    """Write the epoch-0 checkpoint of one (dataset, seed) tree.

    The model is initialised with torch's RNG seeded from ``mix_seed(seed, 0, init)``, so
    the initial weights are a pure function of (config, dataset shape, seed). The optimizer
    covers every trainable parameter (not the frozen VGG16 base).

    Raises:
        greenpath.data.DataError: the prepared dataset is missing or corrupt.
        greenpath.models.ModelError: the model cannot be built (e.g. weights not cached).
        greenpath.records.RecordsError: the checkpoint directory is not writable.
    """
    ds = _load_dataset(dataset_path)
    torch.manual_seed(mix_seed(seed, 0, STREAM_INIT))
    model = _build(config, ds)
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    obj = _checkpoint_dict(
        kind="checkpoint",
        epoch=0,
        model=model,
        optimizer=optimizer,
        scaler=None,
        seed=seed,
        meta=_meta(config, ds),
        frozen=[],
        early_stopping=None,
        diverged=None,
    )
    ckpt_io.save_checkpoint(obj, out_checkpoint)
    log.info("initial checkpoint for seed %d written to %s", seed, out_checkpoint)


def run_trunk_segment(
    config: dict,
    *,
    dataset: str,
    dataset_path: Path,
    seed: int,
    start: int,
    end: int,
    in_checkpoint: Path,
    out_checkpoint: Path,
    out_records: Path,
    state_dir: Path | None = None,
    meter: Any = None,
    callbacks: Sequence[EpochCallback] | None = None,
) -> pd.DataFrame:
    """Train trunk (method ``base``) epochs ``start+1..end`` and write the checkpoint at ``end``.

    Args:
        config: checked config (:func:`greenpath.config.check_config`).
        dataset: dataset name (stored in the records).
        dataset_path: the prepared ``.npz``.
        seed: tree seed.
        start, end: the segment (``0 <= start < end <= training.epochs``).
        in_checkpoint: checkpoint after ``start`` epochs.
        out_checkpoint: checkpoint to write after ``end`` epochs.
        out_records: records Parquet to write (rows for epochs ``start+1..end``).
        state_dir: where to keep the resume state (default: ``out_records``' folder).
        meter: an energy meter (default: ``greenpath.energy.make_meter(config["energy"])``).
        callbacks: epoch-end hooks, see :func:`train_epochs` (default none).

    Returns:
        The records written, one row per epoch.
    """
    return train_epochs(
        config,
        dataset=dataset,
        dataset_path=dataset_path,
        seed=seed,
        method="base",
        intervention_epoch=0,
        start=start,
        end=end,
        in_checkpoint=in_checkpoint,
        out_checkpoint=out_checkpoint,
        out_records=out_records,
        state_dir=state_dir,
        meter=meter,
        callbacks=callbacks,
    )


def run_branch(
    config: dict,
    *,
    dataset: str,
    dataset_path: Path,
    seed: int,
    method: str,
    intervention_epoch: int,
    in_checkpoint: Path,
    out_records: Path,
    state_dir: Path | None = None,
    meter: Any = None,
    callbacks: Sequence[EpochCallback] | None = None,
) -> pd.DataFrame:
    """Train one branch: ``method`` from the trunk checkpoint at ``intervention_epoch`` k to
    the last epoch E (rows k+1..E).

    Args:
        method: ``freeze`` or ``quant`` (``base`` continues the trunk unchanged, used to
            check branch-from-checkpoint; ``stop`` trains nothing and is rejected).
        intervention_epoch: k; ``in_checkpoint`` must hold the trunk state after k epochs.

    Other arguments as :func:`run_trunk_segment`.

    Raises:
        TrainingError: ``method`` is ``stop`` or unknown.
    """
    return train_epochs(
        config,
        dataset=dataset,
        dataset_path=dataset_path,
        seed=seed,
        method=method,
        intervention_epoch=intervention_epoch,
        start=intervention_epoch,
        end=int(config["training"]["epochs"]),
        in_checkpoint=in_checkpoint,
        out_checkpoint=None,
        out_records=out_records,
        state_dir=state_dir,
        meter=meter,
        callbacks=callbacks,
    )


def train_epochs(
    config: dict,
    *,
    dataset: str,
    dataset_path: Path,
    seed: int,
    method: str,
    intervention_epoch: int,
    start: int,
    end: int,
    in_checkpoint: Path,
    out_records: Path,
    out_checkpoint: Path | None = None,
    state_dir: Path | None = None,
    meter: Any = None,
    early_stopping: EarlyStopping | None = None,
    evaluate_fn: EvaluateFn | None = None,
    callbacks: Sequence[EpochCallback] | None = None,
) -> pd.DataFrame:
    """The general resumable job behind :func:`run_trunk_segment` and :func:`run_branch`.

    Loads ``in_checkpoint`` (epoch ``start``), re-applies the layers it records as frozen,
    applies ``method`` (``freeze``: freeze all but ``methods.freeze.trainable``; ``quant``:
    mixed precision per :func:`~greenpath.training.precision.resolve_precision`), then
    trains epochs ``start+1..end``. Each epoch: global torch RNG seeded from (seed, epoch),
    data order from (seed, epoch), one energy window over train + eval, one record row, one
    log line, then the job state is saved atomically. Stops early after an epoch whose loss
    is non-finite (status ``diverged``) or when ``early_stopping`` says so; with
    ``early_stopping`` the best epoch's weights are restored at the end in every case.

    Args:
        out_checkpoint: write the final state here (epoch = last trained epoch).
        early_stopping: optional patience rule on validation accuracy (not used by the
            workflow; see :class:`EarlyStopping`). Its state is part of the job state.
        evaluate_fn: replaces the validation pass (``(model, epoch) -> (loss, accuracy)``).
        callbacks: epoch-end hooks (:class:`EpochCallback`), called in order after each
            epoch's row (and ``on_train_begin(start, model)`` before the first epoch, when
            defined); the actions they return are applied from the next epoch: rows after a
            switch at epoch d carry ``method`` = the new method and ``intervention_epoch``
            = d. Their ``state_dict()`` and the applied actions are part of the job state.

    Returns:
        The records written (``RECORD_SCHEMA`` columns that the job fills).

    Raises:
        TrainingError: bad method/epochs, or the checkpoint does not match the job.
        greenpath.training.checkpoint.CheckpointError: unreadable checkpoint.
    """
    if method not in TRAINING_METHODS:
        raise TrainingError(
            f"method {method!r} does not train; choose one of {list(TRAINING_METHODS)} "
            "(stop paths reuse the trunk records)"
        )
    total = int(config["training"]["epochs"])
    if not 0 <= start < end <= total:
        raise TrainingError(
            f"epochs {start}..{end}: need 0 <= start < end <= training.epochs = {total}"
        )
    out_records = Path(out_records)
    device = _device(config)
    batch_size = int(config["training"].get("batch_size", 64))
    chash = config_hash(config)

    ds = _load_dataset(dataset_path)
    ck = ckpt_io.load_checkpoint(in_checkpoint, kind="checkpoint")
    if int(ck["epoch"]) != start:
        raise TrainingError(
            f"{in_checkpoint} holds the state after epoch {ck['epoch']}, but this job starts "
            f"after epoch {start}; rerun the job that writes it"
        )
    meta = _meta(config, ds)
    for key in ("model", "num_classes", "in_channels", "image_size"):
        if ck["meta"].get(key) != meta[key]:
            raise TrainingError(
                f"{in_checkpoint} was made for {key} = {ck['meta'].get(key)!r}, this job has "
                f"{meta[key]!r}; delete the tree's checkpoints and rerun"
            )
    if ck["data_order"].get("scheme") != ORDER_SCHEME:
        raise TrainingError(f"{in_checkpoint} uses data order {ck['data_order'].get('scheme')!r}")

    model = _build(config, ds)
    model.load_state_dict(ck["model"])
    model.to(device)
    if ck.get("frozen"):
        freeze_modules(model, ck["frozen"])
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    optimizer.load_state_dict(ck["optimizer"])
    data = tensor_data(ds).to(device)
    # A job that continues a run warms the fresh process up first, unmeasured and in the
    # checkpoint's state, so its first epoch does not pay costs an uninterrupted run paid
    # once in epoch 1 (greenpath.training.warmup; seen on an H200).
    warm_up_s: float | None = None
    if start > 0 and ck.get("diverged") is None:
        warm_up_s = warm_up(
            model,
            data,
            batch_size=batch_size,
            precision=full_precision(device),
            loss_fn=_loss_fn(data.multilabel),
        )
        log.info("warm-up before epoch %d: %.3f s (not measured)", start + 1, warm_up_s)

    precision = full_precision(device)
    scaler: torch.amp.GradScaler | None = None
    method_frozen: list[str] = list(ck.get("frozen") or [])
    if method == "freeze":
        trainable = (config.get("methods") or {}).get("freeze", {}).get("trainable", "last_layer")
        method_frozen = sorted(set(method_frozen) | set(freeze_all_but(model, trainable)))
        optimizer = rebuild_optimizer(optimizer, model)
    elif method == "quant":
        requested = (config.get("methods") or {}).get("quant", {}).get("dtype", "auto")
        precision = resolve_precision(requested, device)
        if precision.use_scaler:
            scaler = torch.amp.GradScaler(device.type)
            if ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
    frozen_names = frozen_layer_names(model)
    callbacks = list(callbacks or [])
    applied: list[list[Any]] = []  # [action, epoch] switches returned by the callbacks
    stop_after: int | None = None

    base_row = {
        "study": str(config["study"]),
        "dataset": dataset,
        "seed": int(seed),
        "model": config["model"]["name"],
        "method": method,
        "intervention_epoch": int(intervention_epoch),
        "device": str(device),
        "precision_requested": precision.requested,
        "precision_effective": precision.effective,
        "frozen_layers": ",".join(frozen_names) if frozen_names else None,
        "num_classes": int(ds.num_classes),
        "train_size": int(ds.x_train.shape[0]),
        "val_size": int(ds.x_val.shape[0]),
        "image_size": int(ds.x_train.shape[1]),
        "config_hash": chash,
        "versions": versions_json(),
    }
    extra_meta: dict[str, str] = {"config_hash": chash, "in_checkpoint": str(in_checkpoint)}
    if warm_up_s is not None:
        extra_meta["warm_up_s"] = f"{warm_up_s:.6f}"

    def apply_action(action: str | None, epoch: int) -> None:
        """Apply a callback's action after ``epoch`` (effective from epoch + 1)."""
        nonlocal optimizer, precision, scaler, method_frozen, stop_after
        action = action or "continue"
        if action not in CALLBACK_ACTIONS:
            raise TrainingError(
                f"callback returned action {action!r} after epoch {epoch}; "
                f"use one of {list(CALLBACK_ACTIONS)} or None"
            )
        if action == "continue":
            return
        if action == "stop":
            stop_after = int(epoch)
        elif action == "freeze":
            trainable = (
                (config.get("methods") or {}).get("freeze", {}).get("trainable", "last_layer")
            )
            method_frozen = sorted(set(method_frozen) | set(freeze_all_but(model, trainable)))
            optimizer = rebuild_optimizer(optimizer, model)
            names = frozen_layer_names(model)
            base_row.update(frozen_layers=",".join(names) if names else None)
        else:  # quant
            requested = (config.get("methods") or {}).get("quant", {}).get("dtype", "auto")
            new = resolve_precision(requested, device)
            if new.skipped:
                log.warning("quant after epoch %d not applied: %s", epoch, new.reason)
                return
            precision = new
            if precision.use_scaler and scaler is None:
                scaler = torch.amp.GradScaler(device.type)
            base_row.update(
                precision_requested=precision.requested,
                precision_effective=precision.effective,
            )
        if action != "stop":
            base_row.update(method=action, intervention_epoch=int(epoch))
        applied.append([action, int(epoch)])
        log.info("%s seed %d: %s applied after epoch %d", dataset, seed, action, epoch)

    # a quant branch without a supported precision: one skipped row, nothing trained (T3)
    if precision.skipped:
        log.warning(
            "%s %s@%d seed %d skipped: %s",
            dataset,
            method,
            intervention_epoch,
            seed,
            precision.reason,
        )
        row = dict(base_row, epoch=start + 1, status="skipped", status_reason=precision.reason)
        df = pd.DataFrame([row])
        write_records(df, out_records, metadata=extra_meta)
        return df

    job = {
        "dataset": dataset,
        "seed": int(seed),
        "method": method,
        "intervention_epoch": int(intervention_epoch),
        "start": int(start),
        "end": int(end),
        "config_hash": chash,
        "model": meta["model"],
    }
    state_path = default_state_path(out_records, state_dir)
    for own in (state_path, out_records, out_checkpoint):
        if own is not None:  # temp files a killed earlier attempt of this job left behind
            ckpt_io.remove_stale_temps(own)
    rows: list[dict[str, Any]] = []
    saved_meter_meta: dict[str, str] = {}
    done = start
    diverged: int | None = ck.get("diverged")
    resumed = False
    if state_path.is_file():
        try:
            st = ckpt_io.load_checkpoint(state_path, kind="state")
        except ckpt_io.CheckpointError as exc:
            log.warning("ignoring unreadable resume state %s: %s", state_path, exc)
            st = None
        if st is not None and st.get("job") == job:
            model.load_state_dict(st["model"])
            for action, at in st.get("applied") or []:  # live switches, before the optimizer
                apply_action(str(action), int(at))
            optimizer.load_state_dict(st["optimizer"])
            if scaler is not None and st.get("scaler"):
                scaler.load_state_dict(st["scaler"])
            if early_stopping is not None and st.get("early_stopping"):
                early_stopping.load_state_dict(st["early_stopping"])
            for cb, cb_state in zip(callbacks, st.get("callbacks") or [], strict=False):
                if cb_state is not None and hasattr(cb, "load_state_dict"):
                    cb.load_state_dict(cb_state)
            ckpt_io.set_rng_state(st["rng"])
            rows = [dict(r) for r in st["rows"]]
            done = int(st["epoch"])
            diverged = st.get("diverged")
            saved_meter_meta = dict(st.get("meter_metadata") or {})
            resumed = True
            log.info("resuming %s from %s after epoch %d", out_records.name, state_path, done)
        elif st is not None:
            log.warning("ignoring resume state %s of another job %s", state_path, st.get("job"))
    if not resumed:
        ckpt_io.set_rng_state(ck["rng"])
        if ck.get("diverged") is not None:
            log.warning(
                "%s starts from a checkpoint that diverged at epoch %s; nothing is trained",
                in_checkpoint,
                ck["diverged"],
            )

    def save_state(epoch: int) -> None:
        st = _checkpoint_dict(
            kind="state",
            epoch=epoch,
            model=model,
            optimizer=optimizer,
            scaler=scaler,
            seed=seed,
            meta=meta,
            frozen=method_frozen,
            early_stopping=early_stopping,
            diverged=diverged,
        )
        st["job"] = job
        st["rows"] = rows
        st["applied"] = [list(a) for a in applied]
        st["callbacks"] = [
            cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks
        ]
        st["meter_metadata"] = dict(meter.metadata()) if hasattr(meter, "metadata") else {}
        ckpt_io.save_checkpoint(st, state_path)
        _after_state_saved(epoch)

    own_meter = meter is None
    to_run = 0 if diverged is not None else end - done
    if own_meter and to_run > 0:
        meter = _make_meter(config, device)
    bar = _tqdm(to_run, f"{dataset} s{seed} {method}@{intervention_epoch}") if to_run else None
    try:
        epoch = done
        if not resumed and diverged is None:
            for cb in callbacks:
                if hasattr(cb, "on_train_begin"):
                    apply_action(cb.on_train_begin(start, model), start)
        while epoch < end and diverged is None and stop_after is None:
            if early_stopping is not None and early_stopping.should_stop:
                break
            epoch += 1
            torch.manual_seed(mix_seed(seed, epoch, STREAM_EPOCH_RNG))
            order = epoch_order(seed, epoch, data.train_size)
            window = meter.begin()
            start_utc = getattr(window, "start_utc", None) or _now_iso()
            t0 = time.perf_counter()
            stats = train_one_epoch(
                model,
                optimizer,
                data,
                order,
                batch_size=batch_size,
                precision=precision,
                scaler=scaler,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t1 = time.perf_counter()
            if evaluate_fn is not None:
                val_loss, val_acc = evaluate_fn(model, epoch)
            else:
                val_loss, val_acc = evaluate(
                    model, data, batch_size=batch_size, precision=precision
                )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t2 = time.perf_counter()
            m = meter.end(window)
            energy = _energy_fields(meter, m)
            finite = math.isfinite(stats["train_loss"]) and math.isfinite(val_loss)
            status = "ok" if finite else "diverged"
            row = dict(
                base_row,
                epoch=epoch,
                status=status,
                status_reason=None
                if finite
                else f"non-finite loss (train {stats['train_loss']!r}, val {val_loss!r}); "
                "training stopped after this epoch",
                train_loss=stats["train_loss"],
                train_accuracy=stats["train_accuracy"],
                val_loss=float(val_loss),
                val_accuracy=float(val_acc),
                lr=float(optimizer.param_groups[0]["lr"]),
                epoch_start_utc=_fmt_start(start_utc),
                duration_s=float(getattr(m, "wall_s", t2 - t0)),
                train_s=t1 - t0,
                eval_s=t2 - t1,
                amp_skipped_steps=int(stats["amp_skipped_steps"]) if scaler is not None else None,
                grad_scale_end=stats["grad_scale_end"] if scaler is not None else None,
                **energy,
            )
            rows.append({k: _primitive(v) for k, v in row.items()})
            if not finite:
                diverged = epoch
                log.warning(
                    "%s seed %d %s@%d epoch %d diverged (%s); stopping this job",
                    dataset,
                    seed,
                    method,
                    intervention_epoch,
                    epoch,
                    row["status_reason"],
                )
            if early_stopping is not None:
                early_stopping.step(val_acc, epoch, model)
            log.info(
                "%s seed %d %s@%d epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f "
                "%.2f s %.1f J",
                dataset, seed, method, intervention_epoch, epoch, end,
                stats["train_loss"], stats["train_accuracy"], val_loss, val_acc,
                row["duration_s"], float(energy.get("energy_total_j") or math.nan),
            )  # fmt: skip
            if bar is not None:
                bar.update(1)
            if diverged is None:
                for cb in callbacks:
                    apply_action(cb.on_epoch_end(epoch, rows[-1], model), epoch)
            save_state(epoch)
    finally:
        if bar is not None:
            bar.close()
        if own_meter and meter is not None:
            meter.close()

    last = int(rows[-1]["epoch"]) if rows else done
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(last, model)
    if applied:
        extra_meta["callbacks.applied"] = json.dumps(applied)
    if early_stopping is not None:
        early_stopping.restore_best(model)
        extra_meta.update(
            {
                "early_stopping.best": repr(early_stopping.best),
                "early_stopping.best_epoch": repr(early_stopping.best_epoch),
                "early_stopping.stopped_epoch": repr(early_stopping.stopped_epoch),
                "early_stopping.patience": str(early_stopping.patience),
            }
        )
    if meter is not None and hasattr(meter, "metadata"):
        extra_meta = {**meter.metadata(), **extra_meta}
    else:  # nothing left to measure in this attempt: the measuring attempt's meter
        extra_meta = {**saved_meter_meta, **extra_meta}
    if out_checkpoint is not None:
        # A diverged trunk still writes its checkpoint (flagged) so later jobs can run and
        # record that there is nothing to train; its epoch is the segment end.
        final_epoch = end if diverged is not None else last
        obj = _checkpoint_dict(
            kind="checkpoint",
            epoch=final_epoch,
            model=model,
            optimizer=optimizer,
            scaler=scaler,
            seed=seed,
            meta=meta,
            frozen=method_frozen,
            early_stopping=early_stopping,
            diverged=diverged,
        )
        ckpt_io.save_checkpoint(obj, out_checkpoint)
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(RECORD_SCHEMA.names))
    write_records(df, out_records, metadata=extra_meta)
    try:
        state_path.unlink()
    except FileNotFoundError:
        pass
    return df


def _after_state_saved(epoch: int) -> None:
    """Hook called after each epoch's state is on disk (fault-injection tests patch it)."""
    return None


__all__ = [
    "CALLBACK_ACTIONS",
    "EpochCallback",
    "EvaluateFn",
    "TRAINING_METHODS",
    "TrainingError",
    "default_state_path",
    "evaluate",
    "init_checkpoint",
    "make_optimizer",
    "run_branch",
    "run_trunk_segment",
    "train_epochs",
    "train_one_epoch",
    "versions_json",
]
