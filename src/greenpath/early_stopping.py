"""The one early-stopping rule: patience on a monitored value (pure Python, no torch).

Keras ``EarlyStopping(patience, min_delta, mode)`` semantics, with the fix for
keras-team/keras#12511 left to the callers that hold weights:

- an epoch *improves* when its value is finite and strictly better than ``best`` by more
  than ``min_delta`` (``mode="max"``: ``value > best + min_delta``; ``"min"``:
  ``value < best - min_delta``); the first finite value always improves;
- an improvement sets ``best``, ``best_epoch`` and ``wait = 0``; otherwise ``wait += 1``
  and training stops after the epoch at which ``wait >= patience`` (``stopped_epoch``);
- the whole state is in :meth:`PatienceRule.state_dict`, so a resumed job keeps counting
  (csiro-mlai/dl_hpc_starter_pack#2).

Used by the training engine's early-stopping callback
(:class:`greenpath.training.early_stopping.EarlyStopping`), the controller's patience
baseline (:class:`greenpath.control.patience.PatienceStopping`) and the path strategies
(:func:`greenpath.paths.strategies.patience_stop_epoch`, through :func:`stop_epoch`).

Example: patience 2 on 0.50, 0.62, 0.61, 0.60, 0.59 -> best 0.62 at epoch 2, wait 1 after
epoch 3, wait 2 after epoch 4 -> stop after epoch 4.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MODES: tuple[str, ...] = ("max", "min")


class PatienceRule:
    """Count epochs without improvement of a monitored value.

    Args:
        patience: epochs without improvement after which to stop (>= 1).
        mode: ``"max"`` (accuracy) or ``"min"`` (loss).
        min_delta: an improvement must exceed this (absolute, in the value's units).

    Raises:
        ValueError: patience < 1, unknown mode, or negative min_delta.
    """

    def __init__(self, patience: int, mode: str = "max", min_delta: float = 0.0) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience = {patience}; use an integer >= 1")
        if mode not in MODES:
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

    def improves(self, value: float) -> bool:
        """True when ``value`` would be an improvement (a non-finite value never is)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    @property
    def should_stop(self) -> bool:
        """True once ``wait >= patience`` (no further epoch should run)."""
        return self.stopped_epoch is not None

    def update(self, value: float, epoch: int) -> bool:
        """Record 1-based ``epoch`` with ``value``; return True when it improved."""
        value = float(value)
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, int(epoch), 0
            return True
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(epoch)
        return False

    def state_dict(self) -> dict[str, Any]:
        """Primitive-only state (settings included)."""
        return {
            "patience": self.patience,
            "mode": self.mode,
            "min_delta": self.min_delta,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (settings included)."""
        self.patience = int(state["patience"])
        self.mode = str(state["mode"])
        self.min_delta = float(state["min_delta"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = None if state["stopped_epoch"] is None else int(state["stopped_epoch"])


def stop_epoch(
    values: Iterable[float], patience: int, min_delta: float = 0.0, mode: str = "max"
) -> tuple[int, int | None]:
    """Apply :class:`PatienceRule` to a whole curve of epochs 1..E.

    Returns:
        ``(stop_epoch, best_epoch)``, 1-based: the epoch after which training stops
        (``E`` when patience never runs out) and the best epoch (None when no value
        was finite).

    Raises:
        ValueError: an empty curve, or a bad rule setting (see :class:`PatienceRule`).
    """
    rule = PatienceRule(patience, mode=mode, min_delta=min_delta)
    n = 0
    for n, value in enumerate(values, start=1):
        rule.update(value, n)
        if rule.should_stop:
            return n, rule.best_epoch
    if n == 0:
        raise ValueError("empty curve: early stopping needs at least one epoch's value")
    return n, rule.best_epoch


__all__ = ["MODES", "PatienceRule", "stop_epoch"]
