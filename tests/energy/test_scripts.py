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


@pytest.mark.slow  # trains 5 tiny epochs in a subprocess (~15 s here)
def test_gpu_check_cpu_smoke_writes_strict_json_with_nulls(tmp_path):
    out = tmp_path / "g"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "gpu_check.py"),
            *("--device", "cpu", "--out", str(out), "--epochs", "3"),
            *("--steps", "2", "--batch-size", "8", "--image-size", "8"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))

    rows = [strict(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [(x["method"], x["epoch"]) for x in rows] == [
        ("base", 1),
        ("base", 2),
        ("base", 3),
        ("quant", 2),
        ("quant", 3),
    ]
    assert all(x["energy_gpu_j"] is None and x["energy_total_j"] > 0 for x in rows)
    summary = strict((out / "summary.json").read_text())
    quant = [x for x in rows if x["method"] == "quant"]
    assert summary["paths"]["quant"]["gpu_j"] is None
    assert summary["paths"]["quant"]["total_j"] == pytest.approx(
        sum(x["energy_total_j"] for x in quant)
    )
    assert summary["checks"]["every_epoch_positive"] is True
