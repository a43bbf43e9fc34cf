"""Fixtures for the energy tests: a fake powercap tree and a fake ``pynvml`` module."""

from __future__ import annotations

import os
import sys
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from greenpath.energy import rapl


@pytest.fixture(autouse=True)
def _host_cuda_not_initialised(monkeypatch):
    """Fake NVML devices must not meet the host's real GPU: on a CUDA machine, where torch
    has initialised CUDA, the meter would map ``cuda:0`` by torch's real UUID, which no fake
    NVML lists. Tests that need torch's mapping install a fake ``torch`` module instead."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    yield


@pytest.fixture(autouse=True)
def _fresh_rapl_warnings():
    rapl._reset_warnings()
    yield
    rapl._reset_warnings()


# --- fake powercap tree --------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class FakePowercap:
    """A powercap tree in a temp dir, laid out like sysfs.

    Zones are ``{"intel-rapl:0": ("package-0", energy_uj, max_range_uj), "intel-rapl:0:0":
    ("dram", ...)}``. Sub-zones live inside their package dir and are symlinked at the top
    level, as on a real machine.
    """

    def __init__(self, root: Path, zones: dict[str, tuple[str, int, int]], links: bool = True):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "intel-rapl").mkdir(exist_ok=True)  # the control-type dir (no zone)
        self.paths: dict[str, Path] = {}
        self.dirs: dict[str, Path] = {}
        for zone in sorted(zones, key=lambda z: z.count(":")):
            name, energy, rng = zones[zone]
            parts = zone.split(":")
            if len(parts) == 2:
                d = root / zone
            else:
                d = root / f"{parts[0]}:{parts[1]}" / zone
                if links:
                    os.symlink(d, root / zone)
            d.mkdir(parents=True, exist_ok=True)
            (d / "name").write_text(name + "\n")
            (d / "max_energy_range_uj").write_text(f"{rng}\n")
            (d / "energy_uj").write_text(f"{energy}\n")
            self.dirs[zone] = d
            # the key greenpath uses: the top-level path when there is one
            self.paths[zone] = root / zone if (len(parts) == 2 or links) else d

    def set(self, zone: str, energy_uj: int) -> None:
        write_atomic(self.dirs[zone] / "energy_uj", f"{energy_uj}\n")

    def key(self, zone: str) -> str:
        return str(self.paths[zone])


@pytest.fixture
def powercap(tmp_path: Path) -> Callable[..., FakePowercap]:
    def make(zones: dict[str, tuple[str, int, int]], links: bool = True) -> FakePowercap:
        return FakePowercap(tmp_path / "powercap", zones, links)

    return make


# --- fake NVML -----------------------------------------------------------------------------
class FakeHandle:
    def __init__(self, dev: dict[str, Any], mig_uuid: str | None = None):
        self.dev = dev
        self.mig_uuid = mig_uuid

    def __repr__(self) -> str:
        return f"FakeHandle({self.mig_uuid or self.dev['uuid']})"


def make_fake_nvml(devices: list[dict[str, Any]], *, init_error: bool = False) -> types.ModuleType:
    """A ``pynvml`` look-alike over ``devices`` (NVML index order).

    Each device: ``uuid``, ``name`` (default "H100"), ``bus`` (PCI bus id), ``energy_mj``
    (int or zero-arg callable), ``power_mw`` (int or callable), ``counter`` ("ok" |
    "unsupported" | "error" | "fail_after_probe"), ``power`` ("ok" | "unsupported"),
    ``migs`` (list of MIG uuids; MIG mode on when non-empty), ``procs`` (PIDs with a
    compute context, list or callable; absent = the call raises NotSupported). ``mod.calls`` counts calls per
    (function, uuid).
    """
    mod = types.ModuleType("pynvml")
    calls: Counter[tuple[str, str]] = Counter()
    mod.calls = calls  # type: ignore[attr-defined]

    class NVMLError(Exception):
        def __init__(self, value: int):
            super().__init__(f"NVML error {value}")
            self.value = value

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
        def __init__(self) -> None:
            super().__init__(3)

    class NVMLError_Unknown(NVMLError):  # noqa: N801
        def __init__(self) -> None:
            super().__init__(999)

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
        def __init__(self) -> None:
            super().__init__(12)

    mod.NVMLError = NVMLError  # type: ignore[attr-defined]
    mod.NVMLError_NotSupported = NVMLError_NotSupported  # type: ignore[attr-defined]
    mod.NVMLError_Unknown = NVMLError_Unknown  # type: ignore[attr-defined]
    mod.NVML_ERROR_NOT_SUPPORTED = 3  # type: ignore[attr-defined]
    handles = [FakeHandle(d) for d in devices]

    def val(x: Any) -> Any:
        return x() if callable(x) else x

    def uid(h: FakeHandle) -> str:
        return h.mig_uuid or h.dev["uuid"]

    def nvmlInit() -> None:  # noqa: N802
        calls[("nvmlInit", "")] += 1
        if init_error:
            raise NVMLError_LibraryNotFound()

    def nvmlShutdown() -> None:  # noqa: N802
        calls[("nvmlShutdown", "")] += 1

    def nvmlDeviceGetCount() -> int:  # noqa: N802
        return len(handles)

    def nvmlDeviceGetHandleByIndex(i: int) -> FakeHandle:  # noqa: N802
        return handles[i]

    def nvmlDeviceGetUUID(h: FakeHandle) -> str:  # noqa: N802
        return uid(h)

    def nvmlDeviceGetName(h: FakeHandle) -> str:  # noqa: N802
        return h.dev.get("name", "H100")

    def nvmlDeviceGetPciInfo(h: FakeHandle) -> Any:  # noqa: N802
        return types.SimpleNamespace(busId=h.dev.get("bus", "00000000:00:00.0").encode())

    def nvmlDeviceGetMigMode(h: FakeHandle) -> list[int]:  # noqa: N802
        if not h.dev.get("migs"):
            raise NVMLError_NotSupported()
        return [1, 1]

    def nvmlDeviceGetMaxMigDeviceCount(h: FakeHandle) -> int:  # noqa: N802
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(h: FakeHandle, j: int) -> FakeHandle:  # noqa: N802
        migs = h.dev.get("migs", [])
        if j >= len(migs):
            raise NVMLError(6)  # NOT_FOUND
        return FakeHandle(h.dev, migs[j])

    def nvmlDeviceGetTotalEnergyConsumption(h: FakeHandle) -> int:  # noqa: N802
        calls[("energy", uid(h))] += 1
        if h.mig_uuid:
            raise NVMLError_NotSupported()
        mode = h.dev.get("counter", "ok")
        if mode == "unsupported":
            raise NVMLError_NotSupported()
        if mode == "error" or (mode == "fail_after_probe" and calls[("energy", uid(h))] > 2):
            raise NVMLError_Unknown()
        return int(val(h.dev.get("energy_mj", 0)))

    def nvmlDeviceGetPowerUsage(h: FakeHandle) -> int:  # noqa: N802
        calls[("power", uid(h))] += 1
        if h.dev.get("power", "ok") == "unsupported":
            raise NVMLError_NotSupported()
        return int(val(h.dev.get("power_mw", 0)))

    def nvmlDeviceGetComputeRunningProcesses(h: FakeHandle) -> list[Any]:  # noqa: N802
        calls[("procs", uid(h))] += 1
        if "procs" not in h.dev:
            raise NVMLError_NotSupported()
        return [types.SimpleNamespace(pid=p, usedGpuMemory=None) for p in val(h.dev["procs"])]

    for f in (
        nvmlInit,
        nvmlDeviceGetComputeRunningProcesses,
        nvmlShutdown,
        nvmlDeviceGetCount,
        nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetUUID,
        nvmlDeviceGetName,
        nvmlDeviceGetPciInfo,
        nvmlDeviceGetMigMode,
        nvmlDeviceGetMaxMigDeviceCount,
        nvmlDeviceGetMigDeviceHandleByIndex,
        nvmlDeviceGetTotalEnergyConsumption,
        nvmlDeviceGetPowerUsage,
    ):
        setattr(mod, f.__name__, f)
    return mod


def make_fake_torch(
    uuids: list[str], initialised: bool = True, current: int = 0
) -> types.ModuleType:
    """A ``torch`` stand-in exposing only ``torch.cuda`` device UUIDs (as torch prints them)."""
    t = types.ModuleType("torch")
    cuda = types.SimpleNamespace(
        is_initialized=lambda: initialised,
        device_count=lambda: len(uuids),
        get_device_properties=lambda i: types.SimpleNamespace(uuid=uuids[i]),
        current_device=lambda: current,
    )
    t.cuda = cuda  # type: ignore[attr-defined]
    return t
