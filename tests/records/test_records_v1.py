"""Records written by the previous schema version (1) still load, in the current meaning."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from greenpath.records import RECORD_SCHEMA, SCHEMA_VERSION, read_records, write_records
from greenpath.records.aggregate import aggregate

#: Columns version 2 added to version 1's layout.
ADDED_IN_V2 = {
    "energy_total_components",
    "energy_gpu_uncertain",
    "energy_cpu_uncertain",
    "energy_dram_uncertain",
}


def v1_schema() -> pa.Schema:
    """Version 1's layout: today's columns without those added in version 2."""
    fields = [f for f in RECORD_SCHEMA if f.name not in ADDED_IN_V2]
    return pa.schema(fields, metadata={b"greenpath.schema_version": b"1"})


def v1_row(epoch: int, gpu: float, gpu_source: str, cpu: float, dram: float, total: float):
    return {
        "schema_version": 1,
        "study": "s",
        "dataset": "digits",
        "seed": 0,
        "model": "small_cnn",
        "method": "base",
        "intervention_epoch": 0,
        "epoch": epoch,
        "status": "ok",
        "val_accuracy": 0.5 + epoch / 100,
        "duration_s": 1.0,
        "energy_gpu_j": gpu,
        "energy_cpu_j": cpu,
        "energy_dram_j": dram,
        "energy_total_j": total,
        "energy_gpu_source": gpu_source,
        "energy_cpu_source": "estimate",
        "energy_dram_source": "estimate",
        "energy_gpu_estimate": False,
        "energy_cpu_estimate": True,
        "energy_dram_estimate": True,
    }


def write_v1(path, rows) -> None:
    schema = v1_schema()
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    table = pa.table({n: pa.array(v, type=schema.field(n).type) for n, v in cols.items()})
    pq.write_table(table.cast(schema).replace_schema_metadata(schema.metadata), path)


def test_v1_file_reads_with_nulls_for_unmeasured_components(tmp_path):
    p = tmp_path / "v1.parquet"
    write_v1(
        p,
        [
            v1_row(1, 0.0, "absent", 10.0, 2.0, 12.0),  # CPU run: GPU stored as 0.0 J
            v1_row(2, math.nan, "nvml_counter", 5.0, 1.0, math.nan),  # MIG: NaN total
        ],
    )
    assert SCHEMA_VERSION == 2
    df = read_records(p)
    assert list(df.columns) == RECORD_SCHEMA.names
    assert df["energy_gpu_j"].isna().all()
    assert (df["energy_gpu_source"] == "absent").all()
    assert df["energy_total_j"].tolist() == [12.0, 6.0]
    assert df["energy_total_components"].tolist() == ["cpu,dram", "cpu,dram"]
    assert df["energy_cpu_uncertain"].isna().all()  # version 1 did not check
    assert (df["schema_version"] == 2).all() and str(df["epoch"].dtype) == "int64"


def test_v1_and_v2_files_aggregate_together(tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    write_v1(d / "old.parquet", [v1_row(1, 0.0, "absent", 10.0, 2.0, 12.0)])
    new = v1_row(2, math.nan, "absent", 4.0, 1.0, 5.0)
    new.update(schema_version=2, energy_total_components="cpu,dram")
    write_records([new], d / "new.parquet")
    records, traj = aggregate(
        [d / "old.parquet", d / "new.parquet"], tmp_path / "r.parquet", tmp_path / "t.parquet"
    )
    assert records["energy_total_j"].tolist() == [12.0, 5.0]
    assert traj["energy_cum_j"].tolist() == pytest.approx([12.0, 17.0])
    assert pq.read_schema(tmp_path / "r.parquet").metadata[b"greenpath.schema_version"] == b"2"
