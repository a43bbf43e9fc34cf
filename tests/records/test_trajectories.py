"""Paths = trunk prefix + branch, cumulative energy (hand-worked)."""

from __future__ import annotations

import pandas as pd
import pytest

from greenpath.records import build_trajectories, to_table


def _tree():
    rows = []
    # trunk epochs 1..4, 10 J and 2 s each
    for e in range(1, 5):
        rows.append(
            dict(
                method="base",
                intervention_epoch=0,
                epoch=e,
                energy_total_j=10.0,
                duration_s=2.0,
                val_accuracy=0.1 * e,
            )
        )
    # freeze at k=2: epochs 3..4, 4 J and 1 s each
    for e in (3, 4):
        rows.append(
            dict(
                method="freeze",
                intervention_epoch=2,
                epoch=e,
                energy_total_j=4.0,
                duration_s=1.0,
                val_accuracy=0.25,
            )
        )
    df = pd.DataFrame(rows)
    for c, v in dict(study="s", dataset="d", seed=0, model="m", status="ok").items():
        df[c] = v
    return to_table(df).to_pandas()


def test_paths_and_cumulative_energy():
    traj = build_trajectories(_tree(), stop_epochs=[0, 2])
    paths = traj.groupby(["method", "intervention_epoch"])
    assert sorted(paths.groups) == [("base", 0), ("freeze", 2), ("stop", 2)]
    fr = paths.get_group(("freeze", 2)).sort_values("epoch")
    assert fr["epoch"].tolist() == [1, 2, 3, 4]
    assert fr["row_method"].tolist() == ["base", "base", "freeze", "freeze"]
    assert fr["energy_cum_j"].tolist() == [10.0, 20.0, 24.0, 28.0]
    assert fr["time_cum_s"].tolist() == [2.0, 4.0, 5.0, 6.0]
    st = paths.get_group(("stop", 2))
    assert st["epoch"].tolist() == [1, 2] and st["path_length"].iloc[0] == 2
    assert paths.get_group(("base", 0))["energy_cum_j"].iloc[-1] == 40.0


def test_branch_without_trunk_epoch_is_an_error():
    df = _tree()
    df = df[~((df.method == "base") & (df.epoch == 2))]
    with pytest.raises(ValueError, match="needs trunk epoch 2"):
        build_trajectories(df)
