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
    # at d=4: e0 = 40 J; plans end at every epoch 5..10. freeze to 5: 40 + 5 = 45 J, acc
    # .845 (-0.5 pt, safe at tol 1 pt) is the cheapest safe plan; quant to 5: 48 J; trunk
    # to 5: 50 J; stop now 40 J acc .82 (-3 pts, unsafe). Epochs 1..3: no forecast.
    ctl = Controller(StubPredictor(_table()), last_epoch=E)
    assert _run(ctl) == ["continue", "continue", "continue", "freeze"]
    d = ctl.decisions[-1]
    assert (d.chosen.method, d.chosen.end_epoch, d.chosen.energy_j) == ("freeze", 5, 45.0)
    assert d.full_energy_j == 100.0 and d.ref_accuracy == 0.85
    stop = next(p for p in d.plans if p.action == "stop")
    assert (stop.energy_j, stop.safe, stop.value) == (40.0, False, -math.inf)
    # on the branch: stop now once the measured accuracy is within the tolerance of the
    # reference forecast at the switch (.85): .83 is not (-2 pts), .845 is (-0.5 pt)
    assert ctl.method == "freeze"
    assert ctl.on_epoch_end(5, {"epoch": 5, "val_accuracy": 0.83, "energy_total_j": 5.0}) == (
        "continue"
    )
    assert ctl.on_epoch_end(6, {"epoch": 6, "val_accuracy": 0.845}) == "stop"
    assert ctl.stopped_epoch == 6


def test_constrained_margin_makes_freeze_unsafe():
    # delta 0.006: freeze needs acc - ref >= -0.01 + 0.006 = -0.004; -0.005 fails -> quant
    ctl = Controller(StubPredictor(_table()), last_epoch=E, margin=Margin(0.0, 0.006))
    assert _run(ctl)[-1] == "quant"
    assert ctl.decisions[-1].chosen.end_epoch == 5
    # z = 1 with std 0.01 on freeze and ref: sigma = sqrt(2)*0.01 = 0.01414 -> quant also
    # fails (0 >= -0.01 + 0.01414 is false) -> continue
    t = _table(base=(0.85, 0.01, 10.0), freeze=(0.845, 0.01, 5.0), quant=(0.85, 0.01, 8.0))
    ctl = Controller(StubPredictor(t), last_epoch=E, margin=Margin(1.0, 0.0))
    assert _run(ctl)[-1] == "continue"


def test_weighted_and_score_objectives():
    # weighted, lam in accuracy per kWh: value = acc - lam * J / 3.6e6; lam = 360: 1e-4 per
    # J. Plans ending at 5: trunk .85 - 50e-4 = .8450; freeze .845 - 45e-4 = .8405; quant
    # .85 - 48e-4 = .8452; stop now .82 - 40e-4 = .8160 -> quant
    ctl = Controller(StubPredictor(_table()), last_epoch=E, objective="weighted", lam=360.0)
    assert _run(ctl)[-1] == "quant"
    assert ctl.decisions[-1].chosen.value == pytest.approx(0.85 - 48e-4)
    # score = acc / kWh: stop .82/40 J beats freeze to 5 .845/45 J and quant .85/48 J
    ctl = Controller(StubPredictor(_table()), last_epoch=E, objective="score")
    assert _run(ctl)[-1] == "stop"
    assert ctl.stopped_epoch == 4
    assert ctl.decisions[-1].chosen.value == pytest.approx(0.82 / (40 / 3.6e6))


def test_switches_only_at_decision_epochs():
    # switches allowed at 7 only: at 4 the plans are stop now (unsafe) and the trunk, whose
    # stop at 5 (.85, 50 J) is the cheapest safe plan -> continue; no freeze/quant forecast
    stub = StubPredictor(_table())
    ctl = Controller(stub, last_epoch=E, decision_epochs=[7])
    assert _run(ctl)[-1] == "continue"
    assert ("base", 4) in stub.calls and ("freeze", 4) not in stub.calls
    assert ctl.decisions[-1].chosen.kind == "stop_later"


def test_no_forecast_continues_and_cold_start():
    stub = StubPredictor({})  # every forecast raises
    ctl = Controller(stub, last_epoch=E)
    assert _run(ctl) == ["continue"] * 4
    assert "no forecast" in ctl.decisions[0].reason and len(ctl.decisions) == 5
    ctl = Controller(StubPredictor({}), last_epoch=E, margin=Margin(cold_start=False))
    assert ctl.on_train_begin(0) == "continue" and "cold_start" in ctl.decisions[0].reason


def test_state_survives_checkpoint_roundtrip(tmp_path):
    ctl = Controller(StubPredictor(_table()), last_epoch=E)
    _run(ctl, upto=4)
    buf = io.BytesIO()
    torch.save({"callbacks": [ctl.state_dict()]}, buf)  # as the engine saves it
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["callbacks"][0]
    fresh = Controller(StubPredictor(_table()), last_epoch=E)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == ctl.state_dict()
    assert (fresh.method, fresh.switch_epoch, len(fresh.history)) == ("freeze", 4, 4)
    # continues exactly like the uninterrupted controller: the branch's forecasts are made
    # again at the switch epoch (trunk history 1..4), and the stop comes when it is safe
    for e in (5, 6):
        assert fresh.on_epoch_end(e, {"epoch": e, "val_accuracy": 0.8}) == "continue"
    assert fresh.on_epoch_end(7, {"epoch": 7, "val_accuracy": 0.85}) == "stop"
    with pytest.raises(ValueError, match="history ends at 7"):
        fresh.on_epoch_end(9, {"epoch": 9})
    # decisions Parquet: one row per plan, the chosen one flagged
    p = fresh.write_decisions(tmp_path / "d.parquet", dataset="digits", seed=0)
    log = read_decisions(p)
    at4 = log[log["decision_epoch"] == 4]
    chosen = at4[at4["chosen"]]
    assert len(chosen) == 1 and chosen.iloc[0]["plan_method"] == "freeze"
    assert chosen.iloc[0]["plan_end_epoch"] == 5 and chosen.iloc[0]["forecast_energy_j"] == 45.0
    assert str(log["decision_epoch"].dtype) == "int64"
    assert log["action"].tolist()[-1] == "stop"
