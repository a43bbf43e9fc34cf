"""Per-epoch records: the Parquet schema, atomic writing, reading and training paths."""

from greenpath.records.io import (
    RecordsError,
    atomic_path,
    finite_or_none,
    json_ready,
    read_metadata,
    read_records,
    to_table,
    write_json,
    write_records,
)
from greenpath.records.schema import (
    KEY_COLUMNS,
    METHODS,
    PATH_COLUMNS,
    RECORD_SCHEMA,
    SCHEMA_VERSION,
)
from greenpath.records.trajectories import build_trajectories, measured_paths

__all__ = [
    "KEY_COLUMNS",
    "METHODS",
    "PATH_COLUMNS",
    "RECORD_SCHEMA",
    "SCHEMA_VERSION",
    "RecordsError",
    "atomic_path",
    "build_trajectories",
    "finite_or_none",
    "json_ready",
    "measured_paths",
    "read_metadata",
    "read_records",
    "to_table",
    "write_json",
    "write_records",
]
