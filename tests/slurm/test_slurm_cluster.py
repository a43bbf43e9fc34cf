"""Against a real single-node SLURM on localhost (issue 6): needs root and apt-get.

Two Snakemake runs share the cluster at the same time, to stay well under 5 minutes
(SLURM enforces a time limit only in whole minutes, checked every 30 s):

* a Snakefile whose rule ``flaky`` fails on its first run and whose rule ``slow`` outlives
  its 1-minute limit (started first, by the ``flaky_run`` fixture);
* the real workflow on a tiny config (digits subset, 1 seed, 2 epochs, interventions 0
  and 1), through ``--profile profiles/slurm``.

Each Snakemake is a direct child under ``timeout -s INT`` (never a shell's background
job, which would ignore SIGINT). Run alone: ``pytest -m slurm tests/slurm``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from slurm_helpers import REPO, run_snakemake, start_snakemake, tiny_config, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = str(REPO / "profiles" / "slurm")
#: Overrides of the profile for a small CI machine: first status query after 1 s, 5 s
#: to wait for output files (local disk), 1 GB per training job instead of 4 GB.
FAST = ["--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5"]
SMALL_MEM = [
    "--set-resources",
    "train_trunk:mem_mb=1000",
    "train_branch:mem_mb=1000",
]
TRAINING_RULES = ("train_trunk", "train_branch")

SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)|SLURM job ID (\d+)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def submitted_ids(output: str) -> list[str]:
    """SLURM job ids (array: the parent id) Snakemake reports having submitted, in order."""
    return [a or b for a, b in SUBMITTED.findall(output)]


def cluster_env(cluster) -> dict[str, str]:
    env = cluster.env()
    env["GREENPATH_SLURM_PARTITION"] = ""
    env["GREENPATH_SLURM_ACCOUNT"] = ""
    return env


FLAKY_SNAKEFILE = textwrap.dedent(
    """\
    rule all:
        input:
            "out/a.txt",
            "out/b.txt",
            "out/flaky.txt",


    rule ok:
        output:
            "out/{name}.txt",
        wildcard_constraints:
            name="a|b",
        resources:
            mem_mb=200,
        shell:
            "echo $SLURM_JOB_ID > {output}"


    # Fails on its first run only (a marker file remembers that it ran).
    rule flaky:
        output:
            "out/flaky.txt",
        log:
            "logs/flaky.log",
        resources:
            mem_mb=200,
        shell:
            "if [ ! -e flaky.marker ]; then touch flaky.marker; "
            "echo 'flaky: failing on purpose' > {log}; exit 3; fi; "
            "echo $SLURM_JOB_ID > {output}"


    # Sleeps past its 1-minute SLURM time limit.
    rule slow:
        output:
            "out/slow.txt",
        log:
            "logs/slow.log",
        resources:
            runtime=1,
            mem_mb=100,
        shell:
            "echo 'slow: started' > {log}; sleep 600; touch {output}"
    """
)


@dataclass
class Background:
    workdir: Path
    proc: subprocess.Popen
    log: Path

    def wait(self, timeout_s: float) -> str:
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            self.proc.stdout and self.proc.stdout.close()
        return self.log.read_text()


@pytest.fixture(scope="module")
def flaky_run(local_slurm, tmp_path_factory):
    """Start the fail-once/over-time Snakefile now; the test that needs it waits for it."""
    work = tmp_path_factory.mktemp("flaky")
    (work / "Snakefile").write_text(FLAKY_SNAKEFILE)
    log = work / "snakemake.out"
    proc = start_snakemake(
        ["--profile", PROFILE, *FAST, "all", "out/slow.txt"],
        work,
        cluster_env(local_slurm),
        timeout_s=270,
        log=log,
    )
    yield Background(work, proc, log)
    if proc.poll() is None:  # a failed test left it running: interrupt, then kill
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_tiny_workflow_runs_through_slurm(local_slurm, flaky_run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    t0 = time.monotonic()
    proc = run_snakemake(
        [
            "--profile",
            PROFILE,
            *FAST,
            *SMALL_MEM,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(cfg),
            # Targets after "--" (--configfile takes several values): the collection
            # stage (data -> training grid -> records), what runs on SLURM with GPUs.
            # The modeling stage needs >= 2 datasets and longer runs.
            "--",
            "results/slurm_ci/records.parquet",
            "results/slurm_ci/trajectories.parquet",
        ],
        cwd=REPO,
        env=cluster_env(local_slurm),
        timeout_s=240,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:] + "\n" + local_slurm.tail()
    assert "greenpath SLURM pre-flight: status via squeue" in out
    # Outputs: 8 epoch rows by hand: trunk epochs 1, 2; freeze and quant from k=0
    # (epochs 1, 2) and from k=1 (epoch 2).
    records = pd.read_parquet(work / "results" / "slurm_ci" / "records.parquet")
    assert len(records) == 8, records
    assert (work / "results" / "slurm_ci" / "trajectories.parquet").stat().st_size > 0
    # Every training job ran as a SLURM job of this run and COMPLETED there.
    run_id = RUN_ID.search(out).group(1)
    ours = {j: s for j, (name, s) in local_slurm.jobs().items() if name == run_id}
    assert len(ours) == 6, ours  # 2 trunk segments, 4 branches
    assert set(ours.values()) == {"COMPLETED"}, ours
    assert {j.split("_")[0] for j in ours} == set(submitted_ids(out))
    # Data preparation and aggregation ran on the "login node", not through sbatch.
    assert re.search(r"^localrule prepare_dataset:", out, re.M)
    assert re.search(r"^localrule aggregate:", out, re.M)
    assert not re.search(r"^rule (prepare_dataset|aggregate):", out, re.M)
    for rule in TRAINING_RULES:
        assert re.search(rf"^rule {rule}:", out, re.M), rule
    print(f"tiny workflow through SLURM: {time.monotonic() - t0:.0f} s")


def test_failure_and_timeout_reported_then_rerun_resubmits_only_missing(local_slurm, flaky_run):
    work = flaky_run.workdir
    out = flaky_run.wait(timeout_s=300)
    assert flaky_run.proc.returncode not in (0, 124), out[-4000:]  # failed, did not hang
    ids = submitted_ids(out)
    assert len(ids) == 4, out[-4000:]  # a, b, flaky, slow: one sbatch each
    # Snakemake reports both failures with the SLURM state.
    assert "Error in rule flaky" in out and "SLURM status is: 'FAILED'" in out, out[-4000:]
    assert "Error in rule slow" in out and "SLURM status is: 'TIMEOUT'" in out, out[-4000:]
    # The other jobs finished (keep-going), inside SLURM jobs.
    for name in ("a", "b"):
        assert (work / "out" / f"{name}.txt").read_text().strip() in ids
    assert not (work / "out" / "flaky.txt").exists()
    # Logs of failed jobs are kept: the rules' logs and SLURM's job logs.
    assert (work / "logs" / "flaky.log").read_text().strip() == "flaky: failing on purpose"
    assert (work / "logs" / "slow.log").read_text().strip() == "slow: started"
    slurm_logs = work / ".snakemake" / "slurm_logs"
    flaky_logs = list((slurm_logs / "rule_flaky").rglob("*.log"))
    slow_logs = list((slurm_logs / "rule_slow").rglob("*.log"))
    assert len(flaky_logs) == 1 and len(slow_logs) == 1, list(slurm_logs.rglob("*"))
    assert "DUE TO TIME LIMIT" in slow_logs[0].read_text()
    assert not (slurm_logs / "rule_ok").exists() or not list(
        (slurm_logs / "rule_ok").rglob("*.log")
    )
    # SLURM itself recorded these end states.
    states = local_slurm.jobs()
    assert sorted(states[j][1] for j in ids) == ["COMPLETED", "COMPLETED", "FAILED", "TIMEOUT"]

    # Rerun: only the missing output is resubmitted (slow is not a target this time).
    second = run_snakemake(
        ["--profile", PROFILE, *FAST, "all"], work, cluster_env(local_slurm), timeout_s=120
    )
    assert second.returncode == 0, second.stdout[-4000:]
    new_ids = submitted_ids(second.stdout)
    assert len(new_ids) == 1, second.stdout[-4000:]
    assert re.search(r"^rule flaky:", second.stdout, re.M)
    assert not re.search(r"^rule ok:", second.stdout, re.M)
    assert (work / "out" / "flaky.txt").read_text().strip() == new_ids[0]
    assert local_slurm.jobs()[new_ids[0]][1] == "COMPLETED"
