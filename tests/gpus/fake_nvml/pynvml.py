"""A file-configured ``pynvml`` stand-in for CPU-only tests of GPU discovery and claiming.

Put this folder first on ``PYTHONPATH`` (or load the file) and point ``GREENPATH_FAKE_NVML``
at a JSON file ``{"t0": <time.time()>, "devices": [...]}``, devices in NVML index order,
each ``{"uuid", "name", "bus", "memory_mib", "watts", "counter": true|false, "migs": [...],
"procs": [...]}``. The energy counter reads ``watts x (time.time() - t0)`` in mJ, so every
process sees the same GPU's energy grow at that GPU's own rate. ``GREENPATH_FAKE_NVML``
unset or ``"missing"``: ``nvmlInit`` raises ``NVMLError_LibraryNotFound``, as on a machine
without the NVIDIA driver.
"""

from __future__ import annotations

import json
import os
import time
import types
from typing import Any

NVML_ERROR_NOT_SUPPORTED = 3


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(f"NVML error {value}")
        self.value = value


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(12)


class _Handle:
    def __init__(self, dev: dict[str, Any], mig: str | None = None) -> None:
        self.dev, self.mig = dev, mig


_state: dict[str, Any] = {}


def _config() -> dict[str, Any]:
    path = os.environ.get("GREENPATH_FAKE_NVML", "missing")
    if path == "missing":
        raise NVMLError_LibraryNotFound()
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def nvmlInit() -> None:  # noqa: N802
    cfg = _config()
    _state["t0"] = float(cfg.get("t0", time.time()))
    _state["handles"] = [_Handle(d) for d in cfg["devices"]]


def nvmlShutdown() -> None:  # noqa: N802
    pass


def nvmlDeviceGetCount() -> int:  # noqa: N802
    return len(_state["handles"])


def nvmlDeviceGetHandleByIndex(i: int) -> _Handle:  # noqa: N802
    return _state["handles"][i]


def nvmlDeviceGetUUID(h: _Handle) -> str:  # noqa: N802
    return h.mig or h.dev["uuid"]


def nvmlDeviceGetName(h: _Handle) -> str:  # noqa: N802
    return h.dev.get("name", "NVIDIA H100 80GB HBM3")


def nvmlDeviceGetPciInfo(h: _Handle) -> Any:  # noqa: N802
    return types.SimpleNamespace(busId=h.dev["bus"].encode())


def nvmlDeviceGetMemoryInfo(h: _Handle) -> Any:  # noqa: N802
    total = int(h.dev.get("memory_mib", 81559)) * 2**20
    return types.SimpleNamespace(total=total, used=0, free=total)


def nvmlDeviceGetMigMode(h: _Handle) -> list[int]:  # noqa: N802
    if not h.dev.get("migs"):
        raise NVMLError_NotSupported()
    return [1, 1]


def nvmlDeviceGetMaxMigDeviceCount(h: _Handle) -> int:  # noqa: N802
    return len(h.dev.get("migs", []))


def nvmlDeviceGetMigDeviceHandleByIndex(h: _Handle, j: int) -> _Handle:  # noqa: N802
    return _Handle(h.dev, h.dev["migs"][j])


def nvmlDeviceGetTotalEnergyConsumption(h: _Handle) -> int:  # noqa: N802
    if h.mig or not h.dev.get("counter", True):
        raise NVMLError_NotSupported()
    return int(float(h.dev.get("watts", 100.0)) * (time.time() - _state["t0"]) * 1000.0)


def nvmlDeviceGetPowerUsage(h: _Handle) -> int:  # noqa: N802
    return int(float(h.dev.get("watts", 100.0)) * 1000.0)


def nvmlDeviceGetComputeRunningProcesses(h: _Handle) -> list[Any]:  # noqa: N802
    if "procs" not in h.dev:
        raise NVMLError_NotSupported()
    return [types.SimpleNamespace(pid=p, usedGpuMemory=None) for p in h.dev["procs"]]
