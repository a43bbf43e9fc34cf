"""Atomic Parquet writing and schema-checked reading of per-epoch records.

Writers go through :func:`write_records`, which casts rows to :data:`RECORD_SCHEMA`
(missing columns become typed nulls, never Arrow ``null`` type), writes to a
temporary file in the target directory, flushes and fsyncs it, then renames it over the
target (nothing half-written). Readers go through :func:`read_records`, which reads the
current :data:`SCHEMA_VERSION` and upgrades files of an older readable version
(:func:`upgrade_v1`), and refuses any other version.
"""

from __future__ import annotations

import json
import math
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
    READABLE_VERSIONS,
    RECORD_SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
)

_COMPONENTS: tuple[str, ...] = ("gpu", "cpu", "dram")


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


def _json_scalar(obj: Any) -> Any:
    """``json.dumps`` ``default``: numpy scalars and arrays as Python values, paths as
    strings."""
    import numpy as np

    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite
    (a value that was not measured is null in JSON, never NaN)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def json_ready(obj: Any) -> Any:
    """``obj`` with NaN/infinite floats replaced by None, numpy scalars by Python values,
    tuples by lists and mapping keys by strings, ready for :func:`write_json`."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return finite_or_none(obj)
    return obj


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON to ``path`` through :func:`atomic_path` (nothing
    half-written). Numpy scalars and arrays become Python values, paths strings.

    Raises:
        ValueError: ``obj`` holds NaN or infinity (a value that was not measured is
            ``None``, written as null: convert it before writing).
        TypeError: a value JSON cannot hold.
        RecordsError: the directory cannot be written.
    """
    text = json.dumps(obj, indent=1, allow_nan=False, default=_json_scalar) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


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


def _file_version(path: Path, schema: pa.Schema) -> int:
    """The record schema version of ``path``: the schema's own, or an older readable one.

    Raises:
        RecordsError: missing or unreadable file, or a version this greenpath cannot read.
    """
    try:
        file_schema = pq.read_schema(path)
    except FileNotFoundError as exc:
        raise RecordsError(f"records file not found: {path}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise RecordsError(f"{path} is not a readable Parquet file: {exc}") from exc
    found = (file_schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    want = (schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    if found == want and want is not None:
        return int(want)
    older = schema is RECORD_SCHEMA and found is not None and found.decode().isdigit()
    if older and int(found) in READABLE_VERSIONS:
        return int(found)
    raise RecordsError(
        f"{path} has record schema version "
        f"{found.decode() if found else 'none'}, this greenpath reads version "
        f"{want.decode() if want else 'none'}"
        + (f" (and upgrades {list(READABLE_VERSIONS[:-1])})" if schema is RECORD_SCHEMA else "")
        + "; re-create it with this version (delete it and rerun the workflow)"
    )


def upgrade_v1(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of record schema version 1 in the current layout.

    Version 1 stored an unmeasured component as 0.0 J with source ``absent``, and an
    unreadable one as NaN under the source that failed; its total was the sum of all three
    (NaN when any was NaN). Now both are null with source ``absent``, and the total sums the
    components with a reading (``energy_total_components``). A version-1 total that is a
    number is kept (absent parts were 0.0 J in it); a NaN total becomes the sum of the
    components with a reading. ``energy_*_uncertain`` is null: version 1 did not check.

    Args:
        df: rows read from a version-1 file (its own columns).

    Returns:
        A new DataFrame with the current columns that :func:`to_table` accepts.
    """
    out = df.copy()
    have = pd.DataFrame(index=out.index)
    for c in _COMPONENTS:
        j, src = f"energy_{c}_j", f"energy_{c}_source"
        joules = pd.to_numeric(out[j], errors="coerce").astype("float64")
        source = out[src].astype("object")
        no_reading = source.eq("absent") | (joules.isna() & source.notna())
        out[j] = joules.mask(no_reading)
        out[src] = source.mask(no_reading & source.notna(), "absent")
        have[c] = out[j].notna()
        out[f"energy_{c}_uncertain"] = pd.Series(pd.NA, index=out.index, dtype="boolean")
    total = pd.to_numeric(out["energy_total_j"], errors="coerce").astype("float64")
    parts = out[[f"energy_{c}_j" for c in _COMPONENTS]]
    summed = parts.sum(axis=1, min_count=1)
    out["energy_total_j"] = total.where(total.notna(), summed)
    names = have.apply(lambda r: ",".join(c for c in _COMPONENTS if r[c]) or None, axis=1)
    out["energy_total_components"] = names.where(out["energy_total_j"].notna(), None)
    out["schema_version"] = SCHEMA_VERSION
    return out


def _read_one(path: Path, schema: pa.Schema) -> pa.Table:
    version = _file_version(path, schema)
    if version == SCHEMA_VERSION or schema is not RECORD_SCHEMA:
        return pq.read_table(path, schema=schema)
    return to_table(upgrade_v1(pq.read_table(path).to_pandas()), schema)


def read_records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    schema: pa.Schema = RECORD_SCHEMA,
) -> pd.DataFrame:
    """Read one or more records files into one DataFrame with the schema's dtypes.

    Args:
        paths: a file, a directory (every ``*.parquet`` below it), or an iterable of files.

    Returns:
        DataFrame with exactly the schema's columns; ``epoch`` and other int64 columns stay
        int64, energy columns float64 (NaN for nulls: not measured), sorted by the key
        columns. Files of an older readable version are upgraded (:func:`upgrade_v1`).

    Raises:
        RecordsError: a file is missing, unreadable, or has a schema version this greenpath
            cannot read (the message names the file).
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    tables = []
    for f in files:
        tables.append(_read_one(f, schema))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    df = table.to_pandas()
    sort_cols = [c for c in KEY_COLUMNS if c in df.columns]
    if sort_cols and len(df):
        df = df.sort_values(sort_cols, kind="stable").reset_index(drop=True)
    return df
