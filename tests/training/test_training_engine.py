"""The engine: trunk segments, branch-from-checkpoint, minimal epoch count, records, data order."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from training_helpers import make_config, stable_columns

from greenpath.config import config_hash
from greenpath.grid import branches, epochs_needed, trunk_segments
from greenpath.records import RECORD_SCHEMA, read_records
from greenpath.training import (
    Callback,
    TrainingError,
    init_checkpoint,
    run_branch,
    run_trunk_segment,
)
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.data import TensorData, epoch_order
from greenpath.training.engine import evaluate
from greenpath.training.precision import full_precision


def _trunk(config, npz, tmp, start, end, meter, name=None, callbacks=()):
    name = name or f"trunk_{start}_{end}"
    return run_trunk_segment(
        config,
        dataset="digits",
        dataset_path=npz,
        seed=0,
        start=start,
        end=end,
        in_checkpoint=tmp / f"ckpt_{start}.pt",
        out_checkpoint=tmp / f"ckpt_{end}.pt",
        out_records=tmp / f"{name}.parquet",
        meter=meter,
        callbacks=callbacks,
    )


def test_epoch_order_is_pure_function_of_seed_and_epoch():
    a = epoch_order(0, 3, 50)
    torch.manual_seed(123)  # global RNG must not matter
    assert torch.equal(a, epoch_order(0, 3, 50))
    assert sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, epoch_order(0, 4, 50))
    assert not torch.equal(a, epoch_order(1, 3, 50))


def test_segments_equal_one_trunk_and_branch_continues_exactly(tmp_path, digits_npz, config, meter):
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        init_checkpoint(config, dataset_path=digits_npz, seed=0, out_checkpoint=d / "ckpt_0.pt")
    full = _trunk(config, digits_npz, one, 0, 4, meter)
    a = _trunk(config, digits_npz, two, 0, 2, meter)
    b = _trunk(config, digits_npz, two, 2, 4, meter)
    seg = pd.concat([a, b], ignore_index=True)
    cols = stable_columns(full)
    pd.testing.assert_frame_equal(full[cols], seg[cols])
    assert full["epoch"].tolist() == [1, 2, 3, 4]
    c1 = load_checkpoint(one / "ckpt_4.pt")
    c2 = load_checkpoint(two / "ckpt_4.pt")
    for k, v in c1["model"].items():
        assert torch.equal(v, c2["model"][k]), k
    # a "base" branch started from the trunk checkpoint at k=2 reproduces trunk epochs 3..4
    cont = run_branch(
        config,
        dataset="digits",
        dataset_path=digits_npz,
        seed=0,
        method="base",
        intervention_epoch=2,
        in_checkpoint=two / "ckpt_2.pt",
        out_records=two / "base_2.parquet",
        meter=meter,
    )
    assert cont["epoch"].tolist() == [3, 4]
    metric = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert cont[metric].to_numpy().tolist() == full[full.epoch > 2][metric].to_numpy().tolist()


class _Counting(Callback):
    """Counts the epochs the fit loop trains."""

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def on_epoch_start(self, loop, epoch):
        self.calls.append(epoch)


def test_tree_trains_exactly_the_minimum_epochs(tmp_path, digits_npz, meter):
    cfg = make_config(epochs=4)
    cfg["interventions"]["epochs"] = [0, 2]
    cfg["interventions"]["methods"] = ["freeze", "quant", "stop"]
    calls: list[int] = []
    init_checkpoint(cfg, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "ckpt_0.pt")
    for s in trunk_segments(4, [0, 2]):
        _trunk(cfg, digits_npz, tmp_path, s.start, s.end, meter, callbacks=[_Counting(calls)])
    for method, k in branches([0, 2], ["freeze", "quant", "stop"]):
        run_branch(
            cfg,
            dataset="digits",
            dataset_path=digits_npz,
            seed=0,
            method=method,
            intervention_epoch=k,
            in_checkpoint=tmp_path / f"ckpt_{k}.pt",
            out_records=tmp_path / f"{method}_{k}.parquet",
            meter=meter,
            callbacks=[_Counting(calls)],
        )
    # trunk 4 + freeze (4 + 2) + quant (4 + 2) = 16
    assert len(calls) == epochs_needed(4, [0, 2], ["freeze", "quant", "stop"]) == 16
    recs = read_records(tmp_path)
    assert len(recs) == 16
    assert meter.windows == 16
    firsts = recs.groupby(["method", "intervention_epoch"])["epoch"].min().to_dict()
    assert firsts == {
        ("base", 0): 1,
        ("freeze", 0): 1,
        ("freeze", 2): 3,
        ("quant", 0): 1,
        ("quant", 2): 3,
    }


def test_record_columns(tmp_path, digits_npz, config, meter):
    init_checkpoint(config, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "ckpt_0.pt")
    _trunk(config, digits_npz, tmp_path, 0, 2, meter, name="t")
    df = read_records(tmp_path / "t.parquet")
    r = df.iloc[1]
    assert (r.study, r.dataset, r.seed, r.model, r.method) == (
        "default",
        "digits",
        0,
        "small_cnn",
        "base",
    )
    assert (r.intervention_epoch, r.epoch, r.status) == (0, 2, "ok")
    assert (r.num_classes, r.train_size, r.val_size, r.image_size) == (10, 300, 100, 8)
    assert r.lr == pytest.approx(1e-3)
    assert r.device == "cpu"
    assert (r.precision_requested, r.precision_effective) == ("fp32", "fp32")
    assert pd.isna(r.amp_skipped_steps) and pd.isna(r.grad_scale_end)
    assert pd.isna(r.frozen_layers)
    assert r.config_hash == config_hash(config)
    assert set(json.loads(r.versions)) == {"greenpath", "torch", "python", "numpy"}
    assert 0.0 <= r.train_accuracy <= 1.0 and 0.0 <= r.val_accuracy <= 1.0
    # FakeMeter: window 2 reports 20 J CPU + 1 J DRAM
    assert r.energy_total_j == 21.0 and r.energy_cpu_source == "estimate"
    assert r.train_s > 0 and r.eval_s > 0
    assert list(df.columns) == RECORD_SCHEMA.names


def test_wrong_checkpoint_epoch_is_refused(tmp_path, digits_npz, config, meter):
    init_checkpoint(config, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "ckpt_0.pt")
    (tmp_path / "ckpt_0.pt").rename(tmp_path / "ckpt_2.pt")
    with pytest.raises(TrainingError, match="after epoch 0"):
        _trunk(config, digits_npz, tmp_path, 2, 4, meter)
    with pytest.raises(TrainingError, match="stop"):
        run_branch(
            config,
            dataset="digits",
            dataset_path=digits_npz,
            seed=0,
            method="stop",
            intervention_epoch=2,
            in_checkpoint=tmp_path / "ckpt_2.pt",
            out_records=tmp_path / "x.parquet",
        )


class _Const(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_evaluate_single_and_multilabel_accuracy_by_hand():
    x = torch.zeros(4, 1, 4, 4)
    # single label: argmax is class 1 -> correct for labels [1, 1, 0, 2] = 2/4
    data = TensorData(
        x, torch.tensor([0, 0, 0, 0]), x, torch.tensor([1, 1, 0, 2]), False, None, None
    )
    loss, acc = evaluate(
        _Const([0.0, 1.0, 0.0]), data, batch_size=3, precision=full_precision("cpu")
    )
    assert acc == 0.5
    # CE = logsumexp([0,1,0]) - logit[y]
    lse = math.log(2 + math.e)
    assert loss == pytest.approx(((lse - 1) * 2 + lse * 2) / 4, rel=1e-6)
    # multi-label (Keras binary accuracy): logits [+1, -1] predict [1, 0]
    ym = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    data = TensorData(x, ym, x, ym, True, None, None)
    loss, acc = evaluate(_Const([1.0, -1.0]), data, batch_size=3, precision=full_precision("cpu"))
    # correct bits: 2 + 1 + 1 + 0 = 4 of 8
    assert acc == 0.5
    sp = math.log1p(math.exp(-1.0))  # BCE of a correct bit with |logit| 1
    wrong = 1.0 + sp  # BCE of a wrong bit
    assert loss == pytest.approx((4 * sp + 4 * wrong) / 8, rel=1e-6)
