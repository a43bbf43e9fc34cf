"""Fixtures of the report tests (data built in report_data.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from report_data import make_records


@pytest.fixture
def records() -> pd.DataFrame:
    """Hand-made records: datasets alpha/beta, seeds 0/1, E = 4, k in {0, 2}."""
    return make_records()
