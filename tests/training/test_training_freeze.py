"""Layer freezing really freezes (case T1): no grads, not in the optimizer, BN stats fixed."""

from __future__ import annotations

import pytest
import torch
from training_helpers import make_config

from greenpath.models import build_model
from greenpath.records import read_records
from greenpath.training import init_checkpoint, run_trunk_segment
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.engine import train_epochs
from greenpath.training.freezing import freeze_all_but, is_pinned, rebuild_optimizer

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def test_pinned_bn_survives_model_train_and_optimizer_keeps_state():
    torch.manual_seed(0)
    m = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8, width=4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
    frozen = freeze_all_but(m, "last_block")
    assert frozen == [
        "features.block1.conv",
        "features.block1.bn",
        "features.block2.conv",
        "features.block2.bn",
    ]
    new = rebuild_optimizer(opt, m)
    kept = [p for p in m.parameters() if p.requires_grad]
    assert new.param_groups[0]["params"] == kept
    assert new.param_groups[0]["lr"] == 1e-2
    for p in kept:  # Adam moments carried over, same tensors
        assert new.state[p]["exp_avg"] is opt.state[p]["exp_avg"]
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()  # the loop's call must not unfreeze BatchNorm
    assert is_pinned(m.features.block1.bn) and not m.features.block1.bn.training
    assert m.features.block3.bn.training
    for _ in range(3):
        new.zero_grad()
        torch.nn.functional.cross_entropy(m(x * 3 + 1), y).backward()
        new.step()
    after = m.state_dict()
    for blk in ("block1", "block2"):
        for b in (*BN_BUFFERS, "weight", "bias"):
            key = f"features.{blk}.bn.{b}"
            assert torch.equal(before[key], after[key]), key
        assert torch.equal(
            before[f"features.{blk}.conv.weight"], after[f"features.{blk}.conv.weight"]
        )
        assert m.get_submodule(f"features.{blk}.conv").weight.grad is None
    # the trainable last block's BN did update
    assert not torch.equal(
        before["features.block3.bn.running_mean"], after["features.block3.bn.running_mean"]
    )
    assert (
        after["features.block3.bn.num_batches_tracked"]
        == before["features.block3.bn.num_batches_tracked"] + 3
    )


@pytest.mark.parametrize("trainable", ["last_block", "last_layer"])
def test_t1_freeze_branch_keeps_frozen_bn_bit_identical(tmp_path, digits_npz, meter, trainable):
    """T1: trunk 2 epochs, freeze at 2, epoch 3 calls model.train(); frozen BN unchanged."""
    cfg = make_config(epochs=3)
    cfg["methods"]["freeze"] = {"trainable": trainable}
    init_checkpoint(cfg, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "c0.pt")
    run_trunk_segment(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, start=0, end=2,
        in_checkpoint=tmp_path / "c0.pt", out_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "trunk.parquet", meter=meter,
    )  # fmt: skip
    train_epochs(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="freeze",
        intervention_epoch=2, start=2, end=3, in_checkpoint=tmp_path / "c2.pt",
        out_checkpoint=tmp_path / "f3.pt", out_records=tmp_path / "freeze.parquet", meter=meter,
    )  # fmt: skip
    at_k = load_checkpoint(tmp_path / "c2.pt")["model"]
    after = load_checkpoint(tmp_path / "f3.pt")["model"]
    frozen_bn = ["features.block1.bn", "features.block2.bn"]
    if trainable == "last_layer":
        frozen_bn.append("features.block3.bn")
    for bn in frozen_bn:
        for b in BN_BUFFERS:
            assert torch.equal(at_k[f"{bn}.{b}"], after[f"{bn}.{b}"]), f"{bn}.{b}"
    if trainable == "last_block":
        assert not torch.equal(
            at_k["features.block3.bn.running_mean"], after["features.block3.bn.running_mean"]
        )
        assert (
            after["features.block3.bn.num_batches_tracked"]
            > at_k["features.block3.bn.num_batches_tracked"]
        )
    assert not torch.equal(at_k["classifier.weight"], after["classifier.weight"])
    rec = read_records(tmp_path / "freeze.parquet")
    assert rec["epoch"].tolist() == [3] and rec["method"].tolist() == ["freeze"]
    names = rec["frozen_layers"].iloc[0].split(",")
    assert all(bn in names for bn in frozen_bn)
    assert "classifier" not in names
