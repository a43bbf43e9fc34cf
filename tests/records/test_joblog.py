"""A failing job writes its error to its own log file (the aggregate step as the example)."""

from __future__ import annotations

import logging
import runpy
import types
from pathlib import Path

import pytest

from greenpath.joblog import job_log
from greenpath.records import RecordsError

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_job_log_writes_the_error_and_reraises(tmp_path):
    log_file = tmp_path / "logs" / "job.log"
    with pytest.raises(ValueError, match="bad value"), job_log(log_file):
        logging.getLogger("greenpath.test").info("started")
        raise ValueError("bad value 7")
    text = log_file.read_text()
    assert "started" in text
    assert "job failed: ValueError: bad value 7" in text and "Traceback" in text


def test_unreadable_job_parquet_in_aggregate_reaches_its_log(tmp_path):
    bad = tmp_path / "records" / "digits" / "seed0" / "base_e10.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet at all")
    log_file = tmp_path / "logs" / "aggregate.log"
    smk = types.SimpleNamespace(
        input=[str(bad)],
        output=types.SimpleNamespace(
            records=str(tmp_path / "records.parquet"),
            trajectories=str(tmp_path / "trajectories.parquet"),
        ),
        params=types.SimpleNamespace(stop_epochs=[3], epochs=10),
        rule="aggregate",
        log=[str(log_file)],
    )
    with pytest.raises(RecordsError):
        runpy.run_path(str(SCRIPTS / "aggregate.py"), init_globals={"snakemake": smk})
    text = log_file.read_text()
    assert "job failed: RecordsError" in text and str(bad) in text
    assert "not a readable Parquet file" in text
    assert not (tmp_path / "records.parquet").exists()
