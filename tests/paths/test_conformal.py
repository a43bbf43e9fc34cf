"""Conformal (per-plan-kind residual quantile) margins of the planner."""

from __future__ import annotations

import pandas as pd
import pytest
from test_planner import Stub

from greenpath.paths.objectives import get_objective
from greenpath.paths.planner import (
    Margin,
    conformal_margins,
    forecast_tree,
    plan_residuals,
    plan_tree,
    planner_lodo_conformal,
)

OBJ = get_objective("constrained", 0.01)


def test_conformal_margins_hand_computed():
    res = pd.DataFrame(
        {
            "kind": ["stop_now"] * 5 + ["freeze"] * 2,
            "residual": [0.01, -0.02, 0.0, 0.02, -0.01, 0.003, 0.001],
        }
    )
    # sorted stop_now residuals -0.02, -0.01, 0, 0.01, 0.02; method="lower":
    # q=0.2 -> position 0.8 -> index 0 (-0.02); q=0.3 -> 1.2 -> index 1 (-0.01)
    assert conformal_margins(res, 0.2) == pytest.approx({"stop_now": 0.02, "freeze": 0.0})
    assert conformal_margins(res, 0.3)["stop_now"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="quantile=1.0"):
        conformal_margins(res, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        conformal_margins(res.iloc[:0], 0.2)


def test_plan_residuals_toy(toy_tree):
    fcs = forecast_tree(toy_tree, Stub())
    r = plan_residuals([toy_tree], {toy_tree.key: fcs})
    # d=2: stop now, stop at 4, freeze->4/6, quant->4/6; d=4: stop now, freeze->6; d=0: none
    assert len(r) == 8
    q = r[(r["kind"] == "quant") & (r["end_epoch"] == 6)].iloc[0]
    # forecast 0.55 - 0.60 = -0.05; measured quant@2 final 0.58 - trunk 0.60 = -0.02
    assert q["forecast_diff"] == pytest.approx(-0.05)
    assert q["true_diff"] == pytest.approx(-0.02)
    assert q["residual"] == pytest.approx(0.03)
    now = r[(r["kind"] == "stop_now") & (r["decision_epoch"] == 2)].iloc[0]
    assert now["residual"] == pytest.approx(0.0)  # the stop's accuracy is measured


@pytest.mark.parametrize(
    ("freeze_margin", "expected"),
    [
        # freeze@2->6: -0.005 - 0.004 >= -0.01 -> safe (36 J)
        (0.004, ("freeze", 2, 6, 36.0)),
        # -0.005 - 0.006 < -0.01: unsafe at 2 and at 4 -> the full trunk (60 J)
        (0.006, ("base", 0, 6, 60.0)),
    ],
)
def test_plan_tree_kind_margins(toy_tree, freeze_margin, expected):
    fcs = forecast_tree(toy_tree, Stub())
    c = plan_tree(toy_tree, fcs, OBJ, Margin(0.0, 0.0, False), {"freeze": freeze_margin})
    assert (c.method, c.intervention_epoch, c.end_epoch, c.energy_j) == expected


def test_planner_lodo_conformal_uses_other_datasets_only(toy_tree):
    from paths_toy import toy_records

    from greenpath.paths.tree import build_trees
    from greenpath.records import build_trajectories

    # two datasets: "a" like the toy; "b" whose quant@2 ends far below its forecast
    recs = pd.concat(
        [toy_records("a"), toy_records("b", freeze2=(0.45, 0.52, 0.57, 0.55))],
        ignore_index=True,
    )
    trees = build_trees(build_trajectories(recs))
    choices, det = planner_lodo_conformal(trees, lambda ds: Stub(), OBJ, quantile=0.2)
    # b's freeze@2->6 forecast 0.595 vs measured 0.55: residual -0.045 -> margin for a
    assert det["a"]["kind_margins"]["freeze"] == pytest.approx(0.045)
    # a's freeze residuals: 0 (->4), 0 (->6), freeze@4->6 0.59 vs 0.595: -0.005
    assert det["b"]["kind_margins"]["freeze"] == pytest.approx(0.005)
    a = choices[next(t.key for t in trees if t.dataset == "a")]
    assert (a.method, a.end_epoch) == ("base", 6)  # the margin blocks every plan
    # q = 0.5: a's median freeze residual is 0 -> no margin for b, which then violates
    choices, det = planner_lodo_conformal(trees, lambda ds: Stub(), OBJ, quantile=0.5)
    assert det["b"]["kind_margins"]["freeze"] == 0.0
    b = choices[next(t.key for t in trees if t.dataset == "b")]
    assert (b.method, b.intervention_epoch, b.end_epoch) == ("freeze", 2, 6)
    assert b.val_accuracy == pytest.approx(0.55)
