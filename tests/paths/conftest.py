"""Fixtures for the paths tests: a hand-made toy tree and, when present, EAT-IT."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths_toy import toy_records

from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories

EATIT = Path(__file__).resolve().parents[2].parent / "shared" / "eatit"


@pytest.fixture
def toy_tree():
    return build_trees(build_trajectories(toy_records()))[0]


@pytest.fixture(scope="session")
def eatit_trees():
    if not (EATIT / "all_data.csv").is_file():
        pytest.skip(f"EAT-IT data absent: {EATIT}")
    from greenpath.modeling.eatit import import_eatit

    traj = build_trajectories(import_eatit(EATIT, energy="nvidia"))
    return traj, build_trees(traj)
