"""Typed results of one measurement window: per-component joules with source and estimate flag.

A window (one epoch, or any code block) yields one :class:`Measurement` holding three
:class:`ComponentEnergy` values (GPU, CPU packages, DRAM). Energies are in joules; kWh only
appears in :func:`co2eq_g` (1 kWh = 3.6e6 J).

Rules that every meter follows:

* ``source`` is the method whose reading is in ``joules``. ``source == "absent"`` means no
  reading: the component is not present, not used by this process, or could not be read;
  its ``joules`` is ``NaN`` (null in Parquet, never ``0.0``) and ``note`` says why. Every other
  source has a finite reading.
* ``estimate`` is ``True`` exactly when ``source == "estimate"``.
* ``uncertain`` is ``True`` when a counter reading may be too low (for example a wrapping
  counter was not read often enough to rule out a missed wrap); the note says why.
* The total of a window is the sum of the components that have a reading
  (:attr:`Measurement.total_components`); it is ``NaN`` only when none has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

#: The energy sources a component can report, from most to least trusted. Matches
#: ``greenpath.records.schema.ENERGY_SOURCES`` (which also has ``imported``).
SOURCES: tuple[str, ...] = (
    "nvml_counter",
    "nvml_power_integration",
    "rapl",
    "estimate",
    "absent",
)

#: The components of a measurement, in record order.
COMPONENTS: tuple[str, ...] = ("gpu", "cpu", "dram")

#: Joules per kilowatt-hour (exact).
J_PER_KWH: float = 3.6e6


@dataclass(frozen=True)
class ComponentEnergy:
    """Energy of one component (GPU, CPU or DRAM) over one window.

    Attributes:
        joules: energy in J over the window; ``NaN`` exactly when ``source == "absent"``
            (not measured; the reason in ``note``).
        source: one of :data:`SOURCES`: the method whose reading is in ``joules``.
        estimate: ``True`` iff the value comes from a model rather than a hardware reading.
        domains: joules per device / sysfs domain, e.g. ``{"GPU-bbb": 1500.0}`` or
            ``{"/sys/class/powercap/intel-rapl:0": 10.0}``; read-only.
        note: why a value is absent, estimated or uncertain; ``None`` when there is nothing
            to say.
        uncertain: ``True`` when the reading may be too low (a counter wrap may have been
            missed); the note gives the cause.

    Raises:
        ValueError: on an unknown source, an absent component with a number, a reading
            that is not a finite number, or an ``estimate`` flag that disagrees with the
            source.
    """

    joules: float
    source: str
    estimate: bool
    domains: Mapping[str, float] = field(default_factory=dict)
    note: str | None = None
    uncertain: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown energy source {self.source!r}; expected one of {SOURCES}")
        if self.source == "absent" and not math.isnan(self.joules):
            raise ValueError(
                f"an absent component has no reading (NaN J), got {self.joules!r}; "
                "give the source of the reading instead"
            )
        if self.source != "absent" and not math.isfinite(self.joules):
            raise ValueError(
                f"source {self.source!r} needs a finite reading, got {self.joules!r}; "
                "report a component without a reading as absent(note)"
            )
        if self.estimate != (self.source == "estimate"):
            raise ValueError(
                f"estimate={self.estimate!r} disagrees with source={self.source!r} "
                "(estimate must be True exactly for source 'estimate')"
            )
        object.__setattr__(self, "joules", float(self.joules))
        object.__setattr__(self, "domains", MappingProxyType(dict(self.domains)))

    @property
    def readable(self) -> bool:
        """``True`` when ``joules`` is a finite number."""
        return math.isfinite(self.joules)


def absent(note: str | None = None, domains: Mapping[str, float] | None = None) -> ComponentEnergy:
    """A component without a reading (not present, not used, or unreadable): NaN J, source
    ``absent``, the reason in ``note``; ``domains`` may name the devices that were not read."""
    return ComponentEnergy(float("nan"), "absent", False, dict(domains or {}), note)


def co2eq_g(joules: float, carbon_intensity_g_per_kwh: float) -> float:
    """Grams of CO2-equivalent for ``joules`` at ``carbon_intensity_g_per_kwh`` (gCO2eq/kWh).

    ``co2 = joules / 3.6e6 * intensity``; NaN propagates.

    Raises:
        ValueError: for a negative intensity.
    """
    if carbon_intensity_g_per_kwh < 0:
        raise ValueError(
            f"carbon intensity must be >= 0 gCO2eq/kWh, got {carbon_intensity_g_per_kwh!r}"
        )
    return joules / J_PER_KWH * carbon_intensity_g_per_kwh


#: The keys returned by :meth:`Measurement.record_fields`, in record-schema order.
RECORD_FIELDS: tuple[str, ...] = (
    "energy_gpu_j",
    "energy_cpu_j",
    "energy_dram_j",
    "energy_total_j",
    "energy_total_components",
    "energy_gpu_source",
    "energy_cpu_source",
    "energy_dram_source",
    "energy_gpu_estimate",
    "energy_cpu_estimate",
    "energy_dram_estimate",
    "energy_gpu_uncertain",
    "energy_cpu_uncertain",
    "energy_dram_uncertain",
    "energy_note",
    "gpu_uuid",
    "co2eq_g",
)


@dataclass(frozen=True)
class Measurement:
    """Energy of one window.

    Attributes:
        start_utc: wall-clock start of the window (timezone-aware, UTC).
        wall_s: window length in seconds (monotonic clock).
        gpu, cpu, dram: per-component energy.
        gpu_uuids: NVML UUIDs (``GPU-…`` or ``MIG-…``) of the GPUs this process uses, in CUDA
            order; empty when the GPU is absent.
    """

    start_utc: datetime
    wall_s: float
    gpu: ComponentEnergy
    cpu: ComponentEnergy
    dram: ComponentEnergy
    gpu_uuids: tuple[str, ...] = ()

    @property
    def total_components(self) -> tuple[str, ...]:
        """The components with a reading (source not ``absent``), in :data:`COMPONENTS` order."""
        return tuple(c for c in COMPONENTS if self.component(c).source != "absent")

    @property
    def total_j(self) -> float:
        """Sum of the components with a reading (:attr:`total_components`), J; NaN when none
        has one. An absent component is left out, never counted as 0 J."""
        parts = self.total_components
        return math.fsum(self.component(c).joules for c in parts) if parts else float("nan")

    def component(self, name: str) -> ComponentEnergy:
        """The component called ``name`` (one of :data:`COMPONENTS`).

        Raises:
            KeyError: for an unknown name.
        """
        if name not in COMPONENTS:
            raise KeyError(f"unknown component {name!r}; expected one of {COMPONENTS}")
        return getattr(self, name)

    @property
    def note(self) -> str | None:
        """The components' notes joined as ``"gpu: …; cpu: …"``, or ``None``."""
        parts = [f"{c}: {self.component(c).note}" for c in COMPONENTS if self.component(c).note]
        return "; ".join(parts) if parts else None

    def record_fields(self, carbon_intensity_g_per_kwh: float | None = None) -> dict[str, Any]:
        """The energy columns of one record-schema row (see ``records/schema.py``).

        Args:
            carbon_intensity_g_per_kwh: grid intensity in gCO2eq/kWh; ``None`` leaves
                ``co2eq_g`` null.

        Returns:
            A dict with exactly the keys of :data:`RECORD_FIELDS`. Joules are floats (NaN, null
            in Parquet, for an absent component); ``energy_total_components`` names the
            components summed in ``energy_total_j`` (comma-joined, ``None`` when none);
            ``gpu_uuid`` is the comma-joined UUIDs or ``None``.
        """
        co2 = (
            None
            if carbon_intensity_g_per_kwh is None
            else co2eq_g(self.total_j, carbon_intensity_g_per_kwh)
        )
        return {
            "energy_gpu_j": self.gpu.joules,
            "energy_cpu_j": self.cpu.joules,
            "energy_dram_j": self.dram.joules,
            "energy_total_j": self.total_j,
            "energy_total_components": ",".join(self.total_components) or None,
            "energy_gpu_source": self.gpu.source,
            "energy_cpu_source": self.cpu.source,
            "energy_dram_source": self.dram.source,
            "energy_gpu_estimate": self.gpu.estimate,
            "energy_cpu_estimate": self.cpu.estimate,
            "energy_dram_estimate": self.dram.estimate,
            "energy_gpu_uncertain": self.gpu.uncertain,
            "energy_cpu_uncertain": self.cpu.uncertain,
            "energy_dram_uncertain": self.dram.uncertain,
            "energy_note": self.note,
            "gpu_uuid": ",".join(self.gpu_uuids) if self.gpu_uuids else None,
            "co2eq_g": co2,
        }


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power measured before training (optional; ``energy.idle_baseline_s`` > 0).

    Attributes:
        seconds: length of the idle window actually measured, s.
        power_w: mean power per component in W (``gpu``, ``cpu``, ``dram``); NaN when the
            component was not measured.
        sources: the source of each component's idle reading.
        start_utc: when the idle window started.
    """

    seconds: float
    power_w: Mapping[str, float]
    sources: Mapping[str, str]
    start_utc: datetime

    @classmethod
    def from_measurement(cls, m: Measurement) -> IdleBaseline:
        """Mean power per component over an idle window ``m``.

        Raises:
            ValueError: if ``m.wall_s`` is not positive.
        """
        if not m.wall_s > 0:
            raise ValueError(f"idle window must have positive length, got wall_s={m.wall_s!r}")
        return cls(
            seconds=m.wall_s,
            power_w=MappingProxyType({c: m.component(c).joules / m.wall_s for c in COMPONENTS}),
            sources=MappingProxyType({c: m.component(c).source for c in COMPONENTS}),
            start_utc=m.start_utc,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for Parquet metadata)."""
        return {
            "seconds": self.seconds,
            # null = not measured (strict JSON has no NaN)
            "power_w": {c: (None if math.isnan(w) else w) for c, w in self.power_w.items()},
            "sources": dict(self.sources),
            "start_utc": self.start_utc.isoformat(),
        }


def gross_and_net(m: Measurement, baseline: IdleBaseline) -> dict[str, float]:
    """Gross and net (above idle) energy of window ``m``.

    ``net_c = gross_c - idle_power_c * m.wall_s`` for each component c; the totals sum the
    components in ``m.total_components`` (NaN when none). An absent component's gross and
    net are NaN. Net values are not clamped: small negative values mean the window was as
    idle as the baseline, within noise.

    Returns:
        ``{"gross_gpu_j", "net_gpu_j", "gross_cpu_j", "net_cpu_j", "gross_dram_j",
        "net_dram_j", "gross_total_j", "net_total_j"}`` in joules.
    """
    out: dict[str, float] = {}
    for c in COMPONENTS:
        gross = m.component(c).joules
        out[f"gross_{c}_j"] = gross
        out[f"net_{c}_j"] = gross - baseline.power_w[c] * m.wall_s
    parts = m.total_components
    nan = float("nan")
    out["gross_total_j"] = math.fsum(out[f"gross_{c}_j"] for c in parts) if parts else nan
    out["net_total_j"] = math.fsum(out[f"net_{c}_j"] for c in parts) if parts else nan
    return out
