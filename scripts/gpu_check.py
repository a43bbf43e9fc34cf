"""Prepared GPU check for the energy meter: NVML counter per epoch on a real GPU.

Trains a small CNN on synthetic data (no network, no dataset files) on one CUDA device:

* trunk ("base"): fp32 for ``--epochs`` epochs;
* branch ("quant", intervention epoch 1): from the trunk's state after epoch 1, CUDA fp16
  autocast + ``torch.amp.GradScaler("cuda")`` for epochs 2..``--epochs``.

Every epoch is one window of ``greenpath.energy.make_meter(..., device="cuda:N")`` (NVML
total-energy counter) and, as a cross-check, one window of an ``NvmlGpuMeter`` forced to
integrate ``nvmlDeviceGetPowerUsage`` samples. Writes to ``--out``:

* ``records.jsonl``: one JSON object per epoch (record-schema energy fields + loss, accuracy,
  duration, AMP skipped steps, grad scale, the power-integration cross-check);
* ``summary.json``: device, meter metadata, per-path energy totals, checks (every GPU
  source ``nvml_counter``, every epoch > 0 J, counter vs integration gap), and the median
  cost of a begin/end window on real NVML.

Run (a few minutes on an H100/H200; no network)::

    python scripts/gpu_check.py --out results/gpu_check

Exits with status 2 and a clear message when CUDA is not available. ``--device cpu`` runs
the same loop on CPU with bf16 autocast (no GradScaler) as a smoke test of the script only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenpath.records import json_ready, write_json

#: Classes of the synthetic data.
CLASSES = 10


def build_model(torch: Any, num_classes: int) -> Any:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1),
        nn.BatchNorm2d(256),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.BatchNorm2d(256),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, num_classes),
    )


def counter_refresh(uuid: str, seconds: float = 2.0) -> dict[str, Any]:
    """How often the driver refreshes the NVML total-energy counter of ``uuid``: read it every
    ~1 ms for ``seconds`` and time its changes (s between changes: median, min, max)."""
    import pynvml

    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByUUID(uuid)
        changes, last, t_end = [], None, time.monotonic() + seconds
        while time.monotonic() < t_end:
            v = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            if v != last:
                changes.append(time.monotonic())
                last = v
            time.sleep(0.001)
    finally:
        pynvml.nvmlShutdown()
    gaps = [b - a for a, b in zip(changes[1:], changes[2:], strict=False)]
    return {
        "changes": len(changes) - 1,
        "median_s": statistics.median(gaps) if gaps else None,
        "min_s": min(gaps) if gaps else None,
        "max_s": max(gaps) if gaps else None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="GPU check of the greenpath energy meter")
    ap.add_argument("--out", default="results/gpu_check", help="output folder")
    ap.add_argument("--device", default="cuda:0", help="cuda:N (or cpu for a smoke test)")
    ap.add_argument("--epochs", type=int, default=4, help="trunk epochs (branch: 2..epochs)")
    ap.add_argument("--steps", type=int, default=150, help="optimizer steps per epoch")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


@dataclass
class Check:
    """What every epoch of the check needs: torch, the device, the data on it, the meters."""

    torch: Any
    args: argparse.Namespace
    dev: Any
    images: Any  # (steps x batch, 3, size, size) float32 on ``dev``
    labels: Any  # (steps x batch,) int64 on ``dev``
    meter: Any  # make_meter(device=...)
    cross: Any  # NvmlGpuMeter forced to power integration, None on CPU

    @property
    def on_cuda(self) -> bool:
        return self.dev.type == "cuda"


def synthetic_data(torch: Any, args: argparse.Namespace, dev: Any) -> tuple[Any, Any]:
    """Noisy prototypes of :data:`CLASSES` classes: ``steps x batch_size`` images and labels on ``dev``."""
    n_train, classes, s = args.steps * args.batch_size, CLASSES, args.image_size
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    protos = torch.randn(classes, 3, s, s, generator=g)
    labels = torch.randint(0, classes, (n_train,), generator=g)
    images = (protos[labels] + 2.0 * torch.randn(n_train, 3, s, s, generator=g)).to(dev)
    return images, labels.to(dev)


def run_epoch(c: Check, model: Any, opt: Any, scaler: Any, amp: bool) -> dict[str, Any]:
    """One training epoch (``--steps`` steps); fp16 autocast + GradScaler on CUDA when
    ``amp``, bf16 autocast on CPU. Returns loss, accuracy and the scaler's figures."""
    torch, args, dev = c.torch, c.args, c.dev
    amp_dtype = torch.float16 if c.on_cuda else torch.bfloat16
    n_train = len(c.labels)
    model.train()
    perm = torch.randperm(n_train, device=dev)
    tot_loss = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    skipped = 0
    for i in range(args.steps):
        idx = perm[i * args.batch_size : (i + 1) * args.batch_size]
        x, y = c.images[idx], c.labels[idx]
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
        if scaler is not None:
            before = scaler.get_scale()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            skipped += int(scaler.get_scale() < before)
        else:
            loss.backward()
            opt.step()
        tot_loss += loss.detach().float()
        correct += (logits.argmax(1) == y).sum()
    if c.on_cuda:
        torch.cuda.synchronize(dev)
    return {
        "train_loss": float(tot_loss) / args.steps,
        "train_accuracy": float(correct) / (args.steps * args.batch_size),
        "amp_skipped_steps": skipped if scaler is not None else None,
        "grad_scale_end": float(scaler.get_scale()) if scaler is not None else None,
    }


def measured_epoch(c: Check, model: Any, opt: Any, scaler: Any, amp: bool, **ids: Any) -> dict:
    """:func:`run_epoch` inside one window of each meter; the epoch's record (energy in J,
    a value not measured is None)."""
    wc = c.cross.begin() if c.cross is not None else None
    w = c.meter.begin()
    t0 = time.perf_counter()
    stats = run_epoch(c, model, opt, scaler, amp)
    m = c.meter.end(w)
    mc = c.cross.end(wc) if c.cross is not None else None
    rec = {**ids, **stats, "duration_s": time.perf_counter() - t0}
    rec.update(json_ready(c.meter.record_fields(m)))
    rec["precision_effective"] = ("fp16" if c.on_cuda else "bf16") if amp else "fp32"
    if mc is not None:
        rec["crosscheck_power_integration_j"] = mc.gpu.joules
    keys = ("method", "epoch", "energy_gpu_j", "energy_gpu_source", "duration_s")
    print(json.dumps({k: rec[k] for k in keys}), flush=True)
    return rec


def train_paths(c: Check) -> list[dict[str, Any]]:
    """The fp32 trunk for ``--epochs`` epochs, then the mixed-precision branch from the
    trunk's state after epoch 1 (epochs 2..``--epochs``); one record per epoch."""
    torch, epochs = c.torch, c.args.epochs
    records: list[dict[str, Any]] = []
    model = build_model(torch, CLASSES).to(c.dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    branch_state = None
    for e in range(1, epochs + 1):
        records.append(
            measured_epoch(c, model, opt, None, False, method="base", intervention_epoch=0, epoch=e)
        )
        if e == 1:
            branch_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
    assert branch_state is not None
    bmodel = build_model(torch, CLASSES).to(c.dev)
    bmodel.load_state_dict(branch_state[0])
    bopt = torch.optim.SGD(bmodel.parameters(), lr=0.05, momentum=0.9)
    bopt.load_state_dict(branch_state[1])
    scaler = torch.amp.GradScaler("cuda") if c.on_cuda else None
    for e in range(2, epochs + 1):
        records.append(
            measured_epoch(
                c, bmodel, bopt, scaler, True, method="quant", intervention_epoch=1, epoch=e
            )
        )
    return records


def window_cost_us(meter: Any, n: int = 50) -> list[float]:
    """Cost of ``n`` empty begin/end windows of ``meter``, µs each."""
    costs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        meter.end(meter.begin())
        costs.append((time.perf_counter_ns() - t0) / 1e3)
    return costs


def _sum_measured(values: list[float | None]) -> float | None:
    """Sum of ``values``; None when any of them was not measured."""
    return None if any(v is None for v in values) else float(sum(values))


def path_totals(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: epochs, GPU and total joules (None when not measured) and seconds."""
    by_path: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in records):
        rows = [r for r in records if r["method"] == method]
        by_path[method] = {
            "epochs": len(rows),
            "gpu_j": _sum_measured([r["energy_gpu_j"] for r in rows]),
            "total_j": _sum_measured([r["energy_total_j"] for r in rows]),
            "time_s": float(sum(r["duration_s"] for r in rows)),
        }
    return by_path


def checks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every GPU source the NVML counter, every epoch > 0 J, counter vs power integration."""
    gaps = [
        abs(r["crosscheck_power_integration_j"] - r["energy_gpu_j"]) / r["energy_gpu_j"]
        for r in records
        if r.get("crosscheck_power_integration_j") is not None and (r["energy_gpu_j"] or 0) > 0
    ]
    return {
        "all_gpu_sources": sorted({r["energy_gpu_source"] for r in records}),
        "gpu_source_is_counter": all(r["energy_gpu_source"] == "nvml_counter" for r in records),
        "every_epoch_positive": all((r["energy_total_j"] or 0) > 0 for r in records),
        "counter_vs_power_integration_max_rel_gap": max(gaps) if gaps else None,
        "counter_vs_power_integration_median_rel_gap": statistics.median(gaps) if gaps else None,
    }


def summarise(c: Check, records: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json: device, per-path totals, checks, window cost, counter refresh, meter."""
    torch = c.torch
    return {
        "device": c.args.device,
        "device_name": torch.cuda.get_device_name(c.dev) if c.on_cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu_uuid": records[0]["gpu_uuid"],
        "args": vars(c.args),
        "paths": path_totals(records),
        "checks": checks(records),
        # a begin/end window includes the wait for the counter's next refresh (interpolation)
        "window_cost_us_median": statistics.median(window_cost_us(c.meter)),
        "nvml_counter_refresh": counter_refresh(records[0]["gpu_uuid"]) if c.on_cuda else None,
        "meter_metadata": c.meter.metadata(),
        "environment": {
            k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    on_cuda = args.device.startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        print(
            "gpu_check: CUDA is not available (torch.cuda.is_available() is False); this "
            "check needs an NVIDIA GPU with its driver. Nothing was run.",
            file=sys.stderr,
        )
        return 2

    from greenpath.energy import NvmlGpuMeter, make_meter

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    if on_cuda:
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
    # CUDA is initialised before the meter's first window, so the meter maps cuda:N to its
    # NVML device through torch.cuda.get_device_properties(N).uuid.
    images, labels = synthetic_data(torch, args, dev)
    meter = make_meter({"gpu_poll_interval_s": 0.05}, device=args.device)
    cross = (
        NvmlGpuMeter(args.device, poll_interval_s=0.05, force_power_integration=True)
        if on_cuda
        else None
    )
    c = Check(torch, args, dev, images, labels, meter, cross)
    records = train_paths(c)
    with open(out / "records.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r, allow_nan=False) + "\n")
    summary = summarise(c, records)
    meter.close()
    if cross is not None:
        cross.close()
    write_json(summary, out / "summary.json")
    print(json.dumps(summary["checks"], indent=2))
    ok = summary["checks"]["every_epoch_positive"] and (
        summary["checks"]["gpu_source_is_counter"] or not on_cuda
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
