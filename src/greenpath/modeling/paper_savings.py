"""The model of the paper's "Energy savings" simulation, fitted leave-one-dataset-out.

Source: the authors' analysis, GAISSA-UPC/energydl-full, ``src/analysis/analysis_rq2.Rmd``,
sections "Score prediction" and "Energy savings". For each held-out dataset, on the other
datasets' paths:

1. Accuracy model, fitted on the rows with 4 lags available (epoch >= 5), quant recoded as
   base: OLS ``val_accuracy ~ dataset + lag1 + lag2 + lag3 + lag4 + mode_lag1 + mode``
   (dataset fixed effects; ``mode``/``mode_lag1`` freeze dummies). The lags follow the path
   (trunk prefix, then branch), as the Rmd's ``get_prev``.
2. Energy ratio ``change``: per (dataset, mode) mean per-epoch energy of the same rows,
   then the slope of ``freeze ~ 0 + base`` across datasets.

The workflow's fit rule writes one file per held-out dataset
(``models/paper_savings/without_<dataset>.json``); the path stage
(``greenpath.paths.paper``) reads them and simulates the decision rule. This is not
:class:`greenpath.modeling.paper.PaperPredictor` (the paper's forecasting model of the
"Score prediction" evaluation): that one has per-tree dummies, keeps accuracies of 0 and
its energy model differs.

Choices where the Rmd does not carry over (docs/paths.md): coefficients are taken by name
(the Rmd takes ``coefficients[12:17]``); validation accuracies of exactly 0 are read as
:data:`ZERO_ACCURACY`, as in the authors' ``all_data.csv`` (``history.csv`` has 0).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.energy.measurement import J_PER_KWH
from greenpath.records.trajectories import measured_paths

#: Number of accuracy lags (AR(4)).
N_LAGS: int = 4
#: First epoch of the savings simulation (Rmd: ``for (i in 6:50)``): runs with fewer
#: epochs have no paper's method, and their study needs no model.
FIRST_EPOCH: int = 6
#: Value that replaces a validation accuracy of exactly 0: the authors' ``all_data.csv``
#: (which the Rmd reads) has 0.01 where ``history.csv`` has 0.
ZERO_ACCURACY: float = 0.01
#: Feature names, in the order of the Rmd's ``coefs`` vector.
FEATURES: tuple[str, ...] = ("lag1", "lag2", "lag3", "lag4", "mode_lag1_freeze", "mode_freeze")
#: Name of the model files' folder (``models/<NAME>/without_<dataset>.json``).
NAME: str = "paper_savings"
FORMAT: str = "greenpath-paper-savings"
FORMAT_VERSION: int = 1


def _path_panel(dataset: str, m: str, k: int, rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.sort_values("epoch")
    acc = rows["val_accuracy"].astype(float).replace(0.0, ZERO_ACCURACY)
    df = pd.DataFrame(
        {
            "dataset": dataset,
            "method": m,
            "intervention_epoch": k,
            "epoch": rows["epoch"].astype(int).to_numpy(),
            "val_accuracy": acc.to_numpy(),
            "energy_kwh": rows["energy_total_j"].astype(float).to_numpy() / J_PER_KWH,
            "energy_cum_kwh": rows["energy_cum_j"].astype(float).to_numpy() / J_PER_KWH,
        }
    )
    df["score"] = df["val_accuracy"] / df["energy_cum_kwh"]
    for n in range(1, N_LAGS + 1):
        df[f"lag{n}"] = acc.shift(n).to_numpy()
    df["mode_lag1"] = rows["row_method"].shift(1).to_numpy()
    return df if m == "base" else df[df["epoch"] > k]


def panel(trajectories: pd.DataFrame) -> pd.DataFrame:
    """The Rmd's ``panel.data2``: one row per measured epoch with lags along its path.

    Args:
        trajectories: ``trajectories.parquet`` rows; the measured paths are those of
            :func:`greenpath.records.trajectories.measured_paths` (ok rows, trunk and
            freeze/quant branches, trees with a trunk).

    Returns:
        Columns ``dataset, method, intervention_epoch, epoch, val_accuracy, energy_kwh,
        energy_cum_kwh, score, lag1..lag4, mode_lag1`` (``mode_lag1``: the method that
        produced the previous epoch of the path; NaN/None where the lag is before epoch 1).
        Branch rows only for branches (the trunk prefix is not repeated). Rows in the order
        of (study, dataset, seed), then (method, intervention epoch), then epoch.
    """
    out = []
    for (_s, dataset, _seed), tree in measured_paths(trajectories).groupby(
        ["study", "dataset", "seed"], sort=True
    ):
        for (m, k), rows in tree.groupby(["method", "intervention_epoch"], sort=True):
            out.append(_path_panel(str(dataset), str(m), int(k), rows))
    if not out:
        raise ValueError("paper_savings: no measured path with a trunk in the trajectories")
    return pd.concat(out, ignore_index=True)


def _design(df: pd.DataFrame) -> pd.DataFrame:
    """Feature columns (quant recoded as base): lags and freeze dummies."""
    x = df[["lag1", "lag2", "lag3", "lag4"]].astype(float).copy()
    x["mode_lag1_freeze"] = (df["mode_lag1"] == "freeze").astype(float)
    x["mode_freeze"] = (df["method"] == "freeze").astype(float)
    return x


@dataclass(frozen=True)
class PaperSavingsModel:
    """Fitted pieces of the paper's savings simulation.

    Attributes:
        coefs: shape (6,), coefficients of :data:`FEATURES` (accuracy fraction units).
        change: ratio of freeze to base per-epoch energy (dimensionless).
        n_rows: training rows used.
        trained_datasets: datasets the model was fitted on (sorted).
        held_out: the dataset left out (``None``: fitted on every dataset).
    """

    coefs: np.ndarray
    change: float
    n_rows: int
    trained_datasets: tuple[str, ...] = ()
    held_out: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (coefficients by feature name)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": NAME,
            "held_out": self.held_out,
            "trained_datasets": list(self.trained_datasets),
            "n_rows": int(self.n_rows),
            "coefs": {f: float(c) for f, c in zip(FEATURES, self.coefs, strict=True)},
            "change": float(self.change),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PaperSavingsModel:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: not a paper-savings document, or another format version.
        """
        if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"not a {FORMAT!r} version {FORMAT_VERSION} document (format "
                f"{d.get('format')!r}, version {d.get('format_version')!r}); refit it with "
                f"`greenpath fit --predictor {NAME}`"
            )
        return cls(
            coefs=np.array([float(d["coefs"][f]) for f in FEATURES]),
            change=float(d["change"]),
            n_rows=int(d["n_rows"]),
            trained_datasets=tuple(d["trained_datasets"]),
            held_out=d.get("held_out"),
        )


def _energy_change(df: pd.DataFrame) -> float:
    """Slope of ``freeze ~ 0 + base`` over the per-(dataset, mode) mean epoch energies."""
    means = df.groupby(["dataset", "method"])["energy_kwh"].mean().unstack()
    if "freeze" not in means.columns or "base" not in means.columns:
        return 1.0
    both = means[["base", "freeze"]].dropna()
    b, f = both["base"].to_numpy(), both["freeze"].to_numpy()
    return float(np.sum(b * f) / np.sum(b * b)) if len(both) else 1.0


def fit_panel(train: pd.DataFrame, held_out: str | None = None) -> PaperSavingsModel:
    """Fit the accuracy AR(4) fixed-effects model and the freeze energy ratio.

    Args:
        train: rows of :func:`panel` for the training datasets.
        held_out: recorded in the model (the dataset ``train`` leaves out).

    Raises:
        ValueError: fewer rows than parameters after dropping epochs without 4 lags.
    """
    import statsmodels.api as sm

    df = train.dropna(subset=["lag1", "lag2", "lag3", "lag4", "mode_lag1"]).copy()
    df["method"] = df["method"].replace({"quant": "base"})
    df["mode_lag1"] = df["mode_lag1"].replace({"quant": "base"})
    x = _design(df)
    dummies = pd.get_dummies(df["dataset"], prefix="ds", drop_first=True, dtype=float)
    xx = sm.add_constant(pd.concat([x, dummies], axis=1), has_constant="add")
    if len(df) <= xx.shape[1]:
        raise ValueError(
            f"paper model: {len(df)} training rows for {xx.shape[1]} parameters; "
            "it needs at least two datasets with >= 5 epochs"
        )
    res = sm.OLS(df["val_accuracy"].astype(float).to_numpy(), xx).fit()
    return PaperSavingsModel(
        coefs=np.array([float(res.params[f]) for f in FEATURES]),
        change=_energy_change(df),
        n_rows=len(df),
        trained_datasets=tuple(sorted(df["dataset"].unique())),
        held_out=held_out,
    )


def fit_paper_savings(trajectories: pd.DataFrame, held_out: str | None = None) -> PaperSavingsModel:
    """Fit on every dataset of ``trajectories`` but ``held_out`` (``None``: on every one).

    Raises:
        ValueError: ``held_out`` is not a dataset of the trajectories, or too few rows.
    """
    pan = panel(trajectories)
    if held_out is not None and held_out not in set(pan["dataset"]):
        raise ValueError(
            f"paper_savings: held-out dataset {held_out!r} is not in the trajectories "
            f"(datasets: {sorted(set(pan['dataset']))})"
        )
    return fit_panel(pan[pan["dataset"] != held_out], held_out)


def save(model: PaperSavingsModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as JSON, atomically (:func:`greenpath.records.write_json`)."""
    from greenpath.records import write_json

    return write_json(model.to_json(), path)


def load(path: str | os.PathLike[str]) -> PaperSavingsModel:
    """Read a model written by :func:`save`.

    Raises:
        FileNotFoundError: no such file (says how to make it).
        ValueError: not JSON, or not a paper-savings model file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"paper_savings model not found: {path}; create it with "
            f"`greenpath fit --predictor {NAME} --held-out DATASET` or the workflow's fit rule"
        )
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a {FORMAT!r} file")
    try:
        return PaperSavingsModel.from_json(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
