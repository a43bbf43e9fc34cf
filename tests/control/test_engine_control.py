"""The controller inside greenpath's engine, and patience early stopping (case T5)."""

from __future__ import annotations

import pytest
import torch
from stub import StubPredictor
from training_helpers import FakeMeter, digits_dataset, make_config

from greenpath.control import Controller, PatienceStopping, read_decisions, train_controlled
from greenpath.data.prepared import save_prepared
from greenpath.paths import Margin
from greenpath.records import read_metadata, read_records
from greenpath.training import init_checkpoint, run_branch, run_trunk_segment
from greenpath.training.checkpoint import load_checkpoint

SEQ = [0.50, 0.62, 0.61, 0.60, 0.59, 0.58, 0.57, 0.56, 0.55, 0.54]


def mocked_eval(model, epoch):
    return 1.0 - SEQ[epoch - 1], SEQ[epoch - 1]


@pytest.fixture
def npz(tmp_path):
    return save_prepared(digits_dataset(), tmp_path / "prepared" / "digits.npz")


def _controller():
    # switches at 1 and 3 only. At d=1: freeze to 2 costs e0 + 5 J with forecast acc 0.9 =
    # the reference's -> the cheapest safe plan. Stop now gets a 100-point margin before
    # epoch 3 (never safe) and -100 points from 3 (always safe): on the branch the
    # controller continues at 2 and stops at 3, whatever the measured accuracies.
    table = {("base", 1): (0.9, 0.0, 10.0), ("freeze", 1): (0.9, 0.0, 5.0)}
    kinds = (("freeze", 0.0), ("stop_later", 0.0), ("stop_now", 1.0), ("stop_now@3", -1.0))
    return Controller(StubPredictor(table), last_epoch=4, decision_epochs=[1, 3],
                      margin=Margin(kind_margins=kinds))  # fmt: skip


class Killed(Exception):
    pass


class KillingMeter(FakeMeter):
    """Raises Killed when the window of epoch ``n + 1`` opens (epoch n's state is saved)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def begin(self):
        if self.windows == self.n:
            raise Killed
        return super().begin()


def test_engine_applies_freeze_then_stop_and_resumes(tmp_path, npz):
    cfg = make_config(epochs=4)
    res = train_controlled(cfg, dataset="digits", dataset_path=npz, seed=0,
                           out_dir=tmp_path / "run", controller=_controller(), meter=FakeMeter())  # fmt: skip
    rec = read_records(res.records_path)
    assert rec["epoch"].tolist() == [1, 2, 3]  # stopped after 3: no row 4
    assert rec["method"].tolist() == ["base", "freeze", "freeze"]
    assert rec["intervention_epoch"].tolist() == [0, 1, 1]
    assert rec["frozen_layers"].isna().tolist() == [True, False, False]
    assert [(e, a) for e, a, _ in res.decisions] == [(1, "freeze"), (2, "continue"), (3, "stop")]
    # FakeMeter: window i reports 10*i + 1 J -> 11 + 21 + 31
    assert res.energy_j == pytest.approx(63.0)
    assert res.estimated_full_energy_j == pytest.approx(11.0 + 3 * 10.0)
    log = read_decisions(res.decisions_path)
    assert set(log["decision_epoch"]) == {1, 2, 3}
    assert log.loc[log["chosen"] & (log["decision_epoch"] == 1), "plan_method"].tolist() == [
        "freeze"
    ]
    assert read_metadata(res.records_path)["callbacks.applied"] == '[["freeze", 1], ["stop", 3]]'

    # the live freeze reproduces the grid's freeze branch at k = 1 exactly
    grid = tmp_path / "grid"
    init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=grid / "c0.pt")
    run_trunk_segment(cfg, dataset="digits", dataset_path=npz, seed=0, start=0, end=1,
                      in_checkpoint=grid / "c0.pt", out_checkpoint=grid / "c1.pt",
                      out_records=grid / "t.parquet", meter=FakeMeter())  # fmt: skip
    br = run_branch(cfg, dataset="digits", dataset_path=npz, seed=0, method="freeze",
                    intervention_epoch=1, in_checkpoint=grid / "c1.pt",
                    out_records=grid / "f.parquet", meter=FakeMeter())  # fmt: skip
    assert rec["val_accuracy"].tolist()[1:] == br["val_accuracy"].tolist()[:2]

    # killed after epoch 2 and rerun: same rows, decisions and final weights
    with pytest.raises(Killed):
        train_controlled(cfg, dataset="digits", dataset_path=npz, seed=0,
                         out_dir=tmp_path / "killed", controller=_controller(), meter=KillingMeter(2))  # fmt: skip
    fresh = _controller()
    again = train_controlled(cfg, dataset="digits", dataset_path=npz, seed=0,
                             out_dir=tmp_path / "killed", controller=fresh, meter=FakeMeter())  # fmt: skip
    # the decision at 1 came back from the state; only the branch's forecasts made at the
    # switch are computed again (from the history 1..1), for the decisions at 3
    assert fresh.predictor.calls == [("base", 1), ("freeze", 1)]
    r2 = read_records(again.records_path)
    assert r2["val_accuracy"].tolist() == rec["val_accuracy"].tolist()
    assert r2["method"].tolist() == rec["method"].tolist()
    assert [(e, a) for e, a, _ in again.decisions] == [(1, "freeze"), (2, "continue"), (3, "stop")]
    w1 = load_checkpoint(res.checkpoint_path)["model"]
    w2 = load_checkpoint(again.checkpoint_path)["model"]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def _t5(tmp_path, npz, name, epochs, patience=2, meter=None, **kw):
    return train_controlled(make_config(epochs=epochs), dataset="digits", dataset_path=npz,
                            seed=0, out_dir=tmp_path / name, patience=patience,
                            meter=meter or FakeMeter(), evaluate_fn=mocked_eval, **kw)  # fmt: skip


def _weights(path):
    return load_checkpoint(path)["model"]


def test_t5_variant_a_epoch_limit_restores_best(tmp_path, npz):
    w2 = _weights(_t5(tmp_path, npz, "ref2", epochs=2, patience=100).checkpoint_path)
    a = _t5(tmp_path, npz, "a", epochs=3)
    assert a.records["epoch"].tolist() == [1, 2, 3]
    assert (a.val_accuracy, a.best_epoch) == (0.62, 2)
    got = _weights(a.checkpoint_path)
    assert all(torch.equal(got[k], w2[k]) for k in w2)


def test_t5_variant_b_killed_after_3_resumes_and_stops_after_4(tmp_path, npz):
    w2 = _weights(_t5(tmp_path, npz, "ref2", epochs=2, patience=100).checkpoint_path)
    straight = _t5(tmp_path, npz, "straight", epochs=10)
    assert straight.records["epoch"].tolist() == [1, 2, 3, 4]
    with pytest.raises(Killed):
        _t5(tmp_path, npz, "b", epochs=10, meter=KillingMeter(3))
    b = _t5(tmp_path, npz, "b", epochs=10)
    assert b.records["epoch"].tolist() == [1, 2, 3, 4]  # nothing past the stop epoch
    assert (b.val_accuracy, b.best_epoch) == (0.62, 2)
    meta = read_metadata(b.records_path)
    assert meta["early_stopping.stopped_epoch"] == "4"
    got = _weights(b.checkpoint_path)
    assert all(torch.equal(got[k], w2[k]) for k in w2)


def test_patience_callback_in_a_plain_loop():
    """PatienceStopping in a hand-written loop: same T5 semantics, state round trip."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    snaps = {}
    cb = PatienceStopping(2)
    out = []
    for epoch in range(1, 4):  # variant A: the epoch limit (3) comes first
        with torch.no_grad():
            model.weight.add_(1.0)
        snaps[epoch] = model.weight.detach().clone()
        out.append(cb.on_epoch_end(epoch, {"val_accuracy": SEQ[epoch - 1]}, model))
    assert out == ["continue"] * 3 and (cb.best, cb.best_epoch, cb.rule.wait) == (0.62, 2, 1)
    state = cb.state_dict()
    resumed = PatienceStopping(7)
    resumed.load_state_dict(state)  # variant B: resumed after 3, stops after 4
    assert resumed.on_epoch_end(4, {"val_accuracy": SEQ[3]}, model) == "stop"
    assert resumed.stopped_epoch == 4
    assert resumed.on_train_end(4, model) is True
    assert torch.equal(model.weight, snaps[2])
    with pytest.raises(KeyError, match="val_accuracy"):
        PatienceStopping(2).on_epoch_end(1, {}, model)
