"""The model of the paper's savings simulation: fitted by the modeling stage (the fit rule
writes one file per held-out dataset), read back unchanged by the path stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from modeling_toy import AR, MODE_FREEZE, MODE_LAG1_FREEZE, make_records

from greenpath.modeling import paper_savings as ps
from greenpath.modeling.workflow import fit_study
from greenpath.records import build_trajectories
from greenpath.records.aggregate import write_trajectories


@pytest.fixture(scope="module")
def exact_traj() -> pd.DataFrame:
    """Trees whose accuracies follow the AR(4) model exactly (no noise)."""
    return build_trajectories(make_records(noise=0.0))


def test_fit_recovers_the_generating_model(exact_traj):
    m = ps.fit_paper_savings(exact_traj, held_out="a")
    # accuracy = AR . lags + dataset offset + freeze effects: OLS with dataset fixed effects
    want = [*AR, MODE_LAG1_FREEZE, MODE_FREEZE]
    assert m.coefs == pytest.approx(want, abs=1e-8)
    # per dataset, rows with 4 lags (epoch >= 5): freeze 16 x 50 J (branch at 0), 14 x 50 +
    # 100 (at 5, first epoch after the switch 2x), 9 x 50 + 100 (at 10); base = the trunk
    # (16 x 100) and quant recoded as base (16 x 80; 14 x 80 + 160; 9 x 80 + 160)
    assert m.change == pytest.approx((2150 / 41) / (5040 / 57), rel=1e-12)
    assert m.n_rows == 3 * (16 + 41 + 41)
    assert m.trained_datasets == ("b", "c", "d") and m.held_out == "a"


def test_file_round_trip_equals_the_fit(exact_traj, tmp_path):
    m = ps.fit_paper_savings(exact_traj, held_out="b")
    back = ps.load(ps.save(m, tmp_path / "without_b.json"))
    assert np.array_equal(back.coefs, m.coefs)  # bit for bit: JSON floats round trip
    assert (back.change, back.n_rows, back.trained_datasets, back.held_out) == (
        m.change,
        m.n_rows,
        m.trained_datasets,
        m.held_out,
    )
    doc = json.loads((tmp_path / "without_b.json").read_text())
    assert doc["format"] == ps.FORMAT and set(doc["coefs"]) == set(ps.FEATURES)


def test_fit_rule_entry_writes_the_same_model(exact_traj, tmp_path):
    traj = write_trajectories(exact_traj, tmp_path / "trajectories.parquet")
    out = fit_study(traj, ps.NAME, tmp_path / "models/paper_savings/without_c.json", held_out="c")
    loaded = ps.load(out)
    fitted = ps.fit_paper_savings(exact_traj, held_out="c")
    assert np.array_equal(loaded.coefs, fitted.coefs) and loaded.change == fitted.change


def test_failed_rows_are_no_outcome(exact_traj):
    """A diverged epoch ends its path: the panel drops it; the rows before keep their
    cumulative energy."""
    trunk_end = (exact_traj["dataset"] == "d") & (exact_traj["method"] == "base")
    last = exact_traj[trunk_end]["epoch"].max()
    bad = exact_traj.copy()
    bad.loc[trunk_end & (bad["epoch"] == last), "status"] = "diverged"
    pan = ps.panel(bad)
    trunk_d = pan[(pan["dataset"] == "d") & (pan["method"] == "base")]
    assert trunk_d["epoch"].max() == last - 1
    full = ps.panel(exact_traj)
    full_d = full[(full["dataset"] == "d") & (full["method"] == "base")]
    assert trunk_d["energy_cum_kwh"].tolist() == full_d["energy_cum_kwh"].iloc[:-1].tolist()


def test_errors_name_the_problem(exact_traj, tmp_path):
    with pytest.raises(ValueError, match="'zz' is not in the trajectories"):
        ps.fit_paper_savings(exact_traj, held_out="zz")
    with pytest.raises(ValueError, match="not a trajectories table"):
        ps.panel(make_records())  # records, not trajectories
    with pytest.raises(FileNotFoundError, match="greenpath fit --predictor paper_savings"):
        ps.load(tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "greenpath-predictor", "format_version": 1}))
    with pytest.raises(ValueError, match="greenpath-paper-savings"):
        ps.load(other)
    short = build_trajectories(make_records(E=4, interventions=(0, 2)))
    with pytest.raises(ValueError, match="training rows"):
        ps.fit_paper_savings(short, held_out="a")
