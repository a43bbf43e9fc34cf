"""Estimated CPU and DRAM energy when no counter can be read (source ``estimate``).

Two models, chosen by ``cpu_load`` (constants from the ``energy:`` config; recorded in the
meter metadata):

* ``cpu_load: process`` (default): the energy this process's own work costs, the same
  whatever else runs on the machine. ``c`` = CPU seconds of this process and its children
  over the window (``time.process_time`` for this process, ``os.times``/psutil for
  children), ``n`` = logical CPUs the TDP covers:

  - CPU: ``E_cpu = cpu_tdp_w * c / n`` (a busy logical CPU draws its share of the TDP);
  - DRAM: ``E_dram = dram_gb * dram_w_per_gb * c / n`` (the memory's power, shared out by
    the same CPU-time share).

  No idle share: the machine's idle power over the wall time depends on how long others
  kept this process waiting, so it is left out of per-process figures (a window in which
  the process used no CPU time gets 0 J, with a note).
* ``cpu_load: system``: the whole machine, as a package counter would see it, idle share
  included: ``E_cpu = cpu_tdp_w * wall_s * (f_idle + (1 - f_idle) * u)`` with ``u`` the
  machine's busy share from ``psutil.cpu_times()``; ``E_dram = dram_gb * dram_w_per_gb *
  wall_s``. This is the load x TDP model discussed as the workaround for unreadable RAPL
  (codecarbon#244), with an idle share so a window of nonzero length never has 0 J.

Installed memory comes from psutil; 0.375 W/GiB (3 W per 8 GB) is CodeCarbon's RAM model.
Both are flagged ``estimate=True``. They are rough; use them for CI and for relative
comparisons on one machine, not as absolute figures.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from greenpath.energy.measurement import ComponentEnergy
from greenpath.energy.meter import Meter

_GIB = 1024**3


class EstimateMeter(Meter):
    """CPU (TDP x load with idle share) and DRAM (GiB x W/GiB) estimates.

    Args:
        cpu_tdp_w: TDP of all CPU packages together, W (> 0).
        cpu_idle_fraction: share of TDP drawn when idle, in (0, 1] (``system`` mode only).
        cpu_cores: logical CPUs covered by the TDP; ``None`` = ``psutil.cpu_count()``.
        cpu_load: ``"process"`` or ``"system"`` (see module docstring).
        dram_w_per_gb: DRAM power per GiB, W/GiB (> 0).
        dram_gb: installed memory, GiB; ``None`` = ``psutil.virtual_memory().total``.
        components: the components to estimate (subset of ``("cpu", "dram")``).
        reasons: per component, why the estimate is used (shown as the component note).
        children_refresh_s: how often the list of child processes is refreshed, s.

    Raises:
        ValueError: on a non-positive constant or an unknown component / load.
    """

    def __init__(
        self,
        *,
        cpu_tdp_w: float = 85.0,
        cpu_idle_fraction: float = 0.3,
        cpu_cores: int | None = None,
        cpu_load: str = "process",
        dram_w_per_gb: float = 0.375,
        dram_gb: float | None = None,
        components: tuple[str, ...] = ("cpu", "dram"),
        reasons: dict[str, str] | None = None,
        children_refresh_s: float = 1.0,
    ) -> None:
        super().__init__()
        if not cpu_tdp_w > 0:
            raise ValueError(f"cpu_tdp_w must be > 0 W, got {cpu_tdp_w!r}")
        if not 0 < cpu_idle_fraction <= 1:
            raise ValueError(f"cpu_idle_fraction must be in (0, 1], got {cpu_idle_fraction!r}")
        if not dram_w_per_gb > 0:
            raise ValueError(f"dram_w_per_gb must be > 0 W/GiB, got {dram_w_per_gb!r}")
        if cpu_load not in ("process", "system"):
            raise ValueError(f"cpu_load must be 'process' or 'system', got {cpu_load!r}")
        unknown = set(components) - {"cpu", "dram"}
        if unknown:
            raise ValueError(f"EstimateMeter estimates only cpu and dram, not {sorted(unknown)}")
        self.components = tuple(c for c in ("cpu", "dram") if c in components)
        self.cpu_tdp_w = float(cpu_tdp_w)
        self.cpu_idle_fraction = float(cpu_idle_fraction)
        self.cpu_cores = int(cpu_cores) if cpu_cores else (psutil.cpu_count(logical=True) or 1)
        self.cpu_load = cpu_load
        self.dram_w_per_gb = float(dram_w_per_gb)
        self.dram_gb = float(dram_gb) if dram_gb else psutil.virtual_memory().total / _GIB
        self.reasons = dict(reasons or {})
        self.children_refresh_s = float(children_refresh_s)
        self._proc = psutil.Process()
        self._children: list[psutil.Process] = []
        self._children_at = -float("inf")

    # --- load readings ------------------------------------------------------------------
    def _child_times(self) -> dict[tuple[int, float], float]:
        now = time.monotonic()
        if now - self._children_at >= self.children_refresh_s:
            self._children_at = now
            try:
                self._children = self._proc.children(recursive=True)
            except psutil.Error:
                self._children = []
        out: dict[tuple[int, float], float] = {}
        for c in self._children:
            try:
                t = c.cpu_times()
                out[(c.pid, c.create_time())] = t.user + t.system
            except psutil.Error:
                continue
        return out

    def _snapshot(self) -> tuple[Any, ...]:
        if not self.components:
            return ()
        if self.cpu_load == "system":
            t = psutil.cpu_times()
            idle = t.idle + getattr(t, "iowait", 0.0)
            total = sum(t)
            return ("system", total - idle, total)
        ot = os.times()
        return (
            "process",
            time.process_time(),
            ot.children_user + ot.children_system,
            self._child_times(),
            time.time(),
        )

    def _system_load(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> float:
        """The machine's busy share ``u`` in [0, 1] between snapshots."""
        dt = b[2] - a[2]
        return min(1.0, max(0.0, (b[1] - a[1]) / dt)) if dt > 0 else 0.0

    def _process_cpu_s(self, a: tuple[Any, ...], b: tuple[Any, ...], wall_s: float) -> float:
        """CPU seconds of this process and its children between snapshots, in
        ``[0, wall_s * cpu_cores]``."""
        _, self_a, reaped_a, kids_a, t_a = a
        _, self_b, reaped_b, kids_b, _ = b
        cpu_s = (self_b - self_a) + (reaped_b - reaped_a)
        for key, tb in kids_b.items():
            if key in kids_a:
                cpu_s += tb - kids_a[key]
            elif key[1] >= t_a - 0.01:  # child created during the window
                cpu_s += tb
        for key, ta in kids_a.items():
            if key not in kids_b:  # exited: os.times counts its whole life once reaped
                cpu_s -= ta
        return min(max(0.0, cpu_s), max(0.0, wall_s) * self.cpu_cores)

    def _energy(
        self, start: tuple[Any, ...], end: tuple[Any, ...], wall_s: float
    ) -> dict[str, ComponentEnergy]:
        if not start:
            return {}
        dram_w = self.dram_gb * self.dram_w_per_gb
        idle = None
        if start[0] == "system":
            f = self.cpu_idle_fraction
            u = self._system_load(start, end)
            cpu_j, dram_j = self.cpu_tdp_w * wall_s * (f + (1.0 - f) * u), dram_w * wall_s
        else:
            share = self._process_cpu_s(start, end, wall_s) / self.cpu_cores  # busy CPUs x s
            cpu_j, dram_j = self.cpu_tdp_w * share, dram_w * share
            if share == 0 and wall_s > 0:
                idle = "this process used no CPU time in this window"
        out: dict[str, ComponentEnergy] = {}
        for c, j in (("cpu", cpu_j), ("dram", dram_j)):
            if c in self.components:
                note = "; ".join(n for n in (self.reasons.get(c), idle) if n) or None
                out[c] = ComponentEnergy(j, "estimate", True, {}, note)
        return out

    def model(self) -> dict[str, Any]:
        """The estimate model and its constants (JSON-ready)."""
        m: dict[str, Any] = {}
        process = self.cpu_load == "process"
        if "cpu" in self.components:
            m["cpu"] = {
                "formula": (
                    "E = cpu_tdp_w * c / cpu_cores"
                    if process
                    else "E = cpu_tdp_w * wall_s * (cpu_idle_fraction + (1 - cpu_idle_fraction) * u)"
                ),
                "c" if process else "u": (
                    "CPU seconds of this process and its children in the window (no idle share)"
                    if process
                    else "system busy share from psutil.cpu_times()"
                ),
                "cpu_tdp_w": self.cpu_tdp_w,
                "cpu_idle_fraction": self.cpu_idle_fraction,
                "cpu_cores": self.cpu_cores,
                "cpu_load": self.cpu_load,
                "reason": self.reasons.get("cpu"),
            }
        if "dram" in self.components:
            m["dram"] = {
                "formula": (
                    "E = dram_gb * dram_w_per_gb * c / cpu_cores"
                    if process
                    else "E = dram_gb * dram_w_per_gb * wall_s"
                ),
                "cpu_load": self.cpu_load,
                "dram_gb": round(self.dram_gb, 3),
                "dram_w_per_gb": self.dram_w_per_gb,
                "dram_w_per_gb_source": (
                    "3 W per 8 GB (CodeCarbon RAM model)"
                    if self.dram_w_per_gb == 0.375
                    else "energy.dram_w_per_gb in the config"
                ),
                "reason": self.reasons.get("dram"),
            }
        return m

    def _metadata(self) -> dict[str, Any]:
        return {"estimate_model": self.model()}
