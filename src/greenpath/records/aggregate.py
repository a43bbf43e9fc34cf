"""Combine per-job records files into ``records.parquet`` and ``trajectories.parquet``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from greenpath.records.io import RecordsError, atomic_path, read_records, write_records
from greenpath.records.schema import KEY_COLUMNS, SCHEMA_VERSION, SCHEMA_VERSION_KEY
from greenpath.records.trajectories import build_trajectories


def combine_records(files: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read per-job records files, check that no (path, epoch) key appears twice.

    Raises:
        RecordsError: a file is unreadable or of another schema version, or two files
            hold the same key (names the first duplicate).
    """
    df = read_records(list(files))
    dup = df.duplicated(list(KEY_COLUMNS), keep=False)
    if dup.any():
        first = df.loc[dup, list(KEY_COLUMNS)].iloc[0].to_dict()
        raise RecordsError(f"duplicate record key across job files: {first}")
    return df


def write_trajectories(traj: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a trajectories table atomically, with the record schema version in metadata."""
    table = pa.Table.from_pandas(traj, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[SCHEMA_VERSION_KEY] = str(SCHEMA_VERSION).encode()
    table = table.replace_schema_metadata(meta)
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise RecordsError(f"could not write {path}: {exc.strerror or exc}") from exc
    return Path(path)


def aggregate(
    files: Sequence[str | os.PathLike[str]],
    records_out: str | os.PathLike[str],
    trajectories_out: str | os.PathLike[str],
    stop_epochs: Iterable[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write all rows to ``records_out`` and every path to ``trajectories_out``.

    Args:
        files: per-job records files.
        stop_epochs: intervention epochs of the ``stop`` method (``[]`` when the config
            has no ``stop``; ``None`` derives them from the branches present).

    Returns:
        (records, trajectories) DataFrames as written.
    """
    records = combine_records(files)
    traj = build_trajectories(records, stop_epochs=stop_epochs)
    write_records(records, records_out)
    write_trajectories(traj, trajectories_out)
    return records, traj
