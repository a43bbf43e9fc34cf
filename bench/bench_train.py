"""Training-loop benchmarks: greenpath's engine vs a bare PyTorch loop, data path.

* :func:`throughput` -- images/s of ``greenpath.training.run_trunk_segment`` (meter on, state
  saved after every epoch, records written) against a bare loop over the same cached
  tensors (``greenpath.training.data.tensor_data``), same model (``small_cnn`` from the same
  epoch-0 checkpoint), same batch size, same optimizer, train + validation pass per epoch.
  A and B alternate ``rounds`` times in one process; the figure is the median of the
  per-round ratios (this machine is shared and noisy, absolute seconds drift).
* :func:`data_path` -- seconds per epoch spent outside forward/backward: data order
  (``epoch_order``), batch gathering (``index_select`` exactly as ``train_one_epoch`` does),
  plus the once-per-job load (``load_prepared``), normalisation (``tensor_data``) and
  transfer (``.to(device)``), amortised over the mean epochs per job of the grid, as a
  share of the engine's measured epoch time.

Both take ``config`` (a checked config) and a mapping dataset name -> prepared ``.npz``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenpath.data import load_prepared
from greenpath.energy import make_meter
from greenpath.grid import branches, epochs_needed, trunk_segments
from greenpath.models import build_model
from greenpath.training import checkpoint as ckpt_io
from greenpath.training import init_checkpoint, run_trunk_segment
from greenpath.training.data import epoch_order, tensor_data
from greenpath.training.engine import evaluate, make_optimizer, train_one_epoch
from greenpath.training.precision import full_precision


def _bare_model(config: Mapping[str, Any], ds: Any, ck0: Path) -> nn.Module:
    m = config["model"]
    model = build_model(
        m["name"],
        num_classes=int(ds.num_classes),
        in_channels=int(ds.x_train.shape[3]),
        image_size=int(ds.x_train.shape[1]),
        pretrained=False,
        width=int(m.get("width", 16)),
    )
    model.load_state_dict(ckpt_io.load_checkpoint(ck0, kind="checkpoint")["model"])
    return model


def bare_loop(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    data: Any,
    *,
    epochs: int,
    batch_size: int,
) -> dict[str, float]:
    """The smallest loop doing the engine's work: shuffled batches, CE loss, Adam, eval.

    Returns seconds in the training passes (``train_s``) and in train + eval (``epoch_s``).
    """
    loss_fn = nn.CrossEntropyLoss()
    n, nv = data.train_size, data.val_size
    train_s = epoch_s = 0.0
    c0 = time.process_time()
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            xb, yb = data.x_train.index_select(0, idx), data.y_train.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()  # the same per-epoch outputs as the
            correct += (logits.detach().argmax(1) == yb).sum()  # engine: loss, accuracy
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            for s in range(0, nv, batch_size):
                logits = model(data.x_val[s : s + batch_size])
                loss_sum += loss_fn(logits, data.y_val[s : s + batch_size])
                correct += (logits.argmax(1) == data.y_val[s : s + batch_size]).sum()
        float(loss_sum), int(correct)
        t2 = time.perf_counter()
        train_s += t1 - t0
        epoch_s += t2 - t0
    return {"train_s": train_s, "epoch_s": epoch_s, "epoch_cpu_s": time.process_time() - c0}


class CpuTimingMeter:
    """Wraps a greenpath meter; adds the process CPU time of every window (``cpu_s``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cpu_s: list[float] = []
        self._c0 = 0.0

    def begin(self) -> Any:
        self._c0 = time.process_time()
        return self.inner.begin()

    def end(self, window: Any) -> Any:
        m = self.inner.end(window)
        self.cpu_s.append(time.process_time() - self._c0)
        return m

    def record_fields(self, m: Any) -> Any:
        return self.inner.record_fields(m)

    def metadata(self) -> Any:
        return self.inner.metadata()

    def close(self) -> None:
        self.inner.close()


def _run_bare(
    cfg: Mapping[str, Any], ds: Any, ck0: Path, data: Any, epochs: int, bs: int
) -> dict[str, float]:
    """Bare loop on a fresh model from the same checkpoint (as a job would start)."""
    model = _bare_model(cfg, ds, ck0)
    opt = make_optimizer(cfg, list(model.parameters()))
    return bare_loop(model, opt, data, epochs=epochs, batch_size=bs)


def throughput(
    config: dict[str, Any],
    datasets: Mapping[str, Path],
    *,
    rounds: int = 5,
    epochs: int = 3,
) -> dict[str, Any]:
    """Engine vs bare loop, interleaved ``rounds`` times, ``epochs`` epochs per call.

    Ratios (engine / bare, images/s; >= 0.95 is the target on ``epoch``):

    * ``epoch_cpu``: the same, process CPU time instead of wall time (less sensitive to
      other processes on a shared machine; includes the meter's threads);
    * ``train``: training pass only (engine ``train_s`` column vs bare training pass);
    * ``epoch``: train + validation, the engine's energy window (``duration_s``) -- the
      training-loop throughput the target refers to;
    * ``job``: the whole ``run_trunk_segment`` call (dataset load, normalisation,
      checkpoint load/save, meter start, per-epoch state save, records write) vs the bare
      epochs; shows greenpath's in-process per-job cost.
    """
    torch.set_num_threads(int(config["training"].get("num_threads", 1)))
    bs = int(config["training"]["batch_size"])
    out: dict[str, Any] = {"rounds": rounds, "epochs_per_call": epochs, "batch_size": bs}
    cfg = {**config, "training": {**config["training"], "epochs": max(epochs, 1)}}
    with tempfile.TemporaryDirectory(prefix="gp-bench-") as tmp_s:
        tmp = Path(tmp_s)
        for name, npz in datasets.items():
            ck0 = tmp / f"{name}_ck0.pt"
            init_checkpoint(cfg, dataset_path=npz, seed=0, out_checkpoint=ck0)
            ds = load_prepared(npz)
            data = tensor_data(ds)
            n = data.train_size
            per: dict[str, list[float]] = {k: [] for k in ("train", "epoch", "epoch_cpu", "job")}
            raw: list[dict[str, float]] = []
            for r in range(rounds):
                if r % 2 == 0:  # ABBA order: B first in even rounds, A first in odd ones
                    bare = _run_bare(cfg, ds, ck0, data, epochs, bs)
                # A: greenpath's engine, meter on (the configured meter, timed for CPU)
                meter = CpuTimingMeter(make_meter(cfg.get("energy") or None, device="cpu"))
                t0 = time.perf_counter()
                df = run_trunk_segment(
                    cfg,
                    dataset=name,
                    dataset_path=npz,
                    seed=0,
                    start=0,
                    end=epochs,
                    in_checkpoint=ck0,
                    out_checkpoint=tmp / f"{name}_ck_r{r}.pt",
                    out_records=tmp / f"{name}_r{r}.parquet",
                    meter=meter,
                )
                job_s = time.perf_counter() - t0
                meter.close()
                if r % 2 == 1:
                    bare = _run_bare(cfg, ds, ck0, data, epochs, bs)
                eng = {
                    "train_s": float(df["train_s"].sum()),
                    "epoch_s": float(df["duration_s"].sum()),
                    "epoch_cpu_s": float(sum(meter.cpu_s)),
                    "job_s": job_s,
                }
                raw.append(
                    {
                        **{f"bare_{k}": v for k, v in bare.items()},
                        **{f"engine_{k}": v for k, v in eng.items()},
                    }
                )
                per["train"].append(bare["train_s"] / eng["train_s"])
                per["epoch"].append(bare["epoch_s"] / eng["epoch_s"])
                per["epoch_cpu"].append(bare["epoch_cpu_s"] / eng["epoch_cpu_s"])
                per["job"].append(bare["epoch_s"] / job_s)
            med = {k: statistics.median(v) for k, v in per.items()}
            imgs = n * epochs
            out[name] = {
                "train_size": n,
                "median_ratio": med,
                "ratios": per,
                "images_per_s_median": {
                    "bare_train": statistics.median(imgs / x["bare_train_s"] for x in raw),
                    "engine_train": statistics.median(imgs / x["engine_train_s"] for x in raw),
                    "bare_epoch": statistics.median(imgs / x["bare_epoch_s"] for x in raw),
                    "engine_epoch": statistics.median(imgs / x["engine_epoch_s"] for x in raw),
                    "engine_job": statistics.median(imgs / x["engine_job_s"] for x in raw),
                },
                "engine_job_overhead_s_median": statistics.median(
                    x["engine_job_s"] - x["engine_epoch_s"] for x in raw
                ),
                "raw_seconds": raw,
            }
    out["target"] = {"epoch_ratio_ge": 0.95}
    return out


def mean_epochs_per_job(config: Mapping[str, Any]) -> float:
    """Epochs of one tree / training jobs of one tree (the init job trains nothing)."""
    e = int(config["training"]["epochs"])
    ks = config["interventions"]["epochs"]
    ms = config["interventions"]["methods"]
    jobs = len(trunk_segments(e, ks)) + len(branches(ks, ms))
    return epochs_needed(e, ks, ms) / jobs


def data_path(
    config: dict[str, Any], datasets: Mapping[str, Path], *, epochs: int = 3
) -> dict[str, Any]:
    """Share of epoch time outside forward/backward, per dataset (target <= 5 %).

    The engine's epoch (``train_one_epoch`` + ``evaluate``) is timed as a whole; the data
    operations it performs (order, batch gathering) are timed on their own, identically.
    The per-job load + normalisation + transfer is amortised over the grid's mean epochs
    per job (``mean_epochs_per_job``).
    """
    torch.set_num_threads(int(config["training"].get("num_threads", 1)))
    bs = int(config["training"]["batch_size"])
    dev = torch.device(str(config["training"].get("device", "cpu")))
    epj = mean_epochs_per_job(config)
    out: dict[str, Any] = {"mean_epochs_per_job": epj, "batch_size": bs, "epochs": epochs}
    for name, npz in datasets.items():
        t0 = time.perf_counter()
        ds = load_prepared(npz)
        t1 = time.perf_counter()
        data = tensor_data(ds)
        t2 = time.perf_counter()
        data = data.to(dev)
        t3 = time.perf_counter()
        torch.manual_seed(0)
        m = config["model"]
        model = build_model(
            m["name"],
            num_classes=int(ds.num_classes),
            in_channels=int(ds.x_train.shape[3]),
            image_size=int(ds.x_train.shape[1]),
            width=int(m.get("width", 16)),
        ).to(dev)
        opt = make_optimizer(config, list(model.parameters()))
        prec = full_precision(dev)
        ep_s, order_s, gather_s = [], [], []
        for e in range(1, epochs + 1):
            a = time.perf_counter()
            order = epoch_order(0, e, data.train_size)
            b = time.perf_counter()
            o = order.to(data.x_train.device)
            for s in range(0, data.train_size, bs):
                idx = o[s : s + bs]
                data.x_train.index_select(0, idx)
                data.y_train.index_select(0, idx)
            c = time.perf_counter()
            train_one_epoch(model, opt, data, order, batch_size=bs, precision=prec, scaler=None)
            evaluate(model, data, batch_size=bs, precision=prec)
            d = time.perf_counter()
            order_s.append(b - a)
            gather_s.append(c - b)
            ep_s.append(d - c)
        epoch = statistics.median(ep_s)
        per_epoch = statistics.median(order_s) + statistics.median(gather_s)
        per_job = (t1 - t0) + (t2 - t1) + (t3 - t2)
        out[name] = {
            "train_size": data.train_size,
            "epoch_s": epoch,
            "order_s": statistics.median(order_s),
            "gather_s": statistics.median(gather_s),
            "load_s": t1 - t0,
            "normalise_s": t2 - t1,
            "transfer_s": t3 - t2,
            "share_per_epoch_pct": 100 * per_epoch / epoch,
            "share_with_job_setup_pct": 100 * (per_epoch + per_job / epj) / (epoch + per_job / epj),
        }
    out["target"] = {"share_pct_le": 5.0}
    return out
