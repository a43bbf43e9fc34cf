"""Training paths: the trunk prefix plus one branch, with cumulative energy and time.

A *path* is what a user who took one decision would have trained (paper, section 3):

- ``base`` (intervention 0): the full trunk, epochs 1..E;
- ``freeze``/``quant`` at intervention epoch k: trunk epochs 1..k, then the branch's
  epochs k+1..E;
- ``stop`` at k >= 1: trunk epochs 1..k and nothing after (early stopping at k).
  ``stop`` at k = 0 would train nothing and is not a path.

Cumulative columns follow the paper's ``energy_nvidia_cumulative`` (base prefix up to the
intervention + branch).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from greenpath.records.schema import PATH_COLUMNS

#: Columns added by :func:`build_trajectories`.
TRAJECTORY_EXTRA_COLUMNS: tuple[str, ...] = (
    "row_method",
    "energy_cum_j",
    "time_cum_s",
    "path_length",
)


def build_trajectories(
    records: pd.DataFrame,
    stop_epochs: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Assemble every path of every (study, dataset, seed) tree from per-epoch records.

    Args:
        records: per-epoch rows with the record schema (see ``docs/records.md``); must
            contain the trunk (``method == "base"``) for every tree that has branches.
        stop_epochs: intervention epochs at which to form ``stop`` paths. ``None``: every
            intervention epoch >= 1 that appears among the tree's branches.

    Returns:
        One row per (path, epoch). ``method`` and ``intervention_epoch`` identify the path;
        ``row_method`` is the method that produced the row (``base`` on the trunk prefix).
        ``energy_cum_j`` (J) and ``time_cum_s`` (s) accumulate ``energy_total_j`` and
        ``duration_s`` along the path (NaN stays NaN from there on). ``path_length`` is the
        path's last epoch.

    Raises:
        ValueError: a tree has branches but no trunk, or the trunk misses an epoch a
            branch needs (names the tree and the epoch).
    """
    out: list[pd.DataFrame] = []
    tree_cols = ["study", "dataset", "seed"]
    for tree_key, tree in records.groupby(tree_cols, sort=True):
        trunk = tree[tree["method"] == "base"].sort_values("epoch")
        branches = tree[tree["method"] != "base"]
        if trunk.empty:
            if branches.empty:
                continue
            raise ValueError(
                f"tree {dict(zip(tree_cols, tree_key, strict=True))} has branches but no trunk"
            )
        trunk_epochs = set(trunk["epoch"].tolist())
        paths: list[tuple[str, int, pd.DataFrame]] = [("base", 0, trunk)]
        for (method, k), br in branches.groupby(["method", "intervention_epoch"], sort=True):
            missing = [e for e in range(1, int(k) + 1) if e not in trunk_epochs]
            if missing:
                raise ValueError(
                    f"tree {dict(zip(tree_cols, tree_key, strict=True))}: branch {method}@{k} needs trunk "
                    f"epoch {missing[0]}, which is not in the records"
                )
            prefix = trunk[trunk["epoch"] <= k]
            paths.append((str(method), int(k), pd.concat([prefix, br.sort_values("epoch")])))
        if stop_epochs is None:
            stops = sorted({int(k) for k in branches["intervention_epoch"] if int(k) >= 1})
        else:
            stops = sorted({int(k) for k in stop_epochs if int(k) >= 1})
        for k in stops:
            if not (branches["method"].eq("stop") & branches["intervention_epoch"].eq(k)).any():
                if k in trunk_epochs:
                    paths.append(("stop", k, trunk[trunk["epoch"] <= k]))
        for method, k, rows in paths:
            rows = rows.sort_values("epoch").copy()
            rows["row_method"] = rows["method"]
            rows["method"] = method
            rows["intervention_epoch"] = k
            rows["energy_cum_j"] = rows["energy_total_j"].astype("float64").cumsum(skipna=False)
            rows["time_cum_s"] = rows["duration_s"].astype("float64").cumsum(skipna=False)
            rows["path_length"] = int(rows["epoch"].max())
            out.append(rows)
    if not out:
        cols = list(records.columns) + list(TRAJECTORY_EXTRA_COLUMNS)
        return pd.DataFrame(columns=cols)
    traj = pd.concat(out, ignore_index=True)
    traj = traj.sort_values([*PATH_COLUMNS, "epoch"], kind="stable").reset_index(drop=True)
    traj["energy_cum_j"] = traj["energy_cum_j"].astype(np.float64)
    return traj


def measured_paths(
    trajectories: pd.DataFrame, methods: Iterable[str] = ("base", "freeze", "quant")
) -> pd.DataFrame:
    """The rows of the trained paths that the path stage compares: ``ok`` epochs of the
    trunk and of the ``methods`` branches, for trees that have a trunk.

    A row whose ``status`` is not ``ok`` (a diverged epoch, a skipped branch) is no outcome
    and is dropped. ``energy_cum_j`` is kept as :func:`build_trajectories` wrote it: a
    diverged epoch stops its job and a skipped branch trains nothing, so such a row is the
    last of its path and the cumulative energy of the rows kept does not include it.

    Args:
        trajectories: :func:`build_trajectories` output (``trajectories.parquet``).
        methods: path methods to keep (``stop`` paths are read from the trunk).

    Raises:
        ValueError: the table is not a trajectories table (records passed instead).
    """
    missing = [c for c in TRAJECTORY_EXTRA_COLUMNS if c not in trajectories.columns]
    if missing:
        raise ValueError(
            f"not a trajectories table (no column {missing[0]!r}): pass the study's "
            "trajectories.parquet (written by the aggregate or import_eatit rule), "
            "not its records"
        )
    traj = trajectories
    if "status" in traj.columns:
        traj = traj[traj["status"].fillna("ok") == "ok"]
    traj = traj[traj["method"].isin(set(methods))]
    has_trunk = (
        traj["method"]
        .eq("base")
        .groupby([traj["study"], traj["dataset"], traj["seed"]])
        .transform("any")
    )
    return traj[has_trunk]
