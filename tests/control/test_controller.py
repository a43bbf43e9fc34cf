"""The controller on a scripted history with a stub predictor (hand-computed choices)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from stub import StubPredictor

from greenpath.control import Controller, read_decisions
from greenpath.paths import Margin

# scripted history: 4 epochs of 10 J each, accuracy rising
ROWS = [
    {"epoch": e, "val_accuracy": a, "energy_total_j": 10.0}
    for e, a in enumerate([0.50, 0.70, 0.80, 0.82], 1)
]
E = 10  # decision at 4: 6 epochs left


def _run(ctl, upto=4):
    assert ctl.on_train_begin(0) == "continue"
    out = [ctl.on_epoch_end(r["epoch"], r) for r in ROWS[:upto]]
    return out


def _table(base=(0.85, 0.0, 10.0), freeze=(0.845, 0.0, 5.0), quant=(0.85, 0.0, 8.0)):
    return {("base", 4): base, ("freeze", 4): freeze, ("quant", 4): quant}


def test_constrained_picks_cheapest_safe_plan():
    # at d=4: e0 = 40 J. plans to E=10 (6 epochs): continue 40+60=100 J acc .85 (ref);
    # freeze 40+30=70 J acc .845 (-0.5 pt, safe at tol 1 pt); quant 40+48=88 J;
    # stop now 40 J acc .82 (-3 pts, unsafe). Cheapest safe: freeze (70 J).
    ctl = Controller(StubPredictor(_table()), last_epoch=E, decision_epochs=[4])
    assert _run(ctl) == ["continue", "continue", "continue", "freeze"]
    d = ctl.decisions[-1]
    assert (d.chosen.method, d.chosen.end_epoch, d.chosen.energy_j) == ("freeze", 10, 70.0)
    assert d.full_energy_j == 100.0 and d.ref_accuracy == 0.85
    stop = next(p for p in d.plans if p.action == "stop")
    assert (stop.energy_j, stop.safe, stop.value) == (40.0, False, -math.inf)
    # followed afterwards: no new forecast, continue to the end
    assert (
        ctl.method == "freeze"
        and ctl.on_epoch_end(5, {"epoch": 5, "val_accuracy": 0.84}) == "continue"
    )


def test_constrained_margin_makes_freeze_unsafe():
    # delta 0.006: freeze needs acc - ref >= -0.01 + 0.006 = -0.004; -0.005 fails -> quant
    ctl = Controller(
        StubPredictor(_table()), last_epoch=E, decision_epochs=[4], margin=Margin(0.0, 0.006)
    )
    assert _run(ctl)[-1] == "quant"
    # z = 1 with std 0.01 on freeze and ref: sigma = sqrt(2)*0.01 = 0.01414 -> quant also
    # fails (0 >= -0.01 + 0.01414 is false) -> continue
    t = _table(base=(0.85, 0.01, 10.0), freeze=(0.845, 0.01, 5.0), quant=(0.85, 0.01, 8.0))
    ctl = Controller(StubPredictor(t), last_epoch=E, decision_epochs=[4], margin=Margin(1.0, 0.0))
    assert _run(ctl)[-1] == "continue"


def test_weighted_and_score_objectives():
    # weighted, lam in accuracy per kWh: value = acc - lam * J / 3.6e6.
    # lam = 3.6e4 -> 0.01 accuracy per J... use lam = 360: 1e-4 per J.
    # continue .85 - 100e-4 = .8400; freeze .845 - 70e-4 = .8380; quant .85 - 88e-4 = .8412;
    # stop .82 - 40e-4 = .8160  -> quant
    ctl = Controller(StubPredictor(_table()), last_epoch=E, decision_epochs=[4],
                     objective="weighted", lam=360.0)  # fmt: skip
    assert _run(ctl)[-1] == "quant"
    assert ctl.decisions[-1].chosen.value == pytest.approx(0.85 - 88e-4)
    # score = acc / kWh: stop .82/40 = .0205/J beats freeze .845/70 = .01207 -> stop
    ctl = Controller(StubPredictor(_table()), last_epoch=E, decision_epochs=[4], objective="score")
    assert _run(ctl)[-1] == "stop"
    assert ctl.stopped_epoch == 4
    assert ctl.decisions[-1].chosen.value == pytest.approx(0.82 / (40 / 3.6e6))


def test_later_stop_plan_and_planned_end():
    # decisions at 4 and 7. freeze to 7 then stop: acc .845 (flat), 40 + 3*5 = 55 J -> the
    # cheapest safe plan; the controller freezes at 4 and stops at 7 by itself.
    ctl = Controller(StubPredictor(_table()), last_epoch=E, decision_epochs=[4, 7])
    _run(ctl)
    assert ctl.decisions[-1].chosen.end_epoch == 7 and ctl.planned_end == 7
    assert ctl.on_epoch_end(5, {"epoch": 5, "val_accuracy": 0.83}) == "continue"
    assert ctl.on_epoch_end(6, {"epoch": 6, "val_accuracy": 0.84}) == "continue"
    assert ctl.on_epoch_end(7, {"epoch": 7, "val_accuracy": 0.84}) == "stop"


def test_no_forecast_continues_and_cold_start():
    stub = StubPredictor({})  # every forecast raises
    ctl = Controller(stub, last_epoch=E, decision_epochs=[0, 4])
    assert _run(ctl) == ["continue"] * 4
    assert "no forecast" in ctl.decisions[0].reason and len(ctl.decisions) == 2
    ctl = Controller(StubPredictor({}), last_epoch=E, decision_epochs=[0],
                     margin=Margin(cold_start=False))  # fmt: skip
    assert ctl.on_train_begin(0) == "continue" and "cold_start" in ctl.decisions[0].reason


def test_state_survives_checkpoint_roundtrip(tmp_path):
    stub = StubPredictor(_table())
    ref = Controller(stub, last_epoch=E, decision_epochs=[4, 7])
    _run(ref)
    ctl = Controller(StubPredictor(_table()), last_epoch=E, decision_epochs=[4, 7])
    _run(ctl, upto=4)
    buf = io.BytesIO()
    torch.save({"callbacks": [ctl.state_dict()]}, buf)  # as the engine saves it
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["callbacks"][0]
    fresh = Controller(StubPredictor({}), last_epoch=E, decision_epochs=[4, 7])
    fresh.load_state_dict(state)
    assert fresh.state_dict() == ctl.state_dict()
    assert (fresh.method, fresh.planned_end, len(fresh.history)) == ("freeze", 7, 4)
    # continues exactly like the uninterrupted controller (stop at the planned end)
    for e in (5, 6):
        assert fresh.on_epoch_end(e, {"epoch": e, "val_accuracy": 0.8}) == "continue"
    assert fresh.on_epoch_end(7, {"epoch": 7, "val_accuracy": 0.8}) == "stop"
    with pytest.raises(ValueError, match="history ends at 7"):
        fresh.on_epoch_end(9, {"epoch": 9})
    # decisions Parquet: one row per plan, the chosen one flagged
    p = fresh.write_decisions(tmp_path / "d.parquet", dataset="digits", seed=0)
    log = read_decisions(p)
    at4 = log[log["decision_epoch"] == 4]
    chosen = at4[at4["chosen"]]
    assert len(chosen) == 1 and chosen.iloc[0]["plan_method"] == "freeze"
    assert chosen.iloc[0]["plan_end_epoch"] == 7 and chosen.iloc[0]["forecast_energy_j"] == 55.0
    assert str(log["decision_epoch"].dtype) == "int64"
    assert log["action"].tolist()[-1] == "stop"
