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


def _hash_parts(value: object) -> tuple[str, str, str]:
    """(study-wide, dataset, method) parts of a ``config_hash`` (``greenpath.config``); an
    older single-part hash counts as study-wide."""
    parts = str(value).split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", "")


def _mismatch(study: str, what: str, groups: dict[str, list[str]]) -> str:
    shown = "; ".join(f"{v} in {', '.join(sorted(set(f))[:4])}" for v, f in sorted(groups.items()))
    return f"study {study!r}: {what} disagree: {shown}"


def check_consistent(frames: dict[str, pd.DataFrame], epochs: int | None = None) -> None:
    """Refuse per-job records that were not made by the same settings.

    Within a study, every record must share the study-wide part of ``config_hash``, every
    record of a dataset its dataset part and every record of a method its method part; and
    every path without a failed epoch must end at the same epoch (``epochs`` when given).

    Args:
        frames: records file -> its rows.
        epochs: the config's ``training.epochs``; ``None`` only checks that paths agree.

    Raises:
        RecordsError: every disagreement found, each naming the files, and the fix.
    """
    problems: list[str] = []
    rows = []
    for f, df in frames.items():
        if df.empty:
            continue
        ok = df["status"].fillna("ok").eq("ok").all() if "status" in df else True
        for (study, ds, m, k, h), g in df.groupby(
            ["study", "dataset", "method", "intervention_epoch", "config_hash"], dropna=False
        ):
            rows.append((str(study), str(ds), str(m), int(k), h, int(g["epoch"].max()), ok, f))
    tab = pd.DataFrame(
        rows, columns=["study", "dataset", "method", "k", "hash", "last", "ok", "file"]
    )
    for study, st in tab.groupby("study"):
        parts = st["hash"].map(_hash_parts)
        keyed = {
            "config hashes (study-wide settings)": (None, parts.str[0]),
            "config hashes (dataset options)": ("dataset", parts.str[1]),
            "config hashes (method options)": ("method", parts.str[2]),
        }
        for what, (by, value) in keyed.items():
            groups = st.assign(v=value).groupby(by) if by else [(None, st.assign(v=value))]
            for _, g in groups:
                if g["v"].nunique() > 1:
                    problems.append(
                        _mismatch(study, what, g.groupby("v")["file"].apply(list).to_dict())
                    )
        ends = (
            st[st["ok"]]
            .groupby(["dataset", "method", "k"])
            .agg(last=("last", "max"), file=("file", list))
        )
        want = epochs if epochs is not None else (int(ends["last"].max()) if len(ends) else None)
        bad = ends[ends["last"] != want]
        if len(bad):
            groups = {f"last epoch {e}": sum(g["file"], []) for e, g in bad.groupby("last")}
            problems.append(_mismatch(study, f"epoch counts (expected {want})", groups))
    if problems:
        raise RecordsError(
            "records of different settings would be mixed:\n  - "
            + "\n  - ".join(problems)
            + "\nFix: rerun those jobs with the current config (snakemake --forcerun "
            "train_trunk train_branch), or delete the stale files and run snakemake again."
        )


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
    epochs: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write all rows to ``records_out`` and every path to ``trajectories_out``.

    Args:
        files: per-job records files.
        stop_epochs: intervention epochs of the ``stop`` method (``[]`` when the config
            has no ``stop``; ``None`` derives them from the branches present).
        epochs: the config's ``training.epochs``: every path must end there.

    Returns:
        (records, trajectories) DataFrames as written.

    Raises:
        RecordsError: see :func:`combine_records` and :func:`check_consistent`.
    """
    check_consistent({str(f): read_records(f) for f in files}, epochs)
    records = combine_records(files)
    traj = build_trajectories(records, stop_epochs=stop_epochs)
    write_records(records, records_out)
    write_trajectories(traj, trajectories_out)
    return records, traj
