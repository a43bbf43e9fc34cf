"""The live controller: at each decision epoch, forecast every option and apply the best.

A :class:`Controller` is an epoch-end callback. It keeps the run's history (one record row
per epoch), and at each *decision epoch* d (after epoch d has run; d = 0 is before the first
epoch) it asks a fitted predictor (:class:`greenpath.modeling.base.Predictor`) for the rest
of the run under each method (``base``, ``freeze``, ``quant``; epochs d+1..E, accuracy and
per-epoch energy, each with a 1-sigma uncertainty) and builds the same plans as greenpath's
planner (:mod:`greenpath.paths.planner`):

- ``stop`` now (d >= 1): the measured accuracy and cumulative energy at d;
- continue on the trunk to E (the reference), or continue and stop at a later decision
  epoch d';
- ``freeze``/``quant`` from d to E, or to a later decision epoch d' and stop there.

Forecast energy of a plan = measured cumulative energy at d + the forecast per-epoch
energies (J). The full run's final accuracy is unknown live, so the reference is the
``base`` forecast at E. Under ``constrained`` a plan is *safe* when

    acc_plan - acc_ref >= -tolerance + delta + z * sqrt(std_plan^2 + std_ref^2)

(``Margin(z, delta)`` of :mod:`greenpath.paths.planner`; continuing to E is safe by
definition) and the cheapest safe plan wins; under ``score``/``weighted`` plans are ranked
on the pessimistic accuracy ``acc - delta - z * std`` with
:meth:`greenpath.paths.objectives.Objective.value`. Ties go to less energy, then the earlier
end. If the winner acts now, its first action (``freeze``, ``quant`` or ``stop``) is
returned to the training loop and the plan is followed to its planned end (a ``stop`` is
issued there); otherwise the controller returns ``continue`` and plans again at the next
decision epoch. So on a measured tree it takes the path :func:`greenpath.paths.plan_tree`
would take with the same forecasts.

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

from greenpath.paths.objectives import DEFAULT_TOLERANCE, Objective, get_objective
from greenpath.paths.planner import Margin

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


@dataclass(frozen=True)
class PlanForecast:
    """One plan evaluated at a decision epoch (forecast values).

    Attributes:
        action: what the plan does now: ``continue``, ``freeze``, ``quant`` or ``stop``.
        method: the method of the plan's remaining epochs (``base``, ``freeze``, ``quant``;
            ``stop`` for stop-now).
        end_epoch: last epoch the plan trains (E, or a later decision epoch where it stops).
        val_accuracy, val_accuracy_std: forecast final accuracy (fraction) and its 1-sigma.
        energy_j, energy_std: forecast cumulative energy from epoch 1 to ``end_epoch`` (J)
            and the 1-sigma of its forecast part (sqrt of summed per-epoch variances).
        safe: ``constrained``: passes the margin rule; other objectives: True.
        value: objective value used to rank (higher is better; ``-inf`` unsafe).
    """

    action: str
    method: str
    end_epoch: int
    val_accuracy: float
    val_accuracy_std: float
    energy_j: float
    energy_std: float
    safe: bool
    value: float


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
        plans = [PlanForecast(**p) for p in (d.get("plans") or [])]
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

        ctl = Controller(predictor, last_epoch=10, decision_epochs=[0, 3, 5, 7])
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
        decision_epochs: epochs at which to decide (0 = before the first epoch); default
            ``[0]`` plus every 1/4 of the run is not assumed: pass the study's intervention
            epochs (default config: 0, 3, 5, 7). Epochs >= E are ignored.
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
        decision_epochs: Iterable[int] = (0,),
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
        self.decision_epochs = tuple(
            sorted({int(d) for d in decision_epochs if 0 <= int(d) < self.last_epoch})
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

    # ------------------------------------------------------------------ callbacks
    def on_train_begin(self, epoch: int = 0, model: Any = None) -> str:
        """Decide at the start (``epoch`` = epochs already trained, 0 for a new run)."""
        if epoch == 0 and 0 in self.decision_epochs and not self._decided(0):
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
        if self.planned_end is not None and epoch >= self.planned_end:
            return self._record(
                Decision(epoch, "stop", f"planned end of the {self.method} plan reached")
            ).action
        if epoch in self.decision_epochs:
            if self.method != "base":
                return self._record(
                    Decision(
                        epoch,
                        "continue",
                        f"following the {self.method} plan committed at epoch "
                        f"{self.switch_epoch} (to epoch {self.planned_end or self.last_epoch})",
                    )
                ).action
            return self._decide(epoch).action
        return "continue"

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
        log.info("decision at epoch %d: %s (%s)", decision.epoch, a, decision.reason)
        if self.log_path is not None:
            self.write_decisions(self.log_path)
        return decision

    def _forecast(self, d: int, method: str, hist: pd.DataFrame) -> Any:
        fc = self.predictor.forecast(
            hist, method, d, self.last_epoch, dataset_info=self.dataset_info or None
        )
        n = self.last_epoch - d
        acc = np.asarray(fc.val_accuracy, dtype=float)
        if len(acc) != n or not np.all(np.isfinite(acc)):
            raise ValueError(f"forecast has {len(acc)} epochs (expected {n}) or non-finite values")
        return fc

    def _decide(self, d: int) -> Decision:
        E = self.last_epoch
        hist = self.history_frame() if self.history else pd.DataFrame(columns=["epoch"])
        if d == 0 and not self.margin.cold_start:
            return self._record(
                Decision(d, "continue", "no commitment at epoch 0 (margin.cold_start is False)")
            )
        fcs: dict[str, Any] = {}
        errors: list[str] = []
        for m in ("base", *[x for x in ("freeze", "quant") if x in self.methods]):
            try:
                fcs[m] = self._forecast(d, m, hist)
            except (ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
                errors.append(f"{m}: {exc}")
        if "base" not in fcs:
            return self._record(
                Decision(d, "continue", f"no forecast of the full run ({'; '.join(errors)})")
            )
        e0 = float(np.nansum([_energy_of(r) for r in self.history])) if self.history else 0.0
        acc_d = _f(self.history[-1]["val_accuracy"]) if self.history else math.nan
        later = [x for x in self.decision_epochs if d < x < E]
        plans_raw: list[tuple[str, str, int, float, float, float, float]] = []
        if d >= 1 and "stop" in self.methods and math.isfinite(acc_d):
            plans_raw.append(("stop", "stop", d, acc_d, 0.0, e0, 0.0))
        for m, fc in fcs.items():
            acc = np.asarray(fc.val_accuracy, dtype=float)
            std = np.nan_to_num(np.asarray(fc.val_accuracy_std, dtype=float), nan=0.0)
            en = np.asarray(fc.energy_j, dtype=float)
            en_std = np.nan_to_num(np.asarray(fc.energy_std, dtype=float), nan=0.0)
            cum = e0 + np.cumsum(en)
            cum_std = np.sqrt(np.cumsum(en_std**2))
            for end in [*later, E] if "stop" in self.methods else [E]:
                i = end - d - 1
                action = "continue" if m == "base" else m
                plans_raw.append((action, m, end, acc[i], std[i], cum[i], cum_std[i]))
        ref = next(p for p in plans_raw if p[1] == "base" and p[2] == E)
        ref_acc, ref_std = float(ref[3]), float(ref[4])
        obj, mg = self.objective, self.margin
        plans: list[PlanForecast] = []
        for action, m, end, acc, std, en, en_std in plans_raw:
            is_ref = m == "base" and end == E
            if obj.name == "constrained":
                sigma = math.sqrt(std**2 + ref_std**2)
                safe = is_ref or (acc - ref_acc >= -obj.tolerance + mg.delta + mg.z * sigma)
                value = -en if safe else -math.inf
            else:
                safe = True
                value = obj.value(acc - mg.delta - mg.z * std, en, ref_acc)
            plans.append(
                PlanForecast(action, m, int(end), float(acc), float(std), float(en),
                             float(en_std), bool(safe), float(value))
            )  # fmt: skip
        ranked = [p for p in plans if not math.isnan(p.value)]
        best = max(ranked, key=lambda p: (p.value, -p.energy_j, -p.end_epoch))
        full_energy = float(ref[5])
        if best.action == "continue":
            reason = (
                "continue: best plan is the trunk "
                + (
                    f"to {best.end_epoch}"
                    if best.end_epoch == E
                    else f"stopped at {best.end_epoch}"
                )
                + f" (forecast acc {best.val_accuracy:.4f}, {best.energy_j:.1f} J)"
            )
        else:
            reason = (
                f"{best.action}: forecast acc {best.val_accuracy:.4f} ± {best.val_accuracy_std:.4f}"
                f" vs full run {ref_acc:.4f} ± {ref_std:.4f}, {best.energy_j:.1f} J vs "
                f"{full_energy:.1f} J (objective {obj.name}"
                + (f", tolerance {obj.tolerance:g}" if obj.name == "constrained" else "")
                + ")"
            )
        if best.action in ("freeze", "quant"):
            self.planned_end = best.end_epoch if best.end_epoch < E else None
        dec = Decision(d, best.action, reason, ref_acc, ref_std, full_energy, best, plans)
        return self._record(dec)


def _primitive(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


__all__ = ["ACTIONS", "Controller", "Decision", "HISTORY_COLUMNS", "PlanForecast"]
