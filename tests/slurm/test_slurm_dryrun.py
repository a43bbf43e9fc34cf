"""`snakemake --profile profiles/slurm -n` on config/paper.yaml (issue 6, done-when 2).

Offline and without SLURM: a dry run builds the DAG only (no pre-flight, no sbatch).
Expected jobs, by hand from config/paper.yaml (12 datasets, 1 seed, 50 epochs,
interventions 0/10/20/30/40, methods freeze/quant/stop):
  train_trunk 12 x 5 segments (0-10, ..., 40-50) = 60;
  train_branch 12 x 2 trained methods x 5 intervention epochs = 120;
  prepare_dataset 12 (local rule, login node).
Training rules and the closed loop's live runs (control_run), which train too, ask for gpu=1
(training.device: cuda); no other job asks for a GPU.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml
from slurm_helpers import REPO, run_snakemake, tiny_config, write_config

GPU_RULES = {"train_trunk", "train_branch", "control_run"}
JOB_HEAD = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")


def parse_dry_run(output: str) -> list[tuple[str, bool, dict[str, str]]]:
    """(rule, is_local, resources) of every job block in Snakemake's dry-run output."""
    jobs: list[tuple[str, bool, dict[str, str]]] = []
    for line in output.splitlines():
        m = JOB_HEAD.match(line)
        if m:
            jobs.append((m.group(1), line.startswith("local"), {}))
            continue
        s = line.strip()
        if jobs and s.startswith("resources:"):
            for item in s[len("resources:") :].split(","):
                key, _, value = item.strip().partition("=")
                jobs[-1][2][key] = value
    return jobs


def dry_run(tmp_path, configfile) -> str:
    proc = run_snakemake(
        [
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(configfile),
            "--dry-run",
        ],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout_s=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_paper_dry_run_gpu_only_on_training_and_control_rules(tmp_path):
    out = dry_run(tmp_path, REPO / "config" / "paper.yaml")
    jobs = parse_dry_run(out)
    counts = Counter(rule for rule, _, _ in jobs)
    assert counts["train_trunk"] == 60
    assert counts["train_branch"] == 120
    assert counts["prepare_dataset"] == 12
    assert counts["control_closed_loop"] == 1
    assert counts["control_run"] == 12 * 2  # datasets x (controlled, full)
    for rule, _, res in jobs:
        if rule in GPU_RULES:
            assert res.get("gpu") == "1", (rule, res)
        else:
            assert "gpu" not in res, (rule, res)
        # The profile's defaults reach every job (sbatch -t / --mem).
        assert res.get("runtime") and res.get("mem_mb"), (rule, res)
    # (That prepare_dataset runs on the login node, not through sbatch, is checked
    # against a real cluster in test_slurm_cluster.py: a dry run prints no "localrule".)


@pytest.mark.slow
def test_cpu_config_asks_for_no_gpu(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    assert yaml.safe_load(cfg.read_text())["training"]["device"] == "cpu"
    jobs = parse_dry_run(dry_run(tmp_path, cfg))
    # digits, 1 seed, epochs 2, interventions 0 and 1: trunk 0-1 and 1-2,
    # branches freeze/quant at 0 and 1.
    counts = Counter(rule for rule, _, _ in jobs)
    assert (counts["train_trunk"], counts["train_branch"]) == (2, 4)
    assert "init_model" not in counts
    assert all("gpu" not in res for _, _, res in jobs)
