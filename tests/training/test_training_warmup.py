"""The unmeasured warm-up of continuing jobs (greenpath.training.warmup).

Seen on an H200: the first epoch of every trunk segment cost about 10x a steady epoch
(process start-up costs an uninterrupted run pays once). The warm-up must (1) run every
batch shape of the epoch before the first measured window, (2) leave the run bit-identical
(parameters, gradients, BatchNorm statistics, RNG, mode), and (3) run only for jobs that
continue a run (start > 0), recorded in the Parquet metadata.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch
from training_helpers import FakeMeter

from greenpath.data.prepared import load_prepared
from greenpath.training import (
    init_checkpoint,
    loss_function,
    model_for,
    run_branch,
    run_trunk_segment,
)
from greenpath.training.data import tensor_data
from greenpath.training.precision import full_precision
from greenpath.training.warmup import batch_sizes, warm_up


def test_batch_sizes_by_hand():
    assert batch_sizes(300, 32) == [32, 12]  # 9 x 32 + 12
    assert batch_sizes(100, 32) == [32, 4]  # 3 x 32 + 4
    assert batch_sizes(128, 64) == [64]
    assert batch_sizes(20, 64) == [20]
    assert batch_sizes(0, 64) == []


def _model_and_data(config, digits_npz):
    ds = load_prepared(digits_npz)
    model = model_for(config, ds)
    return model, tensor_data(ds)


def _mlp_with_dropout(data) -> torch.nn.Module:
    """Dropout draws from the global RNG in training mode: the warm-up must give it back."""
    features = int(data.x_train[0].numel())
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(features, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 10),
    )


@pytest.mark.parametrize("which", ["small_cnn", "mlp_with_dropout"])
def test_warm_up_runs_every_batch_shape_and_changes_nothing(config, digits_npz, which):
    """digits fixture: 300 training rows, 100 validation rows, batch 32; small_cnn (the
    default model, BatchNorm) and an MLP with BatchNorm and Dropout. Expected forward
    passes, by hand: train mode 32 and 12 rows, then eval mode 32 and 4 rows."""
    model, data = _model_and_data(config, digits_npz)
    if which == "mlp_with_dropout":
        model = _mlp_with_dropout(data)
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    calls: list[tuple[int, bool]] = []
    model.register_forward_pre_hook(lambda m, args: calls.append((args[0].shape[0], m.training)))
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    torch.manual_seed(1234)
    rng = torch.get_rng_state()

    secs = warm_up(
        model,
        data,
        batch_size=32,
        precision=full_precision("cpu"),
        loss_fn=loss_function(data.multilabel),
    )

    assert calls == [(32, True), (12, True), (32, False), (4, False)]
    assert secs > 0
    assert model.training
    for k, v in model.named_parameters():
        assert torch.equal(v, params[k]), k
        assert v.grad is None, k
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k  # running_mean/var, num_batches_tracked
    assert torch.equal(torch.get_rng_state(), rng)


class _OrderMeter(FakeMeter):
    """Records how many forward passes the model had made when each window began."""

    def __init__(self, counter: list[int]) -> None:
        super().__init__()
        self.counter = counter
        self.at_begin: list[int] = []

    def begin(self):
        self.at_begin.append(self.counter[0])
        return super().begin()


def _warm_up_meta(path) -> str | None:
    meta = pq.read_schema(path).metadata or {}
    value = meta.get(b"greenpath.warm_up_s")
    return None if value is None else value.decode()


def test_only_continuing_jobs_warm_up_before_their_first_window(tmp_path, config, digits_npz):
    """Forward passes before the first energy window, by hand (digits fixture, batch 32):
    0 for a job from epoch 0; 2 training + 2 validation shapes = 4 for a trunk segment from
    epoch 2 and for a freeze branch at k = 2."""
    forwards = [0]
    model_class = type(_model_and_data(config, digits_npz)[0])

    def count(module, args):  # forward passes of the whole model, not of its layers
        if type(module) is model_class:
            forwards[0] += 1

    hook = torch.nn.modules.module.register_module_forward_pre_hook(count)
    try:
        _first_windows(tmp_path, config, digits_npz, forwards)
    finally:
        hook.remove()


def _first_windows(tmp_path, config, digits_npz, forwards):
    init_checkpoint(config, dataset_path=digits_npz, seed=0, out_checkpoint=tmp_path / "c0.pt")

    def first_window(run, **job):
        forwards[0] = 0
        meter = _OrderMeter(forwards)
        run(config, dataset="digits", dataset_path=digits_npz, seed=0, meter=meter, **job)
        return meter.at_begin[0], _warm_up_meta(job["out_records"])

    c = {e: tmp_path / f"c{e}.pt" for e in (0, 2, 4)}
    n, meta = first_window(
        run_trunk_segment, start=0, end=2, in_checkpoint=c[0], out_checkpoint=c[2],
        out_records=tmp_path / "t0.parquet",
    )  # fmt: skip
    assert (n, meta) == (0, None)
    n, meta = first_window(
        run_trunk_segment, start=2, end=4, in_checkpoint=c[2], out_checkpoint=c[4],
        out_records=tmp_path / "t2.parquet",
    )  # fmt: skip
    assert n == 4 and float(meta) > 0
    n, meta = first_window(
        run_branch, method="freeze", intervention_epoch=2, in_checkpoint=c[2],
        out_records=tmp_path / "f2.parquet",
    )  # fmt: skip
    assert n == 4 and float(meta) > 0
