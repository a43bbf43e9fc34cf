"""The live controller: after every epoch, decide with greenpath's one decision rule.

A :class:`Controller` is an epoch-end callback. It keeps the run's history (one record row
per epoch) and after every epoch d (d = 0 is before the first epoch) asks a fitted
predictor (:class:`greenpath.modeling.base.Predictor`) for the rest of the run (epochs
d+1..E, accuracy and per-epoch energy, each with a 1-sigma uncertainty) and calls
:func:`greenpath.paths.decide.decide`, the function the offline planner
(:mod:`greenpath.paths.planner`) calls too:

- on the trunk: ``base`` plus ``freeze``/``quant`` where a switch is allowed at d (every
  epoch by default; only ``decision_epochs`` when given), so the options are continue,
  stop now, or switch now;
- on a branch switched to at k: ``base`` and that branch as forecast at k (the predictor
  forecasts from trunk histories only), so the options are continue or stop now.

The action returned (``continue``, ``freeze``, ``quant``, ``stop``) is applied by the
training loop from the next epoch. On a measured tree it takes the path
:func:`greenpath.paths.planner.plan_tree_every_epoch` takes with the same forecasts and
switch epochs.

Every decision (each plan's forecast with uncertainty, its objective value, the chosen
action and why) is kept in :attr:`Controller.decisions` and written to Parquet by
:func:`greenpath.control.log.write_decisions`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.paths.decide import SWITCH_METHODS, History, Margin, Plan, decide
from greenpath.paths.objectives import DEFAULT_TOLERANCE, Objective, get_objective

log = logging.getLogger(__name__)

#: Actions a controller returns (the engine's ``CALLBACK_ACTIONS``).
ACTIONS: tuple[str, ...] = ("continue", "freeze", "quant", "stop")

#: Record columns kept in the controller's history (and given to the predictor).
HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "method",
    "intervention_epoch",
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "energy_total_j",
    "energy_gpu_j",
    "duration_s",
    "status",
    "num_classes",
    "train_size",
    "val_size",
    "image_size",
    "dataset",
    "seed",
    "study",
    "model",
)


#: One plan evaluated at a decision (forecast values): :class:`greenpath.paths.decide.Plan`.
PlanForecast = Plan


@dataclass
class Decision:
    """What the controller decided at one decision epoch.

    Attributes:
        epoch: the decision epoch d (epochs 1..d have run).
        action: the action returned to the training loop.
        reason: why, in words.
        ref_accuracy, ref_accuracy_std: forecast final accuracy of the full run (base to E).
        full_energy_j: forecast cumulative energy of the full run (J); None if unknown.
        chosen: the winning plan (None when no forecast was possible).
        plans: every plan evaluated.
    """

    epoch: int
    action: str
    reason: str
    ref_accuracy: float | None = None
    ref_accuracy_std: float | None = None
    full_energy_j: float | None = None
    chosen: PlanForecast | None = None
    plans: list[PlanForecast] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Primitive-only dict (checkpoint-safe: ``torch.load(weights_only=True)``)."""
        d = asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        plans = [PlanForecast(**p) for p in d["plans"]] if d.get("plans") else None
        chosen = PlanForecast(**d["chosen"]) if d.get("chosen") else None
        return cls(
            epoch=int(d["epoch"]),
            action=str(d["action"]),
            reason=str(d["reason"]),
            ref_accuracy=d.get("ref_accuracy"),
            ref_accuracy_std=d.get("ref_accuracy_std"),
            full_energy_j=d.get("full_energy_j"),
            chosen=chosen,
            plans=plans,
        )


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _energy_of(row: Mapping[str, Any]) -> float:
    for col in ("energy_total_j", "energy_gpu_j"):
        v = _f(row.get(col))
        if math.isfinite(v):
            return v
    return math.nan


class Controller:
    """Energy-aware epoch-end controller (see the module docstring).

    Usable from any PyTorch loop::

        ctl = Controller(predictor, last_epoch=10)
        action = ctl.on_train_begin(0)          # decision at epoch 0 (may be "freeze"...)
        for epoch in range(1, 11):
            ...train, validate, measure energy...
            action = ctl.on_epoch_end(epoch, {"epoch": epoch, "val_accuracy": acc,
                                              "energy_total_j": joules})
            if action == "stop": break
            # "freeze": freeze layers from the next epoch; "quant": mixed precision
        ctl.write_decisions("run.decisions.parquet")

    and from greenpath's engine: ``train_epochs(..., callbacks=[ctl])``.

    Args:
        predictor: a fitted predictor (``greenpath.modeling.io.load(MODEL.json)``), or a
            path to its JSON file.
        last_epoch: E, the last epoch of the full run.
        decision_epochs: epochs at which a switch to ``freeze``/``quant`` may start (0 =
            before the first epoch); ``None`` (default): every epoch. Stopping is decided
            after every epoch either way. Pass the study's intervention epochs to follow
            only paths its grid has measured (the closed loop does). Epochs >= E are ignored.
        objective: ``constrained`` (default), ``weighted`` or ``score``, or an
            :class:`~greenpath.paths.objectives.Objective`.
        tolerance: accuracy tolerance of ``constrained`` (fraction; 0.01 = 1 point).
        lam: weight of ``weighted`` (accuracy per kWh).
        margin: safety margin (:class:`greenpath.paths.planner.Margin`).
        methods: actions allowed besides ``continue`` (subset of freeze, quant, stop).
        dataset_info: descriptors for the predictor (num_classes, train_size, val_size,
            image_size); read from the history rows when omitted.
        log_path: when given, the decisions Parquet is rewritten (atomically) after each
            decision and at the end of training.

    Raises:
        ValueError: unknown objective/method, bad tolerance, or no epoch to decide at.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        last_epoch: int,
        decision_epochs: Iterable[int] | None = None,
        objective: str | Objective = "constrained",
        tolerance: float = DEFAULT_TOLERANCE,
        lam: float | None = None,
        margin: Margin | None = None,
        methods: Sequence[str] = ("freeze", "quant", "stop"),
        dataset_info: Mapping[str, Any] | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        if isinstance(predictor, (str, Path)):
            from greenpath.modeling.io import load

            predictor = load(predictor)
        self.predictor = predictor
        self.last_epoch = int(last_epoch)
        if self.last_epoch < 1:
            raise ValueError(f"last_epoch = {last_epoch}; use the run's epochs (>= 1)")
        self.decision_epochs: tuple[int, ...] | None = (
            None
            if decision_epochs is None
            else tuple(sorted({int(d) for d in decision_epochs if 0 <= int(d) < self.last_epoch}))
        )
        self.objective = (
            objective
            if isinstance(objective, Objective)
            else get_objective(objective, tolerance, lam)
        )
        self.margin = margin or Margin()
        bad = [m for m in methods if m not in ("freeze", "quant", "stop")]
        if bad:
            raise ValueError(f"methods {bad} unknown; choose among freeze, quant, stop")
        self.methods = tuple(methods)
        self.dataset_info = dict(dataset_info or {})
        self.log_path = Path(log_path) if log_path is not None else None
        # state (state_dict)
        self.history: list[dict[str, Any]] = []
        self.decisions: list[Decision] = []
        self.method = "base"
        self.switch_epoch = 0
        self.planned_end: int | None = None
        self.stopped_epoch: int | None = None
        self._branch_forecasts: dict[str, Any] | None = None

    # ------------------------------------------------------------------ callbacks
    def on_train_begin(self, epoch: int = 0, model: Any = None) -> str:
        """Decide at the start (``epoch`` = epochs already trained, 0 for a new run)."""
        if epoch == 0 and self._may_switch(0) and not self._decided(0):
            return self._decide(0).action
        return "continue"

    def on_epoch_end(self, epoch: int, row: Mapping[str, Any], model: Any = None) -> str:
        """Record epoch ``epoch``'s row; decide when it is a decision epoch or a plan's end.

        Args:
            epoch: 1-based epoch just finished.
            row: its record (``val_accuracy`` fraction, ``energy_total_j`` J; more columns
                of the record schema are passed to the predictor when present).

        Returns:
            ``continue``, ``freeze``, ``quant`` or ``stop`` (applied from the next epoch).

        Raises:
            ValueError: ``epoch`` is not the next epoch of the history.
        """
        epoch = int(epoch)
        expected = len(self.history) + 1
        if epoch != expected:
            raise ValueError(
                f"on_epoch_end got epoch {epoch} but the history ends at {expected - 1}; "
                "call it once per epoch, in order (load_state_dict after a resume)"
            )
        keep = {k: row.get(k) for k in HISTORY_COLUMNS if k in row}
        keep["epoch"] = epoch
        keep.setdefault("method", self.method)
        keep.setdefault("intervention_epoch", self.switch_epoch if self.method != "base" else 0)
        self.history.append({k: _primitive(v) for k, v in keep.items()})
        if self.stopped_epoch is not None or epoch >= self.last_epoch:
            return "continue"
        return self._decide(epoch).action

    def on_train_end(self, last_epoch: int | None = None, model: Any = None) -> None:
        """Write the decisions log when ``log_path`` is set."""
        if self.log_path is not None:
            self.write_decisions(self.log_path)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Primitive-only state (history, decisions, current method, planned end)."""
        return {
            "history": [dict(r) for r in self.history],
            "decisions": [d.as_dict() for d in self.decisions],
            "method": self.method,
            "switch_epoch": self.switch_epoch,
            "planned_end": self.planned_end,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (after a resume)."""
        self.history = [dict(r) for r in state["history"]]
        self.decisions = [Decision.from_dict(d) for d in state["decisions"]]
        self.method = str(state["method"])
        self.switch_epoch = int(state["switch_epoch"])
        self.planned_end = None if state["planned_end"] is None else int(state["planned_end"])
        self.stopped_epoch = None if state["stopped_epoch"] is None else int(state["stopped_epoch"])

    # ------------------------------------------------------------------ outputs
    def history_frame(self) -> pd.DataFrame:
        """The history as a DataFrame (one row per epoch)."""
        return pd.DataFrame(self.history)

    def decisions_frame(self, **keys: Any) -> pd.DataFrame:
        """One row per (decision epoch, plan); see :data:`greenpath.control.log.DECISION_SCHEMA`."""
        from greenpath.control.log import decisions_frame

        return decisions_frame(self.decisions, self.objective, self.margin, **keys)

    def write_decisions(self, path: str | Path, **keys: Any) -> Path:
        """Write :meth:`decisions_frame` atomically to ``path`` (Parquet)."""
        from greenpath.control.log import write_decisions

        return write_decisions(self.decisions_frame(**keys), path)

    def estimated_full_energy_j(self) -> float | None:
        """The predictor's forecast of the full run's energy at the first decision with one."""
        for d in self.decisions:
            if d.full_energy_j is not None and math.isfinite(d.full_energy_j):
                return float(d.full_energy_j)
        return None

    # ------------------------------------------------------------------ internals
    def _decided(self, epoch: int) -> bool:
        return any(d.epoch == epoch for d in self.decisions)

    def _record(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        a = decision.action
        if a == "stop":
            self.stopped_epoch = decision.epoch
        elif a in ("freeze", "quant"):
            self.method = a
            self.switch_epoch = decision.epoch
            self._branch_forecasts = None
        log.info("decision at epoch %d: %s (%s)", decision.epoch, a, decision.reason)
        if self.log_path is not None:
            self.write_decisions(self.log_path)
        return decision

    def _may_switch(self, d: int) -> bool:
        return self.decision_epochs is None or d in self.decision_epochs

    def _forecast(self, k: int, method: str) -> Any:
        """The predictor's forecast of ``method`` from the trunk history 1..k, or None."""
        rows = self.history[:k]
        hist = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["epoch"])
        try:
            return self.predictor.forecast(
                hist, method, k, self.last_epoch, dataset_info=self.dataset_info or None
            )
        except (ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
            log.info("no %s forecast at epoch %d: %s", method, k, exc)
            return None

    def _forecasts(self, d: int) -> dict[str, Any]:
        if self.method == "base":
            switches = [m for m in SWITCH_METHODS if m in self.methods and self._may_switch(d)]
            return {m: self._forecast(d, m) for m in ("base", *switches)}
        if self._branch_forecasts is None:  # after a switch or a resume
            k = self.switch_epoch
            self._branch_forecasts = {m: self._forecast(k, m) for m in ("base", self.method)}
        return self._branch_forecasts

    def _decide(self, d: int) -> Decision:
        last = self.history[-1] if self.history else {}
        e0 = float(np.nansum([_energy_of(r) for r in self.history])) if self.history else 0.0
        h = History(
            d,
            self.last_epoch,
            _f(last.get("val_accuracy")) if d >= 1 else math.nan,
            e0,
            self.method,
            self.switch_epoch if self.method != "base" else 0,
        )
        a = decide(h, self._forecasts(d), self.objective, self.margin, actions=self.methods)
        if a.action in SWITCH_METHODS and a.chosen is not None:
            self.planned_end = a.chosen.end_epoch if a.chosen.end_epoch < self.last_epoch else None
        dec = Decision(d, a.action, a.reason, a.ref_accuracy, a.ref_accuracy_std,
                       a.full_energy_j, a.chosen, list(a.plans) or None)  # fmt: skip
        return self._record(dec)


def _primitive(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


__all__ = ["ACTIONS", "Controller", "Decision", "HISTORY_COLUMNS", "PlanForecast"]
