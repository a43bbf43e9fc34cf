"""Objectives and the oracle on a hand-built tree (answers worked out in conftest's doc)."""

from __future__ import annotations

import math

import pytest
from paths_toy import toy_records

from greenpath.paths.objectives import J_PER_KWH, get_objective
from greenpath.paths.report import outcome_table, summarize
from greenpath.paths.strategies import Choice, oracle
from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories


def test_candidates_of_toy_tree(toy_tree):
    cand = toy_tree.candidates()
    got = {
        (r.method, r.intervention_epoch, r.end_epoch): (round(r.val_accuracy, 4), r.energy_j)
        for r in cand.itertuples()
    }
    assert toy_tree.decision_epochs == (0, 2, 4)
    assert got == {
        ("base", 0, 6): (0.60, 60.0),
        ("stop", 2, 2): (0.40, 20.0),
        ("stop", 4, 4): (0.55, 40.0),
        ("freeze", 2, 4): (0.52, 28.0),
        ("freeze", 2, 6): (0.595, 36.0),
        ("quant", 2, 4): (0.53, 32.0),
        ("quant", 2, 6): (0.58, 44.0),
        ("freeze", 4, 6): (0.59, 48.0),
    }


@pytest.mark.parametrize(
    ("name", "tol", "lam", "expected"),
    [
        # feasible at tol 0.01 (>= 0.59): base 60 J, freeze@2->6 36 J, freeze@4->6 48 J
        ("constrained", 0.01, None, ("freeze", 2, 6)),
        # tol 0.10 (>= 0.50): freeze@2->4 (0.52, 28 J) is the cheapest feasible path
        ("constrained", 0.10, None, ("freeze", 2, 4)),
        # acc/J: stop@2 0.4/20 = 0.020 beats freeze@2->4 0.52/28 = 0.0186
        ("score", 0.01, None, ("stop", 2, 2)),
        # lam*kWh = 0.001/J: freeze@2->6 0.595-0.036 = 0.559 beats base 0.54, f4 0.542
        ("weighted", 0.01, 0.001 * J_PER_KWH, ("freeze", 2, 6)),
        # lam*kWh = 0.01/J: freeze@2->4 0.52-0.28 = 0.24 beats freeze@2->6 0.235
        ("weighted", 0.01, 0.01 * J_PER_KWH, ("freeze", 2, 4)),
    ],
)
def test_oracle_known_answer(toy_tree, name, tol, lam, expected):
    c = oracle(toy_tree, get_objective(name, tol, lam))
    assert (c.method, c.intervention_epoch, c.end_epoch) == expected


def test_objective_values_and_units():
    score = get_objective("score")
    # 0.5 accuracy for 0.25 kWh = 2 per kWh
    assert score.value(0.5, 0.25 * J_PER_KWH, 0.6) == pytest.approx(2.0)
    con = get_objective("constrained", 0.01)
    assert con.value(0.59, 100.0, 0.60) == -100.0
    assert con.value(0.589, 100.0, 0.60) == -math.inf
    w = get_objective("weighted", lam=2.0)
    assert w.value(0.7, 0.1 * J_PER_KWH, 0.6) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lam"):
        get_objective("weighted")
    with pytest.raises(ValueError, match="unknown objective"):
        get_objective("fastest")
    with pytest.raises(ValueError, match="tolerance"):
        get_objective("constrained", 1.5)


@pytest.mark.parametrize(
    ("name", "lam"), [("constrained", None), ("score", None), ("weighted", 3600.0)]
)
def test_oracle_regret_is_zero(toy_tree, name, lam):
    obj = get_objective(name, 0.01, lam)
    orc = {toy_tree.key: oracle(toy_tree, obj)}
    table = outcome_table([toy_tree], orc, obj, orc)
    assert table["regret"].tolist() == [0.0]
    # only the constrained oracle is bound by the tolerance (score picks stop@2: 0.40)
    assert table["violation"].tolist() == [name == "score"]


def test_violation_count_and_figures():
    """Two trees; hand-made choices; tolerance 1 point (threshold 0.59)."""
    trees = build_trees(
        build_trajectories(
            __import__("pandas").concat([toy_records("a"), toy_records("b")], ignore_index=True)
        )
    )
    obj = get_objective("constrained", 0.01)
    orc = {t.key: oracle(t, obj) for t in trees}  # freeze@2->6: 36 J on both
    ta, tb = trees
    choices = {
        ta.key: Choice("stop", 4, 4, 0.55, 40.0),  # violation: 0.55 < 0.59
        tb.key: Choice("freeze", 4, 6, 0.59, 48.0),  # exactly at the threshold: no violation
    }
    table = outcome_table(trees, choices, obj, orc, flagged={"a"})
    assert table["violation"].tolist() == [True, False]
    assert table["energy_saved_pct"].tolist() == pytest.approx([100 / 3, 20.0])
    assert table["accuracy_change_pts"].tolist() == pytest.approx([-5.0, -1.0])
    # regret: (40-36)/60*100 and (48-36)/60*100 points of the trunk's energy
    assert table["regret"].tolist() == pytest.approx([20 / 3, 20.0])
    s = summarize(table)
    assert s["pooled"]["all"]["violations"] == 1
    assert s["pooled"]["all"]["energy_saved_pct_mean"] == pytest.approx((100 / 3 + 20) / 2)
    assert s["pooled"]["all"]["energy_saved_pct_ratio"] == pytest.approx((1 - 88 / 120) * 100)
    assert s["pooled"]["without_flagged"]["violations"] == 0
    assert s["pooled"]["without_flagged"]["n_trees"] == 1
    # with tolerance 10 points nothing violates
    loose = outcome_table(trees, choices, get_objective("constrained", 0.10), orc)
    assert loose["violation"].sum() == 0


def test_calibration_counts_a_loss_of_more_than_half_the_tolerance():
    obj = get_objective("constrained", 0.01)
    # -0.4 pt: within both; -0.7 pt: within the tolerance, beyond its calibration half;
    # -1.2 pts: beyond both
    assert (obj.violation(0.596, 0.60), obj.calibration_violation(0.596, 0.60)) == (False, False)
    assert (obj.violation(0.593, 0.60), obj.calibration_violation(0.593, 0.60)) == (False, True)
    assert (obj.violation(0.588, 0.60), obj.calibration_violation(0.588, 0.60)) == (True, True)
