"""The one JSON writer: numpy values as Python values, NaN refused, nothing half-written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from greenpath.records import write_json


def test_numpy_values_are_written_as_python_values(tmp_path):
    out = write_json(
        {"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3)}, tmp_path / "a.json"
    )
    assert json.loads(out.read_text()) == {"n": 3, "x": 0.5, "v": [0, 1, 2]}


def test_paths_are_written_as_strings_and_other_objects_refused(tmp_path):
    out = write_json({"model": Path("results/a/m.json")}, tmp_path / "a.json")
    assert json.loads(out.read_text()) == {"model": "results/a/m.json"}
    with pytest.raises(TypeError, match="set"):
        write_json({"x": {1, 2}}, tmp_path / "b.json")
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("bad", [math.nan, math.inf, np.float64("nan")])
def test_not_a_number_is_refused_and_the_old_file_kept(tmp_path, bad):
    path = write_json({"energy_j": None}, tmp_path / "a.json")
    with pytest.raises(ValueError):
        write_json({"energy_j": bad}, path)
    assert json.loads(path.read_text()) == {"energy_j": None}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
