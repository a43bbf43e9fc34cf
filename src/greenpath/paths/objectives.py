"""Objectives that rank training paths by final validation accuracy and cumulative energy.

Every objective sees a path through two numbers: its final validation accuracy (a
fraction in [0, 1], the value at the path's last epoch) and its cumulative energy in
joules (everything trained from epoch 1 to the path's last epoch: trunk prefix plus
branch). The *reference* is the full-length trunk (``base`` trained to the last epoch).

- ``score`` (paper, section 3 and ``all_data.csv``): ``val_accuracy / energy_kwh``; higher
  is better. The paper's unit is kWh; the argmax over paths does not depend on the unit.
- ``constrained`` (greenpath): the least cumulative energy among paths whose final accuracy
  is at least ``reference accuracy - tolerance`` (tolerance a fraction: 0.01 = 1 point).
  Value ``-energy_j`` when feasible, ``-inf`` otherwise.
- ``weighted`` (greenpath): ``val_accuracy - lam * energy_kwh`` with ``lam`` in
  accuracy per kWh (e.g. ``lam = 1`` trades 1 point of accuracy for 10 Wh).

kWh appear only in ``score`` (to match the paper's numbers) and as the unit of ``lam``;
everything else is in joules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Joules per kilowatt-hour (exact).
J_PER_KWH: float = 3.6e6

#: Names accepted by :func:`get_objective`.
OBJECTIVES: tuple[str, ...] = ("score", "constrained", "weighted")

#: Default tolerance of ``constrained``: 1 accuracy point.
DEFAULT_TOLERANCE: float = 0.01

#: Share of the tolerance a setting must hold on the datasets it is calibrated on
#: (:meth:`Objective.calibration_violation`). The setting that saves most among many, chosen
#: on a few datasets, is optimistic for the next one; holding half the tolerance there keeps
#: the other half as a buffer for the held-out dataset.
CALIBRATION_TOLERANCE_SHARE: float = 0.5


@dataclass(frozen=True)
class Objective:
    """One objective: a value to maximise for a path, given the reference.

    Attributes:
        name: ``score``, ``constrained`` or ``weighted``.
        tolerance: accuracy tolerance as a fraction (0.01 = 1 point). Defines feasibility
            for ``constrained`` and the *violation* count reported for every objective.
        lam: weight of ``weighted`` in accuracy (fraction) per kWh; ``None`` otherwise.
    """

    name: str
    tolerance: float = DEFAULT_TOLERANCE
    lam: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.name!r}; choose one of {OBJECTIVES}")
        if not (0.0 <= self.tolerance < 1.0) or not math.isfinite(self.tolerance):
            raise ValueError(
                f"tolerance {self.tolerance!r} must be a fraction in [0, 1) (0.01 = 1 point)"
            )
        if self.name == "weighted":
            if self.lam is None or not math.isfinite(self.lam) or self.lam < 0:
                raise ValueError(
                    f"objective 'weighted' needs lam >= 0 (accuracy per kWh), got {self.lam!r}"
                )

    def feasible(self, val_accuracy: float, ref_accuracy: float) -> bool:
        """True when ``val_accuracy >= ref_accuracy - tolerance`` (1e-12 slack for rounding)."""
        return bool(val_accuracy >= ref_accuracy - self.tolerance - 1e-12)

    def violation(self, val_accuracy: float, ref_accuracy: float) -> bool:
        """True when a path loses more than ``tolerance`` accuracy against the reference."""
        return not self.feasible(val_accuracy, ref_accuracy)

    def calibration_violation(self, val_accuracy: float, ref_accuracy: float) -> bool:
        """What a calibration counts as a violation: a path that loses more than
        ``CALIBRATION_TOLERANCE_SHARE x tolerance`` accuracy against the reference."""
        slack = CALIBRATION_TOLERANCE_SHARE * self.tolerance
        return not bool(val_accuracy >= ref_accuracy - slack - 1e-12)

    def value(self, val_accuracy: float, energy_j: float, ref_accuracy: float) -> float:
        """The objective's value for one path; higher is better.

        Args:
            val_accuracy: final validation accuracy, fraction in [0, 1].
            energy_j: cumulative energy of the path in joules (> 0).
            ref_accuracy: final accuracy of the full-length trunk (used by ``constrained``).

        Returns:
            ``score``: accuracy per kWh; ``constrained``: ``-energy_j`` if feasible else
            ``-inf``; ``weighted``: ``accuracy - lam * kWh``. NaN inputs give NaN.
        """
        if not (math.isfinite(val_accuracy) and math.isfinite(energy_j)):
            return math.nan
        kwh = energy_j / J_PER_KWH
        if self.name == "score":
            return val_accuracy / kwh if kwh > 0 else math.inf
        if self.name == "constrained":
            return -energy_j if self.feasible(val_accuracy, ref_accuracy) else -math.inf
        assert self.lam is not None
        return val_accuracy - self.lam * kwh

    def regret(
        self,
        val_accuracy: float,
        energy_j: float,
        oracle_accuracy: float,
        oracle_energy_j: float,
        ref_accuracy: float,
        ref_energy_j: float,
    ) -> float:
        """Regret of a chosen path against the oracle's, in the objective's natural unit.

        - ``constrained``: ``(energy - oracle energy) / reference energy * 100``, percentage
          points of the full trunk's energy. It ignores feasibility, so a path that violates
          the tolerance can have negative regret; violations are reported separately.
        - ``score``: relative shortfall ``(oracle score - score) / oracle score * 100`` (%).
        - ``weighted``: ``oracle value - value`` in accuracy points (x100).

        The oracle's own regret is 0 in every case.
        """
        if self.name == "constrained":
            return (energy_j - oracle_energy_j) / ref_energy_j * 100.0
        v = self.value(val_accuracy, energy_j, ref_accuracy)
        o = self.value(oracle_accuracy, oracle_energy_j, ref_accuracy)
        if self.name == "score":
            return (o - v) / o * 100.0
        return (o - v) * 100.0

    def describe(self) -> dict[str, object]:
        """A JSON-ready description with units."""
        text = {
            "score": "final val_accuracy / cumulative energy in kWh (paper); maximise",
            "constrained": (
                "least cumulative energy (J) such that final val_accuracy >= full-length "
                "trunk's final val_accuracy - tolerance"
            ),
            "weighted": "final val_accuracy - lam x cumulative energy in kWh; maximise",
        }[self.name]
        return {
            "name": self.name,
            "definition": text,
            "tolerance": self.tolerance,
            "tolerance_points": self.tolerance * 100.0,
            "lam_accuracy_per_kwh": self.lam,
        }


def get_objective(
    name: str, tolerance: float = DEFAULT_TOLERANCE, lam: float | None = None
) -> Objective:
    """Build an :class:`Objective` by name (``score``, ``constrained``, ``weighted``).

    Raises:
        ValueError: unknown name, tolerance outside [0, 1), or ``weighted`` without ``lam``.
    """
    return Objective(name=name, tolerance=float(tolerance), lam=None if lam is None else float(lam))
