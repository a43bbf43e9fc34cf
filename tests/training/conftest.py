"""Fixtures for the training tests (helpers live in training_helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from training_helpers import FakeMeter, digits_dataset, make_config

from greenpath.data.prepared import save_prepared


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def digits_npz(tmp_path: Path) -> Path:
    return save_prepared(digits_dataset(), tmp_path / "prepared" / "digits.npz")


@pytest.fixture
def config() -> dict[str, Any]:
    return make_config()


@pytest.fixture
def meter() -> FakeMeter:
    return FakeMeter()
