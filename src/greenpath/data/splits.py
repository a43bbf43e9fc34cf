"""Seeded, stratified train/validation splits and subsets.

Stratified sampling uses largest-remainder allocation: class c with n_c of N items gets
floor(n * n_c / N) picks, and the remaining picks go to the classes with the largest
fractional parts (ties: lower class index first). Within a class the picks are the first
items of a seeded permutation (``numpy.random.default_rng``). Multi-label rows (2-D
labels) are sampled uniformly without stratification.

Every function returns sorted int64 indices, so results depend only on (labels, n, seed).
"""

from __future__ import annotations

import numpy as np

# Independent random streams per purpose, so changing a subset size never changes the split.
STREAM_SPLIT = 0
STREAM_SUBSET_TRAIN = 1
STREAM_SUBSET_VAL = 2
STREAM_SYNTH = 3


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator for ``(seed, stream)``: ``default_rng([seed, stream])``."""
    return np.random.default_rng([int(seed), int(stream)])


def allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` picks over classes in proportion to ``counts`` (largest remainder).

    Args:
        counts: int (K,) items per class, sum N >= n.
        n: number of picks, 0 <= n <= N.

    Returns:
        int64 (K,) picks per class, each <= counts[c], summing to n.

    Example: counts [5, 3, 2], n=5 -> quotas [2.5, 1.5, 1.0] -> floors [2, 1, 1],
    one left goes to class 0 (largest fraction 0.5, lowest index) -> [3, 1, 1].
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not 0 <= n <= total:
        raise ValueError(f"cannot pick {n} of {total} items")
    if total == 0:
        return np.zeros_like(counts)
    quotas = counts * (n / total)
    picks = np.floor(quotas).astype(np.int64)
    left = n - int(picks.sum())
    order = np.lexsort((np.arange(len(counts)), -(quotas - picks)))
    for c in order:
        if left == 0:
            break
        if picks[c] < counts[c]:
            picks[c] += 1
            left -= 1
    return picks


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` row indices of ``labels``, stratified by class.

    Args:
        labels: int (N,) class indices, or (N, K) multi-label rows (sampled uniformly).
        n: how many rows to pick, 0 <= n <= N.
        rng: the random generator (see :func:`rng_for`).

    Returns:
        Sorted int64 (n,) indices into ``labels``.
    """
    labels = np.asarray(labels)
    total = labels.shape[0]
    if not 0 <= n <= total:
        raise ValueError(f"cannot pick {n} of {total} items")
    if labels.ndim != 1:
        return np.sort(rng.permutation(total)[:n]).astype(np.int64)
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    picks = allocate(counts, n)
    chosen = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        chosen.append(members[rng.permutation(len(members))[: picks[c]]])
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)


def split_train_val(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split for datasets without an official validation split.

    The validation set has ``round(N * val_fraction)`` rows (at least 1 and at most N-1
    when N >= 2), stratified by class.

    Returns:
        (train_indices, val_indices): disjoint sorted int64 arrays covering 0..N-1.
    """
    total = len(labels)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = int(round(total * val_fraction))
    if total >= 2:
        n_val = min(max(n_val, 1), total - 1)
    val_idx = stratified_sample(labels, n_val, rng_for(seed, STREAM_SPLIT))
    mask = np.ones(total, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx
