"""GPU energy through NVML (``nvidia-ml-py``, which provides the ``pynvml`` module).

Per device the meter uses, in order of preference:

1. ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load; Volta and newer): source
   ``nvml_counter``. The driver refreshes this counter only periodically (every 100 ms on
   an H200), so a short window read at its boundaries alone would often show exactly 0 J
   and the next one the whole step (seen on an H200: 20 ms epochs read
   0 J). The meter therefore times the counter's changes and takes the cumulative energy
   at a boundary by linear interpolation between the change before and the change after
   it: ``end()`` reads the counter every millisecond, up to ``counter_wait_s``, until it
   changes after the window. There is no polling thread in this mode (one read costs
   about 2.7 ms on an H200 VM); between back-to-back windows the wait at the previous end
   already timed the change that the next window starts from. Every boundary is a point
   on one monotone interpolated curve, so contiguous windows add up to that curve's rise
   over the run, which differs from the counter's own delta by at most one refresh step at
   each end;
2. where that raises ``NVMLError_NotSupported`` (older GPUs), a daemon
   thread samples ``nvmlDeviceGetPowerUsage`` (mW) every ``poll_interval_s`` and integrates
   it with the trapezoid rule; the window boundaries take their own samples so the whole
   window is covered: source ``nvml_power_integration``;
3. neither readable (or a MIG instance, below): source ``absent``, NaN joules, the reason
   in the note; the job's total then keeps CPU and DRAM.

The counter is an unsigned 64-bit count of millijoules (``unsigned long long`` in NVML's
API): at 1 kW it wraps after about 585 million years, so it needs no wrap guard.

The capability probe runs once per device (at the first window) and is logged once.

Which devices (logical CUDA index != NVML index): the devices this process
uses, given by the meter's ``device`` (``"cuda"`` = ``"cuda:0"``, ``"cuda:N"``), mapped to
NVML by UUID:

* if ``torch`` is already imported and CUDA is initialised, the UUID of logical device N is
  ``torch.cuda.get_device_properties(N).uuid`` (exact; torch is never imported here);
* otherwise, when the process claimed a GPU for logical device N (``greenpath.devices``, a
  training job before CUDA starts), the claimed GPU's UUID;
* otherwise ``CUDA_VISIBLE_DEVICES`` is parsed like CUDA does: comma-separated indices,
  ``GPU-`` UUIDs (unique prefixes allowed) or ``MIG-`` ids; parsing stops at the first invalid
  entry; unset = all devices. Indices follow ``CUDA_DEVICE_ORDER``: ``PCI_BUS_ID`` = ascending
  PCI bus id (exact); ``FASTEST_FIRST`` (CUDA's default) = PCI order when all GPUs are the
  same model (CUDA breaks ties by PCI bus id), and *refused* (NaN with a reason) for
  mixed models, because CUDA's speed ranking cannot be reproduced from NVML.

NVML measures the whole GPU, whoever uses it: when other compute processes hold a context
on the GPU at a window's end (``nvmlDeviceGetComputeRunningProcesses``), the window's note
says so (seen on an H200, where 16 concurrent workflow jobs each recorded the whole GPU). The
workflow runs one training job per GPU for this reason.

MIG instances have no energy counter of their own (NVML reports power and energy for the
whole physical GPU); they are reported with their ``MIG-`` UUID, source ``absent``, NaN
joules and a note, never dropped or replaced by the parent's value. No NVML or no GPU:
source ``absent``.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from greenpath.energy.measurement import ComponentEnergy, absent
from greenpath.energy.meter import Meter, Poller

log = logging.getLogger("greenpath.energy")


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _uuid_body(uuid: str) -> str:
    """UUID without its ``GPU-``/``MIG-`` prefix, lower case (torch reports no prefix)."""
    u = uuid.strip().lower()
    for p in ("gpu-", "mig-"):
        if u.startswith(p):
            return u[len(p) :]
    return u


def _is_not_supported(nvml: Any, exc: BaseException) -> bool:
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    if cls is not None and isinstance(exc, cls):
        return True
    code = getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3)
    return getattr(exc, "value", None) == code


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class PhysicalGpu:
    """A physical GPU as NVML enumerates it."""

    index: int
    handle: Any
    uuid: str
    pci_bus_id: str
    name: str
    mig_enabled: bool = False
    migs: list[tuple[str, Any]] = field(default_factory=list)  # (MIG uuid, handle)


@dataclass(frozen=True)
class GpuTarget:
    """One GPU used by this process, resolved to NVML.

    Attributes:
        uuid: NVML UUID (``GPU-…``/``MIG-…``), or ``unresolved:cuda:N`` when it could not be
            identified.
        handle: NVML handle to read, or ``None`` when the device is not measurable.
        problem: why it is not measurable (``None`` when it is).
        via: how it was identified (``torch``, ``CUDA_VISIBLE_DEVICES``, ``all devices``).
    """

    uuid: str
    handle: Any
    problem: str | None
    via: str
    pci_bus_id: str | None = None
    parent_uuid: str | None = None


def enumerate_gpus(nvml: Any) -> list[PhysicalGpu]:
    """All physical GPUs with their MIG instances (NVML must be initialised)."""
    gpus = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        uuid = _s(nvml.nvmlDeviceGetUUID(h))
        try:
            bus = _s(nvml.nvmlDeviceGetPciInfo(h).busId)
        except Exception:  # noqa: BLE001 - PCI info optional
            bus = f"nvml-index-{i:04d}"
        try:
            name = _s(nvml.nvmlDeviceGetName(h))
        except Exception:  # noqa: BLE001
            name = "?"
        g = PhysicalGpu(i, h, uuid, bus, name)
        try:
            current = nvml.nvmlDeviceGetMigMode(h)[0]
            g.mig_enabled = bool(current)
        except Exception:  # noqa: BLE001 - NotSupported on non-MIG GPUs
            g.mig_enabled = False
        if g.mig_enabled:
            try:
                n = nvml.nvmlDeviceGetMaxMigDeviceCount(h)
            except Exception:  # noqa: BLE001
                n = 0
            for j in range(n):
                try:
                    mh = nvml.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
                except Exception:  # noqa: BLE001 - NotFound for unused slots
                    continue
                g.migs.append((_s(nvml.nvmlDeviceGetUUID(mh)), mh))
        gpus.append(g)
    return gpus


def _mig_problem(mig_uuid: str, parent: PhysicalGpu) -> str:
    return (
        f"{mig_uuid} is a MIG instance of {parent.uuid}: NVML reports energy only for the "
        "whole GPU (all instances), so this instance is not separately measurable"
    )


def _target_for_physical(g: PhysicalGpu, via: str) -> GpuTarget:
    if g.mig_enabled:
        return GpuTarget(
            g.uuid,
            None,
            f"{g.uuid} has MIG mode enabled: the instance used by this process cannot be "
            "measured separately (NVML energy covers the whole GPU)",
            via,
            g.pci_bus_id,
        )
    return GpuTarget(g.uuid, g.handle, None, via, g.pci_bus_id)


def _find_uuid(gpus: list[PhysicalGpu], token: str, via: str) -> GpuTarget | None:
    """Physical or MIG device whose UUID starts with ``token`` (unique), else None."""
    body = _uuid_body(token)
    hits: list[GpuTarget] = []
    for g in gpus:
        if _uuid_body(g.uuid).startswith(body):
            hits.append(_target_for_physical(g, via))
        for mu, _mh in g.migs:
            if _uuid_body(mu).startswith(body):
                hits.append(GpuTarget(mu, None, _mig_problem(mu, g), via, g.pci_bus_id, g.uuid))
    return hits[0] if len(hits) == 1 else None


def _parse_legacy_mig(gpus: list[PhysicalGpu], token: str, via: str) -> GpuTarget | None:
    """``MIG-GPU-<uuid>/<gi>/<ci>`` (CUDA 11.0 style): report under the token itself."""
    parent_tok = token[len("MIG-") :].split("/")[0]
    for g in gpus:
        if _uuid_body(g.uuid) == _uuid_body(parent_tok):
            return GpuTarget(token, None, _mig_problem(token, g), via, g.pci_bus_id, g.uuid)
    return None


def visible_devices(
    gpus: list[PhysicalGpu], env: Mapping[str, str]
) -> tuple[list[GpuTarget | str], str]:
    """CUDA's logical device list from ``CUDA_VISIBLE_DEVICES``/``CUDA_DEVICE_ORDER``.

    Returns:
        ``(entries, how)``: each entry is a :class:`GpuTarget` or a string explaining why
        that logical index cannot be mapped; ``how`` describes the mapping for metadata.
    """
    order = env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST").strip().upper() or "FASTEST_FIRST"
    by_bus = sorted(gpus, key=lambda g: g.pci_bus_id.lower())
    index_problem = None
    if order != "PCI_BUS_ID" and len({g.name for g in gpus}) > 1:
        index_problem = (
            f"CUDA_DEVICE_ORDER={order} with different GPU models "
            f"({sorted({g.name for g in gpus})}): CUDA's index order cannot be reproduced "
            "from NVML; set CUDA_DEVICE_ORDER=PCI_BUS_ID, give UUIDs in "
            "CUDA_VISIBLE_DEVICES, or initialise CUDA (torch) before the first window"
        )
    raw = env.get("CUDA_VISIBLE_DEVICES")
    via = "CUDA_VISIBLE_DEVICES"
    if raw is None:
        tokens = [str(i) for i in range(len(gpus))]
        via = "all devices"
    else:
        tokens = [t.strip() for t in raw.split(",")] if raw.strip() else []
    entries: list[GpuTarget | str] = []
    seen: set[str] = set()
    for tok in tokens:
        entry: GpuTarget | str | None
        if tok.lstrip("-").isdigit():
            i = int(tok)
            if i < 0 or i >= len(by_bus):
                break  # CUDA stops parsing at the first invalid entry
            entry = index_problem or _target_for_physical(by_bus[i], via)
        elif tok.upper().startswith("MIG-GPU-") and "/" in tok:
            entry = _parse_legacy_mig(gpus, tok, via)
        elif tok.upper().startswith(("GPU-", "MIG-")):
            entry = _find_uuid(gpus, tok, via)
        else:
            entry = None
        if entry is None:
            break
        key = entry.uuid if isinstance(entry, GpuTarget) else f"index:{tok}"
        if key in seen:  # duplicates: CUDA/torch see no device at all
            return [], f"{via}={raw!r} lists a device twice"
        seen.add(key)
        entries.append(entry)
    how = f"{via}={raw!r}, CUDA_DEVICE_ORDER={order}"
    return entries, how


def torch_cuda_uuids() -> list[str] | None:
    """UUIDs of the logical CUDA devices from torch, if torch is imported and CUDA is initialised.

    Never imports torch and never initialises CUDA.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return [
            str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())
        ]
    except Exception:  # noqa: BLE001 - any torch trouble: fall back to the environment
        return None


def _torch_current_device() -> int:
    torch = sys.modules.get("torch")
    try:
        return int(torch.cuda.current_device()) if torch is not None else 0
    except Exception:  # noqa: BLE001
        return 0


def _assigned_uuid(env: Mapping[str, str], n: int) -> str | None:
    """UUID of the GPU this process claimed for logical device ``n`` (``greenpath.devices``),
    or ``None`` when it claimed none or claimed it for another index."""
    from greenpath.devices import ASSIGNED_INDEX_ENV, ASSIGNED_UUID_ENV

    uuid = env.get(ASSIGNED_UUID_ENV, "").strip()
    if uuid and env.get(ASSIGNED_INDEX_ENV, "").strip() == str(n):
        return uuid
    return None


def parse_cuda_device(device: str) -> int | None:
    """Logical CUDA index of ``"cuda:N"``; ``None`` for ``"cuda"`` (the current device:
    ``torch.cuda.current_device()`` when torch has initialised CUDA, else 0).

    Raises:
        ValueError: for anything else.
    """
    d = device.strip().lower()
    if d == "cuda":
        return None
    if d.startswith("cuda:") and d[5:].isdigit():
        return int(d[5:])
    raise ValueError(f"device must be 'cuda' or 'cuda:N' for the GPU meter, got {device!r}")


class _Integrator:
    """Trapezoid integral of power samples of one device; a virtual cumulative counter, J."""

    __slots__ = ("lock", "last_t", "last_w", "joules", "samples")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_t: float | None = None
        self.last_w = 0.0
        self.joules = 0.0
        self.samples = 0

    def add(self, t: float, watts: float) -> float:
        with self.lock:
            if self.last_t is not None:
                if t < self.last_t:  # a later sample got in first; drop this stale one
                    return self.joules
                self.joules += 0.5 * (watts + self.last_w) * (t - self.last_t)
            self.last_t, self.last_w = t, watts
            self.samples += 1
            return self.joules


class _Boundary:
    """A window boundary on one device's energy counter: read at ``t`` (s, meter clock).

    ``(t_a, v_a)``: the counter's last change at or before ``t`` (J); ``(t_b, v_b)``: its first
    change after ``t``, filled in by :class:`_CounterTrack` (``None`` until seen).
    """

    __slots__ = ("t", "t_a", "v_a", "t_b", "v_b")

    def __init__(self, t: float, t_a: float, v_a: float) -> None:
        self.t, self.t_a, self.v_a = t, t_a, v_a
        self.t_b: float | None = None
        self.v_b: float | None = None

    def joules(self) -> float:
        """Cumulative energy at ``t``, J: linear between the changes around it, else ``v_a``."""
        if self.t_b is None or self.v_b is None or self.t_b <= self.t_a:
            return self.v_a
        frac = min(max((self.t - self.t_a) / (self.t_b - self.t_a), 0.0), 1.0)
        return self.v_a + (self.v_b - self.v_a) * frac


class _CounterTrack:
    """Times the changes of one device's NVML total-energy counter (J).

    Every read (boundary or wait) goes through :meth:`observe` under one lock, so change
    times are in order; open boundaries waiting for the next change are completed by it.
    The first read has no earlier change: it counts as a change at its own time, which can
    overstate the first window by at most one refresh step.
    """

    def __init__(self, read: Callable[[], float], clock: Callable[[], float]) -> None:
        self.read = read
        self.clock = clock
        self.lock = threading.Lock()
        self.last_t: float | None = None
        self.last_v: float | None = None
        self.pending: list[_Boundary] = []

    def _observe_locked(self) -> tuple[float, float]:
        v = float(self.read())
        t = self.clock()
        if self.last_v is None or v != self.last_v:
            if self.last_v is not None:
                for b in self.pending:
                    b.t_b, b.v_b = t, v
                self.pending.clear()
            self.last_t, self.last_v = t, v
        return t, v

    def observe(self) -> None:
        """Read the counter now (raises what NVML raises)."""
        with self.lock:
            self._observe_locked()

    def boundary(self) -> _Boundary:
        """Read the counter now and open a boundary at this instant."""
        with self.lock:
            t, v = self._observe_locked()
            assert self.last_t is not None
            b = _Boundary(t, self.last_t, v)
            if len(self.pending) >= 1024:  # a counter that never moves: keep the newest
                del self.pending[:512]
            self.pending.append(b)
            return b


class NvmlGpuMeter(Meter):
    """GPU energy of the devices this process uses (see module docstring).

    Args:
        device: ``"cuda"`` or ``"cuda:N"`` (the logical CUDA device of the training).
        poll_interval_s: power-sampling period for GPUs without the energy counter, s.
        nvml: the NVML module (default: ``import pynvml`` from nvidia-ml-py, lazily).
        env: environment to read ``CUDA_VISIBLE_DEVICES``/``CUDA_DEVICE_ORDER`` from
            (default ``os.environ`` at the first window).
        clock: monotonic clock for power integration, s (tests pass a fake clock).
        force_power_integration: integrate power samples even where the energy counter
            exists (to cross-check the counter, e.g. in ``scripts/gpu_check.py``).
        counter_wait_s: the longest ``end()`` waits for the counter's first change after the
            window, s; if none comes, the boundary takes the counter's last value (and a
            window with no change at all reads 0 J with a note).
    """

    components = ("gpu",)

    def __init__(
        self,
        device: str = "cuda",
        *,
        poll_interval_s: float = 0.1,
        nvml: Any = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        force_power_integration: bool = False,
        counter_wait_s: float = 0.5,
    ) -> None:
        super().__init__()
        if not counter_wait_s >= 0:
            raise ValueError(f"counter_wait_s must be >= 0 s, got {counter_wait_s!r}")
        self.counter_wait_s = float(counter_wait_s)
        self._tracks: dict[str, _CounterTrack] = {}
        self.force_power_integration = bool(force_power_integration)
        self.device = device
        self.logical_index = parse_cuda_device(device)
        self.poll_interval_s = float(poll_interval_s)
        self._env = env
        self._clock = clock
        self._nvml = nvml
        self._absent_reason: str | None = None
        self._initialised = False
        self._resolved = False
        self.targets: list[GpuTarget] = []
        self.mode: dict[str, str] = {}  # uuid -> "counter" | "power" | "unreadable"
        self._probe_notes: dict[str, str] = {}
        self._integrators: dict[str, _Integrator] = {}
        self._read_errors: dict[str, str] = {}
        self._how = ""
        self._poller: Poller | None = None
        self._init_nvml()
        if self._absent_reason is not None:
            self.components = ()

    # --- set-up -------------------------------------------------------------------------
    def _init_nvml(self) -> None:
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError as e:
                self._absent_reason = f"nvidia-ml-py (pynvml) not installed: {e}"
                return
        try:
            self._nvml.nvmlInit()
            self._initialised = True
        except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded…
            self._absent_reason = f"NVML unavailable ({_err(e)}): no NVIDIA driver/GPU"
            return
        try:
            count = self._nvml.nvmlDeviceGetCount()
        except Exception as e:  # noqa: BLE001
            self._absent_reason = f"NVML cannot count GPUs ({_err(e)})"
            return
        if count == 0:
            self._absent_reason = "NVML reports no GPU"

    def _resolve(self) -> None:
        """Map the logical device to NVML and probe it (once, at the first window)."""
        if self._resolved or self._absent_reason is not None:
            return
        self._resolved = True
        nvml = self._nvml
        env = os.environ if self._env is None else self._env
        gpus = enumerate_gpus(nvml)
        tu = torch_cuda_uuids()
        n = self.logical_index
        if n is None:
            n = _torch_current_device() if tu is not None else 0
        assigned = _assigned_uuid(env, n)
        if tu is not None:
            self._how = "torch.cuda.get_device_properties(i).uuid"
            if n >= len(tu):
                entry: GpuTarget | str = f"cuda:{n} not among torch's {len(tu)} CUDA devices"
            else:
                entry = _find_uuid(gpus, tu[n], "torch") or (
                    f"torch reports UUID {tu[n]} for cuda:{n}, which NVML does not list"
                )
        elif assigned is not None:
            self._how = f"GPU claimed for cuda:{n}: {assigned}"
            entry = _find_uuid(gpus, assigned, "claimed GPU") or (
                f"the GPU claimed for cuda:{n}, {assigned}, is not listed by NVML"
            )
        else:
            entries, self._how = visible_devices(gpus, env)
            if not entries and env.get("CUDA_VISIBLE_DEVICES", None) is not None:
                self._absent_reason = f"no visible CUDA device ({self._how})"
                self.components = ()
                return
            entry = (
                entries[n]
                if n < len(entries)
                else f"cuda:{n} is not among the {len(entries)} visible devices ({self._how})"
            )
        if isinstance(entry, str):
            entry = GpuTarget(f"unresolved:cuda:{n}", None, entry, "unresolved")
        self.targets = [entry]
        for t in self.targets:
            self._probe(t)
        if any(m == "power" for m in self.mode.values()):
            self._poller = Poller(self._poll, self.poll_interval_s, "greenpath-nvml-power")

    def _probe(self, t: GpuTarget) -> None:
        """Capability probe of one device: counter, else power, else unreadable. Logged once."""
        nvml = self._nvml
        if t.handle is None:
            self.mode[t.uuid] = "unreadable"
            self._probe_notes[t.uuid] = t.problem or "not measurable"
            log.warning("GPU %s: not measured: %s", t.uuid, t.problem)
            return
        if not self.force_power_integration:
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(t.handle)
                self.mode[t.uuid] = "counter"
                self._tracks[t.uuid] = _CounterTrack(
                    lambda h=t.handle: nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3,
                    self._clock,
                )
                log.info("GPU %s: using the NVML total-energy counter", t.uuid)
                return
            except Exception as e:  # noqa: BLE001
                if not _is_not_supported(nvml, e):
                    self.mode[t.uuid] = "unreadable"
                    self._probe_notes[t.uuid] = f"NVML energy counter read failed ({_err(e)})"
                    log.warning("GPU %s: %s", t.uuid, self._probe_notes[t.uuid])
                    return
        try:
            nvml.nvmlDeviceGetPowerUsage(t.handle)
        except Exception as e:  # noqa: BLE001
            self.mode[t.uuid] = "unreadable"
            self._probe_notes[t.uuid] = (
                "neither the NVML energy counter (NotSupported) nor power usage "
                f"({_err(e)}) can be read"
            )
            log.warning("GPU %s: %s", t.uuid, self._probe_notes[t.uuid])
            return
        self.mode[t.uuid] = "power"
        self._integrators[t.uuid] = _Integrator()
        log.info(
            "GPU %s: NVML total-energy counter not supported; integrating power samples "
            "every %.3f s (source nvml_power_integration)",
            t.uuid,
            self.poll_interval_s,
        )

    # --- reading ------------------------------------------------------------------------
    def _sample_power(self, t: GpuTarget) -> float:
        watts = self._nvml.nvmlDeviceGetPowerUsage(t.handle) / 1000.0
        return self._integrators[t.uuid].add(self._clock(), watts)

    def _poll(self) -> None:
        for t in self.targets:
            if self.mode.get(t.uuid) == "power":
                try:
                    self._sample_power(t)
                except Exception:  # noqa: BLE001 - a missed sample is bridged by the trapezoid
                    continue

    def _start_threads(self) -> None:
        self._resolve()
        if self._poller is not None:
            self._poller.start()

    def _stop_threads(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        if self._initialised:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            self._initialised = False

    def _snapshot(self) -> dict[str, float | _Boundary | None]:
        out: dict[str, float | _Boundary | None] = {}
        for t in self.targets:
            mode = self.mode.get(t.uuid)
            try:
                if mode == "counter":
                    out[t.uuid] = self._tracks[t.uuid].boundary()
                elif mode == "power":
                    out[t.uuid] = self._sample_power(t)
                else:
                    out[t.uuid] = None
            except Exception as e:  # noqa: BLE001
                self._read_errors[t.uuid] = f"NVML read failed ({_err(e)})"
                out[t.uuid] = None
        return out

    def _settle(self, track: _CounterTrack, b: _Boundary) -> None:
        """Wait (up to ``counter_wait_s``, real time) for the counter's change after ``b``."""
        deadline = time.monotonic() + self.counter_wait_s
        while b.t_b is None:
            try:
                track.observe()
            except Exception:  # noqa: BLE001 - the boundary keeps the last value
                return
            if b.t_b is not None or time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    def _energy(
        self,
        start: dict[str, float | _Boundary | None],
        end: dict[str, float | _Boundary | None],
        wall_s: float,
    ) -> dict[str, ComponentEnergy]:
        if self._absent_reason is not None or not self.targets:
            return {}
        domains: dict[str, float] = {}
        notes: list[str] = []
        for t in self.targets:
            a, b = start.get(t.uuid), end.get(t.uuid)
            if isinstance(a, _Boundary) and isinstance(b, _Boundary):
                self._settle(self._tracks[t.uuid], b)
                a, b = a.joules(), b.joules()
            if a is None or b is None:
                domains[t.uuid] = float("nan")
                notes.append(
                    f"{t.uuid}: "
                    + (self._probe_notes.get(t.uuid) or self._read_errors.get(t.uuid, "unreadable"))
                )
            else:
                domains[t.uuid] = b - a
                if b - a == 0.0 and wall_s > 0:
                    notes.append(f"{t.uuid}: energy did not advance during this window")
                others = self.other_processes(t)
                if others:
                    notes.append(
                        f"{t.uuid}: shared with {others} other compute process(es) at the "
                        "window's end; NVML measures the whole GPU, so this energy includes "
                        "theirs (run one job per GPU: docs/energy.md)"
                    )
        if notes and any(math.isnan(v) for v in domains.values()):
            # no reading of (one of) the GPUs: the component is absent, never a partial sum
            return {"gpu": absent("; ".join(notes), domains)}
        source = (
            "nvml_power_integration"
            if any(self.mode.get(t.uuid) == "power" for t in self.targets)
            else "nvml_counter"
        )
        return {
            "gpu": ComponentEnergy(
                sum(domains.values()), source, False, domains, "; ".join(notes) or None
            )
        }

    def other_processes(self, t: GpuTarget) -> int | None:
        """Compute processes other than this one on ``t``'s GPU now (seen on an H200:
        16 concurrent workflow jobs on one GPU).

        NVML's energy counter and power reading cover the whole GPU, so a window's joules
        include every process on it. ``nvmlDeviceGetComputeRunningProcesses`` lists the
        processes with a CUDA context there. Inside a container NVML may report host PIDs;
        when this process's PID is not among them, one listed process is taken to be this
        one (it has a context once it trains).

        Returns:
            The number of other processes (0 = alone), or ``None`` when NVML cannot tell
            (call not supported, or no handle).
        """
        if t.handle is None:
            return None
        try:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(t.handle)
        except Exception:  # noqa: BLE001 - unknown, not a measurement failure
            return None
        pids = {int(p.pid) for p in procs}
        return len(pids - {os.getpid()}) if os.getpid() in pids else max(len(pids) - 1, 0)

    def _gpu_uuids(self) -> tuple[str, ...]:
        return tuple(t.uuid for t in self.targets)

    def _absent_note(self, component: str) -> str:
        if component == "gpu" and self._absent_reason:
            return self._absent_reason
        return super()._absent_note(component)

    @property
    def absent_reason(self) -> str | None:
        """Why the GPU is reported absent (None when it is measured)."""
        return self._absent_reason

    def _metadata(self) -> dict[str, Any]:
        self._resolve()
        return {
            "gpu": {
                "device": self.device,
                "absent_reason": self._absent_reason,
                "mapping": self._how,
                "poll_interval_s": self.poll_interval_s,
                "force_power_integration": self.force_power_integration,
                "devices": [
                    {
                        "uuid": t.uuid,
                        "via": t.via,
                        "pci_bus_id": t.pci_bus_id,
                        "parent_uuid": t.parent_uuid,
                        "mode": self.mode.get(t.uuid),
                        "problem": self._probe_notes.get(t.uuid),
                    }
                    for t in self.targets
                ],
            }
        }
