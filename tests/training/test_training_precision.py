"""Mixed precision: requested vs effective precision (T3), AMP numerics and divergence (T4)."""

from __future__ import annotations

import math

import pytest
import torch
from training_helpers import make_config

from greenpath.models import build_model
from greenpath.records import read_records
from greenpath.training import init_checkpoint, run_branch, run_trunk_segment
from greenpath.training import precision as prec_mod
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.data import TensorData, epoch_order
from greenpath.training.engine import train_epochs, train_one_epoch
from greenpath.training.loop import loss_function
from greenpath.training.precision import Precision, resolve_precision


def test_t3_fp16_on_cpu_runs_bf16_and_keeps_request():
    p = resolve_precision("fp16", "cpu")
    assert (p.requested, p.effective, p.use_scaler) == ("fp16", "bf16", False)
    assert "fp16 requested on CPU" in p.reason
    assert resolve_precision("auto", "cpu").effective == "bf16"
    assert resolve_precision("bf16", "cpu").effective == "bf16"
    with pytest.raises(ValueError, match="fp8"):
        resolve_precision("fp8", "cpu")


def test_t3_unsupported_precision_is_skipped_not_fp32(monkeypatch):
    monkeypatch.setattr(prec_mod, "_probe", lambda dev, dt: "RuntimeError: no kernel")
    p = resolve_precision("fp16", "cpu")
    assert p.skipped and p.effective is None
    assert "unsupported" in p.reason and "no kernel" in p.reason


def _trunk2(cfg, npz, tmp, meter):
    init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=tmp / "c0.pt")
    run_trunk_segment(
        cfg, dataset="digits", dataset_path=npz, seed=0, start=0, end=2,
        in_checkpoint=tmp / "c0.pt", out_checkpoint=tmp / "c2.pt",
        out_records=tmp / "trunk.parquet", meter=meter,
    )  # fmt: skip


def test_t3_quant_branch_records_and_autocast_really_active(
    tmp_path, digits_npz, meter, monkeypatch
):
    cfg = make_config(epochs=3)
    cfg["methods"]["quant"] = {"dtype": "fp16"}
    _trunk2(cfg, digits_npz, tmp_path, meter)
    seen_out, seen_param = set(), set()
    orig_forward = torch.nn.Linear.forward
    # only the measured epochs count: the job's unmeasured warm-up runs in the trunk's fp32
    # (greenpath.training.warmup), before the first energy window opens
    orig_begin = meter.begin
    measuring = []

    def begin():
        measuring.append(True)
        return orig_begin()

    def spy(self, x):
        out = orig_forward(self, x)
        if measuring:
            seen_out.add(out.dtype)
            seen_param.add(self.weight.dtype)
        return out

    monkeypatch.setattr(meter, "begin", begin)
    monkeypatch.setattr(torch.nn.Linear, "forward", spy)
    run_branch(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="quant",
        intervention_epoch=2, in_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "quant.parquet", meter=meter,
    )  # fmt: skip
    rec = read_records(tmp_path / "quant.parquet")
    assert rec["precision_requested"].tolist() == ["fp16"]
    assert rec["precision_effective"].tolist() == ["bf16"]
    assert rec["status"].tolist() == ["ok"]
    assert seen_out == {torch.bfloat16}  # the label matches what ran: never fp32 as "bf16"
    assert seen_param == {torch.float32}  # T4: master weights stay fp32
    trunk = read_records(tmp_path / "trunk.parquet")
    assert set(trunk["precision_effective"]) == {"fp32"}


def test_t3_skipped_branch_writes_one_skipped_row(tmp_path, digits_npz, meter, monkeypatch):
    cfg = make_config(epochs=3)
    cfg["methods"]["quant"] = {"dtype": "fp16"}
    _trunk2(cfg, digits_npz, tmp_path, meter)
    monkeypatch.setattr(prec_mod, "_probe", lambda dev, dt: "RuntimeError: no kernel")
    run_branch(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="quant",
        intervention_epoch=2, in_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "quant.parquet", meter=meter,
    )  # fmt: skip
    rec = read_records(tmp_path / "quant.parquet")
    assert rec["status"].tolist() == ["skipped"]
    assert rec["epoch"].tolist() == [3]
    assert rec["precision_requested"].iloc[0] == "fp16"
    assert rec["precision_effective"].isna().all()
    assert "no kernel" in rec["status_reason"].iloc[0]
    assert rec["train_loss"].isna().all() and rec["energy_total_j"].isna().all()
    assert meter.windows == 2  # only the trunk's epochs were measured


def test_t4_grad_scaler_skipped_steps_counted():
    """Loss x1e6 under a huge scale: scaled grads overflow, the scaler skips and halves."""
    base_loss = loss_function(False)

    def times_1e6(logits, y):
        return base_loss(logits, y) * 1e6

    torch.manual_seed(0)
    m = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8, width=4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(64, 1, 8, 8)
    y = torch.randint(0, 3, (64,))
    data = TensorData(x, y, x, y, False, None, None)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**120, growth_interval=1000)
    before = [p.detach().clone() for p in m.parameters()]
    stats = train_one_epoch(
        m, opt, data, epoch_order(0, 1, 64), batch_size=8,
        precision=Precision("fp32", "fp32", "cpu"), scaler=scaler, loss_fn=times_1e6,
    )  # fmt: skip
    # 1e6 * ~1.1 * 2**120 > fp32 max: every one of the 8 steps overflows and is skipped
    assert stats["amp_skipped_steps"] == 8 and stats["optimizer_steps"] == 0
    assert stats["grad_scale_end"] == 2.0 ** (120 - 8)
    assert math.isfinite(stats["train_loss"])  # the loss itself is finite: status stays ok
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))


def test_t4_overflow_marks_diverged_keeps_rows_and_stops(tmp_path, digits_npz, meter):
    cfg = make_config(epochs=4, lr=1e30)  # forced overflow (T4 scenario: huge lr)
    init_checkpoint(cfg, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "c0.pt")
    df = run_trunk_segment(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, start=0, end=2,
        in_checkpoint=tmp_path / "c0.pt", out_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "trunk.parquet", meter=meter,
    )  # fmt: skip
    rec = read_records(tmp_path / "trunk.parquet")
    assert len(rec) == len(df) == 1  # diverged in epoch 1, so epoch 2 never ran
    assert rec["status"].tolist() == ["diverged"]
    assert not math.isfinite(rec["train_loss"].iloc[0])
    assert "non-finite loss" in rec["status_reason"].iloc[0]
    assert meter.windows == 1
    ck = load_checkpoint(tmp_path / "c2.pt")
    assert ck["diverged"] == 1 and ck["epoch"] == 2
    # later jobs from a diverged checkpoint train nothing and write empty records
    out = run_branch(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="freeze",
        intervention_epoch=2, in_checkpoint=tmp_path / "c2.pt",
        out_records=tmp_path / "freeze.parquet", meter=meter,
    )  # fmt: skip
    assert len(out) == 0 and len(read_records(tmp_path / "freeze.parquet")) == 0
    assert meter.windows == 1


def test_t4_freeze_then_quant_keeps_fp32_params(tmp_path, digits_npz, meter):
    """T4 combined: freeze at epoch 2, switch to mixed precision at epoch 3."""
    cfg = make_config(epochs=4)
    _trunk2(cfg, digits_npz, tmp_path, meter)
    train_epochs(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="freeze",
        intervention_epoch=2, start=2, end=3, in_checkpoint=tmp_path / "c2.pt",
        out_checkpoint=tmp_path / "f3.pt", out_records=tmp_path / "f.parquet", meter=meter,
    )  # fmt: skip
    train_epochs(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="quant",
        intervention_epoch=3, start=3, end=4, in_checkpoint=tmp_path / "f3.pt",
        out_checkpoint=tmp_path / "q4.pt", out_records=tmp_path / "q.parquet", meter=meter,
    )  # fmt: skip
    rec = read_records(tmp_path / "q.parquet")
    assert rec["status"].tolist() == ["ok"] and rec["precision_effective"].tolist() == ["bf16"]
    assert "features.block1.bn" in rec["frozen_layers"].iloc[0]
    f3 = load_checkpoint(tmp_path / "f3.pt")["model"]
    q4 = load_checkpoint(tmp_path / "q4.pt")["model"]
    assert all(v.dtype in (torch.float32, torch.int64) for v in q4.values())
    for k in f3:
        if k.startswith("features."):
            assert torch.equal(f3[k], q4[k]), k  # still frozen under autocast
    assert not torch.equal(f3["classifier.weight"], q4["classifier.weight"])
