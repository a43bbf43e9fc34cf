"""The one decision rule: given what a run has measured so far and the predictor's
forecasts, continue, stop now, or switch to layer freezing or mixed precision.

:func:`decide` is pure (no I/O, no fitting, no state). The offline planner
(:mod:`greenpath.paths.planner`) calls it on measured trees, the live controller
(:mod:`greenpath.control.controller`) after every epoch of a run, so on the same history
and forecasts both take the same action.

At epoch d of the path being followed (epochs 1..d trained; d = 0 before the first), the
plans are:

- ``stop`` now (d >= 1): the measured accuracy and cumulative energy at d (kind ``stop_now``);
- continue the path followed now to E (the default plan, always safe), or to a later epoch
  and stop there (kind ``stop_later`` on the trunk, the branch's method on a branch);
- on the trunk, ``freeze``/``quant`` from d (one per switch forecast given), to E or to a
  later epoch (kind ``freeze``/``quant``).

"Later epochs" are every epoch d+1..E-1, or only ``History.end_epochs`` when given (the
planner that decides at the grid's intervention epochs only). A plan's forecast energy is
the measured cumulative energy at d plus the forecast per-epoch energies (J); its forecast
accuracy is the forecast at its end epoch, with its 1-sigma.

The reference (the full trunk's final accuracy, unknown during the run) is the ``base``
forecast at E. Under ``constrained`` a plan is *safe* when

    acc_plan - acc_ref >= -tolerance + delta + kind_margin + z * sqrt(std_plan^2 + std_ref^2)

and the cheapest safe plan wins. Under ``score`` and ``weighted`` plans are ranked by
:meth:`~greenpath.paths.objectives.Objective.value` of the pessimistic accuracy
``acc - delta - kind_margin - z * std``. Ties go to less energy, then the earlier end, then
the first plan in the order above. If the winner acts now (stop, freeze, quant), that is
the action; otherwise ``continue``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from greenpath.paths.objectives import Objective

#: Actions :func:`decide` returns.
ACTIONS: tuple[str, ...] = ("continue", "freeze", "quant", "stop")

#: Methods a run can switch to from the trunk.
SWITCH_METHODS: tuple[str, ...] = ("freeze", "quant")

#: Plan kinds (:attr:`Plan.kind`), the keys of :attr:`Margin.kind_margins`.
PLAN_KINDS: tuple[str, ...] = ("stop_now", "stop_later", "base", "freeze", "quant")


class ForecastLike(Protocol):
    """What :func:`decide` reads from ``greenpath.modeling.base.PathForecast``: arrays over
    ``epochs`` (absolute epoch numbers k+1..E), accuracy as a fraction, energy in J."""

    epochs: np.ndarray
    val_accuracy: np.ndarray
    val_accuracy_std: np.ndarray
    energy_j: np.ndarray
    energy_std: np.ndarray


@dataclass(frozen=True, order=True)
class Margin:
    """Safety margin on the accuracy constraint.

    Attributes:
        z: multiple of the forecast 1-sigma of the accuracy difference (plan - reference).
        delta: additive margin in accuracy (fraction; 0.005 = half a point).
        cold_start: whether to commit at epoch 0, where forecasts rest on dataset
            descriptors and other datasets only.
        kind_margins: extra margin (fraction) per plan kind, as ``((key, margin), ...)``
            (e.g. from :func:`greenpath.paths.planner.conformal_margins`). A key is a kind
            (``stop_now``) or a kind and the first epoch it applies from (``stop_now@10``:
            decisions at epochs >= 10, until the next start of that kind). A kind absent
            from a non-empty table gets its largest margin. Empty: none.
        first_epoch: no commitment (stop or switch) on the trunk before this epoch, e.g.
            the predictor's first training origin, before which its forecasts are
            extrapolations. 0: none.
    """

    z: float = 0.0
    delta: float = 0.0
    cold_start: bool = True
    kind_margins: tuple[tuple[str, float], ...] = ()
    first_epoch: int = 0

    def kind_margin(self, kind: str, epoch: int = 0) -> float:
        """The extra margin (fraction) of plan kind ``kind`` for a decision at ``epoch``."""
        if not self.kind_margins:
            return 0.0
        best: tuple[int, float] | None = None
        for key, value in self.kind_margins:
            name, _, start = key.partition("@")
            first = int(start) if start else 0
            if name == kind and first <= epoch and (best is None or first >= best[0]):
                best = (first, float(value))
        return best[1] if best is not None else max(v for _, v in self.kind_margins)

    def with_kind_margins(self, margins: Mapping[str, float] | None) -> Margin:
        """A copy with the per-kind margins ``margins`` (``None``/empty: none)."""
        kinds = tuple(sorted((str(k), float(v)) for k, v in (margins or {}).items()))
        return Margin(self.z, self.delta, self.cold_start, kinds, self.first_epoch)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Margin:
        """The margin :meth:`as_dict` wrote (``kind_margins`` and ``first_epoch`` optional).

        Raises:
            ValueError: a key that is not a field of :class:`Margin`.
        """
        extra = set(d) - {"z", "delta", "cold_start", "kind_margins", "first_epoch"}
        if extra:
            raise ValueError(f"unknown margin keys {sorted(extra)}; expected Margin.as_dict()")
        m = cls(float(d.get("z", 0.0)), float(d.get("delta", 0.0)), bool(d.get("cold_start", True)),
                first_epoch=int(d.get("first_epoch", 0)))  # fmt: skip
        return m.with_kind_margins(d.get("kind_margins"))

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"z": self.z, "delta": self.delta, "cold_start": self.cold_start}
        if self.kind_margins:
            d["kind_margins"] = dict(self.kind_margins)
        if self.first_epoch:
            d["first_epoch"] = self.first_epoch
        return d


@dataclass(frozen=True)
class History:
    """What the run has measured so far, summarised for a decision.

    Attributes:
        epoch: d, the epochs trained (0 before the first).
        last_epoch: E, the last epoch of the full run (E > d).
        val_accuracy: validation accuracy at d (fraction; NaN at d = 0).
        energy_j: cumulative energy of epochs 1..d (J; 0 at d = 0).
        method: method of the path followed now (``base`` on the trunk).
        intervention_epoch: epoch the followed branch started from (0 on the trunk).
        end_epochs: epochs where a plan may end before E; ``None``: every epoch.
    """

    epoch: int
    last_epoch: int
    val_accuracy: float = math.nan
    energy_j: float = 0.0
    method: str = "base"
    intervention_epoch: int = 0
    end_epochs: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Plan:
    """One plan evaluated by :func:`decide` (forecast values).

    Attributes:
        action: what the plan does now: ``continue``, ``freeze``, ``quant`` or ``stop``.
        method: method of the plan's remaining epochs (``stop`` for stop-now).
        intervention_epoch: epoch its branch starts from (0 for the trunk).
        end_epoch: last epoch the plan trains.
        kind: :data:`PLAN_KINDS`.
        val_accuracy, val_accuracy_std: accuracy at ``end_epoch`` (fraction) and 1-sigma.
        energy_j, energy_std: cumulative energy 1..``end_epoch`` (J) and the 1-sigma of its
            forecast part (square root of the summed per-epoch variances).
        safe: ``constrained``: passes the margin rule; other objectives: True.
        value: objective value used to rank (higher is better; ``-inf`` when unsafe).
    """

    action: str
    method: str
    intervention_epoch: int
    end_epoch: int
    kind: str
    val_accuracy: float
    val_accuracy_std: float
    energy_j: float
    energy_std: float
    safe: bool = True
    value: float = math.nan


@dataclass(frozen=True)
class Action:
    """What :func:`decide` returns.

    Attributes:
        action: :data:`ACTIONS`.
        reason: why, in words.
        chosen: the winning plan (``None`` without a reference forecast).
        plans: every plan evaluated, in ranking order of construction.
        ref_accuracy, ref_accuracy_std: the ``base`` forecast at E (fraction).
        full_energy_j: forecast cumulative energy of continuing the trunk to E (J).
    """

    action: str
    reason: str
    chosen: Plan | None = None
    plans: tuple[Plan, ...] = field(default=())
    ref_accuracy: float | None = None
    ref_accuracy_std: float | None = None
    full_energy_j: float | None = None


def _window(fc: ForecastLike, d: int, E: int, e0: float) -> tuple[np.ndarray, ...]:
    """``(epochs, acc, std, cum energy, cum energy std)`` of ``fc`` over d+1..E.

    Raises:
        ValueError: the forecast does not cover epochs d+1..E.
    """
    ep = np.asarray(fc.epochs, dtype=int)
    if len(ep) == 0 or ep[-1] != E or ep[0] > d + 1:
        raise ValueError(f"forecast covers epochs {ep[:1]}..{ep[-1:]}, need {d + 1}..{E}")
    s = slice(d + 1 - int(ep[0]), None)
    acc = np.asarray(fc.val_accuracy, dtype=float)[s]
    std = np.nan_to_num(np.asarray(fc.val_accuracy_std, dtype=float)[s], nan=0.0)
    en = np.asarray(fc.energy_j, dtype=float)[s]
    en_std = np.nan_to_num(np.asarray(fc.energy_std, dtype=float)[s], nan=0.0)
    return ep[s], acc, std, e0 + np.cumsum(en), np.sqrt(np.cumsum(en_std**2))


def _raw_plans(
    h: History, forecasts: Mapping[str, ForecastLike | None], actions: Sequence[str]
) -> list[Plan]:
    d, E = h.epoch, h.last_epoch
    stop_ok = "stop" in actions
    plans: list[Plan] = []
    if d >= 1 and stop_ok and math.isfinite(h.val_accuracy):
        plans.append(Plan("stop", "stop", d, d, "stop_now", h.val_accuracy, 0.0, h.energy_j, 0.0))
    later = range(d + 1, E) if h.end_epochs is None else [x for x in h.end_epochs if d < x < E]
    ends = {*later, E} if stop_ok else {E}
    on_trunk = h.method == "base"
    for m, fc in forecasts.items():
        if fc is None:
            continue
        if on_trunk:
            if m != "base" and m not in actions:
                continue
        elif m != h.method:
            continue  # on a branch: "base" is the reference only
        ep, acc, std, cum, cum_std = _window(fc, d, E, h.energy_j)
        for i in np.flatnonzero(np.isin(ep, sorted(ends))):
            end = int(ep[i])
            if on_trunk and m == "base":
                act, k, kind = "continue", 0, ("base" if end == E else "stop_later")
            elif on_trunk:
                act, k, kind = m, d, m
            else:
                act, k, kind = "continue", h.intervention_epoch, m
            p = Plan(act, m, k, end, kind, float(acc[i]), float(std[i]), float(cum[i]),
                     float(cum_std[i]))  # fmt: skip
            plans.append(p)
    return plans


def _rank(
    plans: list[Plan],
    default: Plan,
    ref: tuple[float, float],
    objective: Objective,
    mg: Margin,
    epoch: int,
) -> list[Plan]:
    ref_acc, ref_std = ref
    out = []
    for p in plans:
        extra = mg.delta + (0.0 if p is default else mg.kind_margin(p.kind, epoch))
        if objective.name == "constrained":
            sigma = math.sqrt(p.val_accuracy_std**2 + ref_std**2)
            lhs = p.val_accuracy - ref_acc
            safe = p is default or lhs >= -objective.tolerance + extra + mg.z * sigma
            value = -p.energy_j if safe else -math.inf
        else:
            safe = True
            acc = p.val_accuracy - extra - mg.z * p.val_accuracy_std
            value = objective.value(acc, p.energy_j, ref_acc)
        out.append(Plan(**{**p.__dict__, "safe": bool(safe), "value": float(value)}))
    return out


def decide(
    history: History,
    forecasts: Mapping[str, ForecastLike | None],
    objective: Objective,
    margins: Margin,
    *,
    actions: Sequence[str] = ("freeze", "quant", "stop"),
) -> Action:
    """The action at epoch ``history.epoch`` (see the module docstring).

    Args:
        history: the measured state of the path followed now.
        forecasts: ``base`` (the trunk's continuation, whose value at E is the reference;
            required) plus, on the trunk, one forecast per switch possible now (``freeze``,
            ``quant``), or, on a branch, that branch's forecast. Each must cover epochs
            ``history.epoch+1..E`` (it may start earlier: a branch forecast made at the
            switch). ``None`` values are skipped.
        objective: what to optimise.
        margins: the safety margin.
        actions: actions allowed besides ``continue`` (subset of freeze, quant, stop).

    Returns:
        The :class:`Action`; ``continue`` when there is no ``base`` forecast, at E, at
        epoch 0 when ``margins.cold_start`` is False, or on the trunk before
        ``margins.first_epoch``.

    Raises:
        ValueError: a forecast does not cover epochs d+1..E.
    """
    d, E = history.epoch, history.last_epoch
    if d >= E:
        return Action("continue", f"epoch {d} is the last epoch")
    if d == 0 and not margins.cold_start:
        return Action("continue", "no commitment at epoch 0 (margin.cold_start is False)")
    if d < margins.first_epoch and history.method == "base":
        return Action("continue", f"no commitment before epoch {margins.first_epoch}")
    base = forecasts.get("base")
    if base is None:
        return Action("continue", "no forecast of the full run")
    _, acc, std, cum, _ = _window(base, d, E, history.energy_j)
    ref = (float(acc[-1]), float(std[-1]))
    raw = _raw_plans(history, forecasts, actions)
    default = next(
        (
            p
            for p in raw
            if p.action == "continue" and p.end_epoch == E and p.method == history.method
        ),
        None,
    )
    if default is None:
        return Action("continue", f"no forecast of the {history.method} path to the end")
    plans = _rank(raw, default, ref, objective, margins, d)
    best_key, chosen = None, None
    for p in plans:
        if math.isnan(p.value):
            continue
        key = (p.value, -p.energy_j, -p.end_epoch)
        if best_key is None or key > best_key:
            best_key, chosen = key, p
    assert chosen is not None  # the default plan has a finite value under constrained
    return Action(
        chosen.action,
        _reason(chosen, ref, objective),
        chosen,
        tuple(plans),
        ref[0],
        ref[1],
        float(cum[-1]),
    )


def _reason(p: Plan, ref: tuple[float, float], objective: Objective) -> str:
    what = f"{p.method}@{p.intervention_epoch}->{p.end_epoch}"
    if p.action == "stop":
        what = f"stop now at {p.end_epoch}"
    return (
        f"{p.action}: best plan {what}, forecast acc {p.val_accuracy:.4f} ± "
        f"{p.val_accuracy_std:.4f} vs full run {ref[0]:.4f} ± {ref[1]:.4f}, "
        f"{p.energy_j:.1f} J (objective {objective.name}"
        + (f", tolerance {objective.tolerance:g}" if objective.name == "constrained" else "")
        + ")"
    )


__all__ = [
    "ACTIONS",
    "PLAN_KINDS",
    "SWITCH_METHODS",
    "Action",
    "History",
    "Margin",
    "Plan",
    "decide",
]
