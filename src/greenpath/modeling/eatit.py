"""Importer for EAT-IT, the paper's published per-epoch measurements.

EAT-IT (replication package of "Energy-efficient neural network training through runtime
layer freezing, model quantization, and early stopping", Computer Standards & Interfaces,
2024; repository GAISSA-UPC/energydl-full) publishes, per dataset, a base trunk of 50
epochs and ``freeze``/``quant`` branches started at interventions 0, 10, 20, 30, 40.

Files read (see ``../shared/eatit/README.md``):

- ``history.csv``: Keras history per epoch (loss, accuracy, val_loss, val_accuracy, ...);
- ``emissions.csv``: CodeCarbon per epoch (duration in s, energies in kWh, emissions in kg);
- ``all_data.csv``: the authors' merge, the only file with ``energy_nvidia`` (kWh per epoch
  = mean nvidia-smi ``power_draw`` x epoch duration; GPU only);
- ``datasets.csv``: num_classes, train_size, test_size.

Energies are converted from kWh to joules (x 3.6e6). The result has the record schema
(``greenpath.records.schema.RECORD_SCHEMA``), study ``"eatit"``, seed 0, model
``"vgg16_head"``, image size 32 (the study resizes every dataset to 32x32).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: 1 kWh in joules.
KWH_TO_J: float = 3.6e6

#: Dataset renames applied by the authors (analysis_rq2.Rmd, "Load data").
DATASET_RENAMES: dict[str, str] = {"visual_domain_decathlon/aircraft": "aircraft"}

#: Chance-level rule: a dataset is flagged when its best validation accuracy over every
#: epoch of every path stays below ``CHANCE_FACTOR / num_classes``. See
#: :func:`flag_chance_level` for the justification of the factor.
CHANCE_FACTOR: float = 5.0

#: ... or less than this accuracy (fraction) above chance, whichever bound is lower.
CHANCE_MARGIN: float = 0.05

_KEY = ["dataset", "mode", "intervention", "epoch"]

_NVIDIA_NOTE = (
    "EAT-IT energy_nvidia: mean nvidia-smi power_draw x epoch duration (kWh x 3.6e6 = J); "
    "GPU board only; energy_total_j holds the same GPU-only value"
)
_CODECARBON_NOTE = (
    "EAT-IT CodeCarbon: energy_consumed (kWh x 3.6e6 = J) = cpu + gpu + ram; the cpu and "
    "ram parts are CodeCarbon estimates (constant power x duration), gpu from NVML"
)


def _short_name(name: str) -> str:
    return DATASET_RENAMES.get(name, name)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"EAT-IT file missing: {path}. Point --src at the folder holding history.csv, "
            "emissions.csv, all_data.csv and datasets.csv"
        )
    df = pd.read_csv(path)
    df = df.drop(columns=[c for c in df.columns if c.startswith("Unnamed") or c == ""])
    if "dataset" in df.columns:
        df["dataset"] = df["dataset"].map(_short_name)
    return df


def import_eatit(
    src: Path | str, energy: Literal["nvidia", "codecarbon"] = "nvidia"
) -> pd.DataFrame:
    """Map EAT-IT's CSV files to record-schema rows (study ``"eatit"``).

    Args:
        src: folder with ``history.csv``, ``emissions.csv``, ``datasets.csv`` and, for
            ``energy="nvidia"``, ``all_data.csv``.
        energy: ``"nvidia"`` (the paper's ``energy_nvidia``, GPU only) puts the energy in
            ``energy_gpu_j`` *and* ``energy_total_j`` (so that trajectories accumulate the
            paper's quantity), source ``"imported"``; ``"codecarbon"`` puts
            ``energy_consumed`` in ``energy_total_j`` and its cpu/gpu/ram parts in
            ``energy_cpu_j``/``energy_gpu_j``/``energy_dram_j``.

    Returns:
        One row per (dataset, mode, intervention, epoch), columns a subset of the record
        schema (pass to ``greenpath.records.write_records``). Energies in J (float64),
        accuracies as fractions, ``duration_s`` from CodeCarbon, ``co2eq_g`` = emissions
        (kg) x 1000. Mode ``base`` keeps intervention 0; ``freeze``/``quant`` keep theirs.

    Raises:
        FileNotFoundError: a needed CSV file is missing (names it).
        ValueError: ``energy`` is not one of the two choices, or the files do not line up
            (a history row without its energy row; names the first one).
    """
    src = Path(src)
    if energy not in ("nvidia", "codecarbon"):
        raise ValueError(f"energy={energy!r}: choose 'nvidia' or 'codecarbon'")
    df = _joined_rows(src, energy)
    out = pd.concat([_record_columns(df), _energy_columns(df, energy)], axis=1)
    out = out.sort_values(
        ["dataset", "method", "intervention_epoch", "epoch"], kind="stable"
    ).reset_index(drop=True)
    log.info("imported %d EAT-IT rows (%s energy) from %s", len(out), energy, src)
    return out


def _joined_rows(src: Path, energy: str) -> pd.DataFrame:
    """history.csv joined with its energy rows and the datasets' sizes, checked.

    Raises:
        FileNotFoundError: a CSV file is missing.
        ValueError: a history row without energy/duration, a dataset missing from
            datasets.csv, or a mode other than base/freeze/quant.
    """
    hist = _read_csv(src / "history.csv")
    emis = _read_csv(src / "emissions.csv")
    info = _read_csv(src / "datasets.csv")
    cols_e = [
        *_KEY,
        "duration",
        "emissions",
        "cpu_energy",
        "gpu_energy",
        "ram_energy",
        "energy_consumed",
    ]
    df = hist.merge(emis[cols_e], on=_KEY, how="left", validate="one_to_one")
    if energy == "nvidia":
        alld = _read_csv(src / "all_data.csv")
        df = df.merge(alld[[*_KEY, "energy_nvidia"]], on=_KEY, how="left", validate="one_to_one")
        ecol = "energy_nvidia"
    else:
        ecol = "energy_consumed"
    missing = df[df[ecol].isna() | df["duration"].isna()]
    if len(missing):
        r = missing.iloc[0]
        raise ValueError(
            f"EAT-IT row {r['dataset']}/{r['mode']}@{r['intervention']} epoch {r['epoch']} has "
            f"no {ecol}/duration in the energy files; the files in {src} do not line up"
        )
    df = df.merge(info, on="dataset", how="left")
    if df["num_classes"].isna().any():
        bad = sorted(df.loc[df["num_classes"].isna(), "dataset"].unique())
        raise ValueError(f"datasets {bad} are missing from {src / 'datasets.csv'}")
    bad_modes = sorted(set(df["mode"].astype(str)) - {"base", "freeze", "quant"})
    if bad_modes:
        raise ValueError(f"unknown EAT-IT modes {bad_modes}; expected base, freeze, quant")
    return df


def _record_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The record schema's identity, accuracy, duration and setting columns of ``df``'s rows."""
    mode = df["mode"].astype(str)
    return pd.DataFrame(
        {
            "study": "eatit",
            "dataset": df["dataset"].astype(str),
            "seed": np.int64(0),
            "model": "vgg16_head",
            "method": mode,
            "intervention_epoch": np.where(mode == "base", 0, df["intervention"]).astype(np.int64),
            "epoch": df["epoch"].astype(np.int64),
            "status": "ok",
            "train_loss": df["loss"].astype(float),
            "train_accuracy": df["accuracy"].astype(float),
            "val_loss": df["val_loss"].astype(float),
            "val_accuracy": df["val_accuracy"].astype(float),
            "duration_s": df["duration"].astype(float),
            "co2eq_g": df["emissions"].astype(float) * 1000.0,
            "device": "cuda (NVIDIA RTX 3090, EAT-IT)",
            "precision_requested": np.where(mode == "quant", "mixed_float16", "float32"),
            "precision_effective": np.where(mode == "quant", "mixed_float16", "float32"),
            "frozen_layers": np.where(mode == "freeze", "all but the last layer", None),
            "num_classes": df["num_classes"].astype(np.int64),
            "train_size": df["train_size"].astype(np.int64),
            "val_size": df["test_size"].astype(np.int64),
            "image_size": np.int64(32),
        }
    )


def _energy_columns(df: pd.DataFrame, energy: str) -> pd.DataFrame:
    """Energy columns (J) and their provenance for ``energy`` (see :func:`import_eatit`)."""
    out = pd.DataFrame(index=df.index)
    if energy == "nvidia":
        e = df["energy_nvidia"].astype(float) * KWH_TO_J
        out["energy_gpu_j"] = e
        out["energy_total_j"] = e
        out["energy_total_components"] = "gpu"
        out["energy_gpu_source"] = "imported"
        out["energy_cpu_source"] = "absent"
        out["energy_dram_source"] = "absent"
        out["energy_gpu_estimate"] = False
        out["energy_note"] = _NVIDIA_NOTE
    else:
        out["energy_cpu_j"] = df["cpu_energy"].astype(float) * KWH_TO_J
        out["energy_gpu_j"] = df["gpu_energy"].astype(float) * KWH_TO_J
        out["energy_dram_j"] = df["ram_energy"].astype(float) * KWH_TO_J
        out["energy_total_j"] = df["energy_consumed"].astype(float) * KWH_TO_J
        out["energy_total_components"] = "gpu,cpu,dram"
        out["energy_gpu_source"] = "imported"
        out["energy_cpu_source"] = "imported"
        out["energy_dram_source"] = "imported"
        out["energy_gpu_estimate"] = False
        out["energy_cpu_estimate"] = True
        out["energy_dram_estimate"] = True
        out["energy_note"] = _CODECARBON_NOTE
    return out


def flag_chance_level(
    records: pd.DataFrame, factor: float = CHANCE_FACTOR, margin: float = CHANCE_MARGIN
) -> set[str]:
    """Datasets whose validation accuracy never leaves chance level.

    Rule: flag a dataset when ``max(val_accuracy) < min(factor / K, 1 / K + margin)`` over
    all its rows (every path, every epoch), K = num_classes. The second bound keeps the
    rule meaningful for few classes (with K = 2, ``factor / K`` exceeds 1 and would flag
    every binary dataset): chance + 5 points. Uniform guessing gives ``1/num_classes`` in
    expectation; a model that learned only the class prior can reach a few times that on
    imbalanced validation sets, and sampling noise adds ~``sqrt(p(1-p)/n_val)`` (0.0017 for
    EAT-IT aircraft, n_val = 3333). A factor of 5 leaves a margin over both: on EAT-IT it
    flags ``aircraft`` (best 0.026 = 2.6x chance with 100 classes) and no other dataset
    (the next lowest, cars196 and birdsnap, reach 18x and 40x chance).

    Args:
        records: record-schema rows with ``dataset``, ``val_accuracy``, ``num_classes``.
        factor: multiple of the chance accuracy ``1/num_classes`` to leave.
        margin: accuracy (fraction) above chance to leave, whichever bound is lower.

    Returns:
        Set of flagged dataset names (empty if none). Datasets without ``num_classes`` are
        never flagged.
    """
    flagged: set[str] = set()
    for name, g in records.groupby("dataset"):
        nc = pd.to_numeric(g["num_classes"], errors="coerce").dropna()
        acc = pd.to_numeric(g["val_accuracy"], errors="coerce").dropna()
        if nc.empty or acc.empty or nc.iloc[0] <= 0:
            continue
        k = float(nc.iloc[0])
        if float(acc.max()) < min(factor / k, 1.0 / k + margin):
            flagged.add(str(name))
    return flagged


def dataset_info(records: pd.DataFrame, datasets: Iterable[str] | None = None) -> dict[str, dict]:
    """Per-dataset descriptors (num_classes, train_size, val_size, image_size) as dicts."""
    out: dict[str, dict] = {}
    cols = ["num_classes", "train_size", "val_size", "image_size"]
    for name, g in records.groupby("dataset"):
        if datasets is not None and name not in set(datasets):
            continue
        row = {}
        for c in cols:
            v = pd.to_numeric(g[c], errors="coerce").dropna() if c in g else pd.Series([])
            row[c] = float(v.iloc[0]) if len(v) else None
        out[str(name)] = row
    return out
