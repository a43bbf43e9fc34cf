"""The paper's path-choosing method: its "Energy savings" simulation, reimplemented.

Source: the authors' analysis, GAISSA-UPC/energydl-full, ``src/analysis/analysis_rq2.Rmd``,
sections "Score prediction" and "Energy savings" (functions ``predict_branch``,
``get_best_epoch``, ``simulate``). For each held-out dataset (leave-one-dataset-out):

1. Accuracy model, fitted on the other datasets' rows with 4 lags available (epoch >= 5),
   quant recoded as base: OLS ``val_accuracy ~ dataset + lag1 + lag2 + lag3 + lag4 +
   mode_lag1 + mode`` (dataset fixed effects; ``mode``/``mode_lag1`` freeze dummies). The lags
   follow the path (trunk prefix, then branch), as the Rmd's ``get_prev``.
2. Energy ratio ``change``: per (dataset, mode) mean per-epoch energy of the same rows,
   then the slope of ``freeze ~ 0 + base`` across datasets.
3. Walk the held-out run from epoch i = 6 to E: with the rows seen so far (epochs 1..i), an
   additive dataset offset ``mean(acc) - mean(linear predictor)`` over epochs 5..i-1;
   per-epoch energy ``mean(energy of epochs 5..i-1) x (1 on base, change on freeze)``;
   forecast accuracy recursively for 10 steps (the first step re-predicts epoch i from its
   own lags, as in the Rmd) and the score ``acc / (E_cum(i-1) + j x energy)`` (kWh);
   fit ``score ~ a / (b + epoch)`` by nonlinear least squares to the observed scores of
   epochs 1..i-1 and the 10 forecasts (start a = b = 100; if a < 0, restart at 1000);
   ``epoch_opt = round(sqrt(a) - b)``. Stop at epoch i when ``epoch_opt <= i``. On the
   trunk at a decision epoch (the Rmd: ``i %% 10 == 0``) the same is done for a freeze
   branch (mode dummies = freeze, energy x ``change``) and the run switches to the measured
   freeze branch when its fitted ``score_opt`` exceeds the base one.
4. The outcome is the measured row where the run stopped (or epoch E).

Choices where the Rmd is ambiguous or does not carry over (documented in docs/paths.md):

- Coefficients are taken by name; the Rmd takes ``coefficients[12:17]``, which are the
  lag/mode terms only with 11 training datasets (12 in the study, one held out).
- Scores are in accuracy per kWh, as in ``all_data.csv``; the rule ``sqrt(a) - b`` is not
  unit-invariant, so kWh is required to reproduce it.
- The nonlinear fit reimplements R ``nls``'s Gauss-Newton with step halving (same start
  values and controls). ``scipy.optimize.curve_fit`` (Levenberg-Marquardt, ``solver="lm"``)
  reaches another optimum once on EAT-IT and changes the pooled figure (54.0 % instead of
  59.4 %). If both starts fail to converge, or ``a`` stays negative, the run continues at
  that epoch (R would stop with an error) and the note records it.
- Validation accuracies of exactly 0 are read as 0.01, as in ``all_data.csv`` (the Rmd's
  input; ``history.csv`` has 0). Without it the fit fails at epoch 6 on EAT-IT's aircraft
  and the pooled figure is 59.8 %. Reported outcomes keep the measured values.
- Decision epochs for freezing are the tree's intervention epochs that have a measured
  freeze branch (EAT-IT: 10, 20, 30, 40, as ``i %% 10 == 0`` with a branch).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import OptimizeWarning, curve_fit

from greenpath.paths.objectives import J_PER_KWH
from greenpath.paths.strategies import Choice
from greenpath.paths.tree import Tree

#: Number of recursive forecast steps in ``predict_branch`` (Rmd: ``for (j in 1:10)``).
FORECAST_STEPS: int = 10
#: First epoch of the simulation loop (Rmd: ``for (i in 6:50)``).
FIRST_EPOCH: int = 6
#: Number of accuracy lags (AR(4)).
N_LAGS: int = 4
#: Value that replaces a validation accuracy of exactly 0: the authors' ``all_data.csv``
#: (which the Rmd reads) has 0.01 where ``history.csv`` has 0 (23 EAT-IT rows, all aircraft).
ZERO_ACCURACY: float = 0.01

#: Feature names, in the order of the Rmd's ``coefs`` vector.
FEATURES: tuple[str, ...] = ("lag1", "lag2", "lag3", "lag4", "mode_lag1_freeze", "mode_freeze")


def panel(trees: Sequence[Tree]) -> pd.DataFrame:
    """The Rmd's ``panel.data2``: one row per measured epoch with lags along its path.

    Returns:
        Columns ``dataset, method, intervention_epoch, epoch, val_accuracy, energy_kwh,
        energy_cum_kwh, score, lag1..lag4, mode_lag1`` (``mode_lag1``: the method that
        produced the previous epoch of the path; NaN/None where the lag is before epoch 1).
        Branch rows only for branches (the trunk prefix is not repeated).
    """
    out = []
    for t in trees:
        for (m, k), rows in t.paths.items():
            rows = rows.sort_values("epoch")
            acc = rows["val_accuracy"].astype(float).replace(0.0, ZERO_ACCURACY)
            df = pd.DataFrame(
                {
                    "dataset": t.dataset,
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
            if m != "base":
                df = df[df["epoch"] > k]
            out.append(df)
    return pd.concat(out, ignore_index=True)


def _design(df: pd.DataFrame) -> pd.DataFrame:
    """Feature columns (quant recoded as base): lags and freeze dummies."""
    x = df[["lag1", "lag2", "lag3", "lag4"]].astype(float).copy()
    x["mode_lag1_freeze"] = (df["mode_lag1"] == "freeze").astype(float)
    x["mode_freeze"] = (df["method"] == "freeze").astype(float)
    return x


@dataclass(frozen=True)
class PaperModel:
    """Fitted pieces of the paper's method.

    Attributes:
        coefs: shape (6,), coefficients of :data:`FEATURES` (accuracy fraction units).
        change: ratio of freeze to base per-epoch energy (dimensionless).
        n_rows: training rows used.
    """

    coefs: np.ndarray
    change: float
    n_rows: int


def fit_paper_model(train: pd.DataFrame) -> PaperModel:
    """Fit the accuracy AR(4) fixed-effects model and the freeze energy ratio.

    Args:
        train: rows of :func:`panel` for the training datasets.

    Raises:
        ValueError: fewer rows than parameters after dropping epochs without 4 lags.
    """
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
    coefs = np.array([float(res.params[f]) for f in FEATURES])
    means = df.groupby(["dataset", "method"])["energy_kwh"].mean().unstack()
    if "freeze" in means.columns and "base" in means.columns:
        both = means[["base", "freeze"]].dropna()
        b, f = both["base"].to_numpy(), both["freeze"].to_numpy()
        change = float(np.sum(b * f) / np.sum(b * b)) if len(both) else 1.0
    else:
        change = 1.0
    return PaperModel(coefs=coefs, change=change, n_rows=len(df))


def _rational(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return a / (b + t)


def _gauss_newton(
    y: np.ndarray,
    p0: tuple[float, float],
    tol: float = 1e-5,
    max_iter: int = 10000,
    min_factor: float = 1e-10,
) -> tuple[float, float] | None:
    """Gauss-Newton with step halving for ``y_t ~ a / (b + t)``, the algorithm of R's ``nls``.

    R's default ``nls`` algorithm (Bates and Watts, 1988; R documentation of ``nls`` and
    ``nls.control``): the Gauss-Newton increment ``(J'J)^-1 J' r`` is scaled by a factor that
    halves until the residual sum of squares does not grow (and doubles, up to 1, after a
    success); convergence when the relative-offset criterion
    ``sqrt(|Q1' r|^2 / |Q2' r|^2) <= tol``. The Rmd calls it with ``minFactor = 1e-10`` and
    ``maxiter = 10000``. Returns ``(a, b)``, or ``None`` where R would stop with an error
    (step factor below ``min_factor``, iteration limit, non-finite values).
    """
    t = np.arange(1, len(y) + 1, dtype=float)
    a, b = float(p0[0]), float(p0[1])
    with np.errstate(all="ignore"):
        r = y - a / (b + t)
        dev = float(r @ r)
        fac = 1.0
        for _ in range(max_iter):
            jac = np.column_stack([1.0 / (b + t), -a / (b + t) ** 2])
            if not np.all(np.isfinite(jac)):
                return None
            q, _r = np.linalg.qr(jac, mode="complete")
            rot = q.T @ r
            denom = float(rot[2:] @ rot[2:])
            if denom == 0.0 or math.sqrt(float(rot[:2] @ rot[:2]) / denom) <= tol:
                return a, b
            incr = np.linalg.lstsq(jac, r, rcond=None)[0]
            while fac >= min_factor:
                na, nb = a + fac * incr[0], b + fac * incr[1]
                rn = y - na / (nb + t)
                nd = float(rn @ rn)
                if math.isfinite(nd) and nd <= dev:
                    a, b, r, dev = na, nb, rn, nd
                    fac = min(2.0 * fac, 1.0)
                    break
                fac /= 2.0
            if fac < min_factor:
                return None
    return None


def _levenberg_marquardt(y: np.ndarray, p0: tuple[float, float]) -> tuple[float, float] | None:
    t = np.arange(1, len(y) + 1, dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(_rational, t, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return float(popt[0]), float(popt[1])


def fit_rational(scores: np.ndarray, solver: str = "gauss-newton") -> tuple[float, float] | None:
    """Least-squares fit of ``score_t ~ a / (b + t)``, t = 1..n (Rmd ``get_best_epoch``).

    Start at ``(a, b) = (100, 100)``; if that gives ``a < 0``, restart at ``(1000, 1000)``
    (the Rmd's retry; here also when the first start does not converge).

    Args:
        scores: shape (n,), scores in accuracy per kWh.
        solver: ``gauss-newton`` (R ``nls``'s algorithm, default; reproduces the reference
            59.4 %) or ``lm`` (``scipy.optimize.curve_fit``, Levenberg-Marquardt; on EAT-IT it
            lands in another optimum for caltech101 at epoch 24 and gives 54.0 %).

    Returns:
        ``(a, b)`` or ``None`` when neither start converges.

    Raises:
        ValueError: unknown solver.
    """
    if solver not in ("gauss-newton", "lm"):
        raise ValueError(f"unknown solver {solver!r}; use 'gauss-newton' or 'lm'")
    y = np.asarray(scores, dtype=float)
    fit = _gauss_newton if solver == "gauss-newton" else _levenberg_marquardt
    result = None
    for p0 in ((100.0, 100.0), (1000.0, 1000.0)):
        res = fit(y, p0)
        if res is None:
            continue
        result = res
        if res[0] >= 0:
            return res
    return result


def best_epoch(
    lags: np.ndarray,
    mode_lag1_freeze: bool,
    freeze: bool,
    coefs: np.ndarray,
    offset: float,
    energy_cum_prev_kwh: float,
    energy_pred_kwh: float,
    previous_scores: np.ndarray,
    solver: str = "gauss-newton",
) -> tuple[float, float]:
    """The Rmd's ``get_best_epoch``: fitted optimal epoch and score of the rational curve.

    Args:
        lags: shape (4,), accuracies of epochs i-1..i-4 (the features of epoch i).
        mode_lag1_freeze: epoch i-1 was a freeze epoch.
        freeze: evaluate continuing in freeze mode (else base).
        coefs: shape (6,), :data:`FEATURES` coefficients.
        offset: additive dataset offset (accuracy fraction).
        energy_cum_prev_kwh: cumulative energy up to epoch i-1 (kWh).
        energy_pred_kwh: forecast energy per epoch (kWh).
        previous_scores: shape (i-1,), observed scores of epochs 1..i-1 (per kWh).
        solver: nonlinear least-squares solver, see :func:`fit_rational`.

    Returns:
        ``(epoch_opt, score_opt)``; ``(nan, nan)`` when the fit fails.
    """
    values = np.array([*lags, float(mode_lag1_freeze), float(freeze)], dtype=float)
    preds = []
    for j in range(1, FORECAST_STEPS + 1):
        acc = float(values @ coefs + offset)
        values = np.array([acc, values[0], values[1], values[2], float(freeze), float(freeze)])
        preds.append(acc / (energy_cum_prev_kwh + j * energy_pred_kwh))
    fit = fit_rational(np.concatenate([previous_scores, preds]), solver)
    if fit is None or fit[0] < 0:
        return math.nan, math.nan
    a, b = fit
    epoch_opt = float(np.round(math.sqrt(a) - b))
    return epoch_opt, a / (b + epoch_opt)


def simulate(
    tree: Tree, model: PaperModel, first_epoch: int = FIRST_EPOCH, solver: str = "gauss-newton"
) -> Choice:
    """Run the paper's decision rule on one held-out tree (Rmd ``simulate``).

    Returns:
        The :class:`Choice` where the rule stopped: ``stop@i`` on the trunk, ``freeze@k``
        ending at i, or the full path to E.
    """
    E = tree.last_epoch
    freeze_epochs = {k for (m, k) in tree.paths if m == "freeze" and 1 <= k < E}
    mode, k = "base", 0
    notes: list[str] = []
    coefs = model.coefs
    for i in range(first_epoch, E + 1):
        rows = tree.paths[(mode, k)]
        rows = rows[rows["epoch"] <= i].sort_values("epoch")
        acc = rows["val_accuracy"].to_numpy(dtype=float)
        acc = np.where(acc == 0.0, ZERO_ACCURACY, acc)
        energy = rows["energy_total_j"].to_numpy(dtype=float) / J_PER_KWH
        cum = rows["energy_cum_j"].to_numpy(dtype=float) / J_PER_KWH
        row_method = rows["row_method"].to_numpy()
        scores = acc / cum
        # features of every epoch 5..i (epoch e: lags acc[e-2..e-5]), from the path itself
        idx = np.arange(N_LAGS, i)  # 0-based rows of epochs 5..i
        lagm = np.stack([acc[idx - n] for n in range(1, N_LAGS + 1)], axis=1)
        feats = np.column_stack(
            [lagm, row_method[idx - 1] == "freeze", row_method[idx] == "freeze"]
        ).astype(float)
        prev = slice(0, len(idx) - 1)  # epochs 5..i-1
        offset = float(acc[idx[prev]].mean() - (feats[prev] @ coefs).mean())
        e_pred = float(energy[idx[prev]].mean()) * (1.0 if mode == "base" else model.change)
        lags_i = feats[-1, :N_LAGS]
        ml1_i = bool(feats[-1, N_LAGS])
        cum_prev = float(cum[i - 1] - energy[i - 1])
        ep, sc = best_epoch(
            lags_i,
            ml1_i,
            mode == "freeze",
            coefs,
            offset,
            cum_prev,
            e_pred,
            scores[: i - 1],
            solver,
        )
        if math.isnan(ep):
            notes.append(f"fit failed at epoch {i}")
        elif ep <= i:
            m_out = "stop" if mode == "base" else mode
            k_out = i if mode == "base" else k
            a, en = tree.outcome(m_out, k_out, i)  # measured, without the zero substitution
            return Choice(m_out, k_out, i, a, en, "; ".join([*notes, f"epoch_opt {ep:g} <= {i}"]))
        if mode == "base" and i in freeze_epochs and i < E:
            ep_f, sc_f = best_epoch(
                lags_i,
                ml1_i,
                True,
                coefs,
                offset,
                cum_prev,
                e_pred * model.change,
                scores[: i - 1],
                solver,
            )
            if not math.isnan(sc_f) and not math.isnan(sc) and sc_f > sc:
                mode, k = "freeze", i
                notes.append(f"freeze at {i}")
    rows = tree.paths[(mode, k)]
    last = rows[rows["epoch"] == E].iloc[0]
    return Choice(
        mode,
        k,
        E,
        float(last["val_accuracy"]),
        float(last["energy_cum_j"]),
        "; ".join([*notes, "ran to the last epoch"]),
    )


def paper_method(
    trees: Sequence[Tree], solver: str = "gauss-newton"
) -> dict[tuple[str, str, int], Choice]:
    """The paper's method on every tree, leave-one-dataset-out.

    For each dataset the model is fitted on the other datasets' trees (all of their paths);
    the held-out tree is simulated with :func:`simulate`.

    Raises:
        ValueError: fewer than 2 datasets (no leave-one-dataset-out fit possible).
    """
    pan = panel(trees)
    datasets = sorted({t.dataset for t in trees})
    if len(datasets) < 2:
        raise ValueError(
            f"the paper's method is fitted leave-one-dataset-out and needs >= 2 datasets, got {datasets}"
        )
    out: dict[tuple[str, str, int], Choice] = {}
    models: dict[str, PaperModel] = {}
    for t in trees:
        if t.last_epoch < FIRST_EPOCH:
            continue
        if t.dataset not in models:
            models[t.dataset] = fit_paper_model(pan[pan["dataset"] != t.dataset])
        out[t.key] = simulate(t, models[t.dataset], solver=solver)
    return out
