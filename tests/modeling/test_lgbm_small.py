"""greenpath_lgbm on small data: adapted leaf sizes, and a constant fit reported as such."""

from __future__ import annotations

import numpy as np
import pandas as pd

from greenpath.modeling.base import FORECAST_METHODS, get_predictor, training_paths
from greenpath.modeling.greenpath_model import LGBM_PARAMS, lgbm_params_for
from greenpath.records import build_trajectories


def short_runs(acc_fn, n_runs: int = 3, epochs: int = 4) -> pd.DataFrame:
    """``n_runs`` trunks of ``epochs`` epochs (``n_runs * epochs`` record rows)."""
    rows = []
    for seed in range(n_runs):
        for e in range(1, epochs + 1):
            rows.append(
                {
                    "study": "s",
                    "dataset": "digits",
                    "seed": seed,
                    "method": "base",
                    "intervention_epoch": 0,
                    "epoch": e,
                    "status": "ok",
                    "val_accuracy": acc_fn(seed, e),
                    "train_accuracy": acc_fn(seed, e) + 0.02,
                    "val_loss": 2.0 - 0.3 * e,
                    "energy_total_j": 10.0 + seed,
                    "duration_s": 1.0,
                    "num_classes": 10,
                    "train_size": 1000,
                    "val_size": 200,
                }
            )
    return pd.DataFrame(rows)


def fit(records: pd.DataFrame):
    return get_predictor("greenpath_lgbm", num_boost_round=50).fit(build_trajectories(records))


def forecasts(model, records: pd.DataFrame) -> dict[str, np.ndarray]:
    hist = records[(records["seed"] == 0) & (records["epoch"] <= 2)]
    return {
        m: model.forecast(hist, m, intervention_epoch=2, last_epoch=4).val_accuracy
        for m in FORECAST_METHODS
    }


def test_params_adapt_below_the_full_sample_count():
    params, adapted = lgbm_params_for(9)
    assert params["min_data_in_leaf"] == 2 and adapted["min_data_in_leaf"] == 2
    assert params["bagging_freq"] == 0 and params["min_data_per_group"] == 2
    assert lgbm_params_for(5000) == (LGBM_PARAMS, {})


def test_fitted_on_12_rows_it_is_not_constant_or_says_it_fell_back():
    records = short_runs(lambda seed, e: 0.3 + 0.1 * e + 0.03 * seed)
    assert len(records) == 12
    model = fit(records)
    fit_info = model.acc_fit
    assert fit_info["n_samples"] < LGBM_PARAMS["min_data_in_leaf"]
    assert fit_info["adapted_params"]["min_data_in_leaf"] < LGBM_PARAMS["min_data_in_leaf"]
    if fit_info["model"] == "lgbm":
        assert fit_info["constant"] is False
        # distinct inputs get distinct predictions
        s = model._samples(training_paths(build_trajectories(records)))
        assert np.ptp(model._predict_delta(s)) > 0
    else:
        assert fit_info["constant"] is True and "constant" in fit_info["fallback"]
    # the record of what was fitted survives saving
    again = type(model).from_json(model.to_json())
    assert again.acc_fit == fit_info
    f = forecasts(again, records)
    assert np.allclose(f["base"], forecasts(model, records)["base"])


def test_a_constant_booster_is_reported_and_replaced(caplog):
    # the same accuracy every epoch: every target is 0, LightGBM can only fit a constant
    records = short_runs(lambda seed, e: 0.5)
    model = fit(records)
    assert model.acc_fit["model"] == "shift" and model.acc_fit["constant"] is True
    assert any("fitted a constant" in r.getMessage() for r in caplog.records)
    again = type(model).from_json(model.to_json())
    assert again.acc_fit["model"] == "shift" and again.acc_fit["fallback"]
    f = forecasts(again, records)
    assert all(np.isfinite(v).all() for v in f.values())
