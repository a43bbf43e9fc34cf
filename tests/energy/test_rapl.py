"""Powercap RAPL meter: cases E1 (wraparound), E8 (packages + DRAM), E9 (window races)."""

from __future__ import annotations

import threading
import time

import pytest

from greenpath.energy import discover_rapl, make_meter, rapl
from greenpath.energy.rapl import RaplMeter

RANGE = 262143328850  # max_energy_range_uj of E1


def test_e1_wraparound_gives_positive_epoch_energy(powercap):
    tree = powercap({"intel-rapl:0": ("package-0", 262100000000, RANGE)})
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=60)
    w = meter.begin()
    tree.set("intel-rapl:0", 50000000)
    m = meter.end(w)
    meter.close()
    # (50000000 + 262143328850 - 262100000000) / 1e6 = 93.32885 J
    assert m.cpu.joules == pytest.approx(93.32885, abs=1e-9)
    assert m.cpu.source == "rapl" and m.cpu.estimate is False
    assert dict(m.cpu.domains) == {tree.key("intel-rapl:0"): pytest.approx(93.32885, abs=1e-9)}
    assert meter.wraps() == {tree.key("intel-rapl:0"): 1}


def test_e1_cumulative_energy_never_decreases_across_wraps(powercap):
    tree = powercap({"intel-rapl:0": ("package-0", 262100000000, RANGE)})
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=60)
    readings = [262120000000, 262140000000, 10000000, 40000000, 262000000000, 5]
    w = meter.begin()
    cum, energies = 0.0, []
    for r in readings:
        tree.set("intel-rapl:0", r)
        m = meter.end(w)
        w = meter.begin()
        energies.append(m.cpu.joules)
        assert m.cpu.joules >= 0
        cum += m.cpu.joules
    meter.close()
    # hand-computed deltas, µJ: 20e6, 20e6, (RANGE - 262140000000) + 10e6 = 13328850, 30e6,
    # 261960e6, (RANGE - 262000000000) + 5 = 143328855
    expected = [20.0, 20.0, 13.32885, 30.0, 261960.0, 143.328855]
    assert energies == pytest.approx(expected, abs=1e-6)


def test_e8_multi_socket_packages_and_dram(powercap):
    zones = {
        "intel-rapl:0": ("package-0", 1_000_000, RANGE),
        "intel-rapl:0:0": ("dram", 2_000_000, RANGE),
        "intel-rapl:0:1": ("core", 3_000_000, RANGE),
        "intel-rapl:1": ("package-1", 4_000_000, RANGE),
        "intel-rapl:1:0": ("dram", 5_000_000, RANGE),
    }
    tree = powercap(zones)
    meter = make_meter({"powercap_root": str(tree.root), "poll_interval_s": 60})
    w = meter.begin()
    tree.set("intel-rapl:0", 1_000_000 + 10_000_000)  # +10 J
    tree.set("intel-rapl:0:0", 2_000_000 + 2_000_000)  # +2 J
    tree.set("intel-rapl:1", 4_000_000 + 12_000_000)  # +12 J
    tree.set("intel-rapl:1:0", 5_000_000 + 3_000_000)  # +3 J
    tree.set("intel-rapl:0:1", 3_000_000 + 6_000_000)  # core +6 J: part of package-0
    m = meter.end(w)
    meter.close()
    assert m.cpu.joules == pytest.approx(22.0)
    assert m.dram.joules == pytest.approx(5.0)
    assert m.cpu.source == m.dram.source == "rapl"
    assert dict(m.cpu.domains) == {
        tree.key("intel-rapl:0"): pytest.approx(10.0),
        tree.key("intel-rapl:1"): pytest.approx(12.0),
    }
    assert dict(m.dram.domains) == {
        tree.key("intel-rapl:0:0"): pytest.approx(2.0),
        tree.key("intel-rapl:1:0"): pytest.approx(3.0),
    }
    rec = m.record_fields()
    assert rec["energy_cpu_j"] == pytest.approx(22.0)
    assert rec["energy_dram_j"] == pytest.approx(5.0)


def test_e8_package_names_need_not_match_zone_numbers_and_nested_only_layout(powercap):
    # zone 0 is socket 1 and vice versa; sub-zones only inside the package dirs (no links)
    zones = {
        "intel-rapl:0": ("package-1", 0, RANGE),
        "intel-rapl:0:0": ("dram", 0, RANGE),
        "intel-rapl:1": ("package-0", 0, RANGE),
        "intel-rapl:1:0": ("dram", 0, RANGE),
        "intel-rapl:1:1": ("uncore", 0, RANGE),
    }
    tree = powercap(zones, links=False)
    disc = discover_rapl(str(tree.root))
    kinds = sorted((d.kind, d.name) for d in disc.domains)
    assert kinds == [
        ("dram", "dram"),
        ("dram", "dram"),
        ("package", "package-0"),
        ("package", "package-1"),
    ]
    assert any(n == "uncore" for _p, n, _r in disc.skipped)
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=60)
    w = meter.begin()
    for z, uj in (
        ("intel-rapl:0", 7_000_000),
        ("intel-rapl:1", 8_000_000),
        ("intel-rapl:0:0", 1_000_000),
        ("intel-rapl:1:0", 500_000),
        ("intel-rapl:1:1", 9_000_000),
    ):
        tree.set(z, uj)
    m = meter.end(w)
    meter.close()
    assert m.cpu.joules == pytest.approx(15.0)
    assert m.dram.joules == pytest.approx(1.5)
    assert str(tree.root / "intel-rapl:1" / "intel-rapl:1:0") in m.dram.domains


def test_psys_and_mmio_zones_are_not_added(powercap, tmp_path):
    tree = powercap(
        {
            "intel-rapl:0": ("package-0", 0, RANGE),
            "intel-rapl:1": ("psys", 0, RANGE),
        }
    )
    mmio = tree.root / "intel-rapl-mmio:0"
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    (mmio / "energy_uj").write_text("0\n")
    (mmio / "max_energy_range_uj").write_text(f"{RANGE}\n")
    disc = discover_rapl(str(tree.root))
    assert [d.path for d in disc.domains] == [tree.key("intel-rapl:0")]
    assert any("psys" in r for _p, _n, r in disc.skipped)


def test_amd_rapl_naming(tmp_path):
    root = tmp_path / "pc"
    d = root / "amd-rapl:0"
    d.mkdir(parents=True)
    (d / "name").write_text("package-0\n")
    (d / "energy_uj").write_text("100\n")
    (d / "max_energy_range_uj").write_text("1000000000\n")
    meter = RaplMeter.probe(str(root), poll_interval_s=60)
    assert meter.components == ("cpu",)
    w = meter.begin()
    (d / "energy_uj").write_text("4000100\n")
    m = meter.end(w)
    meter.close()
    assert m.cpu.joules == pytest.approx(4.0)
    assert meter.fallback_reasons["dram"].startswith("no RAPL dram domain")


def test_package_without_dram_domain_falls_back_for_dram_only(powercap):
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    cfg = {"powercap_root": str(tree.root), "poll_interval_s": 60, "dram_gb": 8}
    meter = make_meter({**cfg, "cpu_load": "system"})  # DRAM over the wall time
    w = meter.begin()
    tree.set("intel-rapl:0", 3_000_000)
    time.sleep(0.01)
    m = meter.end(w)
    meter.close()
    assert (m.cpu.source, m.cpu.joules) == ("rapl", pytest.approx(3.0))
    assert m.dram.source == "estimate" and m.dram.estimate
    assert m.dram.joules == pytest.approx(8 * 0.375 * m.wall_s)
    assert "no RAPL dram domain" in m.dram.note


class TimeCounter:
    """``energy_uj`` that always advances: ``rate_uj_per_s * elapsed`` (mod ``range_uj``).

    Every read is logged as ``(thread name, unwrapped µJ)`` so a test can compute what a
    window should report from the boundary reads themselves (robust to a loaded machine).
    """

    def __init__(self, rate_uj_per_s: float, range_uj: int | None = None):
        self.rate = rate_uj_per_s
        self.range = range_uj
        self.t0 = time.perf_counter()
        self.log: list[tuple[str, int]] = []
        self._real = rapl._read_int

    def __call__(self, path: str) -> int:
        if not path.endswith("energy_uj"):
            return self._real(path)
        v = int(self.rate * (time.perf_counter() - self.t0))
        self.log.append((threading.current_thread().name, v))
        return v % self.range if self.range else v

    def main_reads(self) -> list[int]:
        return [v for name, v in self.log if name == "MainThread"]

    @property
    def threads(self) -> set[str]:
        return {name for name, _ in self.log}


def test_e9_short_windows_with_fast_poller_never_zero_and_sum_to_run_delta(powercap, monkeypatch):
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    counter = TimeCounter(rate_uj_per_s=50e6)  # 50 W, always advancing
    monkeypatch.setattr(rapl, "_read_int", counter)
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=0.01)
    path = tree.key("intel-rapl:0")
    n_probe = len(counter.main_reads())
    run_start = counter(path + "/energy_uj")
    windows, results = [], []
    for _ in range(50):
        w = meter.begin()
        time.sleep(0.03)
        results.append(meter.end(w))
        windows.append(w)
    run_end = counter(path + "/energy_uj")
    meter.close()
    energies = [m.cpu.joules for m in results]
    assert all(e > 0 for e in energies)
    whole_run_j = (run_end - run_start) / 1e6
    # each window is exactly its own boundary reads' difference (no poller baseline)
    bounds = counter.main_reads()[n_probe + 1 : -1]
    assert len(bounds) == 100
    expected = [(b - a) / 1e6 for a, b in zip(bounds[0::2], bounds[1::2], strict=True)]
    assert energies == pytest.approx(expected, abs=1e-9)
    # the windows and the gaps between them (from one window's end read to the next one's
    # begin read, a loaded machine makes them longer) add up to the run's delta exactly
    edges = [run_start, *bounds, run_end]
    gaps_j = sum((b - a) / 1e6 for a, b in zip(edges[0::2], edges[1::2], strict=True))
    assert sum(energies) + gaps_j == pytest.approx(whole_run_j, abs=1e-6)
    assert sum(energies) <= whole_run_j
    # each window owns its start snapshot, and they are all different
    starts = [w.state[path] for w in windows]
    assert len({id(w.state) for w in windows}) == 50
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    # the poller really ran concurrently with the windows
    assert meter.poller.polls > 5
    assert "greenpath-rapl-poller" in counter.threads


def test_window_longer_than_wrap_period_is_right_with_polling(powercap, monkeypatch):
    tree = powercap({"intel-rapl:0": ("package-0", 0, 2_000_000)})  # wraps at 2 J
    (tree.dirs["intel-rapl:0"] / "constraint_0_max_power_uw").write_text("10000000\n")
    # 10 W at most: a wrap every 200 ms; the guard polls every 50 ms whatever is asked
    counter = TimeCounter(rate_uj_per_s=10e6, range_uj=2_000_000)
    monkeypatch.setattr(rapl, "_read_int", counter)
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=100)
    assert meter.poll_period_s == pytest.approx(0.05)
    w = meter.begin()
    time.sleep(0.9)
    m = meter.end(w)
    meter.close()
    begin_uj, end_uj = counter.main_reads()[-2:]  # the boundary reads, unwrapped
    assert (end_uj - begin_uj) / 1e6 > 8.0  # >= 4 wraps of the 2 J counter
    if m.cpu.uncertain:  # the poller was starved on a loaded machine: said so
        assert "lower bound" in m.cpu.note and m.cpu.joules <= (end_uj - begin_uj) / 1e6
    else:
        assert m.cpu.joules == pytest.approx((end_uj - begin_uj) / 1e6, abs=1e-9)
        assert meter.wraps()[tree.key("intel-rapl:0")] >= 4


def test_read_error_mid_run_gives_nan_with_reason(powercap):
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=60)
    w = meter.begin()
    (tree.dirs["intel-rapl:0"] / "energy_uj").write_text("garbage\n")
    m = meter.end(w)
    meter.close()
    assert m.cpu.source == "absent"  # no reading: null, never a partial or zero value
    assert m.cpu.joules != m.cpu.joules  # NaN
    assert "ValueError" in m.cpu.note and "energy_uj" in m.cpu.note


def test_close_stops_the_poller(powercap):
    tree = powercap({"intel-rapl:0": ("package-0", 0, RANGE)})
    meter = RaplMeter.probe(str(tree.root), poll_interval_s=0.01)
    meter.end(meter.begin())
    assert meter.poller.running
    meter.close()
    assert not meter.poller.running
    with pytest.raises(RuntimeError, match="closed"):
        meter.begin()
