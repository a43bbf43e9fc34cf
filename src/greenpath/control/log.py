"""The controller's decisions log: one Parquet row per (decision epoch, plan evaluated).

Written next to the run's records as ``<records stem>.decisions.parquet`` with an explicit
Arrow schema (:data:`DECISION_SCHEMA`, version :data:`DECISION_SCHEMA_VERSION` in the file
metadata) through :func:`greenpath.records.atomic_path` (temporary file, fsync, rename).

Units: accuracies are fractions in [0, 1]; energies are joules, cumulative from epoch 1 to
the plan's end epoch; ``*_std`` are 1-sigma forecast uncertainties. A decision without a
forecast (e.g. no history at epoch 0, or a plan being followed) has one row with null plan
columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from greenpath.paths.objectives import Objective
from greenpath.paths.planner import Margin
from greenpath.records import atomic_path, finite_or_none

#: Version of :data:`DECISION_SCHEMA` (stored in the Parquet metadata).
DECISION_SCHEMA_VERSION = "1"

#: Explicit schema of the decisions log.
DECISION_SCHEMA = pa.schema(
    [
        pa.field("study", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("decision_epoch", pa.int64(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # action taken at this epoch
        pa.field("reason", pa.string()),
        pa.field("objective", pa.string(), nullable=False),
        pa.field("tolerance", pa.float64()),
        pa.field("lam", pa.float64()),
        pa.field("margin_z", pa.float64()),
        pa.field("margin_delta", pa.float64()),
        pa.field("ref_accuracy", pa.float64()),  # forecast final accuracy of the full run
        pa.field("ref_accuracy_std", pa.float64()),
        pa.field("full_energy_j", pa.float64()),  # forecast energy of the full run (J)
        pa.field("plan_action", pa.string()),  # continue, freeze, quant, stop
        pa.field("plan_method", pa.string()),  # base, freeze, quant, stop
        pa.field("plan_end_epoch", pa.int64()),
        pa.field("forecast_accuracy", pa.float64()),
        pa.field("forecast_accuracy_std", pa.float64()),
        pa.field("forecast_energy_j", pa.float64()),
        pa.field("forecast_energy_std", pa.float64()),
        pa.field("safe", pa.bool_()),
        pa.field("objective_value", pa.float64()),  # -inf (unsafe) stored as null
        pa.field("chosen", pa.bool_(), nullable=False),
    ]
)


def decisions_frame(
    decisions: Sequence[Any],
    objective: Objective,
    margin: Margin,
    *,
    study: str | None = None,
    dataset: str | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Flatten :class:`~greenpath.control.controller.Decision` objects to the log's rows."""
    rows: list[dict[str, Any]] = []
    common = {
        "study": study,
        "dataset": dataset,
        "seed": seed,
        "objective": objective.name,
        "tolerance": objective.tolerance,
        "lam": objective.lam,
        "margin_z": margin.z,
        "margin_delta": margin.delta,
    }
    for d in decisions:
        head = dict(
            common,
            decision_epoch=int(d.epoch),
            action=d.action,
            reason=d.reason,
            ref_accuracy=finite_or_none(d.ref_accuracy),
            ref_accuracy_std=finite_or_none(d.ref_accuracy_std),
            full_energy_j=finite_or_none(d.full_energy_j),
        )
        if not d.plans:
            rows.append(dict(head, chosen=True))
            continue
        for p in d.plans:
            rows.append(
                dict(
                    head,
                    plan_action=p.action,
                    plan_method=p.method,
                    plan_end_epoch=int(p.end_epoch),
                    forecast_accuracy=finite_or_none(p.val_accuracy),
                    forecast_accuracy_std=finite_or_none(p.val_accuracy_std),
                    forecast_energy_j=finite_or_none(p.energy_j),
                    forecast_energy_std=finite_or_none(p.energy_std),
                    safe=bool(p.safe),
                    objective_value=finite_or_none(p.value),
                    chosen=bool(d.chosen is not None and p == d.chosen),
                )
            )
    return pd.DataFrame(rows, columns=DECISION_SCHEMA.names)


def write_decisions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a decisions frame with :data:`DECISION_SCHEMA`, atomically.

    Raises:
        greenpath.records.RecordsError: the directory is not writable.
        pyarrow.ArrowInvalid: a column does not fit the schema.
    """
    path = Path(path)
    cols: dict[str, list[Any]] = {}
    for f in DECISION_SCHEMA:
        vals = frame[f.name].tolist() if f.name in frame.columns else [None] * len(frame)
        cols[f.name] = [None if (isinstance(v, float) and math.isnan(v)) else v for v in vals]
    table = pa.Table.from_pydict(cols, schema=DECISION_SCHEMA).replace_schema_metadata(
        {"greenpath.decisions_schema_version": DECISION_SCHEMA_VERSION}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_decisions(path: str | Path) -> pd.DataFrame:
    """Read a decisions log; checks the schema version.

    Raises:
        ValueError: the file is not a decisions log of this version.
    """
    t = pq.read_table(path)
    meta = t.schema.metadata or {}
    ver = meta.get(b"greenpath.decisions_schema_version")
    if ver is None or ver.decode() != DECISION_SCHEMA_VERSION:
        raise ValueError(
            f"{path} is not a greenpath decisions log of schema version {DECISION_SCHEMA_VERSION}"
        )
    return t.to_pandas()


def decisions_path(records_path: str | Path) -> Path:
    """``<dir>/<records stem>.decisions.parquet`` next to a records file."""
    p = Path(records_path)
    return p.with_name(f"{p.stem}.decisions.parquet")


__all__ = [
    "DECISION_SCHEMA",
    "DECISION_SCHEMA_VERSION",
    "decisions_frame",
    "decisions_path",
    "read_decisions",
    "write_decisions",
]
