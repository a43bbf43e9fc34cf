"""The fit loop's callbacks: each one's state round trip, and freezing under any optimizer."""

from __future__ import annotations

import io

import pytest
import torch
from training_helpers import make_config

from greenpath.models import build_model
from greenpath.records import read_records
from greenpath.training import (
    ActionCallback,
    EarlyStopping,
    LayerFreezing,
    Loop,
    MixedPrecision,
    init_checkpoint,
    run_trunk_segment,
)
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.data import TensorData
from greenpath.training.engine import train_epochs
from greenpath.training.freezing import freeze_all_but, rebuild_optimizer
from greenpath.training.precision import full_precision

OPTIMIZERS = {
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1),
}


def _weights_only(state):
    """``state`` after a ``torch.save`` / ``torch.load(weights_only=True)`` round trip."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", num_classes=3, in_channels=1, image_size=8, width=4)


def _loop(model=None, epoch: int = 2) -> Loop:
    model = model or _model()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    labels = {"method": "base", "intervention_epoch": 0, "frozen_layers": None,
              "precision_requested": "fp32", "precision_effective": "fp32"}  # fmt: skip
    return Loop(
        name="t", model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        data=TensorData(x, y, x, y, False, None, None), device=torch.device("cpu"), seed=0,
        epoch=epoch, end=4, batch_size=4, precision=full_precision("cpu"), labels=labels,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_frozen_parameters_never_move_under_momentum_or_weight_decay(name):
    """Steps with every parameter first (momentum buffers / moments exist for all), then
    freeze all but the last layer: momentum and weight decay must not move the frozen
    parameters, the classifier keeps moving, and every hyper-parameter survives."""
    m = _model()
    opt = OPTIMIZERS[name](m.parameters())
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    freeze_all_but(m, "last_layer")
    new = rebuild_optimizer(opt, m)
    assert type(new) is type(opt)
    old_group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    assert {k: v for k, v in new.param_groups[0].items() if k != "params"} == old_group
    kept = [p for p in m.parameters() if p.requires_grad]
    assert new.param_groups[0]["params"] == kept
    for p in kept:  # the trainable layer's state is carried over, same tensors
        assert all(new.state[p][k] is v for k, v in opt.state[p].items())
    frozen = {n: p.detach().clone() for n, p in m.named_parameters() if not p.requires_grad}
    head = m.classifier.weight.detach().clone()
    for _ in range(3):
        new.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        new.step()
    for n, p in m.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert not torch.equal(m.classifier.weight, head)


def test_rebuild_refuses_an_optimizer_left_without_parameters():
    m = _model()
    opt = torch.optim.AdamW(m.parameters())
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter of the AdamW optimizer is frozen"):
        rebuild_optimizer(opt, m)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_freeze_branch_with_any_configured_optimizer(tmp_path, digits_npz, meter, optimizer):
    cfg = make_config(epochs=3, optimizer=optimizer)
    init_checkpoint(cfg, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "c0.pt")
    run_trunk_segment(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, start=0, end=2,
        in_checkpoint=tmp_path / "c0.pt", out_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "t.parquet", meter=meter,
    )  # fmt: skip
    train_epochs(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="freeze",
        intervention_epoch=2, start=2, end=3, in_checkpoint=tmp_path / "c2.pt",
        out_checkpoint=tmp_path / "f3.pt", out_records=tmp_path / "f.parquet", meter=meter,
    )  # fmt: skip
    at_k, after = (load_checkpoint(tmp_path / n)["model"] for n in ("c2.pt", "f3.pt"))
    for k in at_k:
        if k.startswith("features."):
            assert torch.equal(at_k[k], after[k]), k
    assert not torch.equal(at_k["classifier.weight"], after["classifier.weight"])
    group = load_checkpoint(tmp_path / "f3.pt")["optimizer"]["param_groups"][0]
    assert len(group["params"]) == 2  # classifier weight and bias only
    if optimizer == "adamw":
        assert group["weight_decay"] == 0.01 and group["decoupled_weight_decay"] is True
    assert read_records(tmp_path / "f.parquet")["status"].tolist() == ["ok"]


def test_layer_freezing_state_round_trip_reapplies_on_resume():
    a = _loop()
    cb = LayerFreezing("last_block")
    assert cb.fire(a, 2)
    state = _weights_only(cb.state_dict())
    assert state == {"method": "freeze", "at": None, "fired_at": 2}
    b = _loop()
    b.resumed = True
    again = LayerFreezing("last_block")
    again.load_state_dict(state)
    again.on_train_begin(b)  # a resumed job freezes again before its optimizer state loads
    assert b.frozen == a.frozen and b.labels == a.labels
    assert b.labels["method"] == "freeze" and b.labels["intervention_epoch"] == 2
    assert [len(g["params"]) for g in b.optimizer.param_groups] == [
        len(g["params"]) for g in a.optimizer.param_groups
    ]
    b.optimizer.load_state_dict(a.optimizer.state_dict())  # shapes match the frozen model
    fresh = LayerFreezing("last_block", at=2)
    c = _loop(epoch=2)
    fresh.on_train_begin(c)  # a grid branch: fires at its start epoch
    assert c.frozen == a.frozen and fresh.fired_at == 2


def test_mixed_precision_state_round_trip_reapplies_on_resume():
    a = _loop()
    cb = MixedPrecision("fp16")
    assert cb.fire(a, 3)
    state = _weights_only(cb.state_dict())
    assert state == {"method": "quant", "at": None, "fired_at": 3}
    b = _loop()
    b.resumed = True
    again = MixedPrecision("fp16")
    again.load_state_dict(state)
    again.on_train_begin(b)
    assert (b.precision.requested, b.precision.effective) == ("fp16", "bf16")
    assert b.labels == a.labels and b.labels["method"] == "quant"
    assert b.scaler is None  # no GradScaler on CPU


class _Decider:
    """Outside decider: freeze after epoch 1, stop after epoch 2; counts its calls."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, row, model):
        self.seen.append(epoch)
        return {1: "freeze", 2: "stop"}.get(epoch)

    def state_dict(self):
        return {"seen": list(self.seen)}

    def load_state_dict(self, state):
        self.seen = list(state["seen"])


def test_action_callback_state_round_trip_and_actions():
    a = _loop(epoch=0)
    a.interventions = {"freeze": LayerFreezing("last_layer"), "quant": MixedPrecision("auto")}
    cb = ActionCallback(_Decider())
    cb.on_epoch_end(a, {"epoch": 1})
    assert a.labels["method"] == "freeze" and not a.stop_requested
    cb.on_epoch_end(a, {"epoch": 2})
    assert a.stop_requested
    state = _weights_only(cb.state_dict())
    assert state == {"applied": [["freeze", 1], ["stop", 2]], "inner": {"seen": [1, 2]}}
    b = _loop(epoch=2)
    b.resumed = True
    again = ActionCallback(_Decider())
    again.load_state_dict(state)
    again.on_train_begin(b)
    assert b.stop_requested and again.inner.seen == [1, 2]
    again.on_train_end(b)
    assert b.metadata["callbacks.applied"] == '[["freeze", 1], ["stop", 2]]'
    with pytest.raises(ValueError, match="'explode'"):
        ActionCallback(
            type("D", (), {"on_epoch_end": lambda s, e, r, m: "explode"})()
        ).on_epoch_end(b, {"epoch": 3})


def test_early_stopping_callback_state_round_trip_with_weights():
    a = _loop(epoch=0)
    cb = EarlyStopping(2)
    for epoch, acc in enumerate([0.5, 0.62, 0.61], start=1):
        with torch.no_grad():
            a.model.classifier.bias.add_(1.0)
        if epoch == 2:
            best_bias = a.model.classifier.bias.detach().clone()
        cb.on_epoch_end(a, {"epoch": epoch, "val_accuracy": acc})
    assert not a.stop_requested and (cb.best, cb.best_epoch, cb.wait) == (0.62, 2, 1)
    state = _weights_only(cb.state_dict())
    again = EarlyStopping(9)
    again.load_state_dict(state)
    assert again.state_dict().keys() == state.keys() and again.patience == 2
    b = _loop(epoch=3)
    again.on_epoch_end(b, {"epoch": 4, "val_accuracy": 0.60})
    assert b.stop_requested and again.stopped_epoch == 4
    again.on_train_end(b)
    assert torch.equal(b.model.classifier.bias, best_bias)
    assert b.metadata["early_stopping.stopped_epoch"] == "4"
    resumed = EarlyStopping(2)
    resumed.load_state_dict(_weights_only(again.state_dict()))
    c = _loop(epoch=4)
    resumed.on_train_begin(c)  # resumed after the stopping epoch: no further epoch
    assert c.stop_requested
