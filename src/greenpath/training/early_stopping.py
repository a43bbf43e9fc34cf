"""Patience-based early stopping whose state survives checkpoint/resume (failure case T5).

Semantics (Keras ``EarlyStopping(patience, restore_best_weights=True)``, with the fix for
keras-team/keras#12511):

- after each epoch call :meth:`EarlyStopping.step` with the monitored value (e.g. validation
  accuracy, ``mode="max"``); an improvement (strictly better than ``best`` by more than
  ``min_delta``) sets ``best``, ``best_epoch``, a copy of the weights, and ``wait = 0``;
  otherwise ``wait += 1``, and training should stop once ``wait >= patience``;
- whether training ends by patience **or** by the epoch limit, :meth:`restore_best` puts the
  best epoch's weights back (Keras restored them only in the first case);
- ``best``, ``best_epoch``, ``wait``, ``stopped_epoch`` and the best weights are in
  :meth:`state_dict`, so a resumed job continues counting instead of resetting patience
  (csiro-mlai/dl_hpc_starter_pack#2).

Example (T5): patience 2 on 0.50, 0.62, 0.61, 0.60, 0.59 -> best 0.62 at epoch 2, wait 1
after epoch 3, wait 2 after epoch 4 -> stop after epoch 4.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class EarlyStopping:
    """Track the best value of a metric and say when patience has run out.

    Args:
        patience: number of epochs without improvement after which to stop (>= 1).
        mode: ``"max"`` (accuracy) or ``"min"`` (loss).
        min_delta: an improvement must exceed this (absolute, in the metric's units).

    Raises:
        ValueError: patience < 1, unknown mode, or negative min_delta.
    """

    def __init__(self, patience: int, mode: str = "max", min_delta: float = 0.0) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience = {patience}; use an integer >= 1")
        if mode not in ("max", "min"):
            raise ValueError(f"mode = {mode!r}; use 'max' (accuracy) or 'min' (loss)")
        if min_delta < 0:
            raise ValueError(f"min_delta = {min_delta}; use a non-negative number")
        self.patience = int(patience)
        self.mode = mode
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    @property
    def should_stop(self) -> bool:
        """True once ``wait >= patience`` (training must not run another epoch)."""
        return self.stopped_epoch is not None

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record epoch ``epoch`` (1-based) with metric ``value``; return True to stop.

        When ``value`` improves and ``model`` is given, a CPU copy of its ``state_dict`` is
        kept as the best weights. A non-finite value never improves.
        """
        value = float(value)
        if self._improved(value):
            self.best = value
            self.best_epoch = int(epoch)
            self.wait = 0
            if model is not None:
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = int(epoch)
        return self.should_stop

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best epoch's weights into ``model``; return False if none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        """Primitive/tensor-only state (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "patience": self.patience,
            "mode": self.mode,
            "min_delta": self.min_delta,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (patience/mode included)."""
        self.patience = int(state["patience"])
        self.mode = str(state["mode"])
        self.min_delta = float(state["min_delta"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = None if state["stopped_epoch"] is None else int(state["stopped_epoch"])
        self.best_state = state["best_state"]
