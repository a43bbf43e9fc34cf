"""NVML GPU meter on a fake pynvml: cases E5 (no counter), E6 (device mapping), MIG, absent."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import make_fake_nvml, make_fake_torch

from greenpath.energy import make_meter
from greenpath.energy.nvml import NvmlGpuMeter


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_e5_counter_unsupported_integrates_power(caplog):
    nvml = make_fake_nvml(
        [{"uuid": "GPU-old", "counter": "unsupported", "power_mw": 150000, "name": "TITAN X"}]
    )
    clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="greenpath.energy"):
        meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={}, clock=clock, poll_interval_s=0.005)
        results = []
        for _ in range(3):  # three 10 s epochs
            w = meter.begin()
            time.sleep(0.02)  # the poller samples (at the same fake time: no area added)
            clock.t += 10.0
            results.append(meter.end(w))
        meter.close()
    for m in results:
        assert m.gpu.source == "nvml_power_integration"
        assert m.gpu.estimate is False
        assert m.gpu.joules == pytest.approx(1500.0, rel=0.05)  # 150 W x 10 s
        assert m.gpu.joules == pytest.approx(1500.0, abs=1e-9)  # exact with boundary samples
        assert m.gpu_uuids == ("GPU-old",)
    # capability probe once per device, logged once
    assert nvml.calls[("energy", "GPU-old")] == 1
    probe_logs = [r for r in caplog.records if "not supported" in r.getMessage()]
    assert len(probe_logs) == 1 and "GPU-old" in probe_logs[0].getMessage()
    assert nvml.calls[("power", "GPU-old")] > 6  # boundaries + poller


def test_e5_real_time_short_window():
    nvml = make_fake_nvml([{"uuid": "GPU-old", "counter": "unsupported", "power_mw": 150000}])
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={}, poll_interval_s=0.02)
    w = meter.begin()
    time.sleep(0.3)
    m = meter.end(w)
    meter.close()
    assert m.gpu.joules == pytest.approx(150.0 * m.wall_s, rel=0.05)


def test_power_integration_follows_a_changing_draw():
    clock = FakeClock()
    power = {"mw": 100000}
    nvml = make_fake_nvml(
        [{"uuid": "GPU-old", "counter": "unsupported", "power_mw": lambda: power["mw"]}]
    )
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={}, clock=clock, poll_interval_s=60)
    w = meter.begin()  # 100 W at t=0
    clock.t, power["mw"] = 4.0, 300000
    meter._poll()  # a poller sample: 300 W at t=4
    clock.t = 10.0
    m = meter.end(w)  # 300 W at t=10
    meter.close()
    # trapezoid: (100+300)/2*4 + 300*6 = 800 + 1800 = 2600 J
    assert m.gpu.joules == pytest.approx(2600.0)


def two_gpus(**kw):
    return make_fake_nvml(
        [
            {"uuid": "GPU-aaa", "bus": "00000000:18:00.0", "energy_mj": kw.get("a", 0)},
            {"uuid": "GPU-bbb", "bus": "00000000:3B:00.0", "energy_mj": kw.get("b", 0)},
        ]
    )


@pytest.mark.parametrize("visible", ["1", "GPU-bbb", "GPU-b"])
def test_e6_only_the_visible_gpu_is_read(visible):
    e = {"a": 0, "b": 0}
    nvml = two_gpus(a=lambda: e["a"], b=lambda: e["b"])
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": visible})
    w = meter.begin()
    e["a"] += 999_000  # GPU-aaa draws a lot: must never appear
    e["b"] += 250_000  # +250 J on GPU-bbb
    m = meter.end(w)
    meter.close()
    assert m.gpu.joules == pytest.approx(250.0)
    assert dict(m.gpu.domains) == {"GPU-bbb": pytest.approx(250.0)}
    assert m.record_fields()["gpu_uuid"] == "GPU-bbb"
    assert nvml.calls[("energy", "GPU-aaa")] == 0


def test_e6_torch_uuid_wins_over_the_environment(monkeypatch):
    # torch reports cuda:0 as bbb (torch prints UUIDs without the GPU- prefix)
    monkeypatch.setitem(sys.modules, "torch", make_fake_torch(["bbb"]))
    e = {"a": 0, "b": 0}
    nvml = two_gpus(a=lambda: e["a"], b=lambda: e["b"])
    # an environment that would point elsewhere if it were used
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "0"})
    w = meter.begin()
    e["a"] += 5_000
    e["b"] += 7_000
    m = meter.end(w)
    meter.close()
    assert m.gpu_uuids == ("GPU-bbb",)
    assert m.gpu.joules == pytest.approx(7.0)
    assert nvml.calls[("energy", "GPU-aaa")] == 0
    assert "torch" in meter.metadata()["greenpath.energy.gpu"]


def test_e6_uninitialised_torch_is_not_used(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", make_fake_torch(["aaa"], initialised=False))
    meter = NvmlGpuMeter("cuda:0", nvml=two_gpus(), env={"CUDA_VISIBLE_DEVICES": "1"})
    meter.begin()
    assert [t.uuid for t in meter.targets] == ["GPU-bbb"]
    meter.close()


def test_cuda_device_order_pci_bus_id_maps_by_bus_not_nvml_index():
    # NVML index 0 is on bus 0x3B, index 1 on bus 0x18
    nvml = make_fake_nvml(
        [
            {"uuid": "GPU-aaa", "bus": "00000000:3B:00.0", "name": "A100"},
            {"uuid": "GPU-bbb", "bus": "00000000:18:00.0", "name": "A100"},
        ]
    )
    env = {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env=env)
    meter.begin()
    assert [t.uuid for t in meter.targets] == ["GPU-bbb"]
    meter.close()


def test_fastest_first_with_mixed_models_refuses_to_guess():
    nvml = make_fake_nvml(
        [
            {"uuid": "GPU-aaa", "bus": "00000000:18:00.0", "name": "Tesla T4"},
            {"uuid": "GPU-bbb", "bus": "00000000:3B:00.0", "name": "A100"},
        ]
    )
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "0"})
    m = meter.end(meter.begin())
    meter.close()
    assert math.isnan(m.gpu.joules)
    assert "CUDA_DEVICE_ORDER" in m.gpu.note and "PCI_BUS_ID" in m.gpu.note
    assert nvml.calls[("energy", "GPU-aaa")] == nvml.calls[("energy", "GPU-bbb")] == 0
    # UUIDs need no ordering
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "GPU-aaa"})
    assert meter.end(meter.begin()).gpu_uuids == ("GPU-aaa",)
    meter.close()


def test_mig_instance_is_reported_not_measurable():
    nvml = make_fake_nvml(
        [
            {"uuid": "GPU-aaa", "energy_mj": 1000},
            {"uuid": "GPU-ccc", "energy_mj": 5000, "migs": ["MIG-111", "MIG-222"]},
        ]
    )
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "MIG-222"})
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu_uuids == ("MIG-222",)
    assert m.record_fields()["gpu_uuid"] == "MIG-222"
    assert math.isnan(m.gpu.joules) and math.isnan(m.gpu.domains["MIG-222"])
    assert "MIG-222" in m.gpu.note and "GPU-ccc" in m.gpu.note
    assert "not separately measurable" in m.gpu.note
    # neither the parent's nor another GPU's counter stands in for the instance
    assert nvml.calls[("energy", "GPU-ccc")] == 0 and nvml.calls[("energy", "GPU-aaa")] == 0


def test_mig_legacy_id_and_mig_enabled_gpu_by_index():
    nvml = make_fake_nvml([{"uuid": "GPU-ccc", "migs": ["MIG-111"]}])
    legacy = "MIG-GPU-ccc/1/0"
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={"CUDA_VISIBLE_DEVICES": legacy})
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu_uuids == (legacy,) and math.isnan(m.gpu.joules)
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={})
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu_uuids == ("GPU-ccc",) and math.isnan(m.gpu.joules)
    assert "MIG mode enabled" in m.gpu.note


def test_no_gpu_is_absent_with_null_joules():
    meter = NvmlGpuMeter("cuda", nvml=make_fake_nvml([]), env={})
    m = meter.end(meter.begin())
    meter.close()
    assert (m.gpu.source, m.gpu_uuids) == ("absent", ()) and math.isnan(m.gpu.joules)
    assert "no GPU" in m.gpu.note
    meter = NvmlGpuMeter("cuda", nvml=make_fake_nvml([], init_error=True), env={})
    m = meter.end(meter.begin())
    assert m.gpu.source == "absent" and math.isnan(m.gpu.joules)
    assert "NVML unavailable" in m.gpu.note
    meter.close()


def test_empty_cuda_visible_devices_is_absent():
    meter = NvmlGpuMeter("cuda", nvml=two_gpus(), env={"CUDA_VISIBLE_DEVICES": ""})
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu.source == "absent" and math.isnan(m.gpu.joules)
    assert "no visible CUDA device" in m.gpu.note


def test_make_meter_without_nvml_module_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    meter = make_meter({"rapl": "off"}, device="cuda")
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu.source == "absent" and math.isnan(m.gpu.joules)
    assert "nvidia-ml-py" in m.gpu.note
    assert m.total_components == ("cpu", "dram") and m.total_j == m.cpu.joules + m.dram.joules


def test_make_meter_uses_fake_nvml_through_pynvml_import(monkeypatch):
    e = {"b": 10_000}
    monkeypatch.setitem(sys.modules, "pynvml", two_gpus(b=lambda: e["b"]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbb")
    meter = make_meter({"rapl": "off"}, device="cuda:0")
    w = meter.begin()
    e["b"] += 42_000
    m = meter.end(w)
    meter.close()
    assert (m.gpu.source, m.gpu.joules, m.gpu_uuids) == ("nvml_counter", 42.0, ("GPU-bbb",))
    assert m.cpu.source == "estimate"


def test_gpu_unreadable_at_probe_is_nan_with_reason():
    nvml = make_fake_nvml([{"uuid": "GPU-x", "counter": "error"}])
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={})
    m = meter.end(meter.begin())
    meter.close()
    assert math.isnan(m.gpu.joules) and math.isnan(m.total_j)  # no other meter here
    assert m.gpu.source == "absent" and m.total_components == ()
    assert "GPU-x" in m.gpu.note and "NVMLError_Unknown" in m.gpu.note
    nvml = make_fake_nvml([{"uuid": "GPU-y", "counter": "unsupported", "power": "unsupported"}])
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={})
    m = meter.end(meter.begin())
    meter.close()
    assert math.isnan(m.gpu.joules) and "neither" in m.gpu.note
    assert m.record_fields()["energy_note"].startswith("gpu: GPU-y")


def test_gpu_lost_during_window_is_nan_with_reason():
    nvml = make_fake_nvml([{"uuid": "GPU-z", "counter": "fail_after_probe", "energy_mj": 7}])
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={})
    w = meter.begin()  # probe (1st read) + start snapshot (2nd read) work
    m = meter.end(w)  # 3rd read fails
    meter.close()
    assert m.gpu.source == "absent"  # no reading is in the row
    assert math.isnan(m.gpu.joules) and "NVML read failed" in m.gpu.note


def test_counter_not_advancing_is_flagged():
    nvml = make_fake_nvml([{"uuid": "GPU-q", "energy_mj": 5}])
    meter = NvmlGpuMeter("cuda", nvml=nvml, env={})
    m = meter.end(meter.begin())
    meter.close()
    assert m.gpu.joules == 0.0 and "did not advance" in m.gpu.note


def test_importing_the_meter_does_not_import_torch_or_pynvml():
    code = (
        "import sys, greenpath.energy as e; m = e.make_meter(None); m.end(m.begin()); "
        "m.close(); print('torch' in sys.modules, 'pynvml' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


def test_forced_power_integration_never_reads_the_counter():
    clock = FakeClock()
    nvml = make_fake_nvml([{"uuid": "GPU-h", "energy_mj": 10, "power_mw": 700000}])
    meter = NvmlGpuMeter(
        "cuda", nvml=nvml, env={}, clock=clock, poll_interval_s=60, force_power_integration=True
    )
    w = meter.begin()
    clock.t = 2.0
    m = meter.end(w)
    meter.close()
    assert (m.gpu.source, m.gpu.joules) == ("nvml_power_integration", 1400.0)  # 700 W x 2 s
    assert nvml.calls[("energy", "GPU-h")] == 0


def test_plain_cuda_means_torch_current_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", make_fake_torch(["aaa", "bbb"], current=1))
    meter = NvmlGpuMeter("cuda", nvml=two_gpus(), env={})
    assert meter.end(meter.begin()).gpu_uuids == ("GPU-bbb",)
    meter.close()


def test_make_meter_with_no_visible_device_reports_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", two_gpus())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    meter = make_meter({"rapl": "off"}, device="cuda")
    m = meter.end(meter.begin())
    meter.close()
    assert (m.gpu.source, m.gpu_uuids) == ("absent", ()) and math.isnan(m.gpu.joules)
    assert "no visible CUDA device" in m.gpu.note


def stepping_counter(watts: float, step_s: float) -> Any:
    """An energy counter (mJ) that the 'driver' refreshes only every ``step_s`` of real time."""
    t0 = time.monotonic()

    def read() -> int:
        published = math.floor((time.monotonic() - t0) / step_s) * step_s
        return int(1_000_000 + watts * 1000 * published)

    return read


def test_e9_short_windows_on_a_coarse_counter_are_never_zero_and_add_up():
    """E9 on the GPU (seen on an H200: 20 ms epochs read 0 J): a counter refreshed every 60 ms
    at a steady 200 W, read over 30 contiguous 10 ms windows. Every window gets energy, each
    about 200 W x its length, and together they match 200 W x the whole span (the counter's
    own refresh granularity, one step at each end, is the tolerance)."""
    nvml = make_fake_nvml([{"uuid": "GPU-a", "energy_mj": stepping_counter(200.0, 0.06)}])
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={})
    ms = []
    w = meter.begin()
    t_start = time.monotonic()
    for _ in range(30):
        time.sleep(0.01)
        w2 = meter.begin()
        ms.append(meter.end(w))
        w = w2
    meter.end(w)
    span = time.monotonic() - t_start
    meter.close()
    joules = [m.gpu.joules for m in ms]
    assert all(m.gpu.source == "nvml_counter" for m in ms)
    assert min(joules) > 0, joules
    walls = [m.wall_s for m in ms]
    per_window_w = sorted(j / s for j, s in zip(joules, walls, strict=True))
    assert 100 < per_window_w[len(per_window_w) // 2] < 300  # median power about 200 W
    assert sum(joules) == pytest.approx(200.0 * span, abs=200.0 * 0.06 * 2 + 1.0)


def test_counter_boundaries_wait_no_longer_than_counter_wait_s():
    """A counter that never moves: the window reads 0 J with a note, after at most the wait."""
    nvml = make_fake_nvml([{"uuid": "GPU-a", "energy_mj": 5000}])
    meter = NvmlGpuMeter("cuda:0", nvml=nvml, env={}, counter_wait_s=0.05)
    w = meter.begin()
    t0 = time.monotonic()
    m = meter.end(w)
    waited = time.monotonic() - t0
    meter.close()
    assert m.gpu.joules == 0.0 and "did not advance" in m.gpu.note
    assert waited < 1.0
    with pytest.raises(ValueError, match="counter_wait_s"):
        NvmlGpuMeter("cuda:0", nvml=nvml, env={}, counter_wait_s=-1)


OWN = os.getpid()


@pytest.mark.parametrize(
    "procs, others",
    [
        ([OWN], 0),  # alone on the GPU
        ([OWN, 4242, 4343], 2),  # two other jobs on the same GPU
        ([7, 8], 1),  # container: NVML lists host PIDs, one of them is this process
        (None, None),  # the call is not supported: sharing unknown, no note
    ],
)
def test_other_processes_on_the_gpu_are_noted(procs, others):
    """Seen on an H200: 16 concurrent workflow jobs on one GPU each recorded the whole GPU's
    energy. The joules stay the device's (NVML cannot split them), and the window's note
    names how many other compute processes were on the GPU at its end."""
    dev: dict[str, Any] = {"uuid": "GPU-a", "power_mw": 150_000, "counter": "unsupported"}
    if procs is not None:
        dev["procs"] = procs
    clock = FakeClock()
    meter = NvmlGpuMeter("cuda:0", nvml=make_fake_nvml([dev]), env={}, clock=clock)
    assert meter.other_processes(meter_targets(meter)[0]) == others
    w = meter.begin()
    clock.t = 2.0
    m = meter.end(w)
    meter.close()
    assert m.gpu.joules == pytest.approx(150.0 * 2.0)  # 150 W x 2 s, shared or not
    note = m.gpu.note or ""
    if others:
        assert f"GPU-a: shared with {others} other compute process(es)" in note
    else:
        assert "shared" not in note


def meter_targets(meter: NvmlGpuMeter) -> list[Any]:
    meter._resolve()
    return meter.targets
