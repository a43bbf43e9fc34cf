"""Fixtures for tests/modeling: tiny hand-made trees of training paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from modeling_toy import make_records

from greenpath.records import build_trajectories


@pytest.fixture
def toy_records() -> pd.DataFrame:
    return make_records()


@pytest.fixture
def toy_traj(toy_records) -> pd.DataFrame:
    return build_trajectories(toy_records)


@pytest.fixture(scope="session")
def eatit_dir() -> Path:
    """The shared EAT-IT copy (``<repo>/../shared/eatit``); skip when absent."""
    p = Path(__file__).resolve().parents[2].parent / "shared" / "eatit"
    if not (p / "all_data.csv").is_file():
        pytest.skip(f"EAT-IT data absent: {p}")
    return p
