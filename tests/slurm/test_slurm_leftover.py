"""A system slurm.conf left behind by a killed test cluster is cleared; others are kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_helpers
from slurm_helpers import TEST_CLUSTER, LocalSlurm, remove_leftover_conf

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)"
)


@pytest.fixture
def system_conf(tmp_path, monkeypatch) -> Path:
    """A stand-in for /etc/slurm/slurm.conf inside the test's folder."""
    path = tmp_path / "etc" / "slurm.conf"
    path.parent.mkdir()
    monkeypatch.setattr(slurm_helpers, "SYSTEM_CONF", path)
    return path


def _cluster_conf(tmp_path: Path, system_conf: Path) -> LocalSlurm:
    cluster = LocalSlurm(tmp_path / "cluster", cpus=1, mem_mb=1000)
    system_conf.write_text(cluster.slurm_conf_text())
    return cluster


def test_conf_of_a_stopped_test_cluster_is_removed_with_its_munge_dir(tmp_path, system_conf):
    cluster = _cluster_conf(tmp_path, system_conf)
    assert cluster.munge_dir.is_dir()

    message = remove_leftover_conf()

    assert message is not None and str(cluster.conf) in message
    assert not system_conf.exists()
    assert not cluster.munge_dir.exists()
    assert remove_leftover_conf() is None


def test_conf_in_use_by_a_running_daemon_is_kept(tmp_path, system_conf):
    cluster = _cluster_conf(tmp_path, system_conf)
    daemon = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-f", str(cluster.conf)]
    )
    # Popen returns once the child is forked; its command line is the daemon's after exec
    cmdline = Path(f"/proc/{daemon.pid}/cmdline")
    deadline = time.monotonic() + 20
    while str(cluster.conf).encode() not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert remove_leftover_conf() is None
        assert system_conf.exists()
    finally:
        daemon.kill()
        daemon.wait()
    assert remove_leftover_conf() is not None


def test_a_real_slurm_setup_is_left_alone(tmp_path, system_conf):
    cluster = _cluster_conf(tmp_path, system_conf)
    text = system_conf.read_text()
    system_conf.write_text(text.replace(f"ClusterName={TEST_CLUSTER}", "ClusterName=site"))

    assert remove_leftover_conf() is None
    assert system_conf.exists() and cluster.munge_dir.exists()
    shutil.rmtree(cluster.munge_dir)
