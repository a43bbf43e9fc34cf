"""Patience early stopping as an epoch-end callback.

:class:`PatienceStopping` wraps :class:`greenpath.training.early_stopping.EarlyStopping`
(the one rule, :class:`greenpath.early_stopping.PatienceRule`, plus the best weights:
Keras ``EarlyStopping(patience, restore_best_weights=True)`` with the fix for
keras-team/keras#12511) in the controller's callback API, for any PyTorch loop:

- ``on_epoch_end(epoch, row, model)`` steps the rule on ``row["val_accuracy"]`` and returns
  ``"stop"`` once ``wait >= patience``;
- ``on_train_end(last_epoch, model)`` restores the best epoch's weights whether training
  ended by patience or by the epoch limit;
- ``state_dict()`` holds ``best``, ``best_epoch``, ``wait``, ``stopped_epoch`` and the best
  weights, so a resumed run keeps counting (csiro-mlai/dl_hpc_starter_pack#2).

Inside greenpath's engine the :class:`~greenpath.training.early_stopping.EarlyStopping`
callback itself runs in the fit loop (``train_epochs(early_stopping=...)``), which also
writes the figures into the records' metadata; ``greenpath train --patience`` does that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from greenpath.training.early_stopping import EarlyStopping


class PatienceStopping:
    """Epoch-end callback: stop after ``patience`` epochs without a better monitored value.

    Args:
        patience: epochs without improvement before stopping (>= 1).
        monitor: the row's column to watch (default ``val_accuracy``).
        mode: ``max`` (accuracy) or ``min`` (loss).
        min_delta: an improvement must exceed this (absolute).

    Raises:
        ValueError: patience < 1, unknown mode or negative min_delta
            (from :class:`EarlyStopping`).
    """

    def __init__(
        self,
        patience: int,
        monitor: str = "val_accuracy",
        mode: str = "max",
        min_delta: float = 0.0,
    ) -> None:
        self.rule = EarlyStopping(patience, mode=mode, min_delta=min_delta)
        self.monitor = monitor

    def on_epoch_end(
        self, epoch: int, row: Mapping[str, Any], model: nn.Module | None = None
    ) -> str:
        """Step the rule on ``row[monitor]``; ``"stop"`` when patience ran out.

        Raises:
            KeyError: the row has no ``monitor`` column (names it).
        """
        if self.monitor not in row:
            raise KeyError(f"row of epoch {epoch} has no {self.monitor!r}; pass it or set monitor=")
        if self.rule.should_stop:
            return "stop"
        return "stop" if self.rule.step(float(row[self.monitor]), int(epoch), model) else "continue"

    def on_train_end(self, last_epoch: int | None = None, model: nn.Module | None = None) -> bool:
        """Restore the best weights into ``model``; False when none were kept."""
        return self.rule.restore_best(model) if model is not None else False

    @property
    def best(self) -> float | None:
        return self.rule.best

    @property
    def best_epoch(self) -> int | None:
        return self.rule.best_epoch

    @property
    def stopped_epoch(self) -> int | None:
        return self.rule.stopped_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "rule": self.rule.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.monitor = str(state["monitor"])
        self.rule.load_state_dict(dict(state["rule"]))


__all__ = ["PatienceStopping"]
