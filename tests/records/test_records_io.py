"""Record schema, atomic writes and schema-checked reads (issue 2 records, case P1, issue 7)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from greenpath.records import (
    RECORD_SCHEMA,
    RecordsError,
    read_records,
    write_records,
)


def _row(**kw):
    base = dict(
        study="s",
        dataset="digits",
        seed=0,
        model="small_cnn",
        method="base",
        intervention_epoch=0,
        epoch=1,
        status="ok",
        val_accuracy=0.5,
        energy_cpu_j=10.0,
        energy_total_j=10.0,
    )
    base.update(kw)
    return base


def test_p1_all_null_gpu_column_keeps_types(tmp_path):
    """Case P1: GPU run, CPU-only run (gpu energy all None), early-stopped 1-epoch run."""
    d = tmp_path / "runs"
    write_records([_row(energy_gpu_j=120.5, epoch=e) for e in (1, 2)], d / "a.parquet")
    write_records([_row(seed=1, energy_gpu_j=None, epoch=e) for e in (1, 2)], d / "b.parquet")
    write_records([_row(seed=2, method="freeze", intervention_epoch=0)], d / "c.parquet")
    for f in ("a", "b", "c"):
        sch = pq.read_schema(d / f"{f}.parquet")
        assert str(sch.field("energy_gpu_j").type) == "double"
        assert str(sch.field("epoch").type) == "int64"
        assert sch.metadata[b"greenpath.schema_version"] == b"2"
    both = pd.read_parquet(d)
    assert both["epoch"].dtype == np.int64
    assert both["energy_gpu_j"].dtype == np.float64
    assert len(both) == 5
    ds = pads.dataset(d).to_table()
    assert ds.schema.field("energy_gpu_j").type == RECORD_SCHEMA.field("energy_gpu_j").type
    df = read_records(d)
    assert df["epoch"].dtype == np.int64
    assert df["energy_gpu_j"].isna().sum() == 3
    assert df.loc[df.seed == 0, "energy_gpu_j"].tolist() == [120.5, 120.5]


def test_unknown_column_is_refused(tmp_path):
    with pytest.raises(RecordsError, match="energy_gpu_kwh"):
        write_records([_row(energy_gpu_kwh=1.0)], tmp_path / "x.parquet")
    assert not any(tmp_path.iterdir())


def test_missing_required_column_names_it(tmp_path):
    row = _row()
    del row["dataset"]
    with pytest.raises(RecordsError, match="'dataset'"):
        write_records([row], tmp_path / "x.parquet")


def test_reader_refuses_other_schema_version(tmp_path):
    p = tmp_path / "old.parquet"
    write_records([_row()], p)
    t = pq.read_table(p)
    t = t.replace_schema_metadata({b"greenpath.schema_version": b"0"})
    pq.write_table(t, p)
    with pytest.raises(RecordsError, match=r"old\.parquet.*version 0"):
        read_records(p)


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    """Issue 7: an OSError(ENOSPC) in the middle of a write leaves nothing behind."""
    import errno

    target = tmp_path / "r.parquet"
    write_records([_row()], target)
    before = target.read_bytes()

    real_write = pq.write_table

    def failing(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(RecordsError, match="No space left on device"):
        write_records([_row(epoch=2)], target)
    monkeypatch.setattr(pq, "write_table", real_write)
    assert sorted(os.listdir(tmp_path)) == ["r.parquet"]
    assert target.read_bytes() == before


def test_unwritable_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a dir")
        target = blocker / "sub" / "r.parquet"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "r.parquet"
    with pytest.raises(RecordsError, match="cannot write to directory"):
        write_records([_row()], target)


def test_written_files_follow_the_umask(tmp_path):
    """Atomic writes must not leave mkstemp's 0600 mode on shared results."""
    old = os.umask(0o022)
    try:
        p = write_records([_row()], tmp_path / "r.parquet")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644
