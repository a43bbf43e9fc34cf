"""Build the meter a training job uses from the ``energy:`` config section."""

from __future__ import annotations

from typing import Any

from greenpath.energy.config import CARBON_INTENSITY_SOURCE, resolve_energy_config
from greenpath.energy.estimate import EstimateMeter
from greenpath.energy.meter import CompositeMeter, Meter
from greenpath.energy.nvml import NvmlGpuMeter
from greenpath.energy.rapl import RaplMeter


def make_meter(energy_config: dict[str, Any] | None, *, device: str = "cpu") -> Meter:
    """The meter for a job training on ``device`` (``cpu``, ``cuda`` or ``cuda:N``).

    * GPU: :class:`NvmlGpuMeter` when ``device`` is CUDA and ``energy.gpu`` is ``auto``;
      otherwise ``absent`` with the reason.
    * CPU / DRAM: :class:`RaplMeter` for each component whose powercap domains are all
      readable (``energy.rapl: auto``); the rest from :class:`EstimateMeter`, with the reason
      as the component note. So no component is ever a silent zero. The RAPL meter is part
      of the result even when it measures nothing, so the metadata lists the zones it saw.
    * ``energy.idle_baseline_s > 0``: measures that many seconds of idle power now (blocks).

    Args:
        energy_config: the ``energy:`` config mapping (validated; ``None`` = defaults).
        device: the training device.

    Returns:
        A :class:`CompositeMeter`; call ``close()`` (or use ``with``) when done.

    Raises:
        ValueError: for an invalid config or device string.
    """
    cfg = resolve_energy_config(energy_config)
    dev = device.strip().lower()
    if not (dev == "cpu" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    meters: list[Meter] = []
    absent_notes: dict[str, str] = {}

    if cfg["gpu"] == "off":
        absent_notes["gpu"] = "energy.gpu is 'off'"
    elif dev == "cpu":
        absent_notes["gpu"] = "device='cpu': this process uses no GPU"
    else:
        gpu = NvmlGpuMeter(
            dev,
            poll_interval_s=cfg["gpu_poll_interval_s"],
            counter_wait_s=cfg["gpu_counter_wait_s"],
        )
        if gpu.absent_reason is None:
            meters.append(gpu)
        else:
            absent_notes["gpu"] = gpu.absent_reason
            gpu.close()

    reasons: dict[str, str] = {}
    if cfg["rapl"] == "off":
        reasons = {"cpu": "energy.rapl is 'off'", "dram": "energy.rapl is 'off'"}
    else:
        rapl = RaplMeter.probe(cfg["powercap_root"], poll_interval_s=cfg["poll_interval_s"])
        reasons = {c: rapl.fallback_reasons.get(c, "") for c in ("cpu", "dram")}
        meters.append(rapl)  # also when it measures nothing: its metadata lists what it saw
        for c in rapl.components:
            reasons.pop(c)
    if reasons:
        meters.append(
            EstimateMeter(
                cpu_tdp_w=cfg["cpu_tdp_w"],
                cpu_idle_fraction=cfg["cpu_idle_fraction"],
                cpu_cores=cfg["cpu_cores"],
                cpu_load=cfg["cpu_load"],
                dram_w_per_gb=cfg["dram_w_per_gb"],
                dram_gb=cfg["dram_gb"],
                components=tuple(reasons),
                reasons={c: f"estimate: {r}" for c, r in reasons.items()},
                children_refresh_s=cfg["poll_interval_s"],
            )
        )
    meter = CompositeMeter(
        meters,
        absent_notes=absent_notes,
        carbon_intensity_g_per_kwh=cfg["carbon_intensity_g_per_kwh"],
        config=cfg,
    )
    meter.carbon_intensity_source = (
        CARBON_INTENSITY_SOURCE
        if energy_config is None or "carbon_intensity_g_per_kwh" not in energy_config
        else "energy.carbon_intensity_g_per_kwh in the config"
    )
    if cfg["idle_baseline_s"] > 0:
        meter.measure_idle_baseline(cfg["idle_baseline_s"])
    return meter
