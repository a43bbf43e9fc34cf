"""Helpers for the training tests: a small real dataset (scikit-learn digits) written in the
prepared-data layout, a checked config, and a deterministic fake energy meter."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from greenpath.config import check_config
from greenpath.data.prepared import PreparedDataset

REPO = Path(__file__).resolve().parents[2]


def digits_dataset(n_train: int = 300, n_val: int = 100, channels: int = 1) -> PreparedDataset:
    """scikit-learn's bundled digits (8x8, 16 grey levels -> uint8 0..240), first rows."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * 15).astype(np.uint8)[..., None]
    if channels == 3:
        x = np.repeat(x, 3, axis=3)
    y = d.target.astype(np.int64)
    return PreparedDataset(
        name="digits",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train : n_train + n_val],
        y_val=y[n_train : n_train + n_val],
        class_names=[str(i) for i in range(10)],
        multilabel=False,
        synthetic=False,
        source="sklearn.datasets.load_digits",
    )


def make_config(epochs: int = 4, **training: Any) -> dict[str, Any]:
    """The default config/config.yaml, shortened, checked (without the dataset registry)."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["training"]["epochs"] = epochs
    raw["training"].update(training)
    raw["interventions"]["epochs"] = [k for k in raw["interventions"]["epochs"] if k < epochs]
    raw["model"]["width"] = 8
    raw["training"]["batch_size"] = 32
    return check_config(raw, check_datasets=False)


@dataclass
class _Window:
    start_utc: datetime
    n: int


@dataclass
class FakeMeasurement:
    start_utc: datetime
    wall_s: float
    joules: float

    def record_fields(self, ci: float | None) -> dict[str, Any]:
        return {
            "energy_gpu_j": 0.0,
            "energy_cpu_j": self.joules,
            "energy_dram_j": 1.0,
            "energy_total_j": self.joules + 1.0,
            "energy_gpu_source": "absent",
            "energy_cpu_source": "estimate",
            "energy_dram_source": "estimate",
            "energy_gpu_estimate": False,
            "energy_cpu_estimate": True,
            "energy_dram_estimate": True,
            "energy_note": "fake",
            "gpu_uuid": None,
            "co2eq_g": None if ci is None else (self.joules + 1.0) / 3.6e6 * ci,
        }


class FakeMeter:
    """Counts windows; window i reports 10*i J of CPU energy and 1 J of DRAM."""

    def __init__(self) -> None:
        self.windows = 0
        self._clock = itertools.count()
        self.closed = False

    def begin(self) -> _Window:
        self.windows += 1
        t = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=next(self._clock))
        return _Window(t, self.windows)

    def end(self, w: _Window) -> FakeMeasurement:
        return FakeMeasurement(w.start_utc, 0.5, 10.0 * w.n)

    def record_fields(self, m: FakeMeasurement) -> dict[str, Any]:
        return m.record_fields(None)

    def metadata(self) -> dict[str, str]:
        return {"energy.meter": "FakeMeter"}

    def close(self) -> None:
        self.closed = True


#: Columns that legitimately differ between two runs of the same job (time and energy).
VOLATILE = {
    "epoch_start_utc",
    "duration_s",
    "train_s",
    "eval_s",
    "co2eq_g",
    "gpu_uuid",
}


def stable_columns(df) -> list[str]:
    return [c for c in df.columns if c not in VOLATILE and not c.startswith("energy_")]
