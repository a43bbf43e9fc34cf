"""Meter interface, estimate, E3 (unreadable RAPL), config, records, CO2, idle baseline."""

from __future__ import annotations

import builtins
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime

import jsonschema
import pytest
from conftest import make_fake_nvml

from greenpath.energy import (
    DEFAULT_ENERGY_CONFIG,
    ENERGY_CONFIG_SCHEMA,
    RECORD_FIELDS,
    ComponentEnergy,
    EstimateMeter,
    IdleBaseline,
    Measurement,
    absent,
    gross_and_net,
    make_meter,
    resolve_energy_config,
)
from greenpath.records.schema import RECORD_SCHEMA

RANGE = 262143328850


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


# --- E3 ------------------------------------------------------------------------------------
@pytest.fixture
def deny_energy_uj(monkeypatch):
    """Running as root here, so simulate a root-only energy_uj (mode 0400, owner root, as on
    Linux >= 5.10) by making both ``open`` and ``os.open`` refuse it with EACCES."""
    denied: list[str] = []

    def guard(real):
        def fake(file, *args, **kwargs):
            if str(file).endswith("energy_uj"):
                denied.append(str(file))
                raise PermissionError(13, "Permission denied", str(file))
            return real(file, *args, **kwargs)

        return fake

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(os, "open", guard(os.open))
    return denied


def run_e3(tree, caplog, epoch_work) -> list[dict]:
    cfg = {"powercap_root": str(tree.root)}
    with caplog.at_level(logging.WARNING, logger="greenpath.energy"):
        meter = make_meter(cfg, device="cpu")
        records = []
        for _epoch in (1, 2):
            w = meter.begin()
            epoch_work()
            records.append(meter.record_fields(meter.end(w)))
        meter.close()
        make_meter(cfg, device="cpu").close()  # a second meter in the same run: no new warning
    return records


def check_e3(records, tree, caplog, denied) -> None:
    assert len(records) == 2
    for r in records:
        assert r["energy_cpu_j"] > 0 and r["energy_dram_j"] > 0
        assert r["energy_cpu_source"] == r["energy_dram_source"] == "estimate"
        assert r["energy_cpu_estimate"] is True and r["energy_dram_estimate"] is True
        assert "PermissionError" in r["energy_note"]
    warnings = [x for x in caplog.records if x.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert str(tree.root / "intel-rapl:0" / "energy_uj") in msg
    assert "chmod o+r" in msg and "udev" in msg
    assert denied  # the meter really tried to read the files


def e3_tree(powercap):
    return powercap(
        {
            "intel-rapl:0": ("package-0", 0, RANGE),
            "intel-rapl:0:0": ("dram", 0, RANGE),
        }
    )


def test_e3_unreadable_energy_uj_falls_back_to_estimate_with_one_warning(
    powercap, deny_energy_uj, caplog
):
    tree = e3_tree(powercap)
    records = run_e3(tree, caplog, lambda: busy(0.02))
    check_e3(records, tree, caplog, deny_energy_uj)


@pytest.mark.slow  # importing torch takes ~5 s on the 2-core machine
def test_e3_two_epochs_of_a_tiny_cnn(powercap, deny_energy_uj, caplog):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 3),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))

    def epoch() -> None:
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    tree = e3_tree(powercap)
    records = run_e3(tree, caplog, epoch)
    check_e3(records, tree, caplog, deny_energy_uj)


def test_e3_gpu_still_from_nvml_when_rapl_is_denied(powercap, deny_energy_uj, monkeypatch):
    e = {"mj": 0}
    monkeypatch.setitem(
        sys.modules, "pynvml", make_fake_nvml([{"uuid": "GPU-g", "energy_mj": lambda: e["mj"]}])
    )
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    meter = make_meter({"powercap_root": str(tree.root)}, device="cuda")
    w = meter.begin()
    e["mj"] += 3000
    m = meter.end(w)
    meter.close()
    assert (m.gpu.source, m.gpu.joules) == ("nvml_counter", 3.0)
    assert m.cpu.source == "estimate" and m.cpu.joules > 0


# --- estimate ------------------------------------------------------------------------------
def test_estimate_process_mode_has_no_idle_share():
    meter = EstimateMeter(
        cpu_tdp_w=100.0, cpu_idle_fraction=0.25, cpu_cores=4, dram_w_per_gb=0.5, dram_gb=16
    )
    p0 = time.process_time()
    w = meter.begin()
    time.sleep(0.2)
    m = meter.end(w)
    c = time.process_time() - p0  # this process's CPU time, an upper bound of the window's
    # per-process figures: TDP / cores per CPU second, no idle share over the 0.2 s wall
    assert 0 <= m.cpu.joules <= 100.0 * c / 4 + 1e-9
    assert m.cpu.joules < 100.0 * 0.25 * m.wall_s / 10
    assert 0 <= m.dram.joules <= 16 * 0.5 * c / 4 + 1e-9
    assert m.cpu.source == m.dram.source == "estimate" and m.cpu.estimate
    assert m.gpu.source == "absent" and math.isnan(m.gpu.joules)


def cpu_seconds(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def test_estimate_busy_process_charges_its_cpu_time():
    meter = EstimateMeter(cpu_tdp_w=100.0, cpu_idle_fraction=0.2, cpu_cores=2, dram_gb=8)
    p0 = time.process_time()
    w = meter.begin()
    p1 = time.process_time()
    busy(0.3)
    p2 = time.process_time()
    m = meter.end(w)
    p3 = time.process_time()
    # E = TDP * c / cores with c between the inner and outer independent readings
    assert p2 - p1 > 0.05
    assert 100.0 * (p2 - p1) / 2 <= m.cpu.joules <= 100.0 * (p3 - p0) / 2
    assert 8 * 0.375 * (p2 - p1) / 2 <= m.dram.joules <= 8 * 0.375 * (p3 - p0) / 2
    assert m.cpu.note is None


def test_estimate_counts_child_processes():
    meter = EstimateMeter(cpu_tdp_w=100.0, cpu_idle_fraction=0.2, cpu_cores=2)
    w = meter.begin()
    s0, k0 = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt=time.process_time()+0.3\nwhile time.process_time()<t: pass",
        ],
        check=True,
    )
    s1, k1 = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    m = meter.end(w)
    assert k1 - k0 >= 0.25  # the child burned 0.3 s of CPU
    # getrusage counts 10 ms ticks: a margin of 3 ticks
    assert 100.0 * (s1 - s0 + k1 - k0 - 0.03) / 2 <= m.cpu.joules
    assert m.cpu.joules <= 100.0 * (s1 - s0 + k1 - k0 + 0.03) / 2


def test_estimate_system_load_mode():
    meter = EstimateMeter(cpu_tdp_w=50.0, cpu_idle_fraction=0.5, cpu_load="system")
    w = meter.begin()
    busy(0.1)
    m = meter.end(w)
    assert 25.0 * m.wall_s <= m.cpu.joules <= 50.0 * m.wall_s + 1e-9


def test_estimate_rejects_bad_constants():
    with pytest.raises(ValueError, match="cpu_idle_fraction"):
        EstimateMeter(cpu_idle_fraction=0.0)
    with pytest.raises(ValueError, match="cpu_tdp_w"):
        EstimateMeter(cpu_tdp_w=-1)


# --- default config records ----------------------------------------------------------------
def test_default_config_records_are_flagged_estimates_and_never_zero(tmp_path):
    meter = make_meter({"powercap_root": str(tmp_path / "none")}, device="cpu")
    rows = []
    for _ in range(5):
        with meter.measure() as ctx:
            pass  # even an empty window
        rows.append(meter.record_fields(ctx.result))
    meter.close()
    for r in rows:
        assert set(r) == set(RECORD_FIELDS)
        assert set(r) <= set(RECORD_SCHEMA.names)
        assert r["energy_gpu_source"] == "absent" and math.isnan(r["energy_gpu_j"])
        assert r["energy_cpu_source"] == r["energy_dram_source"] == "estimate"
        assert r["energy_cpu_j"] > 0 and r["energy_dram_j"] > 0 and r["energy_total_j"] > 0
        assert r["energy_total_j"] == pytest.approx(r["energy_cpu_j"] + r["energy_dram_j"])
        assert r["energy_total_components"] == "cpu,dram"
        assert r["co2eq_g"] == pytest.approx(r["energy_total_j"] / 3.6e6 * 481.0)
        assert r["gpu_uuid"] is None


# --- measurement / records -----------------------------------------------------------------
def make_measurement(gpu=1500.0, cpu=22.0, dram=5.0, wall=10.0) -> Measurement:
    return Measurement(
        start_utc=datetime(2024, 1, 1, tzinfo=UTC),
        wall_s=wall,
        gpu=ComponentEnergy(gpu, "nvml_counter", False, {"GPU-bbb": gpu}),
        cpu=ComponentEnergy(cpu, "rapl", False, {"/sys/class/powercap/intel-rapl:0": cpu}),
        dram=ComponentEnergy(dram, "estimate", True, {}, "estimate: no dram domain"),
        gpu_uuids=("GPU-bbb",),
    )


def test_record_fields_exact_keys_and_co2():
    m = make_measurement()
    r = m.record_fields(481.0)
    assert tuple(r) == RECORD_FIELDS
    assert r["energy_total_j"] == 1527.0
    # 1527 J = 1527 / 3.6e6 kWh; x 481 g/kWh = 734487 / 3.6e6 g
    assert r["co2eq_g"] == pytest.approx(0.20402416666666667)
    assert r["gpu_uuid"] == "GPU-bbb"
    assert r["energy_note"] == "dram: estimate: no dram domain"
    assert m.record_fields()["co2eq_g"] is None


def test_absent_component_is_left_out_of_the_total():
    m = make_measurement()
    m = Measurement(m.start_utc, m.wall_s, absent("MIG"), m.cpu, m.dram)
    r = m.record_fields(100.0)
    assert math.isnan(r["energy_gpu_j"]) and r["energy_gpu_source"] == "absent"
    assert r["energy_total_j"] == 27.0 and r["energy_total_components"] == "cpu,dram"
    assert r["co2eq_g"] == pytest.approx(27.0 / 3.6e6 * 100.0)
    none = Measurement(m.start_utc, 1.0, absent("a"), absent("b"), absent("c"))
    r = none.record_fields(100.0)
    assert math.isnan(r["energy_total_j"]) and math.isnan(r["co2eq_g"])
    assert r["energy_total_components"] is None


def test_component_energy_validation():
    with pytest.raises(ValueError, match="absent"):
        ComponentEnergy(1.0, "absent", False)
    with pytest.raises(ValueError, match="unknown energy source"):
        ComponentEnergy(1.0, "codecarbon", False)
    with pytest.raises(ValueError, match="estimate"):
        ComponentEnergy(1.0, "rapl", True)
    with pytest.raises(ValueError, match="absent"):
        ComponentEnergy(0.0, "absent", False)
    with pytest.raises(ValueError, match="finite"):
        ComponentEnergy(float("nan"), "rapl", False)
    assert math.isnan(absent("x").joules) and absent("x").note == "x"


def test_gross_and_net_above_idle():
    m = make_measurement()  # 10 s window
    base = IdleBaseline(5.0, {"gpu": 60.0, "cpu": 2.0, "dram": 0.1}, {}, m.start_utc)
    out = gross_and_net(m, base)
    assert out["gross_gpu_j"] == 1500.0 and out["net_gpu_j"] == pytest.approx(900.0)
    assert out["net_cpu_j"] == pytest.approx(2.0) and out["net_dram_j"] == pytest.approx(4.0)
    assert out["gross_total_j"] == 1527.0 and out["net_total_j"] == pytest.approx(906.0)


def test_idle_baseline_is_measured_and_recorded():
    cfg = {"rapl": "off", "idle_baseline_s": 0.05, "dram_gb": 8, "dram_w_per_gb": 0.5}
    meter = make_meter({**cfg, "cpu_load": "system"})  # whole-machine model: idle included
    base = meter.idle_baseline
    assert base is not None and base.seconds >= 0.05
    assert base.power_w["dram"] == pytest.approx(4.0)
    assert base.power_w["cpu"] > 0 and math.isnan(base.power_w["gpu"])
    meta = json.loads(meter.metadata()["greenpath.energy.idle_baseline"])
    assert meta["power_w"]["dram"] == pytest.approx(4.0)
    with meter.measure() as ctx:
        time.sleep(0.02)
    net = gross_and_net(ctx.result, base)
    assert net["net_dram_j"] == pytest.approx(0.0, abs=1e-9)
    meter.close()


# --- interface -----------------------------------------------------------------------------
def test_measure_context_ends_the_window_even_on_error():
    meter = make_meter({"rapl": "off"})
    ctx = meter.measure()
    with pytest.raises(ZeroDivisionError), ctx:
        1 / 0  # noqa: B018
    assert ctx.result is not None and ctx.result.cpu.joules > 0
    meter.close()


def test_window_misuse_is_rejected():
    a, b = make_meter({"rapl": "off"}), make_meter({"rapl": "off"})
    w = a.begin()
    with pytest.raises(ValueError, match="another meter"):
        b.end(w)
    a.end(w)
    with pytest.raises(ValueError, match="already ended"):
        a.end(w)
    a.close()
    b.close()


def test_metadata_records_config_model_and_sources():
    meter = make_meter({"rapl": "off", "cpu_tdp_w": 65.0, "carbon_intensity_g_per_kwh": 50})
    meta = meter.metadata()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    model = json.loads(meta["greenpath.energy.estimate_model"])
    assert model["cpu"]["cpu_tdp_w"] == 65.0 and "formula" in model["cpu"]
    assert json.loads(meta["greenpath.energy.config"])["cpu_tdp_w"] == 65.0
    assert json.loads(meta["greenpath.energy.components"]) == {
        "gpu": "absent",
        "cpu": "EstimateMeter",
        "dram": "EstimateMeter",
    }
    assert meta["greenpath.energy.carbon_intensity_g_per_kwh"] == "50.0"
    assert "config" in meta["greenpath.energy.carbon_intensity_source"]
    meter.close()


# --- config --------------------------------------------------------------------------------
def test_config_defaults_match_schema():
    assert set(DEFAULT_ENERGY_CONFIG) == set(ENERGY_CONFIG_SCHEMA["properties"])
    jsonschema.Draft202012Validator.check_schema(ENERGY_CONFIG_SCHEMA)
    jsonschema.validate(DEFAULT_ENERGY_CONFIG, ENERGY_CONFIG_SCHEMA)
    for k, v in DEFAULT_ENERGY_CONFIG.items():
        assert ENERGY_CONFIG_SCHEMA["properties"][k]["default"] == v
    assert resolve_energy_config(None) == DEFAULT_ENERGY_CONFIG


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"gpu": "on"}, "energy.gpu"),
        ({"cpu_idle_fraction": 0}, "energy.cpu_idle_fraction"),
        ({"poll_interval": 1}, "poll_interval"),
        ({"carbon_intensity_g_per_kwh": -1}, "carbon_intensity"),
    ],
)
def test_config_errors_name_the_key(cfg, match):
    with pytest.raises(ValueError, match=match):
        resolve_energy_config(cfg)


def test_make_meter_rejects_bad_device():
    with pytest.raises(ValueError, match="device"):
        make_meter(None, device="tpu")
