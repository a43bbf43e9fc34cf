"""The training engine: trunk segments and branches, per-epoch records, resumable jobs.

One (dataset, seed) tree is trained as (see :mod:`greenpath.grid`):

- :func:`init_checkpoint` -- epoch-0 checkpoint (model initialised from the seed);
- :func:`run_trunk_segment` -- trunk (method ``base``) epochs ``start+1..end`` from the
  checkpoint at ``start``, writing the checkpoint at ``end``;
- :func:`run_branch` -- method ``freeze`` or ``quant`` from the trunk checkpoint at the
  intervention epoch k, epochs ``k+1..E``: the method's callback fires at epoch k.

Each is one :class:`Job` run by :func:`run_job`: load the start checkpoint, build the
model, warm a continuing job up, resume a killed attempt, run the fit loop
(:func:`greenpath.training.loop.fit`) with the interventions, early stopping and outside
deciders as callbacks, then write the records Parquet (one row per epoch,
``RECORD_SCHEMA``) and the final checkpoint. The job's state is saved after every epoch
(:mod:`greenpath.training.resume`), so a killed job continues from its last complete
epoch on rerun without measuring any epoch twice. See ``docs/training.md``.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

import greenpath
from greenpath.config import config_hash
from greenpath.data.prepared import load_prepared
from greenpath.models import build_model
from greenpath.records import RECORD_SCHEMA, write_records
from greenpath.training import checkpoint as ckpt_io
from greenpath.training.callbacks import (
    ActionCallback,
    Callback,
    EpochCallback,
    LayerFreezing,
    MixedPrecision,
    ProgressLog,
)
from greenpath.training.data import ORDER_SCHEME, STREAM_INIT, mix_seed, tensor_data
from greenpath.training.early_stopping import EarlyStopping
from greenpath.training.freezing import freeze_modules, frozen_layer_names
from greenpath.training.loop import (
    EvaluateFn,
    Loop,
    TrainingError,
    evaluate,
    fit,
    loss_function,
    train_one_epoch,
)
from greenpath.training.precision import full_precision, resolve_precision
from greenpath.training.resume import (
    ResumeState,
    default_state_path,
    early_stopping_state,
    save_state,
)
from greenpath.training.warmup import warm_up

log = logging.getLogger("greenpath.training")

#: Methods that train (``stop`` reuses the trunk and trains nothing).
TRAINING_METHODS: tuple[str, ...] = ("base", "freeze", "quant")

#: Optimizers of ``training.optimizer``.
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")


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
    name = str(config["training"]["device"])
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            f"training.device = {name!r} but torch sees no CUDA device here "
            f"(torch {torch.__version__}); set training.device: cpu or run on a GPU node"
        )
    return dev


def make_optimizer(config: Mapping[str, Any], params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The configured optimizer over ``params``.

    ``adam``: ``torch.optim.Adam(lr)`` with torch defaults (betas 0.9/0.999, eps 1e-8), the
    paper's optimizer (Keras Adam 1e-3; Keras' eps is 1e-7, a negligible difference).
    ``adamw``: ``torch.optim.AdamW(lr)`` (decoupled weight decay 0.01, torch's default).
    ``sgd``: ``torch.optim.SGD(lr, momentum=0.9)``.

    Raises:
        TrainingError: another ``training.optimizer``.
    """
    t = config["training"]
    lr = float(t["lr"])
    name = t["optimizer"]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise TrainingError(f"training.optimizer = {name!r}; choose one of {list(OPTIMIZERS)}")


def model_for(config: Mapping[str, Any], ds: Any) -> nn.Module:
    """The configured model (``config["model"]``) sized for prepared dataset ``ds``.

    Raises:
        greenpath.models.ModelError: the model cannot be built (e.g. weights not cached).
    """
    m = config["model"]
    return build_model(
        m["name"],
        num_classes=int(ds.num_classes),
        in_channels=int(ds.x_train.shape[3]),
        image_size=int(ds.x_train.shape[1]),
        pretrained=bool(m["pretrained"]),
        width=int(m["width"]),
    )


def _meta(config: Mapping[str, Any], ds: Any) -> dict[str, Any]:
    return {
        "model": config["model"]["name"],
        "num_classes": int(ds.num_classes),
        "in_channels": int(ds.x_train.shape[3]),
        "image_size": int(ds.x_train.shape[1]),
        "config_hash": config_hash(config),
    }


def _method_setting(config: Mapping[str, Any], method: str, key: str, default: str) -> str:
    """``methods.<method>.<key>``; ``default`` where the settings have no such section (the
    schema leaves a method's section optional, and a trunk job's settings carry none)."""
    return str(((config.get("methods") or {}).get(method) or {}).get(key, default))


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
    ds = load_prepared(Path(dataset_path))
    torch.manual_seed(mix_seed(seed, 0, STREAM_INIT))
    model = model_for(config, ds)
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    obj = ckpt_io.checkpoint_dict(
        kind="checkpoint", epoch=0, model=model, optimizer=optimizer, scaler=None, seed=seed,
        meta=_meta(config, ds), frozen=[], early_stopping=None, diverged=None,
    )  # fmt: skip
    ckpt_io.save_checkpoint(obj, out_checkpoint)
    log.info("initial checkpoint for seed %d written to %s", seed, out_checkpoint)


@dataclass(frozen=True)
class Job:
    """One training job: epochs ``start+1..end`` of ``method`` from ``in_checkpoint``.

    Attributes:
        dataset: dataset name (stored in the records).
        dataset_path: the prepared ``.npz``.
        seed: tree seed.
        method: ``base``, ``freeze`` or ``quant`` (the method's callback fires at ``start``).
        intervention_epoch: k, stored in the records (``start`` for a branch, 0 for the trunk).
        start, end: ``0 <= start < end <= training.epochs``.
        in_checkpoint: the checkpoint after ``start`` epochs.
        out_records: the records Parquet to write.
        out_checkpoint: the checkpoint to write at the end (None: none).
        state_dir: where to keep the resume state (default: ``out_records``' folder).
    """

    dataset: str
    dataset_path: Path
    seed: int
    method: str
    intervention_epoch: int
    start: int
    end: int
    in_checkpoint: Path
    out_records: Path
    out_checkpoint: Path | None = None
    state_dir: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset} seed {self.seed} {self.method}@{self.intervention_epoch}"

    def check(self, config: Mapping[str, Any]) -> None:
        """Raises TrainingError: a method that does not train, or epochs out of range."""
        if self.method not in TRAINING_METHODS:
            raise TrainingError(
                f"method {self.method!r} does not train; choose one of {list(TRAINING_METHODS)} "
                "(stop paths reuse the trunk records)"
            )
        total = int(config["training"]["epochs"])
        if not 0 <= self.start < self.end <= total:
            raise TrainingError(
                f"epochs {self.start}..{self.end}: need 0 <= start < end <= "
                f"training.epochs = {total}"
            )

    def key(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The identity a resume state must match."""
        return {
            "dataset": self.dataset,
            "seed": int(self.seed),
            "method": self.method,
            "intervention_epoch": int(self.intervention_epoch),
            "start": int(self.start),
            "end": int(self.end),
            "config_hash": meta["config_hash"],
            "model": meta["model"],
        }


def _start_checkpoint(job: Job, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint ``job`` starts from, checked against the job.

    Raises:
        TrainingError: it holds another epoch, model, dataset shape or data order.
        greenpath.training.checkpoint.CheckpointError: unreadable checkpoint.
    """
    ck = ckpt_io.load_checkpoint(job.in_checkpoint, kind="checkpoint")
    if int(ck["epoch"]) != job.start:
        raise TrainingError(
            f"{job.in_checkpoint} holds the state after epoch {ck['epoch']}, but this job "
            f"starts after epoch {job.start}; rerun the job that writes it"
        )
    for key in ("model", "num_classes", "in_channels", "image_size"):
        if ck["meta"].get(key) != meta[key]:
            raise TrainingError(
                f"{job.in_checkpoint} was made for {key} = {ck['meta'].get(key)!r}, this job "
                f"has {meta[key]!r}; delete the tree's checkpoints and rerun"
            )
    if ck["data_order"].get("scheme") != ORDER_SCHEME:
        raise TrainingError(
            f"{job.in_checkpoint} uses data order {ck['data_order'].get('scheme')!r}"
        )
    return ck


def _labels(config: Mapping[str, Any], job: Job, ds: Any, model: nn.Module, device: Any) -> dict:
    """The row labels at the job's start (before its method's callback fires)."""
    precision = full_precision(device)
    frozen = frozen_layer_names(model)
    return {
        "study": str(config["study"]),
        "dataset": job.dataset,
        "seed": int(job.seed),
        "model": config["model"]["name"],
        "method": job.method,
        "intervention_epoch": int(job.intervention_epoch),
        "device": str(device),
        "precision_requested": precision.requested,
        "precision_effective": precision.effective,
        "frozen_layers": ",".join(frozen) if frozen else None,
        "num_classes": int(ds.num_classes),
        "train_size": int(ds.x_train.shape[0]),
        "val_size": int(ds.x_val.shape[0]),
        "image_size": int(ds.x_train.shape[1]),
        "config_hash": config_hash(config),
        "versions": versions_json(),
    }


def _loop_from_checkpoint(config: Mapping[str, Any], job: Job, ds: Any, ck: dict) -> Loop:
    """The job's :class:`Loop` in the checkpoint's state (weights, frozen layers, optimizer),
    warmed up, unmeasured, when the job continues a run."""
    device = _device(config)
    model = model_for(config, ds)
    model.load_state_dict(ck["model"])
    model.to(device)
    if ck.get("frozen"):
        freeze_modules(model, ck["frozen"])
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
    optimizer.load_state_dict(ck["optimizer"])
    data = tensor_data(ds).to(device)
    loop = Loop(
        name=job.name, model=model, optimizer=optimizer, data=data, device=device,
        seed=int(job.seed), epoch=job.start, end=job.end,
        batch_size=int(config["training"]["batch_size"]), precision=full_precision(device),
        labels=_labels(config, job, ds, model, device), frozen=list(ck.get("frozen") or []),
        metadata={"config_hash": config_hash(config), "in_checkpoint": str(job.in_checkpoint)},
    )  # fmt: skip
    # A job that continues a run warms the fresh process up first, unmeasured and in the
    # checkpoint's state, so its first epoch does not pay costs an uninterrupted run paid
    # once in epoch 1 (greenpath.training.warmup; seen on an H200).
    if job.start > 0 and ck.get("diverged") is None:
        secs = warm_up(
            model, data, batch_size=loop.batch_size, precision=loop.precision,
            loss_fn=loss_function(data.multilabel),
        )  # fmt: skip
        loop.metadata["warm_up_s"] = f"{secs:.6f}"
        log.info("warm-up before epoch %d: %.3f s (not measured)", job.start + 1, secs)
    return loop


def _interventions(config: Mapping[str, Any], job: Job, device: torch.device) -> dict:
    """The job's freeze and quant callbacks; the job's method fires at its start epoch."""
    at = {job.method: job.start}
    dtype = _method_setting(config, "quant", "dtype", "auto")
    precision = resolve_precision(dtype, device) if job.method == "quant" else None
    return {
        "freeze": LayerFreezing(
            _method_setting(config, "freeze", "trainable", "last_layer"), at=at.get("freeze")
        ),
        "quant": MixedPrecision(dtype, at=at.get("quant"), precision=precision),
    }


def _write_skipped(loop: Loop, job: Job, precision: Any) -> pd.DataFrame:
    """A quant branch without a supported precision: one ``skipped`` row, nothing trained."""
    log.warning("%s skipped: %s", job.name, precision.reason)
    labels = dict(loop.labels, precision_requested=precision.requested, precision_effective=None)
    row = dict(labels, epoch=job.start + 1, status="skipped", status_reason=precision.reason)
    df = pd.DataFrame([row])
    write_records(df, job.out_records, metadata=loop.metadata)
    return df


def _as_callback(cb: Any) -> Callback:
    return cb if isinstance(cb, Callback) else ActionCallback(cb)


def run_job(
    config: dict,
    job: Job,
    *,
    meter: Any = None,
    callbacks: Sequence[Callback | EpochCallback] = (),
    evaluate_fn: EvaluateFn | None = None,
) -> pd.DataFrame:
    """Run ``job`` to its end and write its outputs; returns the records written.

    Args:
        config: checked config (:func:`greenpath.config.check_config`).
        job: what to train.
        meter: an energy meter (default: ``greenpath.energy.make_meter(config["energy"])``,
            made only when an epoch is left to measure).
        callbacks: fit-loop callbacks (:class:`~greenpath.training.callbacks.Callback`) or
            outside deciders (:class:`~greenpath.training.callbacks.EpochCallback`), called
            in order after the job's own interventions.
        evaluate_fn: replaces the validation pass (``(model, epoch) -> (loss, accuracy)``).

    Raises:
        TrainingError: bad method/epochs, or the checkpoint does not match the job.
        greenpath.training.checkpoint.CheckpointError: unreadable checkpoint.
    """
    job.check(config)
    ds = load_prepared(Path(job.dataset_path))
    meta = _meta(config, ds)
    ck = _start_checkpoint(job, meta)
    loop = _loop_from_checkpoint(config, job, ds, ck)
    loop.interventions = _interventions(config, job, loop.device)
    precision = loop.interventions["quant"].precision
    if precision is not None and precision.skipped:
        return _write_skipped(loop, job, precision)
    cbs = [*loop.interventions.values(), ProgressLog(), *map(_as_callback, callbacks)]
    state_path = default_state_path(job.out_records, job.state_dir)
    for own in (state_path, job.out_records, job.out_checkpoint):
        if own is not None:  # temp files a killed earlier attempt of this job left behind
            ckpt_io.remove_stale_temps(own)
    state = ResumeState.load(state_path, job.key(meta))
    if state is not None:
        state.load_into(loop, cbs)
        log.info("resuming %s from %s after epoch %d", job.out_records.name, state_path, loop.epoch)
    else:
        ckpt_io.set_rng_state(ck["rng"])
        loop.diverged = ck.get("diverged")
        if loop.diverged is not None:
            log.warning(
                "%s starts from a checkpoint that diverged at epoch %s; nothing is trained",
                job.in_checkpoint,
                loop.diverged,
            )
    own_meter = meter is None and loop.diverged is None and loop.epoch < job.end
    if own_meter:
        from greenpath.energy import make_meter

        meter = make_meter(config.get("energy") or None, device=str(loop.device))

    def meter_meta() -> dict[str, str]:
        return dict(meter.metadata()) if hasattr(meter, "metadata") else {}

    try:
        fit(
            loop, cbs, meter, evaluate_fn=evaluate_fn,
            restore=state.restore if state is not None else _fresh_restore(ck),
            save=lambda lp: save_state(state_path, lp, job=job.key(meta), callbacks=cbs,
                                       meta=meta, meter_metadata=meter_meta()),
        )  # fmt: skip
    finally:
        if own_meter:
            meter.close()
    saved = state.meter_metadata if state is not None else {}
    meter_metadata = meter_meta() if meter is not None else saved
    return _finish(loop, job, cbs, meta, {**meter_metadata, **loop.metadata}, state_path)


def _fresh_restore(ck: Mapping[str, Any]) -> Any:
    def restore(loop: Loop) -> None:
        if loop.scaler is not None and ck.get("scaler"):
            loop.scaler.load_state_dict(ck["scaler"])

    return restore


def _finish(
    loop: Loop,
    job: Job,
    callbacks: Sequence[Callback],
    meta: dict[str, Any],
    metadata: dict[str, str],
    state_path: Path,
) -> pd.DataFrame:
    """Write the final checkpoint and the records, then drop the resume state."""
    if job.out_checkpoint is not None:
        # A diverged trunk still writes its checkpoint (flagged) so later jobs can run and
        # record that there is nothing to train; its epoch is the segment end.
        obj = ckpt_io.checkpoint_dict(
            kind="checkpoint", epoch=job.end if loop.diverged is not None else loop.epoch,
            model=loop.model, optimizer=loop.optimizer, scaler=loop.scaler, seed=loop.seed,
            meta=meta, frozen=loop.frozen, early_stopping=early_stopping_state(callbacks),
            diverged=loop.diverged,
        )  # fmt: skip
        ckpt_io.save_checkpoint(obj, job.out_checkpoint)
    rows = loop.rows
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(RECORD_SCHEMA.names))
    write_records(df, job.out_records, metadata=metadata)
    state_path.unlink(missing_ok=True)
    return df


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
    callbacks: Sequence[Callback | EpochCallback] = (),
) -> pd.DataFrame:
    """Train trunk (method ``base``) epochs ``start+1..end`` and write the checkpoint at ``end``.

    Arguments as :class:`Job` and :func:`run_job`. Returns the records written, one row
    per epoch.
    """
    job = Job(
        dataset, Path(dataset_path), int(seed), "base", 0, int(start), int(end),
        Path(in_checkpoint), Path(out_records), Path(out_checkpoint), state_dir,
    )  # fmt: skip
    return run_job(config, job, meter=meter, callbacks=callbacks or ())


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
    callbacks: Sequence[Callback | EpochCallback] = (),
) -> pd.DataFrame:
    """Train one branch: ``method`` from the trunk checkpoint at ``intervention_epoch`` k to
    the last epoch E (rows k+1..E).

    Args:
        method: ``freeze`` or ``quant`` (``base`` continues the trunk unchanged, used to
            check branch-from-checkpoint; ``stop`` trains nothing and is rejected).
        intervention_epoch: k; ``in_checkpoint`` must hold the trunk state after k epochs.

    Other arguments as :class:`Job` and :func:`run_job`.

    Raises:
        TrainingError: ``method`` is ``stop`` or unknown.
    """
    k = int(intervention_epoch)
    job = Job(
        dataset, Path(dataset_path), int(seed), method, k, k, int(config["training"]["epochs"]),
        Path(in_checkpoint), Path(out_records), None, state_dir,
    )  # fmt: skip
    return run_job(config, job, meter=meter, callbacks=callbacks or ())


def train_epochs(
    config: dict,
    *,
    meter: Any = None,
    early_stopping: EarlyStopping | None = None,
    evaluate_fn: EvaluateFn | None = None,
    callbacks: Sequence[Callback | EpochCallback] | None = None,
    **job: Any,
) -> pd.DataFrame:
    """:func:`run_job` with the :class:`Job` given as keywords.

    ``early_stopping`` (optional patience rule on validation accuracy, not used by the
    workflow) runs before ``callbacks``; its state is part of the job state and its
    figures go into the records' metadata.
    """
    for key in ("dataset_path", "in_checkpoint", "out_records"):
        job[key] = Path(job[key])
    cbs = [early_stopping] if early_stopping is not None else []
    return run_job(
        config, Job(**job), meter=meter, callbacks=[*cbs, *(callbacks or ())],
        evaluate_fn=evaluate_fn,
    )  # fmt: skip


__all__ = [
    "OPTIMIZERS",
    "TRAINING_METHODS",
    "Job",
    "TrainingError",
    "default_state_path",
    "evaluate",
    "init_checkpoint",
    "make_optimizer",
    "model_for",
    "run_branch",
    "run_job",
    "run_trunk_segment",
    "train_epochs",
    "train_one_epoch",
    "versions_json",
]
