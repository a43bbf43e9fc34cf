"""The fit loop: epochs, one energy window and one record row per epoch, callbacks.

:func:`fit` is the whole loop (Lightning's fit loop is the model). What one job changes
while it runs is one :class:`Loop`; the interventions (layer freezing, mixed precision),
early stopping and outside deciders are callbacks (:mod:`greenpath.training.callbacks`)
that change it. Setting a job up (checkpoint, model, resume state) and writing its outputs
is :mod:`greenpath.training.engine`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from greenpath.training.data import STREAM_EPOCH_RNG, TensorData, epoch_order, mix_seed
from greenpath.training.precision import Precision

if TYPE_CHECKING:  # pragma: no cover
    from greenpath.training.callbacks import Callback, Intervention

#: ``evaluate_fn(model, epoch) -> (val_loss, val_accuracy)``: replaces the validation pass
#: (tests, controllers).
EvaluateFn = Callable[[nn.Module, int], tuple[float, float]]


class TrainingError(RuntimeError):
    """A training job cannot run as configured (the message names the problem and fix)."""


@dataclass
class Loop:
    """What one training job changes while it runs (the callbacks' view of the job).

    Attributes:
        name: ``"<dataset> seed <s> <method>@<k>"`` for log lines.
        model, optimizer, data, device: the job's objects (``optimizer`` is replaced when
            layers are frozen).
        seed: the tree seed (data order and per-epoch RNG).
        epoch: completed epochs (starts at the job's start epoch).
        end: the last epoch this job may train.
        batch_size: rows per step.
        precision: the precision epochs run in; ``scaler`` its GradScaler (fp16 on CUDA).
        labels: record columns describing the run (method, intervention epoch, precision,
            frozen layers, dataset sizes, ...), copied into every row.
        frozen: names of the frozen modules (saved in checkpoints).
        rows: record rows of this job so far (a resumed job's earlier rows included).
        diverged: the epoch whose loss was non-finite, or None.
        resumed: this attempt continues a saved job state.
        stop_requested: a callback asked to stop after the current epoch.
        metadata: extra key/value pairs for the records' Parquet metadata.
        interventions: the job's interventions by method (``freeze``, ``quant``).
    """

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    data: TensorData
    device: torch.device
    seed: int
    epoch: int
    end: int
    batch_size: int
    precision: Precision
    labels: dict[str, Any]
    scaler: torch.amp.GradScaler | None = None
    frozen: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    diverged: int | None = None
    resumed: bool = False
    stop_requested: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    interventions: dict[str, Intervention] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """True while another epoch should run."""
        return self.epoch < self.end and self.diverged is None and not self.stop_requested


def loss_function(multilabel: bool) -> nn.Module:
    """Cross-entropy (class indices) or BCE with logits (multi-label 0/1 targets)."""
    return nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()


def _correct(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Number of correct predictions (single-label) or correct label bits (multi-label)."""
    if multilabel:
        return ((logits > 0).to(y.dtype) == y).sum()
    return (logits.argmax(dim=1) == y).sum()


def _units(y: torch.Tensor, multilabel: bool) -> int:
    return int(y.numel()) if multilabel else int(y.shape[0])


def _scaled_step(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> torch.Tensor:
    """Backward and step through ``scaler``; a 0-d int64 tensor, 1 when the step was skipped.

    The scale tensor is compared on the device (no host sync per step): the scaler lowers
    it exactly when it skipped ``optimizer.step()`` for inf/NaN gradients.
    """
    scaler.scale(loss).backward()
    before = scaler._scale.detach().clone()  # type: ignore[union-attr]
    scaler.step(optimizer)
    scaler.update()
    return (scaler._scale < before).to(torch.int64).sum()  # type: ignore[operator]


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorData,
    order: torch.Tensor,
    *,
    batch_size: int,
    precision: Precision,
    scaler: torch.amp.GradScaler | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """One pass over the training split in ``order``; returns the epoch's statistics.

    Calls ``model.train()`` first (frozen BatchNorm stays in eval, see
    :mod:`greenpath.training.freezing`). Losses are computed in fp32 on the autocast
    logits with ``loss_fn`` (default :func:`loss_function` of the data). With a GradScaler,
    a step whose update lowered the scale was skipped by the scaler (inf/NaN gradients)
    and is counted in ``amp_skipped_steps``.

    Returns:
        ``train_loss`` (mean per sample; NaN/inf if any batch was non-finite),
        ``train_accuracy`` (fraction), ``amp_skipped_steps``, ``optimizer_steps``,
        ``grad_scale_end`` (NaN without a scaler).
    """
    model.train()
    loss_fn = loss_fn or loss_function(data.multilabel)
    n, dev = data.train_size, data.x_train.device
    order = order.to(dev)
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    skipped = torch.zeros((), dtype=torch.int64, device=dev)
    units = steps = 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb = data.x_train.index_select(0, idx)
        yb = data.y_train.index_select(0, idx)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(xb)
        logits = logits.float()
        loss = loss_fn(logits, yb)
        if scaler is not None:
            skipped += _scaled_step(loss, optimizer, scaler)
        else:
            loss.backward()
            optimizer.step()
        steps += 1
        loss_sum += loss.detach().double() * idx.numel()
        correct += _correct(logits.detach(), yb, data.multilabel)
        units += _units(yb, data.multilabel)
    n_skipped = int(skipped.item())
    return {
        "train_loss": float(loss_sum.item()) / n,
        "train_accuracy": float(correct.item()) / max(units, 1),
        "amp_skipped_steps": n_skipped,
        "optimizer_steps": steps - n_skipped,
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
    loss_fn = loss_function(data.multilabel)
    dev = data.x_val.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    units = 0
    for start in range(0, n, batch_size):
        xb = data.x_val[start : start + batch_size]
        yb = data.y_val[start : start + batch_size]
        with precision.autocast():
            logits = model(xb)
        logits = logits.float()
        loss_sum += loss_fn(logits, yb).double() * xb.shape[0]
        correct += _correct(logits, yb, data.multilabel)
        units += _units(yb, data.multilabel)
    return float(loss_sum.item()) / n, float(correct.item()) / max(units, 1)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _primitive(value: Any) -> Any:
    """A value the ``weights_only`` unpickler accepts (numpy scalars -> Python, datetimes -> ISO)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return _iso(value)
    return value


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_epoch(loop: Loop, epoch: int, meter: Any, evaluate_fn: EvaluateFn | None) -> dict[str, Any]:
    """Train and validate 1-based ``epoch`` inside one meter window; return its record row.

    The global torch RNG is seeded from (seed, epoch) and the data order is
    :func:`~greenpath.training.data.epoch_order`, so any job reproduces an uninterrupted
    run's epoch. A non-finite training or validation loss gives status ``diverged``.
    """
    torch.manual_seed(mix_seed(loop.seed, epoch, STREAM_EPOCH_RNG))
    order = epoch_order(loop.seed, epoch, loop.data.train_size)
    window = meter.begin()
    start_utc = getattr(window, "start_utc", None) or datetime.now(UTC)
    t0 = time.perf_counter()
    stats = train_one_epoch(
        loop.model, loop.optimizer, loop.data, order, batch_size=loop.batch_size,
        precision=loop.precision, scaler=loop.scaler,
    )  # fmt: skip
    _sync(loop.device)
    t1 = time.perf_counter()
    if evaluate_fn is not None:
        val_loss, val_acc = evaluate_fn(loop.model, epoch)
    else:
        val_loss, val_acc = evaluate(
            loop.model, loop.data, batch_size=loop.batch_size, precision=loop.precision
        )
    _sync(loop.device)
    t2 = time.perf_counter()
    m = meter.end(window)
    energy = meter.record_fields(m) if hasattr(meter, "record_fields") else m.record_fields(None)
    finite = math.isfinite(stats["train_loss"]) and math.isfinite(val_loss)
    amp = loop.scaler is not None
    row = dict(
        loop.labels,
        epoch=epoch,
        status="ok" if finite else "diverged",
        status_reason=None
        if finite
        else f"non-finite loss (train {stats['train_loss']!r}, val {val_loss!r}); "
        "training stopped after this epoch",
        train_loss=stats["train_loss"],
        train_accuracy=stats["train_accuracy"],
        val_loss=float(val_loss),
        val_accuracy=float(val_acc),
        lr=float(loop.optimizer.param_groups[0]["lr"]),
        epoch_start_utc=_iso(start_utc),
        duration_s=float(getattr(m, "wall_s", t2 - t0)),
        train_s=t1 - t0,
        eval_s=t2 - t1,
        amp_skipped_steps=int(stats["amp_skipped_steps"]) if amp else None,
        grad_scale_end=stats["grad_scale_end"] if amp else None,
        **dict(energy),
    )
    return {k: _primitive(v) for k, v in row.items()}


def fit(
    loop: Loop,
    callbacks: Sequence[Callback],
    meter: Any,
    *,
    evaluate_fn: EvaluateFn | None = None,
    restore: Callable[[Loop], None] | None = None,
    save: Callable[[Loop], None] | None = None,
) -> None:
    """Run ``loop`` to its end: epochs until ``end``, a divergence or a stop request.

    Args:
        loop: the job's state, at its start (or resumed) epoch.
        callbacks: called in order (:class:`~greenpath.training.callbacks.Callback`).
        meter: energy meter (``begin() -> window``, ``end(window) -> measurement``).
        evaluate_fn: replaces the validation pass.
        restore: called after ``on_train_begin`` (a resumed job loads its saved
            optimizer, scaler and RNG states there).
        save: called after each epoch's callbacks (saves the job's resume state).
    """
    for cb in callbacks:
        cb.on_train_begin(loop)
    if restore is not None:
        restore(loop)
    while loop.running:
        epoch = loop.epoch + 1
        for cb in callbacks:
            cb.on_epoch_start(loop, epoch)
        row = run_epoch(loop, epoch, meter, evaluate_fn)
        loop.rows.append(row)
        loop.epoch = epoch
        if row["status"] == "diverged":
            loop.diverged = epoch
        for cb in callbacks:
            cb.on_epoch_end(loop, row)
        if save is not None:
            save(loop)
    for cb in callbacks:
        cb.on_train_end(loop)
