"""The CUDA paths on a real GPU: fp16 autocast + GradScaler, layer freezing and the NVML meter.

Skipped (with the reason) where ``torch.cuda.is_available()`` is False, as on CI. Run on a GPU
machine with ``pytest tests/training/test_training_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch
from training_helpers import make_config

from greenpath.records import read_records
from greenpath.training import init_checkpoint, run_branch, run_trunk_segment
from greenpath.training.checkpoint import load_checkpoint
from greenpath.training.engine import train_epochs

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"
)


def _trunk(cfg, npz, tmp, end):
    init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=tmp / "c0.pt")
    run_trunk_segment(
        cfg, dataset="digits", dataset_path=npz, seed=0, start=0, end=end,
        in_checkpoint=tmp / "c0.pt", out_checkpoint=tmp / f"c{end}.pt",
        out_records=tmp / "trunk.parquet",
    )  # fmt: skip
    return read_records(tmp / "trunk.parquet")


def test_cuda_trunk_rows_carry_nvml_energy(tmp_path, digits_npz):
    cfg = make_config(epochs=3, device="cuda")
    trunk = _trunk(cfg, digits_npz, tmp_path, 2)
    assert trunk["epoch"].tolist() == [1, 2]
    assert set(trunk["device"]) == {"cuda"} or all(d.startswith("cuda") for d in trunk["device"])
    assert set(trunk["precision_effective"]) == {"fp32"}
    assert set(trunk["energy_gpu_source"]) <= {"nvml_counter", "nvml_power_integration"}
    assert (trunk["energy_gpu_j"] > 0).all()
    assert trunk["gpu_uuid"].str.startswith("GPU-").all()
    # total = sum of the measured components
    parts = trunk[["energy_gpu_j", "energy_cpu_j", "energy_dram_j"]].fillna(0.0).sum(axis=1)
    assert (parts - trunk["energy_total_j"]).abs().max() < 1e-9


def test_cuda_quant_branch_runs_fp16_with_grad_scaler(tmp_path, digits_npz):
    cfg = make_config(epochs=3, device="cuda")
    cfg["methods"]["quant"] = {"dtype": "fp16"}
    _trunk(cfg, digits_npz, tmp_path, 1)
    seen = set()
    orig = torch.nn.Linear.forward

    def spy(self, x):
        out = orig(self, x)
        seen.add((out.dtype, self.weight.dtype))
        return out

    torch.nn.Linear.forward = spy
    try:
        run_branch(
            cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="quant",
            intervention_epoch=1, in_checkpoint=tmp_path / "c1.pt",
            out_records=tmp_path / "quant.parquet",
        )  # fmt: skip
    finally:
        torch.nn.Linear.forward = orig
    rec = read_records(tmp_path / "quant.parquet")
    assert rec["epoch"].tolist() == [2, 3]
    assert rec["precision_requested"].tolist() == ["fp16", "fp16"]
    assert rec["precision_effective"].tolist() == ["fp16", "fp16"]
    assert rec["status"].tolist() == ["ok", "ok"]
    # GradScaler ran: its scale is recorded (65536 initial, halved per skipped step)
    assert rec["grad_scale_end"].notna().all() and (rec["grad_scale_end"] > 0).all()
    assert rec["amp_skipped_steps"].notna().all()
    # autocast really ran fp16 matmuls on fp32 master weights
    assert (torch.float16, torch.float32) in seen
    assert (rec["energy_gpu_j"] > 0).all()


def test_cuda_freeze_branch_keeps_frozen_weights(tmp_path, digits_npz):
    cfg = make_config(epochs=3, device="cuda")
    cfg["methods"]["freeze"] = {"trainable": "last_layer"}
    _trunk(cfg, digits_npz, tmp_path, 2)
    train_epochs(
        cfg, dataset="digits", dataset_path=digits_npz, seed=0, method="freeze",
        intervention_epoch=2, start=2, end=3, in_checkpoint=tmp_path / "c2.pt",
        out_checkpoint=tmp_path / "f3.pt", out_records=tmp_path / "freeze.parquet",
    )  # fmt: skip
    at_k = load_checkpoint(tmp_path / "c2.pt")["model"]
    after = load_checkpoint(tmp_path / "f3.pt")["model"]
    rec = read_records(tmp_path / "freeze.parquet")
    assert rec["status"].tolist() == ["ok"]
    frozen = [n for n in rec["frozen_layers"].iloc[0].split(",") if n]
    assert frozen and "classifier" not in frozen
    changed = [
        k
        for k in at_k
        if any(k.startswith(f + ".") for f in frozen) and not torch.equal(at_k[k], after[k])
    ]
    assert not changed, f"frozen tensors changed on CUDA: {changed}"
    assert not torch.equal(at_k["classifier.weight"], after["classifier.weight"])
    assert (rec["energy_gpu_j"] > 0).all()
