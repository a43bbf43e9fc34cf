"""Callbacks of the fit loop: the interventions, progress, and outside deciders.

Modelled on Lightning's callbacks (``BaseFinetuning``, ``EarlyStopping``): each callback
owns its state (``state_dict``/``load_state_dict``, saved in the job's resume state after
every epoch) and changes the run only through the :class:`~greenpath.training.loop.Loop`
it is given. The fit loop (:func:`greenpath.training.loop.fit`) calls, in list order:

``on_train_begin(loop)``
    once, after the model, optimizer and (on a resumed job) the callbacks' states are
    loaded and before the saved optimizer state is put back;
``on_epoch_start(loop, epoch)`` and ``on_epoch_end(loop, row)``
    around each epoch (``row``: the epoch's record row, already appended to ``loop.rows``);
``on_train_end(loop)``
    once after the last epoch (also after a stop or a divergence).

A grid branch is an intervention whose callback fires at epoch k: :class:`LayerFreezing`
(``freeze``) or :class:`MixedPrecision` (``quant``) with ``at=k``. The same callbacks
carry out the actions an outside decider returns (:class:`ActionCallback`, e.g.
``greenpath.control.Controller``), so applying an intervention is written once.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

from greenpath.training.freezing import freeze_all_but, frozen_layer_names, rebuild_optimizer
from greenpath.training.precision import Precision, resolve_precision

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from greenpath.training.loop import Loop

log = logging.getLogger("greenpath.training")

#: Actions an outside decider may return (``None`` = ``"continue"``); see :class:`EpochCallback`.
CALLBACK_ACTIONS: tuple[str, ...] = ("continue", "freeze", "quant", "stop")


class Callback:
    """Base class: every hook is optional and does nothing here."""

    def on_train_begin(self, loop: Loop) -> None:
        """Before the first epoch of this attempt (fresh or resumed)."""

    def on_epoch_start(self, loop: Loop, epoch: int) -> None:
        """Before 1-based ``epoch`` (after the previous epoch's state was saved)."""

    def on_epoch_end(self, loop: Loop, row: Mapping[str, Any]) -> None:
        """After the epoch's record row, before its state is saved."""

    def on_train_end(self, loop: Loop) -> None:
        """After the last epoch, before the final checkpoint and records are written."""

    def state_dict(self) -> dict[str, Any] | None:
        """Primitive/tensor-only state (``torch.load(weights_only=True)``), or None."""
        return None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a resumed job)."""


class Intervention(Callback):
    """An intervention that fires once, at the end of epoch ``at`` (from epoch ``at + 1``).

    ``at`` equal to the job's start epoch fires in ``on_train_begin`` (a grid branch);
    ``at=None`` fires only when asked (:meth:`fire`, an outside decider's action). Rows
    after the firing carry ``method`` = :attr:`method` and ``intervention_epoch`` = the
    firing epoch. The state is the firing epoch; a resumed job applies the intervention
    again before the saved optimizer state is loaded.
    """

    method: ClassVar[str] = ""

    def __init__(self, at: int | None = None) -> None:
        self.at = None if at is None else int(at)
        self.fired_at: int | None = None

    def apply(self, loop: Loop, epoch: int) -> bool:
        """Change ``loop`` for the intervention; False when it cannot apply here."""
        raise NotImplementedError

    def fire(self, loop: Loop, epoch: int) -> bool:
        """Apply after ``epoch`` and label the following rows; False when not applied."""
        if not self.apply(loop, epoch):
            return False
        self.fired_at = int(epoch)
        loop.labels.update(method=self.method, intervention_epoch=int(epoch))
        return True

    def on_train_begin(self, loop: Loop) -> None:
        if self.fired_at is not None:  # resumed: the job had applied it
            self.fire(loop, self.fired_at)
        elif self.at == loop.epoch and not loop.resumed:
            self.fire(loop, loop.epoch)

    def on_epoch_end(self, loop: Loop, row: Mapping[str, Any]) -> None:
        if self.fired_at is None and self.at == int(row["epoch"]) and loop.diverged is None:
            self.fire(loop, int(row["epoch"]))

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "at": self.at, "fired_at": self.fired_at}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fired_at = None if state["fired_at"] is None else int(state["fired_at"])


class LayerFreezing(Intervention):
    """Freeze everything but ``trainable`` (``last_layer`` or ``last_block``).

    Frozen parameters leave the optimizer (rebuilt over the trainable ones, any
    ``torch.optim`` optimizer, state carried over) and frozen BatchNorm stays in eval mode
    (:mod:`greenpath.training.freezing`). The job's frozen-layer list and the rows'
    ``frozen_layers`` are updated.
    """

    method = "freeze"

    def __init__(self, trainable: str, at: int | None = None) -> None:
        super().__init__(at)
        self.trainable = trainable

    def apply(self, loop: Loop, epoch: int) -> bool:
        loop.frozen = sorted(set(loop.frozen) | set(freeze_all_but(loop.model, self.trainable)))
        loop.optimizer = rebuild_optimizer(loop.optimizer, loop.model)
        names = frozen_layer_names(loop.model)
        loop.labels["frozen_layers"] = ",".join(names) if names else None
        return True


class MixedPrecision(Intervention):
    """Train in mixed precision (``requested``: ``auto``, ``fp16`` or ``bf16``).

    ``precision``, when given, is the already resolved
    :func:`~greenpath.training.precision.resolve_precision` result; otherwise it is
    resolved when the intervention fires. A precision the device cannot run is not
    applied (a warning; a grid branch writes a ``skipped`` row before training instead).
    fp16 on CUDA adds a ``torch.amp.GradScaler``.
    """

    method = "quant"

    def __init__(
        self, requested: str, at: int | None = None, precision: Precision | None = None
    ) -> None:
        super().__init__(at)
        self.requested = requested
        self.precision = precision

    def apply(self, loop: Loop, epoch: int) -> bool:
        new = self.precision or resolve_precision(self.requested, loop.device)
        if new.skipped:
            log.warning("quant after epoch %d not applied: %s", epoch, new.reason)
            return False
        loop.precision = new
        if new.use_scaler and loop.scaler is None:
            loop.scaler = torch.amp.GradScaler(loop.device.type)
        loop.labels.update(precision_requested=new.requested, precision_effective=new.effective)
        return True


class EpochCallback(Protocol):
    """An outside decider (e.g. ``greenpath.control.Controller``), wrapped by
    :class:`ActionCallback`.

    Only ``on_epoch_end`` is required; ``on_train_begin(start, model)``,
    ``on_train_end(last_epoch, model)``, ``state_dict()`` and ``load_state_dict(state)``
    are used when defined. ``on_train_begin`` and ``on_epoch_end`` may return an action of
    :data:`CALLBACK_ACTIONS` (or ``None``): ``freeze`` and ``quant`` fire the job's
    :class:`LayerFreezing` / :class:`MixedPrecision` from the next epoch, ``stop`` ends
    training after this epoch.
    """

    def on_epoch_end(
        self, epoch: int, row: Mapping[str, Any], model: nn.Module
    ) -> str | None: ...  # pragma: no cover


class ActionCallback(Callback):
    """Runs an :class:`EpochCallback` and carries out the actions it returns.

    Its state is the wrapped callback's state and the actions applied so far
    (``[[action, epoch], ...]``, also written to the records' metadata as
    ``callbacks.applied``). Not called after a divergence; ``on_train_begin`` only on a
    fresh start.

    Raises:
        ValueError: (from the hooks) the callback returned an unknown action.
    """

    def __init__(self, inner: EpochCallback) -> None:
        self.inner = inner
        self.applied: list[list[Any]] = []

    def _act(self, loop: Loop, action: str | None, epoch: int) -> None:
        action = action or "continue"
        if action not in CALLBACK_ACTIONS:
            raise ValueError(
                f"callback returned action {action!r} after epoch {epoch}; "
                f"use one of {list(CALLBACK_ACTIONS)} or None"
            )
        if action == "continue":
            return
        if action == "stop":
            loop.stop_requested = True
        elif not loop.interventions[action].fire(loop, epoch):
            return
        self.applied.append([action, int(epoch)])
        log.info("%s: %s applied after epoch %d", loop.name, action, epoch)

    def on_train_begin(self, loop: Loop) -> None:
        if any(a == "stop" for a, _ in self.applied):
            loop.stop_requested = True
        begin = getattr(self.inner, "on_train_begin", None)
        if begin is not None and not loop.resumed and loop.diverged is None:
            self._act(loop, begin(loop.epoch, loop.model), loop.epoch)

    def on_epoch_end(self, loop: Loop, row: Mapping[str, Any]) -> None:
        if loop.diverged is None:
            epoch = int(row["epoch"])
            self._act(loop, self.inner.on_epoch_end(epoch, row, loop.model), epoch)

    def on_train_end(self, loop: Loop) -> None:
        end = getattr(self.inner, "on_train_end", None)
        if end is not None:
            end(loop.epoch, loop.model)
        if self.applied:
            loop.metadata["callbacks.applied"] = json.dumps(self.applied)

    def state_dict(self) -> dict[str, Any]:
        inner = self.inner.state_dict() if hasattr(self.inner, "state_dict") else None
        return {"applied": [list(a) for a in self.applied], "inner": inner}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.applied = [[str(a), int(e)] for a, e in state["applied"]]
        if state["inner"] is not None and hasattr(self.inner, "load_state_dict"):
            self.inner.load_state_dict(state["inner"])


class ProgressLog(Callback):
    """One log line per epoch (loss, accuracy, seconds, joules) and a tqdm bar on a terminal."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_train_begin(self, loop: Loop) -> None:
        to_run = loop.end - loop.epoch if loop.diverged is None else 0
        if to_run > 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=to_run, desc=loop.name, unit="epoch", leave=False)

    def on_epoch_end(self, loop: Loop, row: Mapping[str, Any]) -> None:
        log.info(
            "%s epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f %.2f s %.1f J",
            loop.name, row["epoch"], loop.end, row["train_loss"], row["train_accuracy"],
            row["val_loss"], row["val_accuracy"], row["duration_s"],
            float(row.get("energy_total_j") or math.nan),
        )  # fmt: skip
        if row["status"] == "diverged":
            log.warning("%s epoch %d diverged (%s); stopping this job", loop.name, row["epoch"],
                        row["status_reason"])  # fmt: skip
        if self.bar is not None:
            self.bar.update(1)

    def on_train_end(self, loop: Loop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = [
    "CALLBACK_ACTIONS",
    "ActionCallback",
    "Callback",
    "EpochCallback",
    "Intervention",
    "LayerFreezing",
    "MixedPrecision",
    "ProgressLog",
]
