"""The meter interface: windows (begin/end), a context manager, composition, polling threads.

A :class:`Meter` measures windows. ``begin()`` takes a fresh snapshot of every counter and
returns a :class:`Window` that owns it; ``end(window)`` takes another fresh snapshot and returns
the :class:`~greenpath.energy.measurement.Measurement` of the difference. A window never shares
or inherits its start snapshot from a background sampler or another window (codecarbon#851:
a background update replaced the baseline a task delta was computed from).

Background threads (RAPL wraparound guard, NVML power sampling) only advance monotonic
accumulators under a lock; boundary snapshots read the same accumulators after a fresh
hardware read, so both see one consistent, never-decreasing series.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from greenpath.energy.measurement import (
    COMPONENTS,
    ComponentEnergy,
    IdleBaseline,
    Measurement,
    absent,
)

log = logging.getLogger("greenpath.energy")

_window_ids = itertools.count(1)

#: Kinds of component note a meter logs (once each) before it stops logging them.
MAX_LOGGED_NOTES: int = 20
_DIGITS = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


class Window:
    """An open measurement window: its start time and its own start snapshot.

    Attributes:
        id: unique, increasing window number (per process).
        start_utc: wall-clock start (UTC).
        t0: ``time.perf_counter()`` at the start, s.
        state: the meter's start snapshot (opaque; owned by this window only).
        ended: set by :meth:`Meter.end`; a window can be ended once.
    """

    __slots__ = ("id", "meter", "start_utc", "t0", "state", "ended")

    def __init__(self, meter: Meter, start_utc: datetime, t0: float, state: Any) -> None:
        self.id = next(_window_ids)
        self.meter = meter
        self.start_utc = start_utc
        self.t0 = t0
        self.state = state
        self.ended = False

    def __repr__(self) -> str:
        return f"Window(id={self.id}, start_utc={self.start_utc.isoformat()}, ended={self.ended})"


class MeasureContext:
    """Context manager returned by :meth:`Meter.measure`.

    ``with meter.measure() as m: ...`` then ``m.result`` is the window's
    :class:`Measurement` (``None`` inside the block). The window is ended even when the block
    raises; the exception is not suppressed.
    """

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.window: Window | None = None
        self.result: Measurement | None = None

    def __enter__(self) -> MeasureContext:
        self.window = self.meter.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.window is not None
        self.result = self.meter.end(self.window)


class Poller:
    """A light daemon thread calling ``fn()`` every ``period_s`` seconds until stopped.

    Exceptions from ``fn`` are logged once and polling continues. ``cpu_s`` is the thread's own
    CPU time (``time.thread_time``), for the benchmark of the poller's CPU share.
    """

    def __init__(self, fn: Callable[[], None], period_s: float, name: str) -> None:
        if not period_s > 0:
            raise ValueError(f"poll period must be > 0 s, got {period_s!r}")
        self.fn = fn
        self.period_s = float(period_s)
        self.name = name
        self.cpu_s = 0.0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_error = False

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        c0 = time.thread_time()
        while not self._stop.wait(self.period_s):
            try:
                self.fn()
            except Exception as e:  # noqa: BLE001 - a poll error must not kill the thread
                if not self._logged_error:
                    log.warning("%s: poll failed (%s); will keep polling", self.name, e)
                    self._logged_error = True
            self.polls += 1
            self.cpu_s = time.thread_time() - c0

    def stop(self) -> None:
        """Stop and join the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


class Meter(ABC):
    """Measures energy over windows. Concrete meters: ``NvmlGpuMeter``, ``RaplMeter``,
    ``EstimateMeter`` and :class:`CompositeMeter` (what :func:`make_meter` returns).

    Subclasses implement :meth:`_snapshot` (a fresh reading of every counter the meter owns)
    and :meth:`_energy` (the per-component energy between two snapshots). Components a meter
    does not measure come back ``absent``.
    """

    #: components this meter measures (subset of ``("gpu", "cpu", "dram")``)
    components: tuple[str, ...] = ()
    #: grid intensity used by :meth:`record_fields`, gCO2eq/kWh (None: no CO2 figure)
    carbon_intensity_g_per_kwh: float | None = None
    #: where that intensity comes from (recorded in the metadata)
    carbon_intensity_source: str | None = None

    def __init__(self) -> None:
        self._started = False
        self._closed = False
        self.idle_baseline: IdleBaseline | None = None

    # --- to implement -------------------------------------------------------------------
    @abstractmethod
    def _snapshot(self) -> Any:
        """A fresh reading of every counter; must not reuse a poller's or window's state."""

    @abstractmethod
    def _energy(self, start: Any, end: Any, wall_s: float) -> dict[str, ComponentEnergy]:
        """Per-component energy between snapshots ``start`` and ``end``."""

    def _gpu_uuids(self) -> tuple[str, ...]:
        return ()

    def _start_threads(self) -> None:  # noqa: B027 - optional hook
        """Start background pollers (called once, at the first window)."""

    def _stop_threads(self) -> None:  # noqa: B027 - optional hook
        """Stop background pollers."""

    def _metadata(self) -> dict[str, Any]:
        return {}

    def _absent_note(self, component: str) -> str:
        return f"not measured by {type(self).__name__}"

    # --- public API ---------------------------------------------------------------------
    def begin(self) -> Window:
        """Open a window: take a fresh snapshot of every counter.

        Raises:
            RuntimeError: if the meter was closed.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed; build a new meter")
        if not self._started:
            self._started = True
            self._start_threads()
        start_utc = datetime.now(UTC)
        t0 = time.perf_counter()
        state = self._snapshot()
        return Window(self, start_utc, t0, state)

    def end(self, window: Window) -> Measurement:
        """Close ``window`` and return its measurement.

        Raises:
            ValueError: if ``window`` belongs to another meter or was already ended.
        """
        if window.meter is not self:
            raise ValueError("this window was opened by another meter")
        if window.ended:
            raise ValueError(f"window {window.id} was already ended")
        state = self._snapshot()
        wall_s = time.perf_counter() - window.t0
        window.ended = True
        parts = self._energy(window.state, state, wall_s)
        comps = {c: parts[c] if c in parts else absent(self._absent_note(c)) for c in COMPONENTS}
        m = Measurement(
            start_utc=window.start_utc,
            wall_s=wall_s,
            gpu=comps["gpu"],
            cpu=comps["cpu"],
            dram=comps["dram"],
            gpu_uuids=self._gpu_uuids(),
        )
        self._log_notes(m)
        return m

    def _log_notes(self, m: Measurement) -> None:
        """Log each kind of component note once per meter, so the job log says what the
        records say: a warning for an uncertain reading, info otherwise (the causes of an
        absent or estimated component are warned about once where they are found).
        Notes that differ only in their numbers count as one kind; after
        :data:`MAX_LOGGED_NOTES` kinds one last line says the rest are in ``energy_note``."""
        seen = self.__dict__.setdefault("_logged_notes", set())
        raw = self.__dict__.setdefault("_raw_notes", set())  # fast path: exact repeats
        for c in COMPONENTS:
            e = m.component(c)
            if not e.note or len(seen) > MAX_LOGGED_NOTES:
                continue
            exact = (c, e.source, e.uncertain, e.note)
            if exact in raw:
                continue
            if len(raw) < 10 * MAX_LOGGED_NOTES:
                raw.add(exact)
            key = (c, e.source, e.uncertain, _DIGITS.sub("#", e.note))
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > MAX_LOGGED_NOTES:
                log.warning("more energy notes in this job: see the records' energy_note")
                continue
            level = logging.WARNING if e.uncertain else logging.INFO
            what = "not measured" if e.source == "absent" else e.source
            flag = ", uncertain" if e.uncertain else ""
            log.log(level, "energy %s (%s%s): %s", c, what, flag, e.note)

    def measure(self) -> MeasureContext:
        """``with meter.measure() as m: ...``; afterwards ``m.result`` is the measurement."""
        return MeasureContext(self)

    def measure_idle_baseline(
        self, seconds: float, sleep: Callable[[float], None] = time.sleep
    ) -> IdleBaseline:
        """Measure ``seconds`` of idle power (call before training) and keep it.

        The baseline is stored in :attr:`idle_baseline` and in :meth:`metadata`; use
        :func:`greenpath.energy.gross_and_net` for net energy above idle.

        Raises:
            ValueError: if ``seconds`` is not positive.
        """
        if not seconds > 0:
            raise ValueError(f"idle baseline needs seconds > 0, got {seconds!r}")
        w = self.begin()
        sleep(seconds)
        self.idle_baseline = IdleBaseline.from_measurement(self.end(w))
        log.info("idle baseline over %.1f s: %s W", seconds, dict(self.idle_baseline.power_w))
        return self.idle_baseline

    def record_fields(self, m: Measurement) -> dict[str, Any]:
        """``m.record_fields(self.carbon_intensity_g_per_kwh)``."""
        return m.record_fields(self.carbon_intensity_g_per_kwh)

    def metadata(self) -> dict[str, str]:
        """Meter configuration, estimate model and constants, as Parquet metadata strings.

        Keys start with ``greenpath.energy.``; values are JSON or plain strings.
        """
        meta = {"greenpath.energy.meter": type(self).__name__}
        for k, v in self._metadata().items():
            meta[f"greenpath.energy.{k}"] = v if isinstance(v, str) else json.dumps(v)
        meta["greenpath.energy.idle_baseline"] = (
            json.dumps(self.idle_baseline.as_dict()) if self.idle_baseline else "off"
        )
        if self.carbon_intensity_g_per_kwh is not None:
            meta["greenpath.energy.carbon_intensity_g_per_kwh"] = repr(
                float(self.carbon_intensity_g_per_kwh)
            )
            if self.carbon_intensity_source:
                meta["greenpath.energy.carbon_intensity_source"] = self.carbon_intensity_source
        return meta

    def close(self) -> None:
        """Stop polling threads and release resources (idempotent)."""
        if not self._closed:
            self._closed = True
            self._stop_threads()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CompositeMeter(Meter):
    """Combines meters: each component comes from the first child that measures it.

    Args:
        meters: child meters, in priority order.
        absent_notes: reason shown for components no child measures (e.g. ``{"gpu":
            "device='cpu': this process uses no GPU"}``).
        carbon_intensity_g_per_kwh: grid intensity for :meth:`record_fields`.
        config: the resolved ``energy:`` config, recorded in :meth:`metadata`.
    """

    def __init__(
        self,
        meters: Sequence[Meter],
        *,
        absent_notes: dict[str, str] | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.meters = list(meters)
        self.absent_notes = dict(absent_notes or {})
        self.carbon_intensity_g_per_kwh = carbon_intensity_g_per_kwh
        self.config = config
        self.owner: dict[str, Meter] = {}
        for c in COMPONENTS:
            for m in self.meters:
                if c in m.components:
                    self.owner[c] = m
                    break
        self.components = tuple(c for c in COMPONENTS if c in self.owner)

    def _start_threads(self) -> None:
        for m in self.meters:
            if not m._started:
                m._started = True
                m._start_threads()

    def _stop_threads(self) -> None:
        for m in self.meters:
            m.close()

    def _snapshot(self) -> Any:
        return tuple(m._snapshot() for m in self.meters)

    def _energy(self, start: Any, end: Any, wall_s: float) -> dict[str, ComponentEnergy]:
        out: dict[str, ComponentEnergy] = {}
        for m, a, b in zip(self.meters, start, end, strict=True):
            parts = m._energy(a, b, wall_s)
            for c, e in parts.items():
                if self.owner.get(c) is m:
                    out[c] = e
        return out

    def _gpu_uuids(self) -> tuple[str, ...]:
        m = self.owner.get("gpu")
        return m._gpu_uuids() if m is not None else ()

    def _absent_note(self, component: str) -> str:
        if component in self.owner:  # the owner measured nothing, e.g. no visible GPU
            return self.owner[component]._absent_note(component)
        return self.absent_notes.get(component, "no meter for this component")

    def _metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for m in self.meters:
            meta.update(m._metadata())
        meta["components"] = {
            c: type(self.owner[c]).__name__ if c in self.owner else "absent" for c in COMPONENTS
        }
        if self.absent_notes:
            meta["absent_notes"] = self.absent_notes
        if self.config is not None:
            meta["config"] = self.config
        return meta

    def metadata(self) -> dict[str, str]:
        meta = super().metadata()
        meta["greenpath.energy.meter"] = (
            "CompositeMeter(" + ", ".join(type(m).__name__ for m in self.meters) + ")"
        )
        return meta
