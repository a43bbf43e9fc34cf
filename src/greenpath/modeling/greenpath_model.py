"""greenpath's own predictor: direct multi-horizon accuracy model + robust energy level.

Registry names: ``greenpath`` (= :data:`GREENPATH_DEFAULTS`: ``acc_model="shift"``, epoch
counts chosen for 50-epoch runs and scaled to the run's length; the best on EAT-IT),
``greenpath_shift``, ``greenpath_lgbm``, ``greenpath_ols``.

Accuracy (``acc_model="shift"``: the median training change of the log-odds per
(method, switch, horizon bucket) -- a low-variance model that on 8 training datasets beats
the richer ones; ``"lgbm"``, LightGBM on every feature below, its leaf sizes adapted to
the sample count (:func:`lgbm_params_for`) and replaced by ``shift`` when it fits a
constant (recorded in ``acc_fit``); ``"ols"``, statsmodels OLS on a low-capacity design).
From an origin
epoch t (the last epoch of the history) and a horizon h >= 1 with the future epochs all
under method m, the model predicts the change of the validation log-odds from the recent
level ``L`` = mean log-odds of the last ``level_window`` epochs (registered
``greenpath``: 4)::

    logit(acc_{t+h}) = L + f(h, m, switch, epochs since intervention, slope, last - L,
                             L - logit(1/num_classes), train-val gap, loss trend,
                             log num_classes, log train_size, image_size, t)

A *direct* model (one fit over every origin and horizon of the training paths) avoids
compounding one-step errors over 40 epochs, which is what the paper's iterated AR does.
Uncertainty: the training residual standard deviation per horizon bucket (log-odds),
mapped to accuracy with the delta method (x p(1-p)).

Energy. Per-epoch energy is flat within a method on a given setup once the first epoch's
overhead (graph build, cuDNN autotuning, cache warm-up) is past, so the next epoch's
energy is a robust recent level: the median of the last ``n_level`` (default 5) *steady*
epochs of the current method (the first epoch of each segment excluded). Changing method
multiplies the level by a learned ratio ``ratio[m] / ratio[current]`` and the first epoch
after a change by a learned switch overhead; the very first epoch of a run by a learned
epoch-1 overhead. Ratios and overheads are medians over the training paths; the cold
level (no history) is an OLS fit ``log level ~ log train_size + log val_size``
(statsmodels). Uncertainty: the training spread of log(energy / level).

Short histories: features needing more epochs than available use the
epochs there are (slope over ``min(t, 6)`` epochs, level over ``min(t, 3)``), logged; an
empty history uses the cold-start rules.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import statsmodels.api as sm

from greenpath.modeling.base import (
    FORECAST_METHODS,
    PathForecast,
    Predictor,
    check_method,
    energy_column,
    expit,
    info_from,
    logit,
    register,
    row_methods,
    sorted_history,
    training_paths,
)

log = logging.getLogger(__name__)

FEATURES: list[str] = [
    "h",
    "log_h",
    "method",
    "switch",
    "since_int",
    "slope",
    "last_minus_level",
    "level_minus_chance",
    "gap",
    "loss_trend",
    "log_classes",
    "log_train",
    "t",
]
_M = {m: i for i, m in enumerate(FORECAST_METHODS)}
_H_BUCKETS = [1, 2, 3, 5, 8, 13, 21, 34, 1000]

LGBM_PARAMS: dict[str, Any] = {
    "objective": "huber",
    "alpha": 0.5,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "seed": 0,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}


#: Training-sample count at and above which :data:`LGBM_PARAMS` are used as they are
#: (ten leaves of ``min_data_in_leaf`` rows).
LGBM_FULL_SAMPLES: int = 10 * LGBM_PARAMS["min_data_in_leaf"]


def lgbm_params_for(n_samples: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """LightGBM parameters for ``n_samples`` training samples, and what was adapted.

    With LightGBM's leaf-size settings fixed for large data, a few short runs give fewer
    samples than one leaf needs and the booster is one constant leaf. Below
    :data:`LGBM_FULL_SAMPLES` the leaf and group sizes shrink to a tenth of the samples
    (at least 2), bins may hold a single row, bagging is off under 100 samples and the L2
    penalty shrinks in proportion to the sample count.

    Returns:
        ``(params, adapted)``: the parameters to train with, and the adapted keys with their
        values (empty when the defaults are kept).
    """
    n = int(n_samples)
    params = dict(LGBM_PARAMS)
    if n >= LGBM_FULL_SAMPLES:
        return params, {}
    leaf = max(2, n // 10)
    adapted: dict[str, Any] = {
        "min_data_in_leaf": leaf,
        "min_data_per_group": leaf,
        "min_data_in_bin": min(3, leaf),
        "lambda_l2": LGBM_PARAMS["lambda_l2"] * n / LGBM_FULL_SAMPLES,
    }
    if n < 100:
        adapted["bagging_freq"] = 0
    params.update(adapted)
    return params, adapted


# ---------------------------------------------------------------------------- features
def _origin_state(
    v: np.ndarray, tr: np.ndarray, vl: np.ndarray, rm: np.ndarray, level_window: int = 3
) -> dict:
    """History summaries at the origin (arrays of the path's epochs 1..t, t >= 1).

    ``level`` is the mean log-odds of the last ``min(level_window, t)`` epochs.
    """
    t = len(v)
    lv = logit(v)
    n_lvl = min(level_window, t)
    level = float(np.mean(lv[-n_lvl:]))
    w = min(6, t)
    slope = float(np.polyfit(np.arange(w), lv[-w:], 1)[0]) if w >= 2 else 0.0
    lt = logit(tr[-1]) if np.isfinite(tr[-1]) else lv[-1]
    if w >= 2 and np.all(np.isfinite(vl[-w:])):
        loss_trend = float(np.polyfit(np.arange(w), vl[-w:], 1)[0])
    else:
        loss_trend = 0.0
    run = 1
    while run < t and rm[-run - 1] == rm[-1]:
        run += 1
    return {
        "t": t,
        "level": level,
        "slope": slope,
        "last_minus_level": float(lv[-1] - level),
        "gap": float(lt - lv[-1]),
        "loss_trend": loss_trend,
        "last_method": str(rm[-1]),
        "run": run,
    }


def _target_features(state: dict, info: dict, m: str, hs: np.ndarray) -> pd.DataFrame:
    nc = info.get("num_classes")
    chance = float(logit(1.0 / nc)) if nc else np.nan
    switch = float(m != state["last_method"])
    since = hs if switch else state["run"] + hs
    n = len(hs)
    return pd.DataFrame(
        {
            "h": hs.astype(float),
            "log_h": np.log(hs.astype(float)),
            "method": np.full(n, _M[m], dtype=float),
            "switch": np.full(n, switch),
            "since_int": since.astype(float),
            "slope": np.full(n, state["slope"]),
            "last_minus_level": np.full(n, state["last_minus_level"]),
            "level_minus_chance": np.full(n, state["level"] - chance),
            "gap": np.full(n, state["gap"]),
            "loss_trend": np.full(n, state["loss_trend"]),
            "log_classes": np.full(n, np.log(nc) if nc else np.nan),
            "log_train": np.full(
                n, np.log(info["train_size"]) if info.get("train_size") else np.nan
            ),
            "t": np.full(n, float(state["t"])),
        }
    )


def _arrays(h: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def col(c: str) -> np.ndarray:
        return h[c].to_numpy(float) if c in h.columns else np.full(len(h), np.nan)

    return col("val_accuracy"), col("train_accuracy"), col("val_loss"), row_methods(h)


def _ols_design(x: pd.DataFrame) -> np.ndarray:
    lh = x["log_h"].to_numpy()
    sw = x["switch"].to_numpy()
    fr = (x["method"].to_numpy() == _M["freeze"]).astype(float)
    qu = (x["method"].to_numpy() == _M["quant"]).astype(float)
    # deliberately low capacity: a curve in log h per method and a jump at a switch
    cols = [
        np.ones(len(x)),
        lh,
        fr * sw,
        qu * sw,
        fr * lh,
        qu * lh,
        x["last_minus_level"].to_numpy(),
        lh / x["t"].to_numpy(),
    ]
    return np.column_stack(cols)


def _shift_keys(x: pd.DataFrame, with_origin: bool) -> np.ndarray:
    """Keys ``method|switch|horizon-bucket[|origin-bucket]`` of the ``shift`` accuracy model.

    ``with_origin``: add the origin-epoch bucket, column ``t_bucket`` of ``x`` (0 below the
    first edge, ...; see :meth:`GreenpathPredictor.geometry`).
    """
    hb = np.searchsorted(_H_BUCKETS, x["h"].to_numpy(), side="left")
    m = x["method"].to_numpy().astype(int)
    sw = x["switch"].to_numpy().astype(int)
    if not with_origin:
        return np.array([f"{a}|{b}|{c}" for a, b, c in zip(m, sw, hb, strict=True)])
    tb = x["t_bucket"].to_numpy().astype(int)
    return np.array([f"{a}|{b}|{c}|{d}" for a, b, c, d in zip(m, sw, hb, tb, strict=True)])


# ----------------------------------------------------------------------------- energy
def _segments(rm: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index ranges of runs of equal methods."""
    segs, s = [], 0
    for i in range(1, len(rm) + 1):
        if i == len(rm) or rm[i] != rm[s]:
            segs.append((s, i))
            s = i
    return segs


#: Defaults of the registered ``greenpath`` predictor (chosen on the leave-one-dataset-out
#: multi-step error on EAT-IT, docs/modeling.md): level over 4 epochs, shift table also
#: keyed by the origin epoch (t < 15, 15-24, 25-34, >= 35), training origins from epoch
#: 10. These epoch counts were chosen for EAT-IT's 50-epoch runs (``reference_epochs``)
#: and scale with the run's length: a 10-epoch run gets origins from epoch 2, a 1-epoch
#: level and buckets at 3, 5 and 7.
GREENPATH_DEFAULTS: dict[str, Any] = {
    "acc_model": "shift",
    "min_origin": 10,
    "level_window": 4,
    "origin_buckets": [15, 25, 35],
    "reference_epochs": 50,
}


def _scaled(epochs: int, run_epochs: int, reference_epochs: int) -> int:
    """``epochs`` chosen for runs of ``reference_epochs`` epochs, for a run of ``run_epochs``:
    rounded half up, at least 1."""
    return max(1, math.floor(epochs * run_epochs / reference_epochs + 0.5))


@register("greenpath", GREENPATH_DEFAULTS)
@register("greenpath_lgbm", {"acc_model": "lgbm"})
@register("greenpath_ols", {"acc_model": "ols"})
@register("greenpath_shift", {"acc_model": "shift"})
class GreenpathPredictor(Predictor):
    """greenpath's predictor (see the module docstring).

    Params:
        acc_model: ``"lgbm"`` (LightGBM, default) or ``"ols"`` (statsmodels OLS).
        n_level: number of recent steady epochs in the energy level (default 5).
        num_boost_round: LightGBM rounds (default 300).
        min_origin: smallest history length used as a training origin (default 5; the
            first epochs' steep rise says little about decisions at epoch >= 10).
        level_window: epochs in the recent log-odds level ``L`` (default 3).
        origin_buckets: upper edges of origin-epoch buckets added to the ``shift`` table's
            key (default none): the change to come depends on how far training is.
        reference_epochs: run length (epochs) the three epoch counts above were chosen for;
            for a run of E epochs they become ``max(1, round(count * E / reference_epochs))``
            (:meth:`geometry`). ``None`` (default): used as given for every run length.
    """

    name = "greenpath"

    def __init__(
        self,
        acc_model: str = "lgbm",
        n_level: int = 5,
        num_boost_round: int = 300,
        min_origin: int = 5,
        level_window: int = 3,
        origin_buckets: list[int] | None = None,
        reference_epochs: int | None = None,
        **params: Any,
    ) -> None:
        if acc_model not in ("lgbm", "ols", "shift"):
            raise ValueError(f"acc_model={acc_model!r}: choose 'lgbm', 'ols' or 'shift'")
        super().__init__(
            acc_model=acc_model,
            n_level=n_level,
            num_boost_round=num_boost_round,
            min_origin=min_origin,
            level_window=level_window,
            origin_buckets=list(origin_buckets or []),
            reference_epochs=reference_epochs,
            **params,
        )
        if reference_epochs is not None and int(reference_epochs) < 1:
            raise ValueError(f"reference_epochs={reference_epochs!r}: must be >= 1 (or None)")
        self.reference_epochs = None if reference_epochs is None else int(reference_epochs)
        self.run_epochs: int | None = None  # typical run length of the training data
        self.origin_buckets = sorted(int(b) for b in (origin_buckets or []))
        self.min_origin = int(min_origin)
        self.level_window = int(level_window)
        self.acc_model, self.n_level, self.num_boost_round = (
            acc_model,
            int(n_level),
            int(num_boost_round),
        )
        #: how the accuracy model was fitted: ``model`` used (``lgbm``, ``ols``, ``shift``;
        #: ``shift`` also when LightGBM fell back), ``n_samples``, and for LightGBM
        #: ``adapted_params``, ``constant`` and ``fallback`` (why it fell back)
        self.acc_fit: dict[str, Any] = {"model": acc_model}

    def geometry(self, run_epochs: int | None) -> tuple[int, int, list[int]]:
        """``(min_origin, level_window, origin_buckets)`` for a run of ``run_epochs`` epochs.

        Unchanged when ``reference_epochs`` is None or ``run_epochs`` is unknown; otherwise
        each epoch count is scaled by ``run_epochs / reference_epochs`` (:func:`_scaled`).
        E.g. the registered defaults (10, 4, [15, 25, 35] for 50 epochs) give (2, 1,
        [3, 5, 7]) for a 10-epoch run and stay as they are for 50 epochs.
        """
        if self.reference_epochs is None or not run_epochs:
            return self.min_origin, self.level_window, list(self.origin_buckets)
        e, r = int(run_epochs), self.reference_epochs
        return (
            _scaled(self.min_origin, e, r),
            _scaled(self.level_window, e, r),
            [_scaled(b, e, r) for b in self.origin_buckets],
        )

    def _t_bucket(self, t: int, buckets: list[int]) -> int:
        return int(np.searchsorted(buckets, t, side="right")) if buckets else 0

    # ------------------------------------------------------------------ fitting
    def _samples(self, t: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for (_g, m, k), p in t.groupby(["group", "method", "intervention_epoch"], sort=False):
            p = p.sort_values("epoch")
            v, tr, vl, rm = _arrays(p)
            info = info_from(p, None)
            lv = logit(v)
            n = len(v)
            scaled_origin, level_window, buckets = self.geometry(n)
            # Short runs (e.g. 10 epochs): origins from the middle of the run instead of
            # ``min_origin``, so they still give training samples.
            min_origin = min(scaled_origin, max(1, n // 2))
            if min_origin < scaled_origin:
                log.debug("path of %d epochs: min_origin %d -> %d", n, scaled_origin, min_origin)
            start = max(int(k), min_origin, 1)
            for o in range(start, n):
                state = _origin_state(v[:o], tr[:o], vl[:o], rm[:o], level_window)
                hs = np.arange(1, n - o + 1)
                x = _target_features(state, info, str(m), hs)
                x["t_bucket"] = self._t_bucket(o, buckets)
                x["y"] = lv[o:] - state["level"]
                rows.append(x)
        if not rows:
            raise ValueError(
                "no training samples for the accuracy model: every path is shorter than 2 "
                "epochs; fit on records with longer runs"
            )
        return pd.concat(rows, ignore_index=True)

    def _fit_energy(self, t: pd.DataFrame) -> None:
        ecol = energy_column(t)
        n_lv = self.n_level
        ratios: dict[str, list[float]] = {m: [] for m in FORECAST_METHODS}
        sw: dict[str, list[float]] = {m: [] for m in FORECAST_METHODS}
        ep1: dict[str, list[float]] = {m: [] for m in FORECAST_METHODS}
        resid: list[float] = []
        cold_rows = []
        for _g, tree in t.groupby("group"):
            trunk = tree[tree["method"] == "base"].sort_values("epoch")
            te = trunk[ecol].to_numpy(float)
            if len(te) < 3 or not np.isfinite(te).all():  # null = not measured: no level
                continue
            steady_base = float(np.median(te[1:]))
            info = info_from(trunk, None)
            cold_rows.append((info.get("train_size"), info.get("val_size"), steady_base))
            ep1["base"].append(te[0] / steady_base)
            resid.extend(np.log(te[1:] / steady_base))
            for (m, k), br in tree[tree["method"] != "base"].groupby(
                ["method", "intervention_epoch"]
            ):
                be = br[br["epoch"] > k].sort_values("epoch")[ecol].to_numpy(float)
                if len(be) < 2 or not np.isfinite(be).all():
                    continue
                steady = float(np.median(be[1:]))
                resid.extend(np.log(be[1:] / steady))
                if k == 0:
                    ep1[m].append(be[0] / steady)
                    ratios[m].append(steady / float(np.median(te[1 : 1 + n_lv])))
                else:
                    ref = te[max(1, k - n_lv) : k]
                    ratios[m].append(steady / float(np.median(ref)))
                    sw[m].append(be[0] / steady)
        self.ratio = {m: float(np.median(v)) if v else 1.0 for m, v in ratios.items()}
        self.ratio["base"] = 1.0
        self.switch_overhead = {m: float(np.median(v)) if v else 1.0 for m, v in sw.items()}
        self.epoch1_overhead = {
            m: float(np.median(v)) if v else (float(np.median(ep1["base"])) if ep1["base"] else 1.0)
            for m, v in ep1.items()
        }
        r = np.asarray(resid)
        self.energy_rel_std = float(1.4826 * np.median(np.abs(r - np.median(r)))) if len(r) else 0.1
        sw_all = np.log(np.concatenate([np.asarray(v) for v in sw.values() if v] or [np.ones(1)]))
        self.switch_rel_std = float(np.std(sw_all)) if len(sw_all) > 1 else 0.5
        c = pd.DataFrame(cold_rows, columns=["train", "val", "level"]).dropna()
        if len(c) >= 3:
            logs = np.log(c[["train", "val"]].astype(float))
            mode = "split"
            if logs["train"].std() > 1e-12 and logs["val"].std() > 1e-12:
                if abs(float(np.corrcoef(logs["train"], logs["val"])[0, 1])) > 0.95:
                    # Validation sizes proportional to training sizes (a fixed split
                    # fraction) make the two regressors collinear, and OLS then returns huge
                    # opposite coefficients that explode off the fitted points: regress on
                    # the images one epoch touches instead.
                    mode = "sum"
                    logs = pd.DataFrame(
                        {"train": np.log(c["train"].astype(float) + c["val"].astype(float))}
                    )
            varying = [col for col in logs.columns if logs[col].std() > 1e-12]  # constant: no info
            x = sm.add_constant(logs[varying], has_constant="add")
            with warnings.catch_warnings(record=True) as caught:
                # Few trees whose train and val sizes move together (e.g. fixed subsets)
                # make this design rank-deficient: OLS then returns the minimum-norm fit,
                # which is what the cold-start energy level needs. Logged, not printed.
                warnings.simplefilter("always")
                res = sm.OLS(np.log(c["level"].astype(float)), x).fit()
            for w in caught:
                log.info("cold-start energy model: %s", w.message)
            coef = [float(res.params["const"])] + [
                float(res.params[col]) if col in varying else 0.0 for col in ("train", "val")
            ]
            self.cold = {
                "coef": coef,
                "sigma": float(np.sqrt(res.scale)),
                "mode": mode,
                # fallback when a forecast has no dataset sizes: the typical level
                "mean_log_level": float(np.mean(np.log(c["level"].astype(float)))),
            }
        else:
            lv = np.log([row[2] for row in cold_rows]) if cold_rows else np.zeros(1)
            self.cold = {"coef": [float(np.mean(lv)), 0.0, 0.0], "sigma": float(np.std(lv)) or 1.0}

    def fit(self, trajectories: pd.DataFrame) -> GreenpathPredictor:
        t = training_paths(trajectories)
        self.trained_datasets = sorted(t["dataset"].astype(str).unique())
        # the run length one-step predictions assume (they are not told the run's length)
        self.run_epochs = int(t.groupby("group")["epoch"].max().median())
        self._fit_energy(t)
        s = self._samples(t)
        x, y = s[FEATURES], s["y"].to_numpy(float)
        self.acc_fit = {"model": self.acc_model, "n_samples": len(s)}
        if self.acc_model == "lgbm":
            fitted = self._fit_lgbm(s, x, y)
        elif self.acc_model == "ols":
            d = _ols_design(x)
            self.ols_params = sm.OLS(y, d).fit().params.astype(float)
            fitted = d @ self.ols_params
        else:
            fitted = self._fit_shift(s, y)
        res = y - fitted
        hb = np.searchsorted(_H_BUCKETS, s["h"].to_numpy(), side="left")
        self.resid_std = [
            float(np.std(res[hb == i])) if np.any(hb == i) else float(np.std(res))
            for i in range(len(_H_BUCKETS))
        ]
        # cold start accuracy: training mean log-odds curve of each k = 0 path
        k0 = t[t["intervention_epoch"] == 0]
        curve = (
            k0.assign(lo=logit(k0["val_accuracy"].to_numpy(float)))
            .groupby(["method", "epoch"])["lo"]
            .mean()
        )
        self.cold_curve = {
            m: {int(e): float(v) for e, v in curve[m].items()}
            for m in curve.index.get_level_values(0).unique()
        }
        self.fitted = True
        return self

    def _fit_shift(self, s: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """Robust level shift: median log-odds change per (method, switch, horizon bucket)."""
        key = _shift_keys(s, bool(self.origin_buckets))
        self.shift_table = {k: float(np.median(y[key == k])) for k in np.unique(key)}
        self.acc_fit["model"] = "shift"
        return self._predict_delta(s)

    def _fit_lgbm(self, s: pd.DataFrame, x: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """LightGBM with parameters for the sample size (:func:`lgbm_params_for`).

        A booster that predicts one value for distinct inputs learned nothing: it is
        reported (warning, and ``acc_fit["constant"]``) and the ``shift`` model is used
        instead (``acc_fit["model"] == "shift"``, ``acc_fit["fallback"]`` says why).
        """
        params, adapted = lgbm_params_for(len(x))
        self.acc_fit.update(adapted_params=adapted, constant=False)
        if adapted:
            log.info("greenpath_lgbm: %d training samples; adapted %s", len(x), adapted)
        ds = lgb.Dataset(x, y, categorical_feature=["method"], free_raw_data=False)
        self.booster = lgb.train(params, ds, num_boost_round=self.num_boost_round)
        fitted = np.asarray(self.booster.predict(x), dtype=float)
        distinct = len(x.drop_duplicates()) > 1
        if distinct and float(np.ptp(fitted)) <= 1e-12:
            why = (
                f"LightGBM fitted a constant on {len(x)} samples with distinct inputs "
                "(nothing learned); using the shift model"
            )
            log.warning("greenpath_lgbm: %s", why)
            self.acc_fit.update(constant=True, fallback=why)
            self.booster = None
            return self._fit_shift(s, y)
        return fitted

    # --------------------------------------------------------------- state IO
    def _state(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "ratio": self.ratio,
            "switch_overhead": self.switch_overhead,
            "epoch1_overhead": self.epoch1_overhead,
            "energy_rel_std": self.energy_rel_std,
            "switch_rel_std": self.switch_rel_std,
            "cold": self.cold,
            "resid_std": self.resid_std,
            "run_epochs": self.run_epochs,
            "cold_curve": {
                m: {str(e): v for e, v in c.items()} for m, c in self.cold_curve.items()
            },
        }
        st["acc_fit"] = self.acc_fit
        used = self.acc_fit["model"]
        if used == "lgbm":
            st["lgbm_model"] = self.booster.model_to_string()
        elif used == "shift":
            st["shift_table"] = self.shift_table
        else:
            st["ols_params"] = [float(v) for v in self.ols_params]
        return st

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.ratio = dict(state["ratio"])
        self.switch_overhead = dict(state["switch_overhead"])
        self.epoch1_overhead = dict(state["epoch1_overhead"])
        self.energy_rel_std = float(state["energy_rel_std"])
        self.switch_rel_std = float(state["switch_rel_std"])
        self.cold = dict(state["cold"])
        self.resid_std = [float(v) for v in state["resid_std"]]
        run_epochs = state.get("run_epochs")  # absent in models saved before it existed
        self.run_epochs = None if run_epochs is None else int(run_epochs)
        self.cold_curve = {
            m: {int(e): float(v) for e, v in c.items()} for m, c in state["cold_curve"].items()
        }
        # models saved before ``acc_fit`` existed used the configured model
        self.acc_fit = dict(state.get("acc_fit") or {"model": self.acc_model})
        used = self.acc_fit["model"]
        if used == "lgbm":
            self.booster = lgb.Booster(model_str=state["lgbm_model"])
        elif used == "shift":
            self.shift_table = {str(k): float(v) for k, v in state["shift_table"].items()}
        else:
            self.ols_params = np.asarray(state["ols_params"], dtype=float)

    # --------------------------------------------------------------- prediction
    def _predict_delta(self, x: pd.DataFrame) -> np.ndarray:
        used = self.acc_fit["model"]
        if used == "lgbm":
            return np.asarray(self.booster.predict(x[FEATURES]), dtype=float)
        if used == "shift":
            return np.array(
                [self.shift_table.get(k, 0.0) for k in _shift_keys(x, bool(self.origin_buckets))]
            )
        return _ols_design(x) @ self.ols_params

    def _acc_path(
        self, hist: pd.DataFrame, m: str, hs: np.ndarray, info: dict, run_epochs: int | None
    ):
        """(acc, std) arrays for horizons ``hs`` after the last history epoch of a run of
        ``run_epochs`` epochs (``None``: the training runs' typical length)."""
        if len(hist) == 0:
            curve = self.cold_curve.get(m) or self.cold_curve["base"]
            last = curve[max(curve)]
            lo = np.array([curve.get(int(h), last) for h in hs])
            p = expit(lo)
            return p, p * (1 - p) * 2 * self.resid_std[-1]
        v, tr, vl, rm = _arrays(hist)
        if len(v) < 6:
            log.info("greenpath: %d-epoch history; level/slope over the epochs there are", len(v))
        _, level_window, buckets = self.geometry(run_epochs or self.run_epochs)
        state = _origin_state(v, tr, vl, rm, level_window)
        x = _target_features(state, info, m, hs)
        x["t_bucket"] = self._t_bucket(len(v), buckets)
        lo = state["level"] + self._predict_delta(x)
        p = expit(lo)
        sd = np.array([self.resid_std[i] for i in np.searchsorted(_H_BUCKETS, hs, side="left")])
        return p, p * (1 - p) * sd

    def _cold_level(self, info: dict) -> float:
        c = self.cold["coef"]
        tr, va = info.get("train_size"), info.get("val_size")
        if tr and va:
            if self.cold.get("mode") == "sum":
                return float(np.exp(c[0] + c[1] * np.log(tr + va)))
            return float(np.exp(c[0] + c[1] * np.log(tr) + c[2] * np.log(va)))
        # No sizes: the fold's typical level (exp of the intercept alone would be the level
        # of a 1-image dataset, far off the fitted points).
        return float(np.exp(self.cold.get("mean_log_level", c[0])))

    def _energy_state(self, hist: pd.DataFrame) -> tuple[float, str]:
        """(steady level of the current method in J, current method) from a history."""
        e = hist[energy_column(hist)].to_numpy(float)
        rm = row_methods(hist)
        s, end = _segments(rm)[-1]
        cur = str(rm[-1])
        steady = e[s + 1 : end]
        if len(steady):
            return float(np.median(steady[-self.n_level :])), cur
        # only the segment's first (overhead) epoch is known
        if s == 0:
            return float(e[s] / self.epoch1_overhead[cur]), cur
        return float(e[s] / self.switch_overhead[cur]), cur

    def _energy_path(self, hist: pd.DataFrame, m: str, n: int, info: dict):
        if len(hist) == 0:
            level = self._cold_level(info) * self.ratio[m]
            e = np.full(n, level)
            e[0] *= self.epoch1_overhead[m]
            sd = np.full(n, level * max(self.cold["sigma"], self.energy_rel_std))
            return e, sd
        level, cur = self._energy_state(hist)
        if m != cur:
            level = level * self.ratio[m] / self.ratio[cur]
            e = np.full(n, level)
            e[0] *= self.switch_overhead[m]
            sd = np.full(n, level * self.energy_rel_std)
            sd[0] = e[0] * self.switch_rel_std
            return e, sd
        return np.full(n, level), np.full(n, level * self.energy_rel_std)

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
        info = info_from(hist, dataset_info)
        acc, _ = self._acc_path(hist, method, np.array([1]), info, None)
        e, _ = self._energy_path(hist, method, 1, info)
        return float(acc[0]), float(e[0])

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
        info = info_from(hist, dataset_info)
        hs = np.arange(1, n - k + 1)
        acc, acc_sd = self._acc_path(hist, method, hs, info, n)
        e, e_sd = self._energy_path(hist, method, len(hs), info)
        return PathForecast(np.arange(k + 1, n + 1), acc, acc_sd, e, e_sd)
