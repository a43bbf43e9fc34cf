"""A training job's resume state: one file, saved after every epoch, read on rerun.

A killed job (SIGKILL, a SLURM time limit's SIGTERM) continues on rerun from its last
complete epoch without measuring any epoch twice. The state file is a checkpoint of kind
``"state"`` (:func:`greenpath.training.checkpoint.checkpoint_dict`) plus the keys of
:class:`ResumeState` that a checkpoint lacks: the job's identity, the record rows so far,
the callbacks' states, the row labels and the measuring meter's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from greenpath.training import checkpoint as ckpt_io
from greenpath.training.callbacks import Callback
from greenpath.training.early_stopping import EarlyStopping
from greenpath.training.loop import Loop

log = logging.getLogger("greenpath.training")


def default_state_path(out_records: Path, state_dir: Path | None = None) -> Path:
    """Where a job keeps its resume state: ``<state_dir or records dir>/.<records name>.state.pt``."""
    out_records = Path(out_records)
    return Path(state_dir or out_records.parent) / f".{out_records.name}.state.pt"


@dataclass
class ResumeState:
    """What a job needs to continue after its last complete epoch.

    Attributes:
        job: the job's identity (dataset, seed, method, intervention epoch, start, end,
            config hash, model); a state of another job is ignored.
        epoch: completed epochs.
        model, optimizer, scaler, rng: state dicts after ``epoch`` (scaler None without AMP).
        rows: the record rows measured so far.
        labels: the row labels in force after ``epoch`` (method, precision, frozen layers).
        callbacks: each callback's ``state_dict()``, in the job's callback order.
        diverged: the epoch whose loss was non-finite, or None.
        meter_metadata: the measuring meter's metadata (written with the records even when
            the rerun measures nothing).
    """

    job: dict[str, Any]
    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: dict[str, Any]
    rows: list[dict[str, Any]]
    labels: dict[str, Any]
    callbacks: list[Any]
    diverged: int | None
    meter_metadata: dict[str, str]

    @classmethod
    def load(cls, path: Path, job: Mapping[str, Any]) -> ResumeState | None:
        """The state saved at ``path`` for ``job``; None (with a warning when a file is
        there) when it is absent, unreadable or of another job."""
        if not Path(path).is_file():
            return None
        try:
            d = ckpt_io.load_checkpoint(path, kind="state")
        except ckpt_io.CheckpointError as exc:
            log.warning("ignoring unreadable resume state %s: %s", path, exc)
            return None
        if d.get("job") != dict(job):
            log.warning("ignoring resume state %s of another job %s", path, d.get("job"))
            return None
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def load_into(self, loop: Loop, callbacks: Sequence[Callback]) -> None:
        """Put the weights, rows and callbacks' states back (before ``on_train_begin``)."""
        loop.model.load_state_dict(self.model)
        for cb, state in zip(callbacks, self.callbacks, strict=False):
            if state is not None:
                cb.load_state_dict(state)
        loop.rows = [dict(r) for r in self.rows]
        loop.epoch = int(self.epoch)
        loop.diverged = self.diverged
        loop.resumed = True

    def restore(self, loop: Loop) -> None:
        """Put the optimizer, scaler, RNG and labels back (after ``on_train_begin``, which
        re-applied the interventions the job had made)."""
        loop.optimizer.load_state_dict(self.optimizer)
        if loop.scaler is not None and self.scaler:
            loop.scaler.load_state_dict(self.scaler)
        ckpt_io.set_rng_state(self.rng)
        loop.labels = dict(self.labels)


def save_state(
    path: Path,
    loop: Loop,
    *,
    job: Mapping[str, Any],
    callbacks: Sequence[Callback],
    meta: dict[str, Any],
    meter_metadata: dict[str, str],
) -> None:
    """Write ``loop``'s :class:`ResumeState` to ``path`` atomically.

    Raises:
        greenpath.records.RecordsError: the folder is not writable or the disk is full.
    """
    states = [cb.state_dict() for cb in callbacks]
    obj = ckpt_io.checkpoint_dict(
        kind="state",
        epoch=loop.epoch,
        model=loop.model,
        optimizer=loop.optimizer,
        scaler=loop.scaler,
        seed=loop.seed,
        meta=meta,
        frozen=loop.frozen,
        early_stopping=early_stopping_state(callbacks),
        diverged=loop.diverged,
    )
    obj.update(
        job=dict(job),
        rows=loop.rows,
        labels=dict(loop.labels),
        callbacks=states,
        meter_metadata=dict(meter_metadata),
    )
    ckpt_io.save_checkpoint(obj, path)


def early_stopping_state(callbacks: Sequence[Callback]) -> dict[str, Any] | None:
    """The state of the job's early-stopping callback (checkpoint key ``early_stopping``)."""
    for cb in callbacks:
        if isinstance(cb, EarlyStopping):
            return cb.state_dict()
    return None
