"""Predictor interface shared by every accuracy/energy forecaster, and the registry.

A *predictor* is fitted on training paths (``greenpath.records.build_trajectories`` output)
and answers two questions for one (dataset, seed) tree:

- :meth:`Predictor.forecast`: given the trunk up to the intervention epoch ``k``, what will
  the path that switches to ``method`` at ``k`` (or continues ``base``) look like at epochs
  ``k+1..E`` (validation accuracy and per-epoch energy, each with a 1-sigma uncertainty);
- :meth:`Predictor.predict_one_step`: given the rows of one path so far (epochs ``1..e-1``),
  what are the validation accuracy and the energy of epoch ``e`` (the paper's one-step
  evaluation, section 4.2 of analysis_rq2.Rmd).

Predictors serialise to plain JSON (:meth:`Predictor.to_json`); see
``greenpath.modeling.io`` for files. Nothing is ever pickled.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Methods a predictor forecasts (``stop`` paths end at the intervention; nothing to predict).
FORECAST_METHODS: tuple[str, ...] = ("base", "freeze", "quant")

#: Clip used before a logit so that accuracies of exactly 0 or 1 stay finite.
LOGIT_EPS: float = 1e-4


@dataclass
class PathForecast:
    """Forecast of one path from a decision point (intervention epoch ``k``).

    Attributes:
        epochs: int64 (H,), epochs ``k+1..E`` (1-based).
        val_accuracy: float64 (H,), predicted validation accuracy (fraction in [0, 1]).
        val_accuracy_std: float64 (H,), 1-sigma uncertainty of ``val_accuracy``.
        energy_j: float64 (H,), predicted energy of each epoch (J, not cumulative).
        energy_std: float64 (H,), 1-sigma uncertainty of ``energy_j`` (J).
    """

    epochs: np.ndarray
    val_accuracy: np.ndarray
    val_accuracy_std: np.ndarray
    energy_j: np.ndarray
    energy_std: np.ndarray

    def __post_init__(self) -> None:
        self.epochs = np.asarray(self.epochs, dtype=np.int64)
        n = len(self.epochs)
        for name in ("val_accuracy", "val_accuracy_std", "energy_j", "energy_std"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"PathForecast.{name} has shape {arr.shape}, expected ({n},)")
            setattr(self, name, arr)

    @property
    def energy_cum_j(self) -> np.ndarray:
        """Cumulative forecast energy over epochs ``k+1..`` (J), float64 (H,)."""
        return np.cumsum(self.energy_j)

    def to_frame(self) -> pd.DataFrame:
        """The forecast as a DataFrame with one row per epoch."""
        return pd.DataFrame(
            {
                "epoch": self.epochs,
                "val_accuracy": self.val_accuracy,
                "val_accuracy_std": self.val_accuracy_std,
                "energy_j": self.energy_j,
                "energy_std": self.energy_std,
            }
        )


def logit(p: np.ndarray | float) -> np.ndarray:
    """Log-odds of a fraction, clipped to ``[LOGIT_EPS, 1-LOGIT_EPS]`` first."""
    q = np.clip(np.asarray(p, dtype=np.float64), LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(q / (1.0 - q))


def expit(x: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`logit`."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def energy_column(df: pd.DataFrame) -> str:
    """The energy column predictors use: ``energy_total_j``, else ``energy_gpu_j``.

    Raises:
        ValueError: neither column holds any value.
    """
    for col in ("energy_total_j", "energy_gpu_j"):
        if col in df.columns and df[col].notna().any():
            return col
    if df.empty:
        return "energy_total_j"
    raise ValueError(
        "records hold no energy (energy_total_j and energy_gpu_j are all null); "
        "predictors need per-epoch energy"
    )


def row_methods(df: pd.DataFrame) -> np.ndarray:
    """The method that produced each row: ``row_method`` (trajectories) or ``method``."""
    col = "row_method" if "row_method" in df.columns else "method"
    return df[col].astype(str).to_numpy()


def check_method(method: str) -> str:
    """Validate a forecast method name."""
    if method not in FORECAST_METHODS:
        raise ValueError(f"method={method!r}: choose one of {FORECAST_METHODS}")
    return method


def sorted_history(history: pd.DataFrame, upto: int | None = None) -> pd.DataFrame:
    """Sort a one-path history by epoch and check the epochs are exactly ``1..n``.

    Exogenous alignment: every per-epoch column a predictor reads is
    taken from these rows by epoch index, so a gap or a duplicate would misalign them.

    Args:
        history: rows of one path (record schema or trajectories).
        upto: when given, the history must end exactly at this epoch (the intervention
            epoch of a forecast); rows after it are an error, not silently dropped.

    Raises:
        ValueError: duplicate or missing epochs, or rows beyond ``upto`` (names them).
    """
    if history is None or len(history) == 0:
        if upto:
            raise ValueError(f"history is empty but the decision is at epoch {upto}")
        return pd.DataFrame(columns=[] if history is None else history.columns)
    h = history.sort_values("epoch", kind="stable")
    ep = h["epoch"].to_numpy(dtype=np.int64)
    if upto is not None and ep[-1] != upto:
        raise ValueError(
            f"history ends at epoch {int(ep[-1])} but the intervention epoch is {upto}; "
            f"pass exactly the trunk rows 1..{upto}"
        )
    expected = np.arange(1, len(ep) + 1)
    if not np.array_equal(ep, expected):
        raise ValueError(
            f"history epochs must be exactly 1..{len(ep)} without gaps or duplicates; "
            f"got {ep.tolist()[:12]}{'...' if len(ep) > 12 else ''}"
        )
    return h.reset_index(drop=True)


def info_from(history: pd.DataFrame | None, dataset_info: Mapping | None) -> dict[str, float]:
    """Dataset descriptors from ``dataset_info`` or, failing that, the history rows."""
    out: dict[str, float] = {}
    for c in ("num_classes", "train_size", "val_size", "image_size"):
        v = None
        if dataset_info is not None and dataset_info.get(c) is not None:
            v = float(dataset_info[c])
        elif history is not None and c in history.columns:
            s = pd.to_numeric(history[c], errors="coerce").dropna()
            if len(s):
                v = float(s.iloc[0])
        if v is not None and np.isfinite(v):
            out[c] = v
    return out


def exclude_failed_paths(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Drop every path that has a row whose ``status`` is not ``ok``.

    A ``diverged`` epoch (non-finite loss) or a ``skipped`` branch (precision not
    available) is no learning curve to fit or score: its whole path is excluded, and the
    excluded paths are logged at WARNING level. Rows without a ``status`` column are kept.
    """
    if "status" not in trajectories.columns or trajectories.empty:
        return trajectories
    keys = [
        c for c in ("study", "dataset", "seed", "method", "intervention_epoch") if c in trajectories
    ]
    bad = trajectories.loc[trajectories["status"].fillna("ok") != "ok", keys].drop_duplicates()
    if bad.empty:
        return trajectories
    log.warning(
        "excluding %d path(s) with diverged or skipped epochs: %s",
        len(bad),
        bad.to_dict("records")[:5],
    )
    marked = trajectories.merge(bad.assign(_bad=True), on=keys, how="left")
    return trajectories[marked["_bad"].isna().to_numpy()]


def training_paths(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Trajectory rows of the base/freeze/quant paths (``stop`` paths and paths with
    diverged or skipped epochs dropped, see :func:`exclude_failed_paths`)."""
    if "row_method" not in trajectories.columns:
        raise ValueError(
            "fit() needs trajectories from greenpath.records.build_trajectories "
            "(column row_method missing)"
        )
    trajectories = exclude_failed_paths(trajectories)
    t = trajectories[trajectories["method"].isin(FORECAST_METHODS)].copy()
    if t.empty:
        raise ValueError("no base/freeze/quant paths to fit on")
    t["group"] = (
        t["study"].astype(str) + "|" + t["dataset"].astype(str) + "|" + t["seed"].astype(str)
    )
    return t.sort_values(["group", "method", "intervention_epoch", "epoch"]).reset_index(drop=True)


class Predictor(ABC):
    """Forecasts validation accuracy and per-epoch energy of training paths."""

    name: ClassVar[str] = "abstract"

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.trained_datasets: list[str] = []
        self.fitted: bool = False

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"predictor {self.name!r} is not fitted; call fit() first")

    def _forecast_inputs(
        self, history: pd.DataFrame, method: str, intervention_epoch: int, last_epoch: int
    ) -> tuple[pd.DataFrame, int, int]:
        """Checks shared by every ``forecast``: fitted, known method, ``last_epoch > k``.

        Returns:
            (history sorted by epoch and checked for alignment up to k, k, last_epoch).

        Raises:
            RuntimeError: not fitted. ValueError: unknown method, ``last_epoch <= k``, or a
            history that is not exactly epochs ``1..k``.
        """
        self._require_fitted()
        check_method(method)
        k, n = int(intervention_epoch), int(last_epoch)
        if n <= k:
            raise ValueError(f"last_epoch={n} must exceed intervention_epoch={k}")
        return sorted_history(history, upto=k if k > 0 else None), k, n

    @abstractmethod
    def fit(self, trajectories: pd.DataFrame) -> Predictor:
        """Fit on the paths of the training fold (``build_trajectories`` output)."""

    @abstractmethod
    def forecast(
        self,
        history: pd.DataFrame,
        method: str,
        intervention_epoch: int,
        last_epoch: int,
        *,
        dataset_info: Mapping | None = None,
    ) -> PathForecast:
        """Forecast epochs ``intervention_epoch+1..last_epoch`` of one path.

        Args:
            history: trunk rows (record schema) of ONE (dataset, seed), epochs
                ``1..intervention_epoch`` exactly (empty when it is 0).
            method: ``base`` (continue the trunk), ``freeze`` or ``quant``.
            intervention_epoch: k >= 0.
            last_epoch: E > k.
            dataset_info: descriptors (num_classes, train_size, val_size, image_size);
                read from ``history`` when omitted.
        """

    @abstractmethod
    def predict_one_step(
        self,
        path_history: pd.DataFrame,
        method: str,
        *,
        dataset_info: Mapping | None = None,
    ) -> tuple[float, float]:
        """Predict (val_accuracy, energy_j) of the next epoch of a path.

        Args:
            path_history: the path's rows so far, epochs ``1..e-1`` (trunk rows then
                branch rows; ``row_method`` or ``method`` tells which produced each row).
            method: the method of epoch ``e``.
        """

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """JSON-serialisable fitted state."""

    @abstractmethod
    def _load_state(self, state: Mapping[str, Any]) -> None:
        """Restore the fitted state written by :meth:`_state`."""

    def to_json(self) -> dict[str, Any]:
        """The fitted predictor as a JSON-serialisable dict."""
        self._require_fitted()
        return {
            "name": self.name,
            "params": self.params,
            "trained_datasets": list(self.trained_datasets),
            "state": self._state(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Predictor:
        """Rebuild a fitted predictor from :meth:`to_json` output."""
        if d.get("name") != cls.name:
            raise ValueError(f"JSON holds predictor {d.get('name')!r}, not {cls.name!r}")
        obj = cls(**dict(d.get("params") or {}))
        obj.trained_datasets = list(d.get("trained_datasets") or [])
        obj._load_state(d["state"])
        obj.fitted = True
        return obj


_REGISTRY: dict[str, tuple[type[Predictor], dict[str, Any]]] = {}


def register(name: str, defaults: Mapping[str, Any] | None = None) -> Callable:
    """Class decorator: make a predictor available to :func:`get_predictor` as ``name``."""

    def deco(cls: type[Predictor]) -> type[Predictor]:
        _REGISTRY[name] = (cls, dict(defaults or {}))
        return cls

    return deco


def _ensure_loaded() -> None:
    # Importing the modules registers their predictors.
    from greenpath.modeling import baselines, greenpath_model, paper  # noqa: F401


def available_predictors() -> list[str]:
    """Names accepted by :func:`get_predictor`."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_predictor(name: str, **params: Any) -> Predictor:
    """A new, unfitted predictor by registry name (``paper``, ``persistence``, ...).

    Raises:
        ValueError: unknown name (lists the known ones).
    """
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"unknown predictor {name!r}; choose one of {sorted(_REGISTRY)}")
    cls, defaults = _REGISTRY[name]
    merged = {**defaults, **params}
    obj = cls(**merged)
    obj.registry_name = name  # type: ignore[attr-defined]
    return obj


def predictor_class(name: str) -> type[Predictor]:
    """The class registered under ``name``."""
    _ensure_loaded()
    for cls, _ in _REGISTRY.values():
        if cls.name == name:
            return cls
    if name in _REGISTRY:
        return _REGISTRY[name][0]
    raise ValueError(f"unknown predictor {name!r}; choose one of {sorted(_REGISTRY)}")
