"""The paper's predictor, reimplemented from the authors' analysis.

Source: GAISSA-UPC/energydl-full, ``src/analysis/analysis_rq2.Rmd`` (commit 32f0690),
sections "Estimate dataset parameter" (4.2.1), "Energy prediction" (4.2.2), "Score
prediction" (4.2.3) and "Energy savings" (score maximisation).

Accuracy (4.2.1, "additive parameter estimation"): a linear fixed-effects AR(4) on the
*raw* validation accuracy (not log-odds: ``all_data.csv`` has ``val_logodds`` but every RQ2
regression uses ``val_accuracy``)::

    acc_e = sum_{j=1..4} b_j acc_{e-j} + c1 [mode_{e-1} == freeze] + c2 [mode_e == freeze]
            + alpha_dataset + eps

fitted by OLS (R ``lm``; here statsmodels ``OLS`` with one dummy per training tree) on the
rows whose 4 lags exist (epoch >= 5), with ``quant`` recoded as ``base`` when fitting
(so quant shares base's coefficients). Lags come from the row's own path: trunk epochs at
or before the intervention, branch epochs after it (``get_prev``). For an unseen dataset
the fixed effect is replaced by an offset from the observed history:
``offset = mean(acc_hist) - mean(X_hist @ b)`` over the history rows with complete lags.

Energy (4.2.2): per-epoch energy is the mean of the previous epochs' energies; at the
first epoch after a change of mode it is that mean x a per-mode ratio, the no-intercept
OLS slope of per-dataset mean energies ``mean_freeze ~ 0 + mean_base`` (and
``mean_quant ~ 0 + mean_base``); otherwise the mean of the previous epochs of the same
mode. Score (4.2.3): ``acc / (cumulative energy before + predicted epoch energy)``.

Places where the Rmd is ambiguous and what this module does (also in docs/modeling.md):

1. ``coefs = res.fe$coefficients[12:17]`` hard-codes 12 datasets (intercept + 10 dummies
   for 11 training datasets); with the 9 EAT-IT datasets here it would pick a dataset
   dummy and NAs. We take the 6 non-dataset coefficients by name.
2. The score section (4.2.3) recodes quant as base in the training fold before the mode
   means, so the "base" mean includes quant epochs, and uses ``freeze.change`` for every
   switch, quant included; the energy section (4.2.2) keeps quant apart and uses
   ``quant.change`` for quant. ``energy_variant="score"`` (default, used for the
   reference figures) follows 4.2.3; ``"energy"`` follows 4.2.2.
3. The history function ``get_all_previous`` of a branch at k > 0 returns *every* row with
   intervention 0 and epoch < k (the trunk, but also the freeze@0 and quant@0 branches),
   drops trunk epoch k, and takes the cumulative energy before the first branch epoch
   from trunk epoch k-1. ``greenpath.modeling.evaluate`` reproduces that for the
   "paper" one-step variant (rows ordered as in ``all_data.csv``: freeze@0, quant@0,
   base) and also reports a "live" variant with the path's own history.
4. The accuracy one-step rows are ``epoch > 6``; the energy section uses ``epoch > 5``;
   the score section (which gives the three reference figures) uses ``epoch > 6``.
5. Histories shorter than the model needs (not in the Rmd): with fewer than 4 epochs the
   missing lags are filled with the earliest observed accuracy; with no row having all 4
   lags the offset is the mean training fixed effect; with no history at all (decision
   at epoch 0) the forecast is the training fold's mean curve of that path and its mean
   epoch energy. Each case is logged.
6. Multi-step forecasts iterate the AR with the mode of the path (``predict_branch``),
   and use a constant energy ``mean(history) x ratio`` (``simulate``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from greenpath.modeling.base import (
    PathForecast,
    Predictor,
    check_method,
    energy_column,
    register,
    row_methods,
    sorted_history,
    training_paths,
)

log = logging.getLogger(__name__)

NLAGS = 4
COEF_NAMES = ["lag1", "lag2", "lag3", "lag4", "mode_lag1_freeze", "mode_freeze"]


def paper_panel(trajectories: pd.DataFrame) -> pd.DataFrame:
    """One row per measured epoch with the Rmd's lag features (``get_prev``).

    Args:
        trajectories: ``build_trajectories`` output (``stop`` paths are ignored).

    Returns:
        DataFrame with columns group, dataset, method (of the path), intervention_epoch,
        epoch, row_method, val_accuracy, lag1..lag4 (NaN when epoch - j < 1),
        mode_lag1 (None at epoch 1), energy (J), energy_cum (J, along the path).
        Trunk rows appear once (from the base path); branch rows once.
    """
    t = training_paths(trajectories)
    ecol = energy_column(t)
    t = t.sort_values(["group", "method", "intervention_epoch", "epoch"])
    keys = ["group", "method", "intervention_epoch"]
    g = t.groupby(keys, sort=False)
    out = pd.DataFrame(
        {
            "group": t["group"],
            "dataset": t["dataset"].astype(str),
            "method": t["method"].astype(str),
            "intervention_epoch": t["intervention_epoch"].astype(np.int64),
            "epoch": t["epoch"].astype(np.int64),
            "row_method": t["row_method"].astype(str),
            "val_accuracy": t["val_accuracy"].astype(float),
            "energy": t[ecol].astype(float),
            "energy_cum": t[ecol].astype(float).groupby([t[k] for k in keys]).cumsum(),
        }
    )
    for j in range(1, NLAGS + 1):
        out[f"lag{j}"] = g["val_accuracy"].shift(j).astype(float)
    out["mode_lag1"] = g["row_method"].shift(1)
    own = (out["method"] == "base") | (out["epoch"] > out["intervention_epoch"])
    return out[own].reset_index(drop=True)


def _design(rows: pd.DataFrame, mode: np.ndarray | None = None) -> np.ndarray:
    """(n, 6) matrix lag1..lag4, [mode_lag1 == freeze], [mode == freeze]."""
    m = rows["row_method"].to_numpy() if mode is None else mode
    return np.column_stack(
        [
            rows[[f"lag{j}" for j in range(1, NLAGS + 1)]].to_numpy(float),
            (rows["mode_lag1"].to_numpy() == "freeze").astype(float),
            (np.asarray(m) == "freeze").astype(float),
        ]
    )


@register("paper")
class PaperPredictor(Predictor):
    """The paper's fixed-effects AR(4) accuracy model and mean-x-ratio energy rule.

    Params:
        energy_variant: ``"score"`` (analysis_rq2.Rmd 4.2.3, default) or ``"energy"``
            (4.2.2); see the module docstring, point 2.
    """

    name = "paper"
    supports_paper_history = True

    def __init__(self, energy_variant: str = "score", **params: Any) -> None:
        if energy_variant not in ("score", "energy"):
            raise ValueError(f"energy_variant={energy_variant!r}: choose 'score' or 'energy'")
        super().__init__(energy_variant=energy_variant, **params)
        self.energy_variant = energy_variant

    # ------------------------------------------------------------------ fitting
    def fit(self, trajectories: pd.DataFrame) -> PaperPredictor:
        panel = paper_panel(trajectories)
        self.trained_datasets = sorted(panel["dataset"].unique())
        rows = panel.dropna(subset=[*(f"lag{j}" for j in range(1, NLAGS + 1)), "mode_lag1"])
        if len(rows) < 10:
            raise ValueError(f"paper predictor: only {len(rows)} rows with 4 lags to fit on")
        x = pd.DataFrame(_design(rows), columns=COEF_NAMES, index=rows.index)
        dummies = pd.get_dummies(rows["group"], prefix="fe", dtype=float)
        res = sm.OLS(rows["val_accuracy"].astype(float), pd.concat([x, dummies], axis=1)).fit()
        self.coefs = res.params[COEF_NAMES].to_numpy(float)
        self.effects = {c[3:]: float(res.params[c]) for c in dummies.columns}
        self.sigma = float(np.sqrt(res.scale))

        # energy ratios: no-intercept OLS of per-dataset mode means on the base mean
        mode = panel["row_method"].copy()
        if self.energy_variant == "score":
            mode = mode.replace("quant", "base")
        means = panel.assign(mode=mode).groupby(["group", "mode"])["energy"].mean().unstack()
        self.ratios: dict[str, float] = {"base": 1.0}
        for m in ("freeze", "quant"):
            if m in means.columns and "base" in means.columns:
                d = means[["base", m]].dropna()
                self.ratios[m] = float(sm.OLS(d[m], d[["base"]]).fit().params["base"])
        if self.energy_variant == "score" or "quant" not in self.ratios:
            self.ratios["quant"] = self.ratios.get("freeze", 1.0)
        self.ratios.setdefault("freeze", 1.0)

        # cold start (not in the Rmd): mean curves of the k = 0 paths, mean epoch energy
        k0 = panel[panel["intervention_epoch"] == 0]
        curve = k0.groupby(["method", "epoch"])["val_accuracy"].mean()
        self.cold_curve = {
            m: {int(e): float(v) for e, v in curve[m].items()}
            for m in curve.index.get_level_values(0).unique()
        }
        self.cold_energy = float(panel.loc[panel["method"] == "base", "energy"].mean())
        self.fitted = True
        return self

    def _state(self) -> dict[str, Any]:
        return {
            "coefs": dict(zip(COEF_NAMES, map(float, self.coefs), strict=True)),
            "effects": self.effects,
            "sigma": self.sigma,
            "ratios": self.ratios,
            "cold_curve": {
                m: {str(e): v for e, v in c.items()} for m, c in self.cold_curve.items()
            },
            "cold_energy": self.cold_energy,
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.coefs = np.array([float(state["coefs"][c]) for c in COEF_NAMES])
        self.effects = {k: float(v) for k, v in state["effects"].items()}
        self.sigma = float(state["sigma"])
        self.ratios = {k: float(v) for k, v in state["ratios"].items()}
        self.cold_curve = {
            m: {int(e): float(v) for e, v in c.items()} for m, c in state["cold_curve"].items()
        }
        self.cold_energy = float(state["cold_energy"])

    # --------------------------------------------------------------- prediction
    def _offset(self, prev: pd.DataFrame) -> float:
        ok = prev.dropna(subset=[*(f"lag{j}" for j in range(1, NLAGS + 1)), "mode_lag1"])
        if ok.empty:
            log.info("paper: no history row with 4 lags; offset = mean training fixed effect")
            return float(np.mean(list(self.effects.values())))
        return float(ok["val_accuracy"].mean() - (_design(ok) @ self.coefs).mean())

    def _energy_rule(self, prev_energy: np.ndarray, prev_mode: np.ndarray, mode: str) -> float:
        """Rmd 4.2.2/4.2.3: mean of previous, x ratio at a change, else same-mode mean."""
        if len(prev_energy) == 0:
            return self.cold_energy * self.ratios[mode]
        if mode == "base":
            return float(np.mean(prev_energy))
        if mode != prev_mode[-1]:
            return float(np.mean(prev_energy)) * self.ratios[mode]
        return float(np.mean(prev_energy[prev_mode == mode]))

    def predict_panel_row(
        self, prev: pd.DataFrame, target: pd.Series
    ) -> tuple[float, float, float]:
        """One-step prediction with the Rmd's own history rows (``get_all_previous``).

        Args:
            prev: :func:`paper_panel` rows forming the history, in the Rmd's order.
            target: the :func:`paper_panel` row to predict (its lags are used).

        Returns:
            (val_accuracy, energy_j, cumulative energy before the epoch as the Rmd takes
            it: ``energy_cum`` of the last history row with complete lags).
        """
        self._require_fitted()
        x = _design(target.to_frame().T)[0]
        acc = float(x @ self.coefs + self._offset(prev))
        energy = self._energy_rule(
            prev["energy"].to_numpy(float), prev["row_method"].to_numpy(), str(target["row_method"])
        )
        ok = prev.dropna(subset=[f"lag{j}" for j in range(1, NLAGS + 1)])
        cum = float(ok["energy_cum"].iloc[-1]) if len(ok) else float(prev["energy"].sum())
        return acc, energy, cum

    def _history_panel(self, hist: pd.DataFrame) -> pd.DataFrame:
        ecol = energy_column(hist) if len(hist) else "energy_total_j"
        v = hist["val_accuracy"].to_numpy(float) if len(hist) else np.zeros(0)
        m = row_methods(hist) if len(hist) else np.zeros(0, dtype=object)
        p = pd.DataFrame(
            {
                "val_accuracy": v,
                "row_method": m,
                "energy": hist[ecol].to_numpy(float) if len(hist) else np.zeros(0),
            }
        )
        for j in range(1, NLAGS + 1):
            p[f"lag{j}"] = p["val_accuracy"].shift(j)
        p["mode_lag1"] = p["row_method"].shift(1)
        return p

    def _target_lags(self, v: np.ndarray) -> np.ndarray:
        lags = [v[-j] if j <= len(v) else np.nan for j in range(1, NLAGS + 1)]
        if len(v) < NLAGS:
            log.info(
                "paper: history of %d epochs < %d lags; missing lags = earliest accuracy",
                len(v),
                NLAGS,
            )
            lags = [x if np.isfinite(x) else v[0] for x in lags]
        return np.asarray(lags, dtype=float)

    def predict_one_step(
        self,
        path_history: pd.DataFrame,
        method: str,
        *,
        dataset_info: Mapping | None = None,
    ) -> tuple[float, float]:
        self._require_fitted()
        check_method(method)
        hist = sorted_history(path_history)
        if len(hist) == 0:
            curve = self.cold_curve.get(method) or self.cold_curve.get("base", {1: 0.0})
            return float(curve.get(1, np.mean(list(curve.values())))), self._energy_rule(
                np.zeros(0), np.zeros(0), method
            )
        p = self._history_panel(hist)
        v = p["val_accuracy"].to_numpy(float)
        x = np.concatenate(
            [self._target_lags(v), [p["row_method"].iloc[-1] == "freeze", method == "freeze"]]
        )
        acc = float(x @ self.coefs + self._offset(p))
        energy = self._energy_rule(p["energy"].to_numpy(float), p["row_method"].to_numpy(), method)
        return acc, energy

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
        epochs = np.arange(k + 1, n + 1)
        h = np.arange(1, n - k + 1)
        if len(hist) == 0:
            log.info("paper: decision at epoch 0 without history; training mean curve")
            curve = self.cold_curve.get(method) or self.cold_curve["base"]
            last = curve[max(curve)]
            acc = np.array([curve.get(int(e), last) for e in epochs])
            energy = np.full(len(h), self.cold_energy * self.ratios[method])
            return PathForecast(epochs, acc, np.full(len(h), self.sigma * 5), energy, energy * 0.5)
        p = self._history_panel(hist)
        offset = self._offset(p)
        lags = list(self._target_lags(p["val_accuracy"].to_numpy(float)))
        mode_lag1 = p["row_method"].iloc[-1] == "freeze"
        mf = float(method == "freeze")
        preds = []
        for _ in h:  # predict_branch: values = (pred, lag1..3, mode, mode)
            x = np.array([*lags, float(mode_lag1), mf])
            pred = float(x @ self.coefs + offset)
            preds.append(pred)
            lags = [pred, *lags[:3]]
            mode_lag1 = mf
        e_hist = p["energy"].to_numpy(float)
        level = float(np.mean(e_hist)) * self.ratios[method]
        estd = float(np.std(e_hist)) * self.ratios[method] if len(e_hist) > 1 else 0.5 * level
        return PathForecast(
            epochs=epochs,
            val_accuracy=np.asarray(preds),
            val_accuracy_std=self.sigma * np.sqrt(h),
            energy_j=np.full(len(h), level),
            energy_std=np.full(len(h), estd),
        )
