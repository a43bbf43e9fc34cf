"""Unmeasured warm-up of a job that continues a run (trunk segments and branches at k > 0).

The grid cuts one training run into jobs (docs/training.md): trunk segments and branches
start from a checkpoint in a fresh process. A fresh process pays one-off costs in its first
steps: CUDA's lazy kernel loading, cuBLAS/cuDNN handles and algorithm choice, the caching
allocator's first allocations. An uninterrupted run paid them once, in epoch 1. Measured
on an H200 (BENCHMARKS.md), the first epoch of each trunk segment of the default config
took 0.75 s and about 96 J against 0.08 s and 10 J for the epochs after it, so the
segmented trunk recorded about twice the energy of an uninterrupted one.

:func:`warm_up` therefore runs, before a continuing job's first measured epoch, one training
step (forward + backward, no optimizer step) and one validation forward pass for each batch
shape the epoch will use (full batches and the last, smaller one), in the state the run
was in at the checkpoint (the trunk's precision, the checkpoint's frozen layers). It then
restores everything it touched: gradients, BatchNorm running statistics and the RNG states,
so the run continues bit-identically (tests/training/test_training_warmup.py). The
method's own first-epoch costs (a quant branch's first fp16 kernels, for example) stay in
the measured epoch, as they would in one process that switches method.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from greenpath.training.data import TensorData
from greenpath.training.precision import Precision


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """The batch sizes of one pass over ``n`` rows: ``batch_size`` and the remainder.

    Returns:
        Distinct sizes in the order the pass meets them (``[]`` for ``n == 0``),
        e.g. ``batch_sizes(1438, 64) == [64, 30]``, ``batch_sizes(128, 64) == [64]``.
    """
    if n <= 0:
        return []
    sizes = [min(batch_size, n)]
    tail = n % batch_size
    if n > batch_size and tail:
        sizes.append(tail)
    return sizes


def warm_up(
    model: nn.Module,
    data: TensorData,
    *,
    batch_size: int,
    precision: Precision,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """One unmeasured training step and validation pass per batch shape; state unchanged.

    Args:
        model: on ``data``'s device, in the state of the checkpoint.
        data: the job's tensors (rows ``0..size-1`` of each split are used).
        batch_size: the job's batch size.
        precision: the precision the run had at the checkpoint (the trunk's).
        loss_fn: the job's loss (cross-entropy or BCE with logits).

    Returns:
        Seconds spent (wall clock, after a CUDA synchronise).

    Parameter values, gradients (``None`` before and after in a fresh job), buffers
    (BatchNorm ``running_mean``, ``running_var``, ``num_batches_tracked``), the train/eval
    mode and the CPU and CUDA RNG states are the same afterwards. No optimizer step is
    taken, so the optimizer state is untouched.
    """
    t0 = time.perf_counter()
    device = data.x_train.device
    grads = {name: p.grad for name, p in model.named_parameters()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            model.train()
            for size in batch_sizes(data.train_size, batch_size):
                idx = torch.arange(size, device=device)
                xb = data.x_train.index_select(0, idx)
                yb = data.y_train.index_select(0, idx)
                with precision.autocast():
                    logits = model(xb)
                loss_fn(logits.float(), yb).backward()
            model.eval()
            with torch.no_grad():
                for size in batch_sizes(data.val_size, batch_size):
                    with precision.autocast():
                        model(data.x_val[:size])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    finally:
        for name, p in model.named_parameters():
            p.grad = grads[name]
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        model.train(was_training)
    return time.perf_counter() - t0
