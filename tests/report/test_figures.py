"""Figure functions on the hand-made records of conftest.py (values worked out by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_data import make_paths_json, make_records

from greenpath.records import build_trajectories
from greenpath.report.figures import (
    energy_accuracy_figure,
    energy_breakdown_figure,
    energy_by_method,
    learning_curves_figure,
    pareto_front,
    path_endpoints,
    predictions_figure,
)
from greenpath.report.style import J_PER_KWH, energy_scale, save_figure
from greenpath.report.tables import strategy_choices


def gid_lines(ax, prefix):
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(prefix)]


# ------------------------------------------------------------------ learning curves


def test_learning_curves_one_line_per_path_with_seed_mean(records):
    fig = learning_curves_figure(records, "alpha")
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in gid_lines(ax, "path:")}
    assert sorted(lines) == [
        "path:base@0",
        "path:freeze@0",
        "path:freeze@2",
        "path:quant@0",
        "path:quant@2",
    ]
    # trunk: mean over seeds 0 and 1 of 0.5 + 0.1 e + 0.01 s -> 60.5, 70.5, 80.5, 90.5 %
    np.testing.assert_allclose(lines["path:base@0"].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(lines["path:base@0"].get_ydata(), [60.5, 70.5, 80.5, 90.5])
    # freeze@2 leaves the trunk at epoch 2 (70.5 %), then trunk - 5 points: 75.5, 85.5
    np.testing.assert_allclose(lines["path:freeze@2"].get_xdata(), [2, 3, 4])
    np.testing.assert_allclose(lines["path:freeze@2"].get_ydata(), [70.5, 75.5, 85.5])
    # k = 0 branches start at epoch 1 (no trunk point before)
    np.testing.assert_allclose(lines["path:quant@0"].get_xdata(), [1, 2, 3, 4])
    # intervention marker at k = 2 only (k = 0 is the y axis)
    assert [ln.get_gid() for ln in gid_lines(ax, "intervention:")] == ["intervention:2"]
    # one min-max band per path with 2 seeds
    assert len(ax.collections) == 5
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "validation accuracy (%)"
    assert "alpha" in ax.get_title() and "2 seed(s)" in ax.get_title()


def test_learning_curves_single_seed_has_no_band_and_lists_skipped():
    rec = make_records(datasets=("alpha",), seeds=(0,))
    skip = (rec["method"] == "quant") & (rec["intervention_epoch"] == 0)
    rec.loc[skip, "status"] = "skipped"
    rec.loc[skip, "val_accuracy"] = np.nan
    fig = learning_curves_figure(rec)  # one dataset: no name needed
    ax = fig.axes[0]
    assert len(gid_lines(ax, "path:")) == 4
    assert len(ax.collections) == 0
    texts = [t.get_text() for t in ax.texts]
    assert any("quant@0 (skipped)" in t for t in texts)


def test_learning_curves_rejects_unknown_or_ambiguous_dataset(records):
    with pytest.raises(ValueError, match="gamma"):
        learning_curves_figure(records, "gamma")
    with pytest.raises(ValueError, match="pass dataset"):
        learning_curves_figure(records)


# --------------------------------------------------------------- energy vs accuracy


def test_pareto_front_hand_checked():
    # energies 220 (0.70), 220 (0.85), 330 (0.85), 352 (0.88), 396 (0.88), 440 (0.90)
    e = [440, 220, 330, 352, 396, 220]
    a = [0.90, 0.85, 0.85, 0.88, 0.88, 0.70]
    assert pareto_front(e, a).tolist() == [1, 3, 0]
    assert pareto_front([1.0, np.nan], [0.5, 0.9]).tolist() == [0]
    assert pareto_front([], []).tolist() == []


def test_path_endpoints(records):
    traj = build_trajectories(records, stop_epochs=[2])
    ends = path_endpoints(traj)
    assert len(ends) == 2 * 2 * 6  # datasets x seeds x paths
    e = ends.set_index(["dataset", "seed", "method", "intervention_epoch"])
    assert e.loc[("alpha", 0, "base", 0), "energy_j"] == pytest.approx(440.0)
    assert e.loc[("alpha", 0, "freeze", 2), "energy_j"] == pytest.approx(330.0)
    assert e.loc[("alpha", 0, "stop", 2), "end_epoch"] == 2
    assert e.loc[("alpha", 0, "stop", 2), "val_accuracy"] == pytest.approx(0.70)


def test_energy_accuracy_points_front_and_choices(records):
    traj = build_trajectories(records, stop_epochs=[2])
    choices = strategy_choices(make_paths_json(records))
    fig = energy_accuracy_figure(traj, "alpha", choices=choices)
    axes = [ax for ax in fig.axes if ax.get_title().startswith("seed")]
    assert [ax.get_title() for ax in axes] == ["seed 0", "seed 1"]
    ax = axes[0]
    ends = {ln.get_gid(): ln for ln in gid_lines(ax, "end:")}
    assert sorted(ends) == [
        "end:base@0",
        "end:freeze@0",
        "end:freeze@2",
        "end:quant@0",
        "end:quant@2",
        "end:stop@2",
    ]
    # the largest cumulative energy of alpha is 440 J: the axis is in J
    assert ends["end:base@0"].get_xdata()[0] == pytest.approx(440.0)
    assert ends["end:base@0"].get_ydata()[0] == pytest.approx(90.0)
    (front,) = gid_lines(ax, "pareto")
    np.testing.assert_allclose(front.get_xdata(), [220, 352, 440])
    np.testing.assert_allclose(front.get_ydata(), [85.0, 88.0, 90.0])
    (oracle,) = gid_lines(ax, "choice:oracle")
    (planner,) = gid_lines(ax, "choice:planner")
    assert oracle.get_xdata()[0] == pytest.approx(330.0)
    assert planner.get_ydata()[0] == pytest.approx(88.0)
    assert ax.get_xlabel() == "cumulative energy (J)"
    assert axes[0].get_ylabel().endswith("(%)")
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "chosen by: oracle (best measured path, in hindsight)" in legend
    assert "chosen by: planner (calibrated safety margin)" in legend


def test_energy_accuracy_without_choices(records):
    traj = build_trajectories(records, stop_epochs=[2])
    fig = energy_accuracy_figure(traj, "beta")
    assert not any(gid_lines(ax, "choice:") for ax in fig.axes)


# ----------------------------------------------------------------- energy breakdown


def test_energy_by_method_values(records):
    t = energy_by_method(records[records["dataset"] == "alpha"]).set_index(["method", "component"])
    assert t.loc[("freeze", "cpu"), "energy_j"] == pytest.approx(50.0)
    assert t.loc[("quant", "dram"), "energy_j"] == pytest.approx(8.0)
    assert t.loc[("base", "cpu"), "estimate_share"] == 1.0
    assert t.loc[("base", "dram"), "estimate_share"] == 0.0
    assert np.isnan(t.loc[("base", "gpu"), "energy_j"])
    assert not t.loc[("base", "gpu"), "measured"]
    assert list(t.index.get_level_values(0).unique()) == ["base", "freeze", "quant"]


def test_energy_breakdown_bars_hatch_estimates(records):
    fig = energy_breakdown_figure(records, "alpha")
    ax, ax2 = fig.axes[:2]
    bars = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("bar:")}
    assert len(bars) == 9  # 3 methods x 3 components
    assert bars["bar:base:cpu"].get_height() == pytest.approx(100.0)
    assert bars["bar:base:dram"].get_y() == pytest.approx(100.0)  # stacked on the CPU
    assert bars["bar:base:dram"].get_height() == pytest.approx(10.0)
    assert bars["bar:freeze:cpu"].get_hatch() == "///"  # CPU values are estimates
    assert bars["bar:freeze:dram"].get_hatch() is None  # DRAM measured
    assert bars["bar:base:gpu"].get_height() == 0.0  # never read
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "GPU (not measured)" in legend
    assert any("estimate" in t for t in legend)
    assert sum(t.get_text() == "estimate" for t in ax.texts) == 3
    assert ax.get_ylabel() == "mean energy per epoch (J)"
    lines = {ln.get_gid(): ln for ln in gid_lines(ax2, "epoch:")}
    np.testing.assert_allclose(lines["epoch:base"].get_ydata(), [110.0] * 4)
    np.testing.assert_allclose(lines["epoch:freeze"].get_ydata(), [55.0] * 4)
    assert ax2.get_xlabel() == "epoch"
    assert ax2.get_ylabel() == "total energy per epoch (J)"


def test_energy_scale_units():
    assert energy_scale(500.0) == (1.0, "J")
    assert energy_scale(2.5e3) == (1e3, "kJ")
    assert energy_scale(3.5e5) == (1e3, "kJ")  # just under 0.1 kWh
    assert energy_scale(7e6) == (J_PER_KWH, "kWh")


# ---------------------------------------------------------------------- predictions


def test_predictions_figure_mape_and_points():
    rows = []
    for p, acc_pred, en_pred in (("a", [0.55, 0.8], [110.0, 180.0]), ("b", [0.5, 0.4], [100, 200])):
        for actual, pred in zip([0.5, 0.8], acc_pred, strict=True):
            rows.append(
                {"predictor": p, "target": "val_accuracy", "actual": actual, "predicted": pred}
            )
        for actual, pred in zip([100.0, 200.0], en_pred, strict=True):
            rows.append({"predictor": p, "target": "energy_j", "actual": actual, "predicted": pred})
    fig = predictions_figure(pd.DataFrame(rows), title="toy")
    axes = fig.axes
    assert len(axes) == 4
    scat = {ln.get_gid(): ln for ax in axes for ln in gid_lines(ax, "scatter:")}
    assert sorted(scat) == [
        "scatter:a:energy_j",
        "scatter:a:val_accuracy",
        "scatter:b:energy_j",
        "scatter:b:val_accuracy",
    ]
    np.testing.assert_allclose(scat["scatter:a:val_accuracy"].get_ydata(), [55.0, 80.0])
    # accuracy APE: a = [10, 0] -> 5.0 %; b = [0, 50] -> 25.0 %
    acc_texts = [t.get_text() for t in axes[1].texts]
    assert acc_texts == ["MAPE 5.0%", "MAPE 25.0%"]
    # energy APE: a = [10, 10] -> 10.0 %; b = [0, 0] -> 0.0 %
    assert [t.get_text() for t in axes[3].texts] == ["MAPE 10.0%", "MAPE 0.0%"]
    assert axes[0].get_xlabel() == "actual validation accuracy (%)"
    assert axes[2].get_ylabel() == "predicted energy per epoch (J)"
    assert axes[1].get_ylabel() == "absolute percentage error (%)"


def test_predictions_figure_needs_targets():
    with pytest.raises(ValueError, match="target"):
        predictions_figure(
            pd.DataFrame({"predictor": ["a"], "target": ["x"], "actual": [1.0], "predicted": [1.0]})
        )


# ---------------------------------------------------------------------------- saving


def test_save_figure_png_and_bad_suffix(tmp_path, records):
    fig = learning_curves_figure(records, "alpha")
    out = save_figure(fig, tmp_path / "sub" / "lc.png", close=False)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "sub").glob(".*tmp"))
    with pytest.raises(ValueError, match=".png"):
        save_figure(fig, tmp_path / "lc.jpg")
