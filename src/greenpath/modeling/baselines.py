"""Baseline predictors: persistence (last value) and CarbonTracker's energy rule.

- ``persistence``: the next (and every future) epoch repeats the last observed validation
  accuracy and the last observed per-epoch energy.
- ``carbontracker``: accuracy as persistence; energy of every future epoch = the mean
  epoch energy of the path so far, so the remaining energy is that mean x remaining
  epochs (CarbonTracker's prediction rule: Anthony, Kanding & Selvan, "Carbontracker",
  ICML 2020 workshop, arXiv:2007.03051, section 3: "predicted ... by the average of the
  monitored epochs multiplied by the number of remaining epochs").

Neither uses the method of the future epochs. With an empty history (decision at epoch
0) both fall back to the training fold's mean epoch-1 accuracy and mean epoch energy.
Uncertainties: accuracy std = sqrt(h) x the std of one-epoch accuracy changes in the
training fold (random walk); energy std = std of the history's epoch energies (or the
training fold's relative std x the level when the history has fewer than 2 epochs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from greenpath.modeling.base import (
    PathForecast,
    Predictor,
    check_method,
    energy_column,
    register,
    sorted_history,
    training_paths,
)


class _LastValue(Predictor):
    """Shared code: accuracy = last value; energy rule set by subclasses."""

    def fit(self, trajectories: pd.DataFrame) -> _LastValue:
        t = training_paths(trajectories)
        ecol = energy_column(t)
        self.trained_datasets = sorted(t["dataset"].astype(str).unique())
        diffs = []
        rel = []
        for _, g in t[t["method"] == "base"].groupby("group"):
            g = g.sort_values("epoch")
            diffs.append(np.diff(g["val_accuracy"].to_numpy(float)))
            e = g[ecol].to_numpy(float)
            rel.append(np.std(e) / np.mean(e) if np.mean(e) > 0 else 0.0)
        d = np.concatenate(diffs) if diffs else np.zeros(1)
        self.state_: dict[str, float] = {
            "acc_step_std": float(np.nanstd(d)),
            "energy_rel_std": float(np.nanmean(rel)) if rel else 0.0,
            "cold_acc": float(t.loc[t["epoch"] == 1, "val_accuracy"].mean()),
            "cold_energy": float(t[ecol].mean()),
        }
        self.fitted = True
        return self

    def _energy_level(self, e: np.ndarray) -> float:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return dict(self.state_)

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.state_ = {k: float(v) for k, v in state.items()}

    def _levels(self, hist: pd.DataFrame) -> tuple[float, float, float]:
        s = self.state_
        if len(hist) == 0:
            return s["cold_acc"], s["cold_energy"], s["energy_rel_std"] * s["cold_energy"]
        ecol = energy_column(hist)
        e = hist[ecol].to_numpy(float)
        level = self._energy_level(e)
        estd = float(np.std(e)) if len(e) >= 2 else s["energy_rel_std"] * level
        return float(hist["val_accuracy"].to_numpy(float)[-1]), level, estd

    def forecast(
        self,
        history: pd.DataFrame,
        method: str,
        intervention_epoch: int,
        last_epoch: int,
        *,
        dataset_info: Mapping | None = None,
    ) -> PathForecast:
        hist, k, n = self._forecast_inputs(history, method, intervention_epoch, last_epoch)
        acc, level, estd = self._levels(hist)
        h = np.arange(1, n - k + 1)
        return PathForecast(
            epochs=np.arange(k + 1, n + 1),
            val_accuracy=np.full(len(h), acc),
            val_accuracy_std=self.state_["acc_step_std"] * np.sqrt(h),
            energy_j=np.full(len(h), level),
            energy_std=np.full(len(h), estd),
        )

    def predict_one_step(
        self,
        path_history: pd.DataFrame,
        method: str,
        *,
        dataset_info: Mapping | None = None,
    ) -> tuple[float, float]:
        self._require_fitted()
        check_method(method)
        acc, level, _ = self._levels(sorted_history(path_history))
        return acc, level


@register("persistence")
class PersistencePredictor(_LastValue):
    """Last value: accuracy and per-epoch energy of the last observed epoch."""

    name = "persistence"

    def _energy_level(self, e: np.ndarray) -> float:
        return float(e[-1])


@register("carbontracker")
class CarbonTrackerPredictor(_LastValue):
    """CarbonTracker: per-epoch energy = mean of the observed epochs; accuracy persists."""

    name = "carbontracker"

    def _energy_level(self, e: np.ndarray) -> float:
        return float(np.mean(e))
