"""Case T5: patience early stopping restores the best epoch and survives resume."""

from __future__ import annotations

import io

import pytest
import torch
from training_helpers import make_config

from greenpath.records import read_metadata, read_records
from greenpath.training import Callback, EarlyStopping, init_checkpoint
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.engine import default_state_path, train_epochs

SEQ = [0.50, 0.62, 0.61, 0.60, 0.59, 0.58, 0.57, 0.56, 0.55, 0.54]


def test_unit_semantics_and_state_roundtrip():
    es = EarlyStopping(patience=2)
    assert [es.step(v, e) for e, v in enumerate(SEQ[:3], 1)] == [False, False, False]
    assert (es.best, es.best_epoch, es.wait) == (0.62, 2, 1)
    buf = io.BytesIO()
    torch.save(es.state_dict(), buf)
    buf.seek(0)
    resumed = EarlyStopping(patience=5)  # patience comes back from the state
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert resumed.step(SEQ[3], 4) is True
    assert (resumed.patience, resumed.wait, resumed.stopped_epoch, resumed.best) == (2, 2, 4, 0.62)
    nan_es = EarlyStopping(3)
    nan_es.step(float("nan"), 1)  # NaN never improves
    assert (nan_es.best, nan_es.wait) == (None, 1)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(2, mode="up")


def _run(cfg, npz, tmp, end_ckpt, records, es, start=0, end=None, callbacks=None):
    return train_epochs(
        cfg, dataset="digits", dataset_path=npz, seed=0, method="base", intervention_epoch=0,
        start=start, end=end or cfg["training"]["epochs"], in_checkpoint=tmp / "c0.pt",
        out_checkpoint=tmp / end_ckpt, out_records=tmp / records, meter=None if es is None else _meter(),
        early_stopping=es, evaluate_fn=lambda model, epoch: (1.0 - SEQ[epoch - 1], SEQ[epoch - 1]),
        callbacks=callbacks,
    )  # fmt: skip


def _meter():
    from training_helpers import FakeMeter

    return FakeMeter()


class Killed(Exception):
    pass


class KillAfter(Callback):
    """Raises Killed once epoch ``n``'s state is on disk (before epoch n + 1 starts)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_epoch_start(self, loop, epoch):
        if epoch == self.n + 1:
            raise Killed


@pytest.fixture
def tree(tmp_path, digits_npz):
    cfg = make_config(epochs=10)
    init_checkpoint(cfg, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "c0.pt")
    # reference: the weights after epoch 2 (the best epoch)
    ref = make_config(epochs=2)
    _run(ref, digits_npz, tmp_path, "w2.pt", "w2.parquet", EarlyStopping(100))
    return cfg, tmp_path, load_checkpoint(tmp_path / "w2.pt")["model"]


def _assert_weights(path, ref):
    got = load_checkpoint(path)["model"]
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_t5_variant_a_epoch_limit_restores_best(tree, digits_npz):
    _, tmp, w2 = tree
    cfg = make_config(epochs=3)
    _run(cfg, digits_npz, tmp, "a.pt", "a.parquet", EarlyStopping(2))
    rec = read_records(tmp / "a.parquet")
    assert rec["epoch"].tolist() == [1, 2, 3]
    meta = read_metadata(tmp / "a.parquet")
    assert meta["early_stopping.best"] == "0.62" and meta["early_stopping.best_epoch"] == "2"
    assert meta["early_stopping.stopped_epoch"] == "None"  # ended by the epoch limit
    _assert_weights(tmp / "a.pt", w2)  # best weights restored although patience never ran out


def test_t5_variant_b_kill_after_epoch_3_and_resume(tree, digits_npz):
    cfg, tmp, w2 = tree
    uninterrupted = _run(cfg, digits_npz, tmp, "u.pt", "u.parquet", EarlyStopping(2))
    with pytest.raises(Killed):
        _run(cfg, digits_npz, tmp, "b.pt", "b.parquet", EarlyStopping(2), callbacks=[KillAfter(3)])
    state = load_checkpoint(default_state_path(tmp / "b.parquet"), kind="state")
    assert state["epoch"] == 3 and state["early_stopping"]["wait"] == 1
    # a fresh EarlyStopping (patience reset would be the bug); the state file restores it
    resumed = _run(cfg, digits_npz, tmp, "b.pt", "b.parquet", EarlyStopping(2))
    rec = read_records(tmp / "b.parquet")
    assert rec["epoch"].tolist() == [1, 2, 3, 4]  # stopped after epoch 4, nothing past it
    assert rec["val_accuracy"].tolist() == SEQ[:4]
    assert resumed["train_loss"].tolist() == uninterrupted["train_loss"].tolist()
    meta = read_metadata(tmp / "b.parquet")
    assert meta["early_stopping.best"] == "0.62" and meta["early_stopping.stopped_epoch"] == "4"
    _assert_weights(tmp / "b.pt", w2)
    _assert_weights(tmp / "u.pt", w2)
    assert not default_state_path(tmp / "b.parquet").exists()
