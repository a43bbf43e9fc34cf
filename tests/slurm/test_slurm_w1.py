"""Case W1: SLURM job status without accounting, with fake SLURM commands on PATH.

One training job (the first trunk segment of digits, seed 0) goes through the real workflow and the
real profiles/slurm; sacct answers "Slurm accounting storage is disabled" (exit 1) as on
a cluster without slurmdbd. Expected (docs/slurm.md): the pre-flight check either
switches the plugin to squeue, or stops before any sbatch with a message naming the
setting; no job is recorded as failed or succeeded on empty status output; nothing
waits forever (every run here has a hard timeout).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from slurm_helpers import REPO, run_snakemake, tiny_config, write_config, write_fake_slurm

pytestmark = pytest.mark.slow

TARGET = "results/slurm_ci/checkpoints/digits/seed0/trunk_e1.pt"
#: Every output of that job (the fake sbatch creates them: the "job" ran).
OUTPUTS = (TARGET, "results/slurm_ci/records/digits/seed0/base_e1.parquet")


def run_w1(tmp_path: Path, timeout_s: float = 90, fast: bool = True, **fake_env: str):
    """Submit the first trunk-segment job with the fake SLURM; return (process, calls, seconds).

    ``fast``: first status query after 1 s (else the profile's 40 s), output wait 1 s.
    """
    work = tmp_path / "work"
    (work / "results" / "slurm_ci" / "data").mkdir(parents=True)
    (work / "results" / "slurm_ci" / "data" / "digits.npz").write_bytes(
        b""
    )  # input exists: no prep
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    state = tmp_path / "fake"
    state.mkdir()
    bin_dir = write_fake_slurm(tmp_path / "bin")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_SLURM_DIR": str(state),
        "FAKE_TOUCH": " ".join(str(work / o) for o in OUTPUTS),
        **fake_env,
    }
    t0 = time.monotonic()
    proc = run_snakemake(
        [
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(cfg),
            # The plugin's default on a machine where the sacct binary exists.
            "--slurm-status-command",
            "sacct",
            *(
                ["--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "1"]
                if fast
                else []
            ),
            TARGET,
        ],
        cwd=REPO,
        env=env,
        timeout_s=timeout_s,
    )
    seconds = time.monotonic() - t0
    log = state / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls, seconds


def test_w1_switches_to_squeue_and_waits_for_a_real_state(tmp_path):
    # MinJobAge 300 s: squeue can follow the jobs. squeue first does not list the job
    # (empty output), then reports it COMPLETED.
    proc, calls, seconds = run_w1(tmp_path, FAKE_MIN_JOB_AGE="300", FAKE_SQUEUE_EMPTY="1")
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:]
    assert "greenpath SLURM pre-flight: status via squeue" in out
    assert "accounting storage is disabled" in out
    sbatch = [c for c in calls if c.startswith("sbatch ")]
    assert len(sbatch) == 1, calls
    # Status came from squeue --states=all, never from sacct (only the probe asked sacct).
    status_sacct = [c for c in calls if c.startswith("sacct ") and "JobIdRaw,State" in c]
    assert all("greenpath-preflight-probe" in c for c in status_sacct), calls
    squeue = [c for c in calls if c.startswith("squeue ")]
    assert all("--states=all" in c for c in squeue), squeue
    # Empty output first: the job was not recorded then; a second query saw COMPLETED.
    assert len(squeue) >= 2, calls
    assert out.count("Finished jobid") == 1
    assert "Error in rule" not in out
    assert (tmp_path / "work" / TARGET).exists()
    assert seconds < 80


@pytest.mark.parametrize(
    ("min_job_age", "expected"),
    [
        (None, "MinJobAge (unknown"),  # scontrol fails: MinJobAge unknown
        ("100", "slurm-init-seconds-before-status-checks: 33"),  # 100 < 3 x 40
        ("150", "MinJobAge >= 180"),  # jobs could vanish between two polls
    ],
)
def test_w1_stops_before_submitting(tmp_path, min_job_age, expected):
    extra = {"FAKE_MIN_JOB_AGE": min_job_age} if min_job_age else {}
    # The profile's own init-seconds-before-status-checks (40 s): threshold 3 x 40 = 120 s.
    proc, calls, seconds = run_w1(tmp_path, timeout_s=60, fast=False, **extra)
    out = proc.stdout
    assert proc.returncode not in (0, 124), out[-4000:]
    assert "SLURM pre-flight check failed" in out, out[-4000:]
    assert "Nothing was submitted" in out
    assert expected in out.replace("\n", " "), out[-4000:]
    assert not [c for c in calls if c.startswith("sbatch ")], calls
    assert not (tmp_path / "work" / TARGET).exists()
    assert seconds < 50
