"""Settings are inputs: a single-setting change reruns exactly the jobs that read it and
everything downstream of them (Snakemake's params trigger), nothing else."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TINY, planned_jobs, snakemake, with_setting

pytestmark = pytest.mark.slow

STUDY = "study=tiny"
DATASETS = ("digits", "font_digits")


def trunk(d):
    return {("train_trunk", f"dataset={d}, seed=0, end={e}") for e in (1, 3)}


def branches(d, methods=("freeze", "quant")):
    return {
        ("train_branch", f"dataset={d}, seed=0, method={m}, k={k}") for m in methods for k in (0, 1)
    }


def prepare(d):
    return {("prepare_dataset", f"dataset={d}")}


FITS = {("fit_tiny", f"predictor={p}") for p in ("persistence", "carbontracker")}
REPORT = {("report_figures", STUDY)}
TABLE = {("control_closed_loop", "")}
LIVE = {
    ("control_run", f"dataset={d}, seed=0, kind={k}")
    for d in DATASETS
    for k in ("controlled", "full")
}
CALIBRATION = {("control_calibrate", f"dataset={d}") for d in DATASETS}
# a live pair (controlled run and its full reference) is measured again together
PATHS = {("paths", STUDY)} | CALIBRATION | LIVE | TABLE | REPORT
MODELING = {("aggregate", ""), ("evaluate", STUDY)} | FITS | PATHS | LIVE
ALL_TRAINING = set().union(*(trunk(d) | branches(d) for d in DATASETS))

CASES = {
    "training.lr": (0.002, ALL_TRAINING | MODELING),
    "training.num_threads": (2, ALL_TRAINING | MODELING),
    "data.image_size": (10, prepare("digits") | prepare("font_digits") | ALL_TRAINING | MODELING),
    "datasets.font_digits.per_class": (
        30,
        prepare("font_digits") | trunk("font_digits") | branches("font_digits") | MODELING,
    ),
    "methods.freeze.trainable": (
        "last_block",
        branches("digits", ["freeze"]) | branches("font_digits", ["freeze"]) | MODELING,
    ),
    "modeling.tolerance": (0.02, PATHS),
    "control.patience": (3, TABLE),
    "report.title": ("tiny, retitled", REPORT),
}


def test_no_change_nothing_to_be_done(finished_run):
    proc = snakemake(finished_run, TINY, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert planned_jobs(proc.stdout) == set()


@pytest.mark.parametrize("key", list(CASES))
def test_single_setting_change_plans_exactly_its_jobs(finished_run, key):
    value, expected = CASES[key]
    proc = snakemake(finished_run, with_setting(TINY, key, value), "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = planned_jobs(proc.stdout)
    assert planned == expected, (
        f"{key}: unexpected {sorted(planned - expected)}, missing {sorted(expected - planned)}"
    )


def test_more_epochs_rerun_every_segment_and_branch_to_the_new_end(run_copy):
    changed = with_setting(TINY, "training.epochs", 4)
    dry = snakemake(run_copy, changed, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    planned = planned_jobs(dry.stdout)
    for d in DATASETS:
        assert {("train_trunk", f"dataset={d}, seed=0, end={e}") for e in (1, 4)} <= planned
        assert branches(d) <= planned
    proc = snakemake(run_copy, changed, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    traj = pd.read_parquet(run_copy / "results/tiny/trajectories.parquet")
    ends = traj[traj["method"] != "stop"].groupby(
        ["dataset", "seed", "method", "intervention_epoch"]
    )
    assert ends.ngroups == 2 * (1 + 4)
    assert set(ends["epoch"].max()) == {4}
    records = pd.read_parquet(run_copy / "results/tiny/records.parquet")
    assert records["config_hash"].str.split(".").str[0].nunique() == 1
    again = snakemake(run_copy, changed, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
