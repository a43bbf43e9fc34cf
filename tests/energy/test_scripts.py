"""Smoke tests of bench/bench_meter.py and scripts/gpu_check.py (CPU only)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_meter_writes_json(tmp_path, capsys):
    bench = load(REPO / "bench" / "bench_meter.py")
    out = tmp_path / "meter.json"
    assert bench.main(["--out", str(out), "--busy-s", "0.2", "--n", "200", "--no-throughput"]) == 0
    res = json.loads(out.read_text())
    for k in ("estimate", "rapl_fake_tree"):
        assert 0 < res["window_cost_us"][k]["median_us"] < 10_000
    for k in ("rapl_1s", "rapl_0.1s", "nvml_power_0.1s_fake"):
        share = res["poller_cpu_share"][k]
        assert share["wall_s"] >= 0.2 and share["cpu_share_pct"] >= 0


@pytest.mark.slow  # imports torch in a subprocess (~5 s here)
@pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available(),
    reason="this machine has CUDA; the check runs for real (tests/training/test_training_cuda.py)",
)
def test_gpu_check_exits_clearly_without_cuda(tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--out", str(tmp_path / "g")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "CUDA is not available" in r.stderr
    assert not (tmp_path / "g").exists()
