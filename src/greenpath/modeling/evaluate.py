"""Leave-one-dataset-out evaluation of predictors (one-step and multi-step).

Protocol (analysis_rq2.Rmd 4.2.3 for the one-step part):

- **Folds.** For each dataset d: fit a fresh predictor on the trajectories of every other
  dataset, evaluate it on d's trees only (:func:`lodo_splits` guarantees no row of d is
  in the training fold).
- **One-step.** Every measured epoch of the held-out tree (trunk rows once, each branch's
  own rows once; ``stop`` paths carry no new rows) with ``epoch >= min_epoch`` (default 7,
  the Rmd's ``epoch > 6``) is predicted from the epochs before it. Two histories:

  * ``paper``: the Rmd's ``get_all_previous`` (for a branch at k > 0: every intervention-0
    row with epoch < k, the freeze@0 and quant@0 branches included, then the branch so
    far; cumulative energy before the epoch from the last such row with 4 lags).
    Only predictors with ``supports_paper_history`` use it; others get the live history.
  * ``live``: only the path's own rows 1..e-1 (what a live run would have).

  MAPE (%) = mean(|pred - true| / true) x 100 of validation accuracy, per-epoch energy and
  score = val_accuracy / cumulative path energy.
- **Multi-step.** From each decision epoch k (0 and every branch intervention epoch), each
  path (base continuing the trunk, freeze@k, quant@k) is forecast to its last epoch from
  the trunk rows 1..k. Reported: final accuracy error (|pred - true| in points, and % of
  true), cumulative-energy MAPE of the forecast part (epochs k+1..E) and of the whole path.
  ``warm`` = decisions with k >= 1, ``cold`` = k = 0 (no history), ``all``.
- **Pooling.** Per-dataset tables, then pooled over rows (one-step) / cases (multi-step),
  over all datasets and excluding datasets flagged as chance level
  (``greenpath.modeling.eatit.flag_chance_level``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenpath.modeling.base import (
    FORECAST_METHODS,
    Predictor,
    energy_column,
    exclude_failed_paths,
    get_predictor,
    info_from,
)
from greenpath.modeling.eatit import flag_chance_level
from greenpath.modeling.paper import paper_panel
from greenpath.records import json_ready

log = logging.getLogger(__name__)

#: The paper's one-step row selection: epochs > 6 (analysis_rq2.Rmd 4.2.1 and 4.2.3).
PAPER_MIN_EPOCH: int = 7


def lodo_splits(trajectories: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """Yield (held-out dataset, training trajectories, held-out trajectories).

    Raises:
        ValueError: fewer than 2 datasets (nothing to train on).
    """
    names = sorted(trajectories["dataset"].astype(str).unique())
    if len(names) < 2:
        raise ValueError(
            f"leave-one-dataset-out needs >= 2 datasets, got {names}; add records of more datasets"
        )
    ds = trajectories["dataset"].astype(str)
    for d in names:
        train = trajectories[ds != d]
        test = trajectories[ds == d]
        assert d not in set(train["dataset"].astype(str))
        yield d, train, test


def replace_zero_accuracy(trajectories: pd.DataFrame, value: float | None) -> pd.DataFrame:
    """A copy of ``trajectories`` with ``val_accuracy == 0`` set to ``value`` (no-op: None).

    Source of the rule: EAT-IT's ``all_data.csv`` (read by analysis_rq2.Rmd) has 0.01 where
    ``history.csv`` has 0.

    Raises:
        ValueError: ``value`` outside (0, 1).
    """
    if value is None:
        return trajectories
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"zero_accuracy={value!r} must be a fraction in (0, 1), e.g. 0.01")
    out = trajectories.copy()
    out.loc[out["val_accuracy"] == 0, "val_accuracy"] = float(value)
    return out


def _mape(pred: np.ndarray, true: np.ndarray) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & (true != 0)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(pred[ok] - true[ok]) / np.abs(true[ok])) * 100.0)


def _paper_history(panel: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The Rmd's ``get_all_previous`` for one target row (order: freeze, quant, base)."""
    k, e, m = int(row["intervention_epoch"]), int(row["epoch"]), row["method"]
    same = panel[(panel["method"] == m) & (panel["intervention_epoch"] == k) & (panel["epoch"] < e)]
    if k == 0:
        return same
    order = {"freeze": 0, "quant": 1, "base": 2}
    zero = panel[(panel["intervention_epoch"] == 0) & (panel["epoch"] < k)]
    zero = zero.assign(_o=zero["method"].map(order)).sort_values(["_o", "epoch"]).drop(columns="_o")
    return pd.concat([zero, same])


def one_step_table(
    predictor: Predictor, trajectories: pd.DataFrame, min_epoch: int = PAPER_MIN_EPOCH
) -> pd.DataFrame:
    """Predict every measured epoch >= ``min_epoch`` of each tree from its history.

    Returns:
        One row per target: dataset, seed, method, intervention_epoch, epoch, true
        values (acc, energy, score) and predictions for the ``paper`` and ``live``
        histories (``acc_paper``, ``energy_paper``, ``score_paper``, ``acc_live``, ...).
    """
    out = []
    ecol = energy_column(trajectories)
    paper_hist = bool(getattr(predictor, "supports_paper_history", False))
    for (_, dataset, seed), tree in trajectories.groupby(["study", "dataset", "seed"]):
        tree = tree[tree["method"].isin(FORECAST_METHODS)]
        panel = paper_panel(tree)
        info = info_from(tree, None)
        paths = {
            key: g.sort_values("epoch") for key, g in tree.groupby(["method", "intervention_epoch"])
        }
        for _, row in panel[panel["epoch"] >= min_epoch].iterrows():
            key = (row["method"], int(row["intervention_epoch"]))
            e = int(row["epoch"])
            path = paths[key]
            live = path[path["epoch"] < e]
            mode = str(row["row_method"])
            acc_l, en_l = predictor.predict_one_step(live, mode, dataset_info=info)
            cum_l = float(live[ecol].sum())
            if paper_hist:
                acc_p, en_p, cum_p = predictor.predict_panel_row(_paper_history(panel, row), row)
            else:
                acc_p, en_p, cum_p = acc_l, en_l, cum_l
            true_cum = float(path.loc[path["epoch"] == e, "energy_cum_j"].iloc[0])
            out.append(
                {
                    "dataset": dataset,
                    "seed": int(seed),
                    "method": key[0],
                    "intervention_epoch": key[1],
                    "epoch": e,
                    "acc": float(row["val_accuracy"]),
                    "energy": float(row["energy"]),
                    "score": float(row["val_accuracy"]) / true_cum,
                    "acc_paper": acc_p,
                    "energy_paper": en_p,
                    "score_paper": acc_p / (cum_p + en_p),
                    "acc_live": acc_l,
                    "energy_live": en_l,
                    "score_live": acc_l / (cum_l + en_l),
                }
            )
    return pd.DataFrame(out)


def multi_step_table(
    predictor: Predictor,
    trajectories: pd.DataFrame,
    decision_epochs: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Forecast every path from its decision epoch to its last epoch.

    Args:
        decision_epochs: decision epochs to use; ``None``: 0 and every intervention epoch
            of the tree's branches.

    Returns:
        One row per (tree, decision epoch k, method): true and predicted final accuracy,
        true/predicted energy of epochs k+1..E and of the whole path.
    """
    out = []
    ecol = energy_column(trajectories)
    for (_, dataset, seed), tree in trajectories.groupby(["study", "dataset", "seed"]):
        trunk = tree[tree["method"] == "base"].sort_values("epoch")
        info = info_from(tree, None)
        ks = sorted({0, *map(int, tree.loc[tree["method"] != "base", "intervention_epoch"])})
        if decision_epochs is not None:
            ks = [k for k in ks if k in set(decision_epochs)]
        for k in ks:
            hist = trunk[trunk["epoch"] <= k]
            for m in FORECAST_METHODS:
                kk = 0 if m == "base" else k
                path = tree[(tree["method"] == m) & (tree["intervention_epoch"] == kk)]
                path = path.sort_values("epoch")
                if path.empty or int(path["epoch"].max()) <= k:
                    continue
                last = int(path["epoch"].max())
                fc = predictor.forecast(hist, m, k, last, dataset_info=info)
                fut = path[path["epoch"] > k]
                out.append(
                    {
                        "dataset": dataset,
                        "seed": int(seed),
                        "decision_epoch": k,
                        "method": m,
                        "last_epoch": last,
                        "final_acc": float(fut["val_accuracy"].iloc[-1]),
                        "final_acc_pred": float(fc.val_accuracy[-1]),
                        "final_acc_std": float(fc.val_accuracy_std[-1]),
                        "energy_future": float(fut[ecol].sum()),
                        "energy_future_pred": float(fc.energy_j.sum()),
                        "energy_path": float(path[ecol].sum()),
                        "energy_path_pred": float(hist[ecol].sum() + fc.energy_j.sum()),
                    }
                )
    return pd.DataFrame(out)


def _one_step_summary(t: pd.DataFrame) -> dict[str, Any]:
    res: dict[str, Any] = {"n": int(len(t))}
    for v in ("paper", "live"):
        res[v] = {
            "acc_mape_pct": _mape(t[f"acc_{v}"], t["acc"]) if len(t) else float("nan"),
            "energy_mape_pct": _mape(t[f"energy_{v}"], t["energy"]) if len(t) else float("nan"),
            "score_mape_pct": _mape(t[f"score_{v}"], t["score"]) if len(t) else float("nan"),
        }
    return res


def _multi_summary(t: pd.DataFrame) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for part, sel in (("warm", t["decision_epoch"] >= 1), ("cold", t["decision_epoch"] == 0)):
        res[part] = _multi_one(t[sel])
    res["all"] = _multi_one(t)
    return res


def _multi_one(t: pd.DataFrame) -> dict[str, Any]:
    if t.empty:
        return {"n": 0}
    err = (t["final_acc_pred"] - t["final_acc"]).to_numpy(float)
    return {
        "n": int(len(t)),
        "final_acc_mae_points": float(np.mean(np.abs(err)) * 100),
        "final_acc_bias_points": float(np.mean(err) * 100),
        "final_acc_mape_pct": _mape(t["final_acc_pred"], t["final_acc"]),
        "final_acc_within_1sigma": float(
            np.mean(np.abs(err) <= t["final_acc_std"].to_numpy(float))
        ),
        "cum_energy_mape_pct": _mape(t["energy_future_pred"], t["energy_future"]),
        "path_energy_mape_pct": _mape(t["energy_path_pred"], t["energy_path"]),
        "by_decision_epoch": {
            str(int(k)): float(np.mean(np.abs(g["final_acc_pred"] - g["final_acc"])) * 100)
            for k, g in t.groupby("decision_epoch")
        },
    }


def summarise(
    one: pd.DataFrame, multi: pd.DataFrame, flagged: set[str] | Sequence[str]
) -> dict[str, Any]:
    """Per-dataset and pooled (all / excluding flagged) metrics as a JSON-ready dict."""
    flagged = set(flagged)
    datasets = sorted(
        set(one.get("dataset", pd.Series(dtype=str)))
        | set(multi.get("dataset", pd.Series(dtype=str)))
    )
    per = {}
    for d in datasets:
        o = one[one["dataset"] == d] if len(one) else one
        m = multi[multi["dataset"] == d] if len(multi) else multi
        per[d] = {
            "flagged_chance_level": d in flagged,
            "one_step": _one_step_summary(o) if len(o) else {"n": 0},
            "multi_step": _multi_summary(m) if len(m) else {"n": 0},
        }
    pooled = {}
    for label, keep in (("all", None), ("without_flagged", flagged)):
        o = one if keep is None or one.empty else one[~one["dataset"].isin(keep)]
        m = multi if keep is None or multi.empty else multi[~multi["dataset"].isin(keep)]
        pooled[label] = {
            "one_step": _one_step_summary(o) if len(o) else {"n": 0},
            "multi_step": _multi_summary(m) if len(m) else {"n": 0},
        }
    return {"flagged_datasets": sorted(flagged), "per_dataset": per, "pooled": pooled}


def _protocol(min_epoch: int, decision_epochs: Sequence[int] | None) -> dict[str, Any]:
    return {
        "one_step_min_epoch": min_epoch,
        "one_step_histories": {
            "paper": "analysis_rq2.Rmd get_all_previous (sees intervention-0 branches)",
            "live": "the path's own epochs 1..e-1",
        },
        "decision_epochs": list(decision_epochs)
        if decision_epochs is not None
        else "0 + branch interventions",
        "mape": "mean(|pred-true|/true) x 100",
        "score": "val_accuracy / cumulative path energy",
    }


def evaluate_lodo(
    trajectories: pd.DataFrame,
    predictor: str,
    params: Mapping[str, Any] | None = None,
    *,
    min_epoch: int = PAPER_MIN_EPOCH,
    decision_epochs: Sequence[int] | None = None,
    flagged: set[str] | None = None,
    tables: bool = False,
    zero_accuracy: float | None = None,
) -> dict[str, Any]:
    """Leave-one-dataset-out evaluation of the predictor registered as ``predictor``.

    Args:
        trajectories: ``build_trajectories`` output of every dataset.
        predictor, params: registry name and parameters (``get_predictor``).
        flagged: chance-level datasets; ``None`` computes them with
            ``flag_chance_level``.
        tables: also return the raw per-row tables (under ``"tables"``, as records).
        zero_accuracy: when given, validation accuracies of exactly 0 are replaced by this
            value everywhere (fitting inputs, histories and the truth). The authors'
            analysis reads ``all_data.csv``, which holds 0.01 where ``history.csv`` has 0
            (23 EAT-IT aircraft rows); ``zero_accuracy=0.01`` reproduces the reference
            one-step score MAPE (11.2 %) of the ``paper`` predictor.

    Returns:
        JSON-serialisable dict: predictor, params, protocol, flagged_datasets,
        per_dataset, pooled (``all`` and ``without_flagged``), seconds.
    """
    t0 = time.perf_counter()
    clean = exclude_failed_paths(replace_zero_accuracy(trajectories, zero_accuracy))
    models = {
        d: get_predictor(predictor, **dict(params or {})).fit(train)
        for d, train, _ in lodo_splits(clean)
    }
    res = evaluate_lodo_models(
        trajectories,
        models,
        min_epoch=min_epoch,
        decision_epochs=decision_epochs,
        flagged=flagged,
        tables=tables,
        zero_accuracy=zero_accuracy,
    )
    res["predictor"], res["params"] = predictor, json_ready(dict(params or {}))
    res["seconds"] = time.perf_counter() - t0
    return res


def lodo_training_set(
    trajectories: pd.DataFrame, held_out: str | None, zero_accuracy: float | None = None
) -> pd.DataFrame:
    """The trajectories a predictor is fitted on: every path without a failed row, of every
    dataset but ``held_out`` (``None``: every dataset).

    Raises:
        ValueError: nothing is left to fit on (names the held-out dataset).
    """
    clean = exclude_failed_paths(replace_zero_accuracy(trajectories, zero_accuracy))
    if held_out is None:
        return clean
    train = clean[clean["dataset"].astype(str) != str(held_out)]
    if train.empty:
        raise ValueError(
            f"leave-one-dataset-out without {held_out!r} leaves no trajectories to fit on; "
            "add records of more datasets"
        )
    return train


def evaluate_lodo_models(
    trajectories: pd.DataFrame,
    models: Mapping[str, Predictor],
    *,
    min_epoch: int = PAPER_MIN_EPOCH,
    decision_epochs: Sequence[int] | None = None,
    flagged: set[str] | None = None,
    tables: bool = False,
    zero_accuracy: float | None = None,
) -> dict[str, Any]:
    """Leave-one-dataset-out evaluation with models fitted beforehand (no fitting here).

    Args:
        trajectories: ``build_trajectories`` output of every dataset.
        models: held-out dataset -> the predictor fitted without it (one per dataset of
            ``trajectories``); the other arguments as in :func:`evaluate_lodo`.

    Raises:
        ValueError: a dataset has no model, or its model was fitted on it (leak).
    """
    t0 = time.perf_counter()
    trajectories = exclude_failed_paths(replace_zero_accuracy(trajectories, zero_accuracy))
    if flagged is None:
        flagged = flag_chance_level(trajectories)
    ones, multis = [], []
    for d, _, test in lodo_splits(trajectories):
        if d not in models:
            raise ValueError(f"no leave-one-dataset-out model without {d!r}; fit it first")
        model = models[d]
        if d in model.trained_datasets:
            raise ValueError(f"held-out dataset {d} leaked into the training fold of its model")
        ones.append(one_step_table(model, test, min_epoch))
        multis.append(multi_step_table(model, test, decision_epochs))
        log.info("lodo %s: held out %s", model.name, d)
    one = pd.concat(ones, ignore_index=True)
    multi = pd.concat(multis, ignore_index=True)
    first = next(iter(models.values()))
    res = {
        "predictor": first.name,
        "params": dict(first.params or {}),
        "mode": "leave-one-dataset-out",
        "protocol": {**_protocol(min_epoch, decision_epochs), "zero_accuracy": zero_accuracy},
        **summarise(one, multi, flagged),
        "seconds": time.perf_counter() - t0,
    }
    if tables:
        res["tables"] = {"one_step": one.to_dict("records"), "multi_step": multi.to_dict("records")}
    return json_ready(res)


def evaluate_model(
    model: Predictor,
    trajectories: pd.DataFrame,
    *,
    min_epoch: int = PAPER_MIN_EPOCH,
    decision_epochs: Sequence[int] | None = None,
    flagged: set[str] | None = None,
    zero_accuracy: float | None = None,
) -> dict[str, Any]:
    """Evaluate one fitted model on the given trajectories (no refitting).

    Datasets the model was trained on are listed under ``in_sample_datasets``; their
    figures are in-sample, not a fair test. ``zero_accuracy``: see :func:`evaluate_lodo`.
    """
    t0 = time.perf_counter()
    trajectories = exclude_failed_paths(replace_zero_accuracy(trajectories, zero_accuracy))
    if flagged is None:
        flagged = flag_chance_level(trajectories)
    one = one_step_table(model, trajectories, min_epoch)
    multi = multi_step_table(model, trajectories, decision_epochs)
    ds = set(trajectories["dataset"].astype(str))
    res = {
        "predictor": model.name,
        "params": model.params,
        "mode": "fitted model",
        "in_sample_datasets": sorted(ds & set(model.trained_datasets)),
        "protocol": _protocol(min_epoch, decision_epochs),
        **summarise(one, multi, flagged),
        "seconds": time.perf_counter() - t0,
    }
    return json_ready(res)
