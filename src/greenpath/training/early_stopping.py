"""Patience early stopping as a fit-loop callback whose state survives resume.

The rule itself is :class:`greenpath.early_stopping.PatienceRule` (Keras
``EarlyStopping(patience, restore_best_weights=True)``); this callback adds the best
epoch's weights, with the fix for keras-team/keras#12511:

- after each epoch it steps the rule on the row's ``monitor`` column (validation accuracy
  by default, ``mode="max"``); an improvement keeps a CPU copy of the weights;
- once ``wait >= patience`` the loop stops after that epoch;
- whether training ends by patience **or** by the epoch limit, the best epoch's weights are
  restored (Keras restored them only in the first case), and ``best``, ``best_epoch``,
  ``stopped_epoch`` and ``patience`` go into the records' metadata (``early_stopping.*``);
- the rule's state and the best weights are in :meth:`EarlyStopping.state_dict`, so a
  resumed job continues counting instead of resetting patience
  (csiro-mlai/dl_hpc_starter_pack#2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from greenpath.early_stopping import PatienceRule
from greenpath.training.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from greenpath.training.loop import Loop


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without improvement; restore the best weights.

    Args:
        patience: epochs without improvement after which to stop (>= 1).
        mode: ``"max"`` (accuracy) or ``"min"`` (loss).
        min_delta: an improvement must exceed this (absolute, in the metric's units).
        monitor: the record column watched by the fit loop (default ``val_accuracy``).

    Raises:
        ValueError: patience < 1, unknown mode, or negative min_delta.
    """

    def __init__(
        self,
        patience: int,
        mode: str = "max",
        min_delta: float = 0.0,
        monitor: str = "val_accuracy",
    ) -> None:
        self.rule = PatienceRule(patience, mode=mode, min_delta=min_delta)
        self.monitor = monitor
        self.best_state: dict[str, torch.Tensor] | None = None

    patience = property(lambda self: self.rule.patience)
    mode = property(lambda self: self.rule.mode)
    best = property(lambda self: self.rule.best)
    best_epoch = property(lambda self: self.rule.best_epoch)
    wait = property(lambda self: self.rule.wait)
    stopped_epoch = property(lambda self: self.rule.stopped_epoch)

    @property
    def should_stop(self) -> bool:
        """True once ``wait >= patience`` (training must not run another epoch)."""
        return self.rule.should_stop

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record epoch ``epoch`` (1-based) with metric ``value``; return True to stop.

        When ``value`` improves and ``model`` is given, a CPU copy of its ``state_dict`` is
        kept as the best weights. A non-finite value never improves.
        """
        if self.rule.update(value, epoch) and model is not None:
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
        return self.should_stop

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best epoch's weights into ``model``; return False if none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def on_train_begin(self, loop: Loop) -> None:
        if self.should_stop:  # resumed after the stopping epoch's state was saved
            loop.stop_requested = True

    def on_epoch_end(self, loop: Loop, row: Mapping[str, Any]) -> None:
        if self.step(float(row[self.monitor]), int(row["epoch"]), loop.model):
            loop.stop_requested = True

    def on_train_end(self, loop: Loop) -> None:
        self.restore_best(loop.model)
        loop.metadata.update(
            {
                "early_stopping.best": repr(self.best),
                "early_stopping.best_epoch": repr(self.best_epoch),
                "early_stopping.stopped_epoch": repr(self.stopped_epoch),
                "early_stopping.patience": str(self.patience),
            }
        )

    def state_dict(self) -> dict[str, Any]:
        """The rule's state (settings included) and the best weights (tensors)."""
        return {**self.rule.state_dict(), "best_state": self.best_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (patience/mode included)."""
        self.rule.load_state_dict(state)
        self.best_state = state["best_state"]


__all__ = ["EarlyStopping"]
