"""In-memory tensors for one training job and a data order that is a pure function of
(seed, epoch).

The prepared uint8 arrays are converted once per job: ``x / 255``, then per-channel
standardisation with the mean and standard deviation of the *training* images (so the
validation images use the training statistics). Batches are index slices of the float
tensors; there is no per-epoch decoding and no DataLoader.

The order of epoch e (1-based) of seed s is ``torch.randperm(N)`` drawn from a
``torch.Generator`` seeded with :func:`mix_seed` ``(s, e, stream=0)``, so a trunk segment,
a resumed job and a branch all see exactly the order an uninterrupted trunk would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Name of the data-order scheme stored in checkpoints (a reader can refuse another one).
ORDER_SCHEME = "seedseq-randperm-v1"

#: Streams of :func:`mix_seed`: epoch order, per-epoch global torch RNG (dropout), model init.
STREAM_ORDER, STREAM_EPOCH_RNG, STREAM_INIT = 0, 1, 2


def mix_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed derived from (seed, epoch, stream) with numpy's ``SeedSequence``."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(
        2, np.uint32
    )
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Permutation (int64, shape (n,)) of training indices for 1-based ``epoch``."""
    gen = torch.Generator().manual_seed(mix_seed(seed, epoch, STREAM_ORDER))
    return torch.randperm(n, generator=gen)


@dataclass
class TensorData:
    """Float tensors of one prepared dataset.

    Attributes:
        x_train: float32 (N, C, H, W), standardised.
        y_train: int64 (N,) class indices, or float32 (N, K) for multi-label data.
        x_val, y_val: the validation split, same layout (M rows).
        multilabel: labels are (N, K) 0/1 indicators (BCE loss, binary accuracy).
        mean, std: per-channel statistics (C,) of ``x_train / 255`` used to standardise.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    multilabel: bool
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def val_size(self) -> int:
        return int(self.x_val.shape[0])

    def to(self, device: torch.device | str) -> TensorData:
        """Move all tensors to ``device`` (once per job)."""
        return TensorData(
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_val.to(device),
            self.y_val.to(device),
            self.multilabel,
            self.mean,
            self.std,
        )


def _to_float(x: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(255.0)
    return t.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1)).contiguous()


def tensor_data(dataset: Any) -> TensorData:
    """Convert a prepared dataset (``x_*`` uint8 (N, H, W, C), ``y_*``, ``multilabel``).

    The per-channel std is floored at 1e-6 (a constant channel would divide by zero).

    Raises:
        ValueError: images are not uint8 (N, H, W, C), or the training split is empty.
    """
    x_train, x_val = dataset.x_train, dataset.x_val
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"{name} must be uint8 (N, H, W, C); got {x.dtype} {x.shape}")
    if x_train.shape[0] == 0:
        raise ValueError("the training split is empty; prepare the dataset with more images")
    scaled = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255.0
    mean = torch.tensor(scaled.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(np.maximum(scaled.std(axis=0), 1e-6), dtype=torch.float32)
    multilabel = bool(getattr(dataset, "multilabel", False))
    ydt = torch.float32 if multilabel else torch.int64
    return TensorData(
        x_train=_to_float(x_train, mean, std),
        y_train=torch.as_tensor(np.asarray(dataset.y_train)).to(ydt),
        x_val=_to_float(x_val, mean, std),
        y_val=torch.as_tensor(np.asarray(dataset.y_val)).to(ydt),
        multilabel=multilabel,
        mean=mean,
        std=std,
    )
