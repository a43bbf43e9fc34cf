"""The lean job entry point (python -m greenpath.training.job) with config-shaped settings."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pandas as pd
import pytest
from training_helpers import REPO, make_config, stable_columns

from greenpath.records import read_records
from greenpath.training.job import parse_settings
from greenpath.training.job import run_here as main

SECTIONS = ("study", "data", "datasets", "model", "training", "methods", "energy")


@pytest.fixture
def settings():
    cfg = make_config(epochs=3)
    cfg["energy"] = {"rapl": "off"}
    yield {k: cfg[k] for k in SECTIONS if k in cfg}
    logging.getLogger().handlers.clear()


def test_settings_as_json_or_dict_literal():
    assert parse_settings('{"training": {"epochs": 3, "lr": null}}') == {
        "training": {"epochs": 3, "lr": None}
    }
    assert parse_settings(str({"training": {"epochs": 3, "lr": None}})) == {
        "training": {"epochs": 3, "lr": None}
    }
    with pytest.raises(SystemExit, match="not a JSON object or dict literal"):
        parse_settings("[1, 2]")
    with pytest.raises(SystemExit, match="not a JSON object"):
        parse_settings("training: {epochs: 3}")


def test_trunk_from_epoch_0_then_branch_in_process(tmp_path, digits_npz, settings):
    common = ["--settings", json.dumps(settings), "--dataset", "digits", "--seed", "0",
              "--dataset-path", str(digits_npz)]  # fmt: skip
    log = tmp_path / "logs" / "t.log"
    assert main(["trunk", *common, "--start", "0", "--end", "2", "--in-checkpoint=",
                 "--out-checkpoint", str(tmp_path / "c2.pt"),
                 "--out-records", str(tmp_path / "t.parquet"), "--log", str(log)]) == 0  # fmt: skip
    assert read_records(tmp_path / "t.parquet")["epoch"].tolist() == [1, 2]
    assert "epoch 2/2" in log.read_text()
    assert main(["branch", *common, "--method", "quant", "--intervention-epoch", "2",
                 "--in-checkpoint", str(tmp_path / "c2.pt"),
                 "--out-records", str(tmp_path / "q.parquet")]) == 0  # fmt: skip
    q = read_records(tmp_path / "q.parquet")
    assert q["epoch"].tolist() == [3] and q["method"].tolist() == ["quant"]
    with pytest.raises(SystemExit, match="in_checkpoint"):
        main(["branch", *common, "--method", "freeze", "--intervention-epoch", "1",
              "--out-records", str(tmp_path / "f.parquet")])  # fmt: skip


@pytest.mark.parametrize("forkserver", ["1", "0"])
def test_module_entry_point_runs_a_job(tmp_path, digits_npz, settings, forkserver):
    """The workflow's command line in a fresh process, through the warm fork server or in
    the process itself: the same records as the job run in this test's process."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1",
               GREENPATH_FORKSERVER=forkserver)  # fmt: skip
    env.pop("SLURM_JOB_ID", None)
    args = ["branch", "--settings", json.dumps(settings), "--dataset", "digits", "--seed", "0",
            "--dataset-path", str(digits_npz), "--method", "freeze", "--intervention-epoch",
            "0", "--in-checkpoint="]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "greenpath.training.job", *args,
         "--out-records", str(tmp_path / "f.parquet"), "--log", str(tmp_path / "f.log")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = read_records(tmp_path / "f.parquet")
    assert rec["epoch"].tolist() == [1, 2, 3] and set(rec["method"]) == {"freeze"}
    assert "epoch 3/3" in (tmp_path / "f.log").read_text()
    assert main([*args, "--out-records", str(tmp_path / "here.parquet")]) == 0
    here = read_records(tmp_path / "here.parquet")
    cols = stable_columns(here)
    pd.testing.assert_frame_equal(rec[cols], here[cols])


def test_module_entry_point_exit_status(tmp_path, digits_npz, settings):
    """A failing job's status and message reach the caller through the fork server."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.run(
        [sys.executable, "-m", "greenpath.training.job", "branch", "--settings",
         json.dumps(settings), "--dataset", "digits", "--seed", "0", "--dataset-path",
         str(digits_npz), "--method", "freeze", "--intervention-epoch", "1",
         "--out-records", str(tmp_path / "f.parquet")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1 and "missing value 'in_checkpoint'" in proc.stderr
