"""The controller's calibration travels as a JSON file: its margin round-trips, and a
controlled run refuses a calibration made for another dataset before training."""

from __future__ import annotations

import json

import pytest

from greenpath.control.closed_loop import live_run
from greenpath.paths import Margin


@pytest.mark.parametrize(
    "margin",
    [
        Margin(0.5, 0.01, False),
        Margin(1.0, 0.0, True, (("stop_now", 0.02), ("stop_now@10", 0.005)), first_epoch=10),
    ],
)
def test_margin_round_trips_through_json(margin):
    assert Margin.from_dict(json.loads(json.dumps(margin.as_dict()))) == margin


def test_margin_from_dict_names_an_unknown_key():
    with pytest.raises(ValueError, match="zz"):
        Margin.from_dict({"z": 1.0, "zz": 2})


@pytest.mark.parametrize("calibration", [None, {"dataset": "digits", "margin": {}, "actions": []}])
def test_controlled_run_needs_its_own_datasets_calibration(tmp_path, calibration):
    with pytest.raises(ValueError, match="font_digits"):
        live_run({}, trajectories_path=tmp_path / "none.parquet", models={},
                 dataset="font_digits", dataset_path=tmp_path / "none.npz", seed=0,
                 kind="controlled", run_dir=tmp_path / "run", calibration=calibration)  # fmt: skip
    assert not (tmp_path / "run").exists()
