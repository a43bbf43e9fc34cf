"""GPU benchmark: greenpath's engine on the paper's model vs a bare PyTorch loop.

For an H200-class machine with no network; about 2-4 minutes with the defaults. Model:
``vgg16_head`` with ``pretrained=False`` (no weights to download; the base is frozen either
way, so the cost per epoch is the paper's), 32x32 greyscale input, batch 32, Adam 1e-3, on
synthetic Fashion-MNIST-sized data (``--train-size 60000 --val-size 10000``, 10 classes).

Per method (``base``, ``freeze`` = all but the last layer, ``quant`` = fp16 autocast +
GradScaler) it runs:

* greenpath: ``init_checkpoint`` then ``run_trunk_segment`` (base) or ``run_branch``
  (freeze/quant at k = 0) for ``--epochs`` epochs, meter on (NVML energy counter);
* bare: the same model from the same checkpoint in a minimal loop (index_select batches,
  CE loss, Adam; freeze: ``requires_grad=False`` outside ``head.out``; quant: autocast
  fp16 + ``torch.amp.GradScaler``), each epoch measured with the same greenpath meter.

Reported per (method, loop): epoch seconds, images/s, GPU utilisation (NVML
``nvmlDeviceGetUtilizationRates``, mean of 0.1 s samples), GPU energy per epoch (J) and the
engine/bare images/s ratio. JSON goes to ``--out`` (default ``results/bench/gpu.json``).

Exit status: 0 done, 2 CUDA unavailable (with a message). ``--device cpu`` runs a tiny
smoke version on CPU (``--train-size 256`` etc.) to test the script only.

The two loops run in alternating order from one method to the next (bare first for
``base`` and ``quant``, engine first for ``freeze``).

Usage: ``python scripts/gpu_bench.py [--out results/bench/gpu.json] [--epochs 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))


class UtilSampler(threading.Thread):
    """Samples NVML GPU utilisation (%) of one device every ``period_s`` while running."""

    def __init__(self, device_index: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.period_s = period_s
        self._stop_ev = threading.Event()
        self._handle = None
        self._nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        except Exception as exc:  # noqa: BLE001 - no NVML: utilisation is reported as None
            self.error = f"NVML unavailable: {exc}"
        else:
            self.error = None

    def run(self) -> None:
        if self._handle is None:
            return
        while not self._stop_ev.is_set():
            try:
                self.samples.append(
                    float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
                )
            except Exception:  # noqa: BLE001
                pass
            self._stop_ev.wait(self.period_s)

    def stop(self) -> float | None:
        self._stop_ev.set()
        self.join()
        return statistics.mean(self.samples) if self.samples else None


def _physical_index(device: str) -> int:
    """NVML index of the torch device (by UUID when torch reports it, else the ordinal)."""
    import torch

    idx = torch.device(device).index or 0
    try:
        import pynvml

        uuid = str(torch.cuda.get_device_properties(idx).uuid)
        pynvml.nvmlInit()
        for i in range(pynvml.nvmlDeviceGetCount()):
            u = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            u = u.decode() if isinstance(u, bytes) else u
            if u.replace("GPU-", "") == uuid.replace("GPU-", ""):
                return i
    except Exception:  # noqa: BLE001
        pass
    return idx


def synthetic_npz(path: Path, n_train: int, n_val: int, size: int, seed: int = 0) -> Path:
    """Fashion-MNIST-shaped synthetic data (uint8 greyscale, 10 classes, class-dependent mean)."""
    from greenpath.data import PreparedDataset, save_prepared

    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 160, (n, size, size, 1), dtype=np.uint8)
        x = np.clip(x.astype(np.int16) + (y * 9)[:, None, None, None], 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)

    xt, yt = make(n_train)
    xv, yv = make(n_val)
    ds = PreparedDataset(
        name="fashion_mnist_synth",
        x_train=xt,
        y_train=yt,
        x_val=xv,
        y_val=yv,
        class_names=[str(i) for i in range(10)],
        multilabel=False,
        synthetic=True,
        source="scripts/gpu_bench.py synthetic",
    )
    return save_prepared(ds, path)


def make_config(device: str, epochs: int, batch: int) -> dict[str, Any]:
    from greenpath.config import check_config

    cfg = {
        "study": "gpu_bench",
        "data": {"root": "data", "download": False, "image_size": 32, "channels": 1},
        "datasets": {"fashion_mnist": {}},
        "model": {"name": "vgg16_head", "pretrained": False},
        "training": {
            "epochs": epochs,
            "batch_size": batch,
            "optimizer": "adam",
            "lr": 0.001,
            "device": device,
            "num_threads": 4,
        },
        "seeds": [0],
        "interventions": {"epochs": [0], "methods": ["freeze", "quant"]},
        "methods": {"freeze": {"trainable": "last_layer"}, "quant": {"dtype": "fp16"}},
        "energy": {},
    }
    return check_config(cfg, check_datasets=False)


def bare(
    cfg: dict[str, Any], npz: Path, ck0: Path, method: str, epochs: int, meter: Any
) -> list[dict[str, float]]:
    """Minimal loop; returns one dict per epoch (seconds, images/s, GPU J)."""
    import torch
    from torch import nn

    from greenpath.data import load_prepared
    from greenpath.models import build_model
    from greenpath.training import checkpoint as ckpt_io
    from greenpath.training.data import tensor_data

    dev = torch.device(cfg["training"]["device"])
    bs = int(cfg["training"]["batch_size"])
    ds = load_prepared(npz)
    data = tensor_data(ds).to(dev)
    model = build_model(
        "vgg16_head", num_classes=10, in_channels=1, image_size=32, pretrained=False
    )
    model.load_state_dict(ckpt_io.load_checkpoint(ck0, kind="checkpoint")["model"])
    model.to(dev)
    if method == "freeze":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("head.out"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=float(cfg["training"]["lr"]))
    amp = method == "quant" and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    loss_fn = nn.CrossEntropyLoss()
    n = data.train_size
    gen = torch.Generator().manual_seed(0)
    rows = []
    for e in range(1, epochs + 1):
        w = meter.begin()
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb, yb = data.x_train.index_select(0, idx), data.y_train.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                logits = model(xb)
            loss = loss_fn(logits.float(), yb)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            for s in range(0, data.val_size, bs):
                model(data.x_val[s : s + bs])
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        m = meter.end(w)
        f = meter.record_fields(m)
        rows.append(
            {
                "epoch": e,
                "epoch_s": dt,
                "images_per_s": n / dt,
                "energy_gpu_j": f.get("energy_gpu_j"),
                "energy_total_j": f.get("energy_total_j"),
            }
        )
    return rows


def engine(
    cfg: dict[str, Any], npz: Path, ck0: Path, method: str, epochs: int, tmp: Path
) -> tuple[list[dict[str, Any]], float]:
    """greenpath's job for ``method`` (meter made by the engine); rows and whole-call seconds."""
    from greenpath.training import run_branch, run_trunk_segment

    kw = {"dataset": "fashion_mnist", "dataset_path": npz, "seed": 0, "in_checkpoint": ck0}
    t0 = time.perf_counter()
    if method == "base":
        df = run_trunk_segment(
            cfg,
            start=0,
            end=epochs,
            out_checkpoint=tmp / "ck_end.pt",
            out_records=tmp / "base.parquet",
            **kw,
        )
    else:
        df = run_branch(
            cfg, method=method, intervention_epoch=0, out_records=tmp / f"{method}.parquet", **kw
        )
    job_s = time.perf_counter() - t0
    n = int(df["train_size"].iloc[0])
    rows = [
        {
            "epoch": int(r.epoch),
            "epoch_s": float(r.duration_s),
            "train_s": float(r.train_s),
            "images_per_s": n / float(r.duration_s),
            "energy_gpu_j": None if r.energy_gpu_j is None else float(r.energy_gpu_j),
            "energy_gpu_source": r.energy_gpu_source,
            "energy_total_j": None if r.energy_total_j is None else float(r.energy_total_j),
            "precision_effective": r.precision_effective,
            "status": r.status,
        }
        for r in df.itertuples()
    ]
    return rows, job_s


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over epochs after the first (warm-up) when there are at least two."""
    use = rows[1:] if len(rows) > 1 else rows

    def med(k: str) -> float | None:
        vals = [r.get(k) for r in use]
        return statistics.median(vals) if all(v is not None for v in vals) else None

    return {
        "epoch_s": med("epoch_s"),
        "images_per_s": med("images_per_s"),
        "energy_gpu_j_per_epoch": med("energy_gpu_j"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "gpu.json"))
    ap.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for a smoke test")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--train-size", type=int, default=60000)
    ap.add_argument("--val-size", type=int, default=10000)
    ap.add_argument("--methods", default="base,freeze,quant")
    args = ap.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"gpu_bench: CUDA is not available (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda}); run this on a machine with an NVIDIA GPU, or pass "
            "--device cpu --train-size 256 --val-size 64 for a smoke test of the script.",
            file=sys.stderr,
        )
        return 2
    from greenpath.energy import make_meter
    from greenpath.records import json_ready, write_json
    from greenpath.training import init_checkpoint

    dev = args.device
    if dev.startswith("cuda"):
        torch.cuda.init()
        torch.empty(1, device=dev)  # initialise CUDA before the first meter window
        torch.backends.cudnn.benchmark = False
    cfg = make_config(dev, args.epochs, args.batch_size)
    out: dict[str, Any] = {
        "device": dev,
        "device_name": torch.cuda.get_device_name(dev) if dev.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "config": {k: cfg[k] for k in ("model", "training", "methods")},
        "train_size": args.train_size,
        "val_size": args.val_size,
        "methods": {},
    }
    gpu_index = _physical_index(dev) if dev.startswith("cuda") else 0
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gp-gpubench-") as tmp_s:
        tmp = Path(tmp_s)
        npz = synthetic_npz(tmp / "synth.npz", args.train_size, args.val_size, 32)
        ck0 = tmp / "ck0.pt"
        init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=ck0)
        meter = make_meter(cfg.get("energy") or None, device=dev)
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for i, method in enumerate(methods):
            res: dict[str, Any] = {}
            # alternate which loop runs first, so drift (clocks, heat) does not favour one
            order = ("bare", "engine") if i % 2 == 0 else ("engine", "bare")
            res["order"] = list(order)
            for loop in order:
                sampler = UtilSampler(gpu_index) if dev.startswith("cuda") else None
                if sampler is not None:
                    sampler.start()
                if loop == "bare":
                    rows, job_s = bare(cfg, npz, ck0, method, args.epochs, meter), None
                else:
                    (tmp / method).mkdir(exist_ok=True)
                    rows, job_s = engine(cfg, npz, ck0, method, args.epochs, tmp / method)
                util = sampler.stop() if sampler is not None else None
                res[loop] = {
                    "epochs": rows,
                    **summarise(rows),
                    "gpu_util_pct_mean": util,
                    "job_s": job_s,
                }
                print(
                    f"{method:6s} {loop:6s} {json.dumps(summarise(rows))} util {util}", flush=True
                )
            b, e = res["bare"]["images_per_s"], res["engine"]["images_per_s"]
            res["engine_over_bare_images_per_s"] = e / b if b and e else None
            out["methods"][method] = res
        meter.close()
    out["seconds"] = time.perf_counter() - t_all
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_ready(out), path)
    print(f"gpu_bench: wrote {path} in {out['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
