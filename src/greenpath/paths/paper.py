"""The paper's path-choosing method: its "Energy savings" simulation, reimplemented.

Source: the authors' analysis, GAISSA-UPC/energydl-full, ``src/analysis/analysis_rq2.Rmd``,
sections "Score prediction" and "Energy savings" (functions ``predict_branch``,
``get_best_epoch``, ``simulate``). The accuracy AR(4) model and the freeze energy ratio are
fitted leave-one-dataset-out by the modeling stage (:mod:`greenpath.modeling.paper_savings`,
one file per held-out dataset, written by the workflow's fit rule); here each held-out tree
is simulated with the model fitted without its dataset:

Walk the held-out run from epoch i = 6 to E: with the rows seen so far (epochs 1..i), an
additive dataset offset ``mean(acc) - mean(linear predictor)`` over epochs 5..i-1;
per-epoch energy ``mean(energy of epochs 5..i-1) x (1 on base, change on freeze)``;
forecast accuracy recursively for 10 steps (the first step re-predicts epoch i from its
own lags, as in the Rmd) and the score ``acc / (E_cum(i-1) + j x energy)`` (kWh); the
rational curve ``score ~ a / (b + epoch)`` through the observed scores of epochs 1..i-1 and
the 10 forecasts gives ``epoch_opt = round(sqrt(a) - b)``
(:func:`greenpath.modeling.rational.rational_optimum`). Stop at epoch i when
``epoch_opt <= i``. On the trunk at a decision epoch (the Rmd: ``i %% 10 == 0``) the same is
done for a freeze branch (mode dummies = freeze, energy x ``change``) and the run switches
to the measured freeze branch when its ``score_opt`` exceeds the base one. The outcome is
the measured row where the run stopped (or epoch E).

Choices where the Rmd is ambiguous or does not carry over (documented in docs/paths.md):

- Scores are in accuracy per kWh, as in ``all_data.csv``; the rule ``sqrt(a) - b`` is not
  unit-invariant, so kWh is required to reproduce it.
- The curve is solved with R ``nls``'s Gauss-Newton (same start values and controls);
  ``solver="lm"`` uses SciPy's Levenberg-Marquardt instead. If both starts fail to
  converge, or ``a`` stays negative, the run continues at that epoch (R would stop with an
  error) and the note records it.
- Validation accuracies of exactly 0 are read as 0.01, as in ``all_data.csv``; reported
  outcomes keep the measured values.
- Decision epochs for freezing are the tree's intervention epochs that have a measured
  freeze branch (EAT-IT: 10, 20, 30, 40, as ``i %% 10 == 0`` with a branch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from greenpath.modeling.paper_savings import (
    FIRST_EPOCH,
    N_LAGS,
    ZERO_ACCURACY,
    PaperSavingsModel,
)
from greenpath.modeling.rational import rational_optimum
from greenpath.paths.objectives import J_PER_KWH
from greenpath.paths.strategies import Choice
from greenpath.paths.tree import Tree

#: Number of recursive forecast steps in ``predict_branch`` (Rmd: ``for (j in 1:10)``).
FORECAST_STEPS: int = 10


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
        coefs: shape (6,), coefficients of
            :data:`greenpath.modeling.paper_savings.FEATURES`.
        offset: additive dataset offset (accuracy fraction).
        energy_cum_prev_kwh: cumulative energy up to epoch i-1 (kWh).
        energy_pred_kwh: forecast energy per epoch (kWh).
        previous_scores: shape (i-1,), observed scores of epochs 1..i-1 (per kWh).
        solver: one of :data:`greenpath.modeling.rational.SOLVERS`.

    Returns:
        ``(epoch_opt, score_opt)``; ``(nan, nan)`` when the fit fails.
    """
    values = np.array([*lags, float(mode_lag1_freeze), float(freeze)], dtype=float)
    preds = []
    for j in range(1, FORECAST_STEPS + 1):
        acc = float(values @ coefs + offset)
        values = np.array([acc, values[0], values[1], values[2], float(freeze), float(freeze)])
        preds.append(acc / (energy_cum_prev_kwh + j * energy_pred_kwh))
    return rational_optimum(np.concatenate([previous_scores, preds]), solver)


def simulate(
    tree: Tree,
    model: PaperSavingsModel,
    first_epoch: int = FIRST_EPOCH,
    solver: str = "gauss-newton",
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
    trees: Sequence[Tree],
    models: Mapping[str, PaperSavingsModel],
    solver: str = "gauss-newton",
) -> dict[tuple[str, str, int], Choice]:
    """The paper's method on every tree, leave-one-dataset-out.

    Each tree (with at least :data:`FIRST_EPOCH` epochs) is simulated with
    :func:`simulate` and the model fitted without its dataset; nothing is fitted here.

    Args:
        trees: the measured trees.
        models: held-out dataset -> :class:`~greenpath.modeling.paper_savings.PaperSavingsModel`
            fitted without it (the fit rule's ``models/paper_savings/without_<dataset>.json``).
        solver: one of :data:`greenpath.modeling.rational.SOLVERS`.

    Raises:
        ValueError: a dataset has no model, or its model was fitted on that dataset.
    """
    out: dict[tuple[str, str, int], Choice] = {}
    for t in trees:
        if t.last_epoch < FIRST_EPOCH:
            continue
        model = models.get(t.dataset)
        if model is None:
            raise ValueError(
                f"the paper's method has no model fitted without {t.dataset!r} (models for "
                f"{sorted(models)}); fit it with `greenpath fit --predictor paper_savings "
                f"--held-out {t.dataset}` or the workflow's fit rule"
            )
        if t.dataset in model.trained_datasets:
            raise ValueError(
                f"the paper's model given for {t.dataset!r} was fitted on {t.dataset!r}; "
                "leave-one-dataset-out needs the model fitted without it"
            )
        out[t.key] = simulate(t, model, solver=solver)
    return out
