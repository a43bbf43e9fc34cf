"""Leave-one-dataset-out evaluation: no leakage, hand-checkable metrics, JSON output."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from greenpath.modeling import evaluate as ev
from greenpath.modeling.base import register
from greenpath.modeling.baselines import PersistencePredictor

SEEN: list[list[str]] = []


@register("_spy_persistence")
class _Spy(PersistencePredictor):
    name = "persistence"

    def fit(self, trajectories):
        SEEN.append(sorted(trajectories["dataset"].unique()))
        return super().fit(trajectories)


def test_lodo_splits_never_leak(toy_traj):
    seen = []
    for d, train, test in ev.lodo_splits(toy_traj):
        assert d not in set(train.dataset) and set(test.dataset) == {d}
        assert len(train) + len(test) == len(toy_traj)
        seen.append(d)
    assert seen == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="needs >= 2 datasets"):
        next(ev.lodo_splits(toy_traj[toy_traj.dataset == "a"]))


def test_evaluate_lodo_fits_without_held_out(toy_traj):
    SEEN.clear()
    res = ev.evaluate_lodo(toy_traj, "_spy_persistence", flagged={"d"})
    assert SEEN == [["b", "c", "d"], ["a", "c", "d"], ["a", "b", "d"], ["a", "b", "c"]]
    json.dumps(res, allow_nan=False)
    assert set(res["per_dataset"]) == {"a", "b", "c", "d"}
    assert res["flagged_datasets"] == ["d"]
    # one-step rows: per tree base 14 (epochs 7..20) + freeze/quant@0 14 each
    # + @5 14 each + @10 10 each = 90; 4 trees
    assert res["pooled"]["all"]["one_step"]["n"] == 360
    assert res["pooled"]["without_flagged"]["one_step"]["n"] == 270
    # multi-step: decisions 0, 5, 10 x base/freeze/quant per tree
    assert res["pooled"]["all"]["multi_step"]["all"]["n"] == 36
    assert res["pooled"]["all"]["multi_step"]["warm"]["n"] == 24


def test_one_step_metrics_by_hand(toy_traj):
    m = PersistencePredictor().fit(toy_traj[toy_traj.dataset != "a"])
    t = ev.one_step_table(m, toy_traj[toy_traj.dataset == "a"])
    row = t[(t.method == "freeze") & (t.intervention_epoch == 10) & (t.epoch == 11)].iloc[0]
    # persistence predicts the trunk's energy (100 J) for the switch epoch that cost 100 J
    assert row["energy_live"] == 100.0 and row["energy"] == 100.0
    row = t[(t.method == "freeze") & (t.intervention_epoch == 10) & (t.epoch == 12)].iloc[0]
    assert row["energy_live"] == 100.0 and row["energy"] == 50.0
    assert ev._mape([100.0, 50.0], [100.0, 50.0]) == 0.0
    assert ev._mape([110.0, 50.0], [100.0, 100.0]) == pytest.approx(30.0)


def test_paper_history_sees_intervention0_branches(toy_traj):
    from greenpath.modeling.paper import paper_panel

    panel = paper_panel(toy_traj[toy_traj.dataset == "a"])
    row = panel[
        (panel.method == "quant") & (panel.intervention_epoch == 10) & (panel.epoch == 13)
    ].iloc[0]
    h = ev._paper_history(panel, row)
    # freeze@0, quant@0 and base epochs 1..9 (not 10), then quant@10 epochs 11, 12
    assert list(h.method) == ["freeze"] * 9 + ["quant"] * 9 + ["base"] * 9 + ["quant"] * 2
    assert list(h.epoch[-3:]) == [9, 11, 12]


def test_multi_step_table_columns(toy_traj):
    m = PersistencePredictor().fit(toy_traj[toy_traj.dataset != "a"])
    t = ev.multi_step_table(m, toy_traj[toy_traj.dataset == "a"], decision_epochs=[10])
    assert sorted(t.method) == ["base", "freeze", "quant"]
    r = t[t.method == "freeze"].iloc[0]
    assert r["energy_future"] == pytest.approx(100 + 9 * 50)
    assert r["energy_future_pred"] == pytest.approx(10 * 100)
    assert isinstance(t, pd.DataFrame)


def test_replace_zero_accuracy():
    t = pd.DataFrame({"val_accuracy": [0.0, 0.005, 0.0, 0.3]})
    out = ev.replace_zero_accuracy(t, 0.01)
    assert out["val_accuracy"].tolist() == [0.01, 0.005, 0.01, 0.3]
    assert t["val_accuracy"].tolist() == [0.0, 0.005, 0.0, 0.3]  # input untouched
    assert ev.replace_zero_accuracy(t, None) is t
    with pytest.raises(ValueError, match="zero_accuracy"):
        ev.replace_zero_accuracy(t, 1.5)
