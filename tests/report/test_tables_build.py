"""Summary tables, evaluation parsing and the per-study build."""

from __future__ import annotations

import json
import re

import pytest
from report_data import make_paths_json, make_records

from greenpath.records import build_trajectories
from greenpath.report.build import PER_DATASET, build_study_report
from greenpath.report.tables import (
    PREDICTION_COLUMNS,
    load_json,
    mape_table,
    predictions_from_evaluation,
    strategy_choices,
    strategy_table,
    summary_html,
)

EVAL = {
    "predictor": "persistence",
    "pooled": {
        "all": {
            "one_step": {
                "n": 2,
                "live": {"acc_mape_pct": 5.0, "energy_mape_pct": 10.0, "score_mape_pct": 12.5},
            }
        },
    },
    "tables": {
        "one_step": [
            {
                "dataset": "alpha",
                "seed": 0,
                "method": "base",
                "intervention_epoch": 0,
                "epoch": 3,
                "acc": 0.5,
                "energy": 100.0,
                "acc_live": 0.55,
                "energy_live": 110.0,
                "acc_paper": 0.5,
                "energy_paper": 100.0,
            },
            {
                "dataset": "alpha",
                "seed": 0,
                "method": "base",
                "intervention_epoch": 0,
                "epoch": 4,
                "acc": 0.8,
                "energy": 200.0,
                "acc_live": 0.8,
                "energy_live": 180.0,
                "acc_paper": 0.8,
                "energy_paper": 200.0,
            },
        ]
    },
}


def test_strategy_table_and_choices():
    pj = make_paths_json(make_records())
    t = strategy_table(pj).set_index("strategy")
    assert t.loc["planner", "energy_saved_pct"] == 10.0
    assert t.loc["planner", "regret"] == 15.0
    assert t.loc["oracle", "violations"] == 4
    ch = strategy_choices(pj)
    assert len(ch) == 8  # 2 strategies x 2 datasets x 2 seeds
    row = ch[(ch["strategy"] == "oracle") & (ch["dataset"] == "beta") & (ch["seed"] == 1)]
    assert row["energy_j"].item() == 330.0
    assert row["val_accuracy"].item() == pytest.approx(0.86)
    # list form of the strategies is read too
    listed = {"strategies": [{"name": k, **v} for k, v in pj["strategies"].items()]}
    assert strategy_table(listed)["strategy"].tolist() == ["oracle", "planner"]
    assert strategy_table(None).empty and strategy_choices(None).empty


def test_mape_table_and_predictions_from_evaluation():
    m = mape_table(EVAL)
    assert m.to_dict("records") == [
        {
            "predictor": "persistence",
            "acc_mape_pct": 5.0,
            "energy_mape_pct": 10.0,
            "score_mape_pct": 12.5,
            "n": 2.0,
        }
    ]
    assert mape_table({"x": EVAL})["predictor"].tolist() == ["persistence"]
    # the workflow's results/evaluation/<study>.json is {name: document}; the report reads
    # a list of such files
    workflow_form = [{"persistence": EVAL, "greenpath": {**EVAL, "predictor": "greenpath"}}]
    m = mape_table(workflow_form)
    assert m["predictor"].tolist() == ["persistence", "greenpath"]
    assert m["energy_mape_pct"].tolist() == [10.0, 10.0]
    p = predictions_from_evaluation([EVAL], study="toy")
    assert list(p.columns) == list(PREDICTION_COLUMNS)
    assert len(p) == 8  # 2 rows x 2 targets x 2 histories
    live_acc = p[(p["history"] == "live") & (p["target"] == "val_accuracy")]
    assert live_acc["predicted"].tolist() == [0.55, 0.8]
    assert set(p["study"]) == {"toy"}
    assert predictions_from_evaluation({"predictor": "p", "pooled": {}}).empty


def test_summary_html_shows_ours_and_published():
    pj = make_paths_json(make_records())
    page = summary_html(strategy_table(pj), mape_table(EVAL))
    assert page.startswith("<!DOCTYPE html>")
    for text in (
        "56.5",
        "+2.38*",
        "81.2",
        "59.4",
        "66.5",
        "8.4",
        "14.3",
        "8.9",
        "13.3",
        "11.2",
        "planner (calibrated safety margin)",
        "persistence (last epoch)",
        "<td>-2.00</td>",
        "accuracy change (points)",
        "regret vs the oracle (points of the full trunk&#x27;s energy)",
    ):
        assert text in page, text
    assert not re.search(r"\bpts\b", page)  # one unit: points, spelled out
    assert page.count('class="ours"') == 3  # 2 strategies + 1 predictor of this run
    empty = summary_html(strategy_table(None), mape_table(None))
    assert "No paths output" in empty and "No evaluation output" in empty


def test_load_json(tmp_path):
    assert load_json(None) is None and load_json(tmp_path / "absent.json") is None
    (tmp_path / "ok.json").write_text(json.dumps({"a": 1}))
    assert load_json(tmp_path / "ok.json") == {"a": 1}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_json(tmp_path / "bad.json")


def test_build_study_report_writes_every_figure(tmp_path):
    rec = make_records()
    rep = build_study_report(
        rec,
        tmp_path / "toy",
        trajectories=build_trajectories(rec, stop_epochs=[2]),
        paths_json=make_paths_json(rec),
        evaluation=EVAL,
        datasets=["alpha", "beta"],
    )
    for kind in PER_DATASET:
        assert sorted(p.name for p in (tmp_path / "toy" / kind).glob("*.png")) == [
            "alpha.png",
            "beta.png",
        ]
    for name in (
        "predictions.png",
        "headline.html",
        "per_dataset.html",
        "summary.html",
        "index.html",
    ):
        assert (tmp_path / "toy" / name).is_file()
    index = (tmp_path / "toy" / "index.html").read_text()
    assert index.count("data:image/png;base64,") == 7  # 3 x 2 datasets + predictions
    assert any("evaluation JSON" in n for n in rep.notes)


def test_build_study_report_missing_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"\['gamma'\]"):
        rec = make_records()
        build_study_report(
            rec, tmp_path, trajectories=build_trajectories(rec), datasets=["alpha", "gamma"]
        )


def test_build_without_predictions_writes_placeholder(tmp_path):
    rec = make_records(datasets=("alpha",), seeds=(0,))
    rep = build_study_report(rec, tmp_path, trajectories=build_trajectories(rec))
    assert (tmp_path / "predictions.png").is_file()
    assert rep.datasets == ["alpha"]
