"""The per-epoch record schema: one explicit Arrow schema shared by every Parquet file.

Every training job, importer and aggregate writes rows with exactly :data:`RECORD_SCHEMA`
(column order, types and nullability), so that files from GPU and CPU runs, early-stopped
runs and imported studies concatenate without type drift (an all-null
column must stay ``double``, ``epoch`` must stay ``int64``).

The schema is documented for users in ``docs/records.md``; keep the two in step and bump
:data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

import pyarrow as pa

#: Version of :data:`RECORD_SCHEMA`. Stored as a column and in the Parquet metadata.
#: 2: an unmeasured energy component is null with source ``absent`` (1: 0.0 J), the total
#: sums the measured components (``energy_total_components``), ``energy_*_uncertain`` flags.
SCHEMA_VERSION: int = 2

#: Older versions :func:`greenpath.records.read_records` still reads (upgraded on read).
READABLE_VERSIONS: tuple[int, ...] = (1, 2)

#: Parquet metadata key holding :data:`SCHEMA_VERSION` (bytes of its decimal string).
SCHEMA_VERSION_KEY: bytes = b"greenpath.schema_version"

#: The training methods. ``base`` is the trunk (normal training); the others are branches.
METHODS: tuple[str, ...] = ("base", "freeze", "quant", "stop")

#: Epoch status values. ``diverged``: non-finite loss; ``skipped``: branch not runnable here
#: (e.g. unsupported precision, with the reason in ``status_reason``).
STATUSES: tuple[str, ...] = ("ok", "diverged", "skipped")

#: Energy sources, from most to least trusted; ``absent`` = no reading (null joules).
ENERGY_SOURCES: tuple[str, ...] = (
    "nvml_counter",
    "nvml_power_integration",
    "rapl",
    "estimate",
    "absent",
    "imported",
)

_TS = pa.timestamp("us", tz="UTC")

#: One row per (study, dataset, seed, method, intervention_epoch, epoch).
#: ``epoch`` is 1-based: the e-th completed epoch of the path. A branch with intervention
#: epoch k starts from the trunk's state after k epochs, so its first row has epoch k+1.
#: Trunk rows (``method == "base"``) have ``intervention_epoch == 0``.
RECORD_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("study", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("intervention_epoch", pa.int64(), nullable=False),
        pa.field("epoch", pa.int64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("status_reason", pa.string()),
        # learning curves (fractions in [0, 1] for accuracies; mean cross-entropy for losses)
        pa.field("train_loss", pa.float64()),
        pa.field("train_accuracy", pa.float64()),
        pa.field("val_loss", pa.float64()),
        pa.field("val_accuracy", pa.float64()),
        pa.field("lr", pa.float64()),
        # time
        pa.field("epoch_start_utc", _TS),
        pa.field("duration_s", pa.float64()),
        pa.field("train_s", pa.float64()),
        pa.field("eval_s", pa.float64()),
        # energy in joules per component, each with its source and an estimate flag; null =
        # not measured (source "absent", reason in energy_note). The total sums the
        # components named in energy_total_components.
        pa.field("energy_gpu_j", pa.float64()),
        pa.field("energy_cpu_j", pa.float64()),
        pa.field("energy_dram_j", pa.float64()),
        pa.field("energy_total_j", pa.float64()),
        pa.field("energy_total_components", pa.string()),
        pa.field("energy_gpu_source", pa.string()),
        pa.field("energy_cpu_source", pa.string()),
        pa.field("energy_dram_source", pa.string()),
        pa.field("energy_gpu_estimate", pa.bool_()),
        pa.field("energy_cpu_estimate", pa.bool_()),
        pa.field("energy_dram_estimate", pa.bool_()),
        # true: the reading may be too low (a counter wrap may have been missed)
        pa.field("energy_gpu_uncertain", pa.bool_()),
        pa.field("energy_cpu_uncertain", pa.bool_()),
        pa.field("energy_dram_uncertain", pa.bool_()),
        pa.field("energy_note", pa.string()),
        pa.field("gpu_uuid", pa.string()),
        pa.field("co2eq_g", pa.float64()),
        # device and numerics
        pa.field("device", pa.string()),
        pa.field("precision_requested", pa.string()),
        pa.field("precision_effective", pa.string()),
        pa.field("amp_skipped_steps", pa.int64()),
        pa.field("grad_scale_end", pa.float64()),
        pa.field("frozen_layers", pa.string()),
        # dataset descriptors (predictor features)
        pa.field("num_classes", pa.int64()),
        pa.field("train_size", pa.int64()),
        pa.field("val_size", pa.int64()),
        pa.field("image_size", pa.int64()),
        # provenance
        pa.field("config_hash", pa.string()),
        pa.field("versions", pa.string()),
    ],
    metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()},
)

#: Columns that identify a row; unique within a records table.
KEY_COLUMNS: tuple[str, ...] = (
    "study",
    "dataset",
    "seed",
    "method",
    "intervention_epoch",
    "epoch",
)

#: Columns that identify a path (trunk or branch) within a records table.
PATH_COLUMNS: tuple[str, ...] = ("study", "dataset", "seed", "method", "intervention_epoch")
