"""Atomic Parquet writing and schema-checked reading of per-epoch records.

Writers go through :func:`write_records`, which casts rows to :data:`RECORD_SCHEMA`
(missing columns become typed nulls, never Arrow ``null`` type; case P1), writes to a
temporary file in the target directory, flushes and fsyncs it, then renames it over the
target (issue 7: nothing half-written). Readers go through :func:`read_records`, which
refuses files whose schema version does not match :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from greenpath.records.schema import (
    KEY_COLUMNS,
    RECORD_SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
)


class RecordsError(Exception):
    """A records file is missing, unreadable, or does not match the schema."""


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The temporary file lives in the same directory (so the final ``os.replace`` is an
    atomic rename on POSIX filesystems). On any exception, including ``OSError`` for a
    full disk, the temporary file is removed and ``path`` is left untouched.

    Raises:
        RecordsError: the target directory cannot be created or written (names it).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise RecordsError(
            f"cannot write to directory {path.parent}: {exc.strerror or exc}. "
            "Check that it exists, is writable and that the disk is not full."
        ) from exc
    os.close(fd)
    # mkstemp creates 0600; give the final file the usual umask-based mode (0644 with
    # umask 022) so results stay readable on shared clusters.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def to_table(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    schema: pa.Schema = RECORD_SCHEMA,
) -> pa.Table:
    """Cast rows to ``schema``: fill missing nullable columns with typed nulls.

    Args:
        rows: a DataFrame or a sequence of dicts keyed by column name. Extra columns not
            in the schema are an error (they would be silently lost otherwise).

    Returns:
        A ``pyarrow.Table`` with exactly ``schema`` (order, types, metadata).
        ``schema_version`` is filled in when absent.

    Raises:
        RecordsError: unknown columns, a missing non-nullable column, or a value that
            cannot be cast (the message names the column).
    """
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = sorted(set(df.columns) - set(schema.names))
    if unknown:
        raise RecordsError(
            f"columns not in the record schema: {unknown}; see docs/records.md for the schema"
        )
    if "schema_version" in schema.names and "schema_version" not in df.columns:
        df["schema_version"] = SCHEMA_VERSION
    arrays = []
    n = len(df)
    for field in schema:
        if field.name not in df.columns:
            if not field.nullable:
                raise RecordsError(f"required column {field.name!r} is missing")
            arrays.append(pa.nulls(n, type=field.type))
            continue
        col = df[field.name]
        try:
            if pa.types.is_timestamp(field.type):
                col = pd.to_datetime(col, utc=True)
            arr = pa.array(col, type=field.type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise RecordsError(
                f"column {field.name!r} cannot be cast to {field.type}: {exc}"
            ) from exc
        if not field.nullable and arr.null_count:
            raise RecordsError(f"column {field.name!r} has {arr.null_count} null value(s)")
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def write_records(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    schema: pa.Schema = RECORD_SCHEMA,
) -> Path:
    """Write per-epoch rows to ``path`` as Parquet, atomically, with the record schema.

    Args:
        rows: rows to write (see :func:`to_table`); may be empty.
        path: target ``.parquet`` file; parent directories are created.
        metadata: extra key/value strings stored in the Parquet file metadata under
            ``greenpath.<key>`` (keys already starting with ``greenpath.`` are kept as
            they are), e.g. the meter configuration.

    Returns:
        The path written.

    Raises:
        RecordsError: bad rows, or the directory is not writable / the disk is full; in
            every case no partial file is left at ``path`` or beside it.
    """
    table = to_table(rows, schema)
    meta = dict(table.schema.metadata or {})
    for key, value in (metadata or {}).items():
        name = key if key.startswith("greenpath.") else f"greenpath.{key}"
        meta[name.encode()] = str(value).encode()
    table = table.replace_schema_metadata(meta)
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise RecordsError(
            f"could not write {path}: {exc.strerror or exc}. "
            "Free disk space or choose a writable results directory; nothing was written."
        ) from exc
    return Path(path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Return the ``greenpath.*`` Parquet metadata of one records file (prefix stripped)."""
    meta = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in meta.items():
        if k.startswith(b"greenpath."):
            out[k.decode()[len("greenpath.") :]] = v.decode()
    return out


def _check_version(path: Path, schema: pa.Schema) -> None:
    try:
        file_schema = pq.read_schema(path)
    except FileNotFoundError as exc:
        raise RecordsError(f"records file not found: {path}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise RecordsError(f"{path} is not a readable Parquet file: {exc}") from exc
    found = (file_schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    want = (schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    if found != want:
        raise RecordsError(
            f"{path} has record schema version "
            f"{found.decode() if found else 'none'}, this greenpath reads version "
            f"{want.decode() if want else 'none'}; re-create it with this version "
            "(delete it and rerun the workflow)"
        )


def read_records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    schema: pa.Schema = RECORD_SCHEMA,
) -> pd.DataFrame:
    """Read one or more records files into one DataFrame with the schema's dtypes.

    Args:
        paths: a file, a directory (every ``*.parquet`` below it), or an iterable of files.

    Returns:
        DataFrame with exactly the schema's columns; ``epoch`` and other int64 columns stay
        int64, energy columns float64 (NaN for nulls), sorted by the key columns.

    Raises:
        RecordsError: a file is missing, unreadable, or has another schema version
            (the message names the file).
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    tables = []
    for f in files:
        _check_version(f, schema)
        tables.append(pq.read_table(f, schema=schema))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    df = table.to_pandas()
    sort_cols = [c for c in KEY_COLUMNS if c in df.columns]
    if sort_cols and len(df):
        df = df.sort_values(sort_cols, kind="stable").reset_index(drop=True)
    return df
