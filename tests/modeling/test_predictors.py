"""Predictors on tiny hand-made trees with known answers; JSON round trip; case F1."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from modeling_toy import AR, MODE_FREEZE, MODE_LAG1_FREEZE, make_records

from greenpath.modeling.base import available_predictors, get_predictor
from greenpath.modeling.io import load, save
from greenpath.records import build_trajectories


def _trunk(traj, dataset="a", upto=10):
    t = traj[(traj.dataset == dataset) & (traj.method == "base")].sort_values("epoch")
    return t[t.epoch <= upto]


def _path(traj, method, k, dataset="a", before=None):
    p = traj[(traj.dataset == dataset) & (traj.method == method) & (traj.intervention_epoch == k)]
    p = p.sort_values("epoch")
    return p if before is None else p[p.epoch < before]


def test_registry_names():
    names = available_predictors()
    for n in ("paper", "persistence", "carbontracker", "greenpath", "greenpath_lgbm"):
        assert n in names
    with pytest.raises(ValueError, match="unknown predictor"):
        get_predictor("nope")


def test_persistence_and_carbontracker(toy_traj):
    hist = _path(toy_traj, "freeze", 5, before=9)  # trunk 1..5 + freeze 6..8
    # energies: 300 (epoch 1), 100 x4, 100 (switch 2 x 50), 50, 50
    p = get_predictor("persistence").fit(toy_traj)
    acc, e = p.predict_one_step(hist, "freeze")
    assert acc == hist["val_accuracy"].iloc[-1] and e == 50.0
    c = get_predictor("carbontracker").fit(toy_traj)
    _, e = c.predict_one_step(hist, "freeze")
    assert e == pytest.approx((300 + 4 * 100 + 100 + 50 + 50) / 8)  # 112.5 J
    fc = c.forecast(_trunk(toy_traj, upto=10), "quant", 10, 20)
    assert fc.epochs.tolist() == list(range(11, 21))
    np.testing.assert_allclose(fc.energy_j, (300 + 9 * 100) / 10)  # mean x remaining epochs
    assert fc.energy_cum_j[-1] == pytest.approx(1200.0)


def test_paper_recovers_ar_coefficients():
    traj = build_trajectories(make_records(datasets=tuple("abcdef"), E=30, noise=0.002))
    p = get_predictor("paper", energy_variant="energy").fit(traj)
    np.testing.assert_allclose(p.coefs[:4], AR, atol=0.03)
    np.testing.assert_allclose(p.coefs[4:], [MODE_LAG1_FREEZE, MODE_FREEZE], atol=0.01)
    # noise-free data: exact recovery
    traj0 = build_trajectories(make_records(datasets=tuple("abcdef"), E=30, noise=0.0))
    p0 = get_predictor("paper").fit(traj0)
    np.testing.assert_allclose(p0.coefs, [*AR, MODE_LAG1_FREEZE, MODE_FREEZE], atol=1e-6)


def test_paper_energy_rule(toy_traj):
    p = get_predictor("paper", energy_variant="energy").fit(toy_traj)
    # per-dataset means are constant apart from overhead epochs; ratio = OLS slope
    base_hist = _trunk(toy_traj, upto=10)  # 300, 100 x 9
    _, e = p.predict_one_step(base_hist, "base")
    assert e == pytest.approx(120.0)  # mean of previous epochs
    _, e = p.predict_one_step(base_hist, "freeze")
    assert e == pytest.approx(120.0 * p.ratios["freeze"])
    # after the switch: mean of previous freeze epochs only (100, 50)
    _, e = p.predict_one_step(_path(toy_traj, "freeze", 10, before=13), "freeze")
    assert e == pytest.approx(75.0)


def test_paper_one_step_accuracy_matches_formula(toy_traj):
    p = get_predictor("paper").fit(toy_traj)
    hist = _trunk(toy_traj, upto=12)
    v = hist["val_accuracy"].to_numpy()
    x_hist = np.column_stack([[v[i - j] for i in range(4, 12)] for j in range(1, 5)])
    offset = v[4:].mean() - (x_hist @ p.coefs[:4]).mean()  # no freeze rows in the trunk
    want = v[::-1][:4] @ p.coefs[:4] + p.coefs[5] + offset  # next epoch under freeze
    acc, _ = p.predict_one_step(hist, "freeze")
    assert acc == pytest.approx(want, abs=1e-12)


def test_greenpath_energy_exact(toy_traj):
    g = get_predictor("greenpath").fit(toy_traj)
    assert g.ratio["freeze"] == pytest.approx(0.5)
    assert g.ratio["quant"] == pytest.approx(0.8)
    assert g.switch_overhead["freeze"] == pytest.approx(2.0)
    assert g.epoch1_overhead["base"] == pytest.approx(3.0)
    fc = g.forecast(_trunk(toy_traj, upto=10), "freeze", 10, 20)
    np.testing.assert_allclose(fc.energy_j, [100.0] + [50.0] * 9)
    _, e = g.predict_one_step(_path(toy_traj, "quant", 5, before=9), "quant")
    assert e == pytest.approx(80.0)
    assert np.all(fc.val_accuracy_std > 0) and np.all(fc.energy_std >= 0)


@pytest.mark.parametrize(
    "name", ["paper", "persistence", "carbontracker", "greenpath", "greenpath_lgbm"]
)
def test_json_round_trip(name, toy_traj, tmp_path):
    kw = {"num_boost_round": 20} if name == "greenpath_lgbm" else {}
    m = get_predictor(name, **kw).fit(toy_traj[toy_traj.dataset != "d"])
    path = save(m, tmp_path / "m.json")
    assert b"pickle" not in path.read_bytes()
    m2 = load(path)
    assert m2.trained_datasets == ["a", "b", "c"]
    hist = _trunk(toy_traj, "d", upto=10)
    for meth in ("base", "freeze", "quant"):
        f1, f2 = m.forecast(hist, meth, 10, 20), m2.forecast(hist, meth, 10, 20)
        for a in ("val_accuracy", "val_accuracy_std", "energy_j", "energy_std"):
            np.testing.assert_array_equal(getattr(f1, a), getattr(f2, a))
        assert m.predict_one_step(hist, meth) == m2.predict_one_step(hist, meth)


def test_greenpath_model_saved_before_run_length_scaling_still_loads(toy_traj, tmp_path):
    """A model JSON written before ``reference_epochs``/``run_epochs`` existed keeps its
    absolute epoch counts (as it was fitted) and forecasts as before."""
    import json

    m = get_predictor("greenpath", reference_epochs=None).fit(toy_traj[toy_traj.dataset != "d"])
    doc = json.loads(save(m, tmp_path / "m.json").read_text())
    doc["params"].pop("reference_epochs")
    doc["state"].pop("run_epochs")
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = load(tmp_path / "old.json")
    assert old.reference_epochs is None and old.run_epochs is None
    hist = _trunk(toy_traj, "d", upto=10)
    np.testing.assert_array_equal(
        old.forecast(hist, "base", 10, 20).val_accuracy,
        m.forecast(hist, "base", 10, 20).val_accuracy,
    )


def test_load_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a greenpath predictor"):
        load(tmp_path / "x.json")


# ----------------------------------------------------------------------- case F1
@pytest.mark.parametrize("name", ["paper", "greenpath", "persistence"])
def test_f1a_short_history(name, toy_traj, caplog):
    """(a) a run early-stopped after 4 epochs (and shorter): no crash, reason logged."""
    # training fold with an early-stopped tree of 4 epochs
    short = make_records(datasets=("s",), E=4, interventions=())
    train = pd.concat([toy_traj, build_trajectories(short)], ignore_index=True)
    m = get_predictor(name).fit(train)
    for n in (1, 3, 4):
        hist = _trunk(toy_traj, upto=n)
        with caplog.at_level(logging.INFO, logger="greenpath"):
            fc = m.forecast(hist, "freeze", n, 20)
            acc, e = m.predict_one_step(hist, "base")
        assert np.all(np.isfinite(fc.val_accuracy)) and np.all(np.isfinite(fc.energy_j))
        assert np.isfinite(acc) and np.isfinite(e)
    if name != "persistence":
        assert any("history" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["paper", "greenpath"])
def test_f1b_exog_alignment(name, toy_traj):
    """(b) rows beyond the decision epoch are refused, not silently cut; order is irrelevant."""
    m = get_predictor(name).fit(toy_traj)
    full = _trunk(toy_traj, upto=12)  # epochs 1..12 passed for a decision at 5
    with pytest.raises(ValueError, match="intervention epoch is 5"):
        m.forecast(full, "freeze", 5, 8)
    right = full[full.epoch <= 5]
    fc = m.forecast(right, "freeze", 5, 8)
    assert fc.epochs.tolist() == [6, 7, 8]
    shuffled = right.sample(frac=1.0, random_state=1)
    fc2 = m.forecast(shuffled, "freeze", 5, 8)
    np.testing.assert_array_equal(fc.val_accuracy, fc2.val_accuracy)
    np.testing.assert_array_equal(fc.energy_j, fc2.energy_j)
    gap = right[right.epoch != 3]
    with pytest.raises(ValueError, match="without gaps"):
        m.predict_one_step(gap, "base")


def test_shift_keys_origin_buckets():
    from greenpath.modeling.greenpath_model import _shift_keys

    g = get_predictor("greenpath")
    x = pd.DataFrame(
        {"h": [1, 4, 40], "method": [0.0, 1.0, 2.0], "switch": [0.0, 1.0, 1.0], "t": [10, 15, 40]}
    )
    # origin edges 15/25/35: t=10 -> 0, t=15 -> 1, t=40 -> 3
    x["t_bucket"] = [g._t_bucket(t, [15, 25, 35]) for t in x["t"]]
    assert x["t_bucket"].tolist() == [0, 1, 3]
    # horizon buckets (edges 1,2,3,5,8,...): h=1 -> 0, h=4 -> 3, h=40 -> 8
    assert _shift_keys(x, False).tolist() == ["0|0|0", "1|1|3", "2|1|8"]
    assert _shift_keys(x, True).tolist() == ["0|0|0|0", "1|1|3|1", "2|1|8|3"]


def test_greenpath_registry_defaults():
    g = get_predictor("greenpath")
    assert (g.level_window, g.origin_buckets, g.min_origin) == (4, [15, 25, 35], 10)
    assert g.reference_epochs == 50


def test_greenpath_geometry_scales_with_run_length():
    """The registered epoch counts were chosen for EAT-IT's 50 epochs; by hand, for E
    epochs each count c becomes max(1, floor(c * E / 50 + 0.5))."""
    g = get_predictor("greenpath")
    assert g.geometry(50) == (10, 4, [15, 25, 35])  # EAT-IT: unchanged
    assert g.geometry(10) == (2, 1, [3, 5, 7])  # the default config
    assert g.geometry(100) == (20, 8, [30, 50, 70])
    assert g.geometry(None) == (10, 4, [15, 25, 35])  # unknown length: as given
    unscaled = get_predictor("greenpath", reference_epochs=None)
    assert unscaled.geometry(10) == (10, 4, [15, 25, 35])
    with pytest.raises(ValueError, match="reference_epochs"):
        get_predictor("greenpath", reference_epochs=0)


def test_diverged_paths_are_excluded_from_fitting(caplog):
    """Issue 7: a path with a diverged epoch is no learning curve; it is dropped and logged."""
    import pandas as pd

    from greenpath.modeling.base import exclude_failed_paths

    rows = []
    for method, k, status in (("base", 0, "ok"), ("quant", 2, "diverged"), ("freeze", 2, "ok")):
        for e in range(1, 5):
            rows.append(
                dict(
                    study="s",
                    dataset="d",
                    seed=0,
                    method=method,
                    intervention_epoch=k,
                    epoch=e,
                    status=status if e == 4 else "ok",
                )
            )
    traj = pd.DataFrame(rows)
    with caplog.at_level("WARNING"):
        kept = exclude_failed_paths(traj)
    assert sorted(set(zip(kept.method, kept.intervention_epoch, strict=True))) == [
        ("base", 0),
        ("freeze", 2),
    ]
    assert len(kept) == 8
    assert "excluding 1 path(s)" in caplog.text


def test_cold_start_energy_with_proportional_split_sizes():
    """Validation sizes = train/4 make log sizes collinear: the cold-start energy level must
    stay on the fitted scale (it exploded to 1e90 J before), here 0.01 J per image."""
    import numpy as np
    import pandas as pd

    from greenpath.modeling.base import get_predictor
    from greenpath.records import build_trajectories, to_table

    sizes = {"a": (1437, 360), "b": (160, 40), "c": (2000, 500), "d": (960, 240)}
    rows = []
    for ds, (tr, va) in sizes.items():
        for e in range(1, 11):
            rows.append(
                dict(study="s", dataset=ds, seed=0, model="m", method="base",
                     intervention_epoch=0, epoch=e, status="ok",
                     val_accuracy=0.5 + 0.04 * e, train_accuracy=0.5 + 0.045 * e,
                     val_loss=1.0 / e, train_loss=1.0 / e,
                     energy_total_j=0.01 * (tr + va) * (1 + 0.01 * (e % 3)),
                     duration_s=1.0, num_classes=10, train_size=tr, val_size=va,
                     image_size=16)
            )  # fmt: skip
    traj = build_trajectories(to_table(pd.DataFrame(rows)).to_pandas())
    model = get_predictor("greenpath").fit(traj)
    info = {"num_classes": 10, "train_size": 1437, "val_size": 360, "image_size": 16}
    fc = model.forecast(traj.iloc[:0], "base", 0, 10, dataset_info=info)
    steady = float(np.median(fc.energy_j[1:]))
    assert 0.8 * 17.97 < steady < 1.2 * 17.97  # 0.01 J x 1797 images
    # without sizes: the typical level of the fold, between the smallest and largest
    fc = model.forecast(traj.iloc[:0], "base", 0, 10, dataset_info={})
    assert 2.0 < float(np.median(fc.energy_j[1:])) < 25.0
