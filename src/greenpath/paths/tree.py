"""The measured tree of one (study, dataset, seed): trunk, branches and candidate paths.

A *candidate path* is what a user could have trained by taking decisions only at the
decision epochs (the intervention epochs of the study: 0/10/20/30/40 for EAT-IT):

- ``base`` to the last epoch E (the reference, the full-length trunk);
- ``stop`` at decision epoch d (1 <= d < E): trunk epochs 1..d;
- ``freeze``/``quant`` at intervention epoch k: trunk 1..k, branch k+1..E;
- the same branch stopped at a later decision epoch d (k < d < E): trunk 1..k, branch k+1..d.

A path is keyed by ``(method, intervention_epoch, end_epoch)``; ``stop`` at d is
``("stop", d, d)``. Its outcome is the validation accuracy at ``end_epoch`` and the
cumulative energy (J) from epoch 1 to ``end_epoch`` (``energy_cum_j`` of the study's
``trajectories.parquet``, the one source of trajectories).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from greenpath.records import measured_paths

#: Columns of the candidate-path table.
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "method",
    "intervention_epoch",
    "end_epoch",
    "val_accuracy",
    "energy_j",
)

#: Dataset descriptors passed to predictors as ``dataset_info``.
DATASET_INFO_COLUMNS: tuple[str, ...] = ("num_classes", "train_size", "val_size", "image_size")


@dataclass
class Tree:
    """One measured tree.

    Attributes:
        study, dataset, seed: the tree's key.
        paths: ``(method, intervention_epoch) -> rows`` of each full path (trunk prefix +
            branch) as read from ``trajectories.parquet``, sorted by epoch; ``("base", 0)`` is
            the trunk. Each has ``epoch``, ``val_accuracy``, ``energy_total_j`` (J per
            epoch) and ``energy_cum_j`` (J).
        decision_epochs: sorted intervention epochs at which decisions are taken.
        last_epoch: E, the trunk's last epoch.
        dataset_info: descriptors from the records (``num_classes``, ``train_size``, ...).
    """

    study: str
    dataset: str
    seed: int
    paths: dict[tuple[str, int], pd.DataFrame]
    decision_epochs: tuple[int, ...]
    last_epoch: int
    dataset_info: dict[str, float] = field(default_factory=dict)
    _trunk_cache: dict[int, tuple[float, float]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _path_cache: dict[tuple[str, int], dict[int, tuple[float, float]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.study, self.dataset, self.seed)

    @property
    def trunk(self) -> pd.DataFrame:
        """Trunk rows (``base``), epochs 1..E."""
        return self.paths[("base", 0)]

    @property
    def ref_accuracy(self) -> float:
        """Final validation accuracy of the full-length trunk (fraction)."""
        return float(self.trunk["val_accuracy"].iloc[-1])

    @property
    def ref_energy_j(self) -> float:
        """Cumulative energy of the full-length trunk (J)."""
        return float(self.trunk["energy_cum_j"].iloc[-1])

    def trunk_at(self, epoch: int) -> tuple[float, float]:
        """``(val_accuracy, energy_cum_j)`` of the trunk at ``epoch``; ``(nan, 0.0)`` at 0."""
        if epoch <= 0:
            return math.nan, 0.0
        if self._trunk_cache is None:
            t = self.trunk
            self._trunk_cache = {
                int(e): (float(a), float(c))
                for e, a, c in zip(t["epoch"], t["val_accuracy"], t["energy_cum_j"], strict=True)
            }
        return self._trunk_cache[int(epoch)]

    def history(self, epoch: int) -> pd.DataFrame:
        """Trunk rows with ``epoch <= epoch`` (what a live run has seen at that epoch)."""
        t = self.trunk
        return t[t["epoch"] <= epoch].copy()

    def has_branch(self, method: str, k: int) -> bool:
        return (method, int(k)) in self.paths

    def outcome(self, method: str, intervention_epoch: int, end_epoch: int) -> tuple[float, float]:
        """``(val_accuracy, energy_j)`` at ``end_epoch`` of a path.

        ``stop`` at d reads the trunk at epoch d.

        Raises:
            KeyError: the path or the epoch is not in the measured tree (names both).
        """
        path = ("base", 0) if method in ("stop", "base") else (method, int(intervention_epoch))
        if path not in self._path_cache:
            if path not in self.paths:
                raise KeyError(f"tree {self.key}: no measured path {path[0]}@{path[1]}")
            rows = self.paths[path]
            self._path_cache[path] = {
                int(e): (float(a), float(c))
                for e, a, c in zip(
                    rows["epoch"], rows["val_accuracy"], rows["energy_cum_j"], strict=True
                )
            }
        hit = self._path_cache[path].get(int(end_epoch))
        if hit is None:
            raise KeyError(
                f"tree {self.key}: path {method}@{intervention_epoch} has no epoch {end_epoch}"
            )
        return hit

    def candidates(self, every_epoch: bool = False) -> pd.DataFrame:
        """All candidate paths (see module docstring) with their measured outcome.

        Args:
            every_epoch: stops at every epoch (of the trunk and of each branch), not only
                at the decision epochs; branches still start at the intervention epochs.

        Returns:
            DataFrame with :data:`CANDIDATE_COLUMNS`; accuracy as a fraction, energy in J.
        """
        E = self.last_epoch
        rows: list[tuple[str, int, int, float, float]] = []
        acc, en = self.outcome("base", 0, E)
        rows.append(("base", 0, E, acc, en))
        stops = range(1, E) if every_epoch else self.decision_epochs
        for d in stops:
            if 1 <= d < E:
                acc, en = self.outcome("stop", d, d)
                rows.append(("stop", d, d, acc, en))
        for (method, k), path in sorted(self.paths.items()):
            if method in ("base", "stop"):
                continue
            epochs = set(path["epoch"].astype(int))
            ends = [d for d in stops if k < d < E] + [E]
            for end in ends:
                if end in epochs:
                    acc, en = self.outcome(method, k, end)
                    rows.append((method, k, end, acc, en))
        return pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS))


def _info(rows: pd.DataFrame) -> dict[str, float]:
    info: dict[str, float] = {}
    for col in DATASET_INFO_COLUMNS:
        if col in rows.columns:
            vals = rows[col].dropna()
            if len(vals):
                info[col] = float(vals.iloc[0])
    return info


def build_trees(
    trajectories: pd.DataFrame,
    decision_epochs: Sequence[int] | None = None,
    methods: Iterable[str] = ("base", "freeze", "quant"),
) -> list[Tree]:
    """Group the measured paths of a trajectories table into trees.

    Args:
        trajectories: the study's ``trajectories.parquet`` rows (written by the aggregate or
            import_eatit rule). Rows whose ``status`` is not ``ok`` are dropped
            (diverged/skipped epochs are no outcome; see
            :func:`greenpath.records.measured_paths` for their energy).
        decision_epochs: the epochs at which a strategy may decide; ``None``: per tree, 0
            plus every intervention epoch of its branches (EAT-IT: 0, 10, 20, 30, 40).
        methods: branch methods to keep (``stop`` paths are derived from the trunk).

    Returns:
        One :class:`Tree` per (study, dataset, seed) that has a complete trunk with finite
        accuracy and energy, sorted by key.

    Raises:
        ValueError: records instead of trajectories, no tree has a trunk, or a trunk has
            non-finite energy (names the tree).
    """
    traj = measured_paths(trajectories, methods)
    trees: list[Tree] = []
    for (study, dataset, seed), grp in traj.groupby(["study", "dataset", "seed"], sort=True):
        paths: dict[tuple[str, int], pd.DataFrame] = {}
        for (m, k), rows in grp.groupby(["method", "intervention_epoch"], sort=True):
            paths[(str(m), int(k))] = rows.sort_values("epoch").reset_index(drop=True)
        if ("base", 0) not in paths:
            continue
        trunk = paths[("base", 0)]
        e = trunk["energy_cum_j"].to_numpy(dtype=float)
        if not np.all(np.isfinite(e)):
            raise ValueError(
                f"tree {(study, dataset, seed)}: trunk energy has missing values; "
                "paths need energy on every epoch (check energy_total_j)"
            )
        last = int(trunk["epoch"].max())
        if decision_epochs is None:
            dec = sorted({0} | {int(k) for (m, k) in paths if m != "base"})
        else:
            dec = sorted({int(x) for x in decision_epochs})
        trees.append(
            Tree(
                study=str(study),
                dataset=str(dataset),
                seed=int(seed),
                paths=paths,
                decision_epochs=tuple(d for d in dec if 0 <= d < last),
                last_epoch=last,
                dataset_info=_info(trunk),
            )
        )
    if not trees:
        raise ValueError("no tree with a trunk (method 'base') in the records")
    return trees


def saved_pct(energy_j: float, ref_energy_j: float) -> float:
    """Energy saved against the reference in percent: ``(1 - energy / ref) * 100``."""
    if not (ref_energy_j > 0) or not math.isfinite(energy_j):
        return math.nan
    return (1.0 - energy_j / ref_energy_j) * 100.0
