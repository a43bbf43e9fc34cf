"""Energy figures that say what happened: wrap guard from range and max power, uncertain
windows, nulls for unmeasured components, sources and notes matching the code path."""

from __future__ import annotations

import json
import logging
import math
import sys

import pyarrow.parquet as pq
import pytest
from conftest import FakePowercap, make_fake_nvml

from greenpath.energy import make_meter, rapl
from greenpath.energy.rapl import (
    CONSERVATIVE_MAX_POWER_W,
    RANGE_UNREADABLE,
    RaplMeter,
    discover_rapl,
    max_power_w,
)
from greenpath.records import read_records, write_records

RANGE = 262143328850


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def clocked_counter(monkeypatch, clock: FakeClock, watts: float, range_uj: int) -> None:
    """``energy_uj`` files read ``watts`` x fake time, wrapped at ``range_uj``."""
    real = rapl._read_int
    t0 = clock.t

    def read(path: str) -> int:
        if not path.endswith("energy_uj"):
            return real(path)
        return int(round(watts * (clock.t - t0) * 1e6)) % range_uj

    monkeypatch.setattr(rapl, "_read_int", read)


def small_range_tree(powercap, max_power_uw: int = 10_000_000):
    tree = powercap({"intel-rapl:0": ("package-0", 0, 1_000_000)})  # wraps at 1 J
    (tree.dirs["intel-rapl:0"] / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
    return tree


def test_poll_period_follows_range_and_max_power(powercap, tmp_path):
    tree = small_range_tree(powercap)  # 1 J at most 10 W: a wrap every 0.1 s
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=1.0)
    (d,) = meter.domains
    assert (d.max_power_w, d.max_power_source) == (10.0, "constraint_0_max_power_uw")
    assert d.wrap_s == pytest.approx(0.1)
    assert meter.poll_period_s == pytest.approx(0.025)  # wrap / 4, under the 1 s asked for
    meta = meter.metadata()["greenpath.energy.rapl"]
    assert json.loads(meta)["domains"][0]["wrap_s"] == pytest.approx(0.1)
    meter.close()
    # a large range keeps the configured period
    big = FakePowercap(tmp_path / "big", {"intel-rapl:0": ("package-0", 0, RANGE)})
    assert RaplMeter.probe(str(big.root), poll_interval_s=1.0).poll_period_s == 1.0


def test_max_power_from_limits_or_conservative_bound(powercap):
    tree = powercap(
        {"intel-rapl:0": ("package-0", 0, RANGE), "intel-rapl:1": ("package-1", 0, RANGE)}
    )
    z0, z1 = tree.dirs["intel-rapl:0"], tree.dirs["intel-rapl:1"]
    (z0 / "constraint_0_power_limit_uw").write_text("95000000\n")  # 95 W long term
    (z0 / "constraint_1_power_limit_uw").write_text("120000000\n")  # 120 W short term
    assert max_power_w(str(z0)) == (240.0, "2 x constraint_1_power_limit_uw")
    watts, why = max_power_w(str(z1))
    assert watts == CONSERVATIVE_MAX_POWER_W and "conservative bound" in why


def test_window_of_many_wraps_at_max_power_is_exact_when_polled(powercap, monkeypatch):
    tree = small_range_tree(powercap)
    clock = FakeClock()
    clocked_counter(monkeypatch, clock, watts=10.0, range_uj=1_000_000)
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=1.0, clock=clock)
    w = meter.begin()
    for _ in range(50):  # 1 s = 10 wraps, read every 20 ms (the guard's pace or better)
        clock.t += 0.02
        meter._poll()
    m = meter.end(w)
    meter.close()
    # 10 W x 1 s, within one sampling step's energy (10 W x 0.025 s)
    assert m.cpu.joules == pytest.approx(10.0, abs=10.0 * meter.poll_period_s)
    assert m.cpu.uncertain is False and m.cpu.note is None
    assert m.record_fields()["energy_cpu_uncertain"] is False


def test_window_with_a_read_gap_over_the_wrap_time_is_flagged(powercap, monkeypatch, caplog):
    tree = small_range_tree(powercap)
    clock = FakeClock()
    clocked_counter(monkeypatch, clock, watts=10.0, range_uj=1_000_000)
    meter = make_meter({"powercap_root": str(tree.root), "poll_interval_s": 1.0})
    (rmeter,) = [x for x in meter.meters if isinstance(x, RaplMeter)]
    rmeter._clock = clock
    for acc in rmeter._acc.values():
        acc.last_t = clock.t
    with caplog.at_level(logging.INFO, logger="greenpath.energy"):
        w = meter.begin()
        for _ in range(4):  # the guard thread starved: reads 0.25 s apart, 2.5 wraps each
            clock.t += 0.25
            rmeter._poll()
        m = meter.end(w)
    meter.close()
    assert m.cpu.source == "rapl" and m.cpu.uncertain is True
    assert m.cpu.joules < 10.0  # whole wraps lost: a lower bound, and said so
    assert "lower bound" in m.cpu.note and "0.25 s" in m.cpu.note
    r = meter.record_fields(m)
    assert r["energy_cpu_uncertain"] is True and "lower bound" in r["energy_note"]
    assert any(
        "uncertain" in x.getMessage() and x.levelno == logging.WARNING for x in caplog.records
    )


def test_start_warning_only_when_the_period_cannot_be_kept(powercap, caplog):
    ok = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    with caplog.at_level(logging.WARNING, logger="greenpath.energy"):
        RaplMeter.probe(str(ok.root), poll_interval_s=1.0).close()
    assert not caplog.records  # 262 kJ at 1 kW: 262 s between wraps, 1 s polls are safe
    tiny = small_range_tree(powercap, max_power_uw=2_000_000_000)  # 1 J at 2 kW: 0.5 ms
    with caplog.at_level(logging.WARNING, logger="greenpath.energy"):
        RaplMeter.probe(str(tiny.root), poll_interval_s=1.0).close()
    assert any("flagged uncertain" in r.getMessage() for r in caplog.records)


def test_unreadable_range_file_gives_the_right_note_and_is_logged(powercap, caplog):
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE), "intel-rapl:0:0": ("dram", 0, RANGE)})
    rng = tree.dirs["intel-rapl:0"] / "max_energy_range_uj"
    rng.unlink()
    rng.mkdir()  # reading it fails (IsADirectoryError), even as root
    with caplog.at_level(logging.WARNING, logger="greenpath.energy"):
        meter = make_meter({"powercap_root": str(tree.root), "poll_interval_s": 60})
    m = meter.end(meter.begin())
    meta = json.loads(meter.metadata()["greenpath.energy.rapl"])
    meter.close()
    assert m.cpu.source == "estimate" and m.dram.source == "rapl"
    assert "max_energy_range_uj" in m.cpu.note and str(tree.dirs["intel-rapl:0"]) in m.cpu.note
    assert "no RAPL package domain" not in m.cpu.note
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and RANGE_UNREADABLE in warned[0]
    assert any(RANGE_UNREADABLE in s["reason"] for s in meta["skipped"])


def test_mmio_and_psys_zones_are_listed_when_rapl_measures_nothing(powercap):
    tree = powercap({"intel-rapl:0": ("psys", 0, RANGE)})
    mmio = tree.root / "intel-rapl-mmio:0"
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    disc = discover_rapl(str(tree.root))
    assert {p.rsplit("/", 1)[-1] for p, _n, _r in disc.skipped} == {
        "intel-rapl:0",
        "intel-rapl-mmio:0",
    }
    meter = make_meter({"powercap_root": str(tree.root)})
    m = meter.end(meter.begin())
    meta = json.loads(meter.metadata()["greenpath.energy.rapl"])
    meter.close()
    assert {s["path"].rsplit("/", 1)[-1] for s in meta["skipped"]} == {
        "intel-rapl:0",
        "intel-rapl-mmio:0",
    }
    assert m.cpu.source == "estimate" and "psys" in m.cpu.note and "mmio" in m.cpu.note


def test_mig_gpu_is_absent_and_the_total_keeps_cpu_and_dram(monkeypatch):
    nvml = make_fake_nvml([{"uuid": "GPU-ccc", "energy_mj": 5000, "migs": ["MIG-222"]}])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-222")
    meter = make_meter({"rapl": "off"}, device="cuda:0")
    m = meter.end(meter.begin())
    meter.close()
    r = meter.record_fields(m)
    assert r["energy_gpu_source"] == "absent" and math.isnan(r["energy_gpu_j"])
    assert "MIG-222" in r["energy_note"] and r["gpu_uuid"] == "MIG-222"
    assert r["energy_total_components"] == "cpu,dram"
    assert r["energy_total_j"] == pytest.approx(r["energy_cpu_j"] + r["energy_dram_j"])
    assert r["energy_total_j"] > 0


def test_cpu_only_records_have_null_gpu_joules_in_parquet(tmp_path, caplog):
    meter = make_meter({"powercap_root": str(tmp_path / "none")}, device="cpu")
    rows = []
    with caplog.at_level(logging.INFO, logger="greenpath.energy"):
        for epoch in (1, 2, 3):
            with meter.measure() as ctx:
                sum(i * i for i in range(20000))
            rows.append({**_key(epoch), **meter.record_fields(ctx.result)})
    meter.close()
    path = write_records(rows, tmp_path / "r.parquet")
    t = pq.read_table(path)
    assert t.column("energy_gpu_j").null_count == 3
    assert str(t.schema.field("energy_gpu_j").type) == "double"
    df = read_records(path)
    assert df["energy_gpu_j"].isna().all() and (df["energy_gpu_source"] == "absent").all()
    assert (df["energy_total_j"] == df["energy_cpu_j"] + df["energy_dram_j"]).all()
    assert (df["energy_total_components"] == "cpu,dram").all()
    # the notes reach the log once, not once per window
    gpu_notes = [r for r in caplog.records if r.getMessage().startswith("energy gpu")]
    assert len(gpu_notes) == 1 and "uses no GPU" in gpu_notes[0].getMessage()


def _key(epoch: int) -> dict:
    return {
        "study": "s",
        "dataset": "d",
        "seed": 0,
        "model": "small_cnn",
        "method": "base",
        "intervention_epoch": 0,
        "epoch": epoch,
        "status": "ok",
    }
