"""Fixtures for the SLURM tests: repository paths, a tiny config, a local cluster."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from slurm_helpers import (
    REPO,
    ClusterUnavailable,
    LocalSlurm,
    install_packages,
    remove_leftover_conf,
    why_not_runnable,
)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory):
    """A running single-node SLURM cluster on localhost (skips where it cannot run).

    Set GREENPATH_REQUIRE_SLURM=1 (CI) to turn the skip into a failure.
    """
    required = os.environ.get("GREENPATH_REQUIRE_SLURM") == "1"
    if os.name == "posix" and os.geteuid() == 0:
        removed = remove_leftover_conf()
        if removed:
            warnings.warn(removed, stacklevel=1)
    reason = why_not_runnable()
    if reason is None and not shutil.which("setpriv"):
        reason = "setpriv (util-linux) missing; needed to run munged as user munge"
    if reason is None:
        try:
            install_packages()
        except ClusterUnavailable as exc:
            reason = str(exc)
    if reason is not None:
        if required:
            pytest.fail(f"local SLURM cluster required but unavailable: {reason}")
        pytest.skip(f"local SLURM cluster unavailable: {reason}")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_collection_modifyitems(config, items):
    """Real-cluster tests (marker ``slurm``) run only when asked for.

    They take about 3 minutes and change system state while they run (daemons,
    /etc/slurm/slurm.conf), so they run with ``-m slurm`` (``.ci/slurm_test.sh``) or
    GREENPATH_SLURM_TESTS=1, and are skipped with that hint otherwise.
    """
    markexpr = getattr(config.option, "markexpr", "") or ""
    asked = ("slurm" in markexpr and "not slurm" not in markexpr) or os.environ.get(
        "GREENPATH_SLURM_TESTS"
    ) == "1"
    if asked:
        return
    skip = pytest.mark.skip(
        reason="real SLURM cluster test (~3 min, root): run `.ci/slurm_test.sh` or "
        "`pytest -m slurm tests/slurm`, or set GREENPATH_SLURM_TESTS=1"
    )
    for item in items:
        if "slurm" in item.keywords and item.get_closest_marker("slurm") is not None:
            item.add_marker(skip)
