"""A tiny finished workflow run (two offline datasets, one seed, 3 epochs) and helpers to
dry-run or rerun Snakemake on it with changed settings."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

#: The tiny study: 2 datasets x 1 seed; trunk segments 0-1, 1-3; branches freeze/quant at
#: k = 0 and 1; two predictors, the closed loop on.
TINY = {
    "study": "tiny",
    "data": {"root": "data", "download": False, "image_size": 8, "channels": 1},
    "datasets": {"digits": {}, "font_digits": {"per_class": 20}},
    "model": {"name": "small_cnn", "width": 4},
    "training": {"epochs": 3, "batch_size": 64, "device": "cpu", "num_threads": 1},
    "seeds": [0],
    "interventions": {"epochs": [0, 1], "methods": ["freeze", "quant", "stop"]},
    "methods": {"freeze": {"trainable": "last_layer"}},
    "modeling": {
        "predictors": ["persistence", "carbontracker"],
        "planner_predictor": "persistence",
        "eatit": {"src": None},
    },
    "control": {"enabled": True, "predictor": "persistence", "patience": 2},
}

JOB_HEAD = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")


def with_setting(config: dict, key: str, value) -> dict:
    """A copy of ``config`` with the dotted ``key`` set to ``value``."""
    out = copy.deepcopy(config)
    *path, last = key.split(".")
    node = out
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return out


def snakemake(workdir: Path, config: dict, *args: str, timeout_s: int = 1800):
    """Run Snakemake on ``workdir`` with ``config`` (written to workdir/config.yaml)."""
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(cfg), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)


def planned_jobs(output: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans, ``rule all`` left out."""
    jobs: list[list[str]] = []
    for line in output.splitlines():
        m = JOB_HEAD.match(line)
        if m:
            jobs.append([m.group(1), ""])
        elif jobs and line.strip().startswith("wildcards:"):
            jobs[-1][1] = line.strip()[len("wildcards:") :].strip()
    return {(r, w) for r, w in jobs if r != "all"}


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A workdir where the tiny study has run to the end (real jobs, CPU)."""
    work = tmp_path_factory.mktemp("finished")
    proc = snakemake(work, TINY, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of the finished run (files, times and Snakemake's metadata) to change."""
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst, symlinks=True)
    return dst
