"""The headline, the per-dataset table, readable names and the report's wording."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from report_data import make_paths_json, make_records

from greenpath.paths.run import run_strategies
from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories
from greenpath.report.build import build_study_report
from greenpath.report.figures import (
    energy_accuracy_figure,
    energy_breakdown_figure,
    learning_curves_figure,
)
from greenpath.report.headline import (
    conclude,
    energy_provenance,
    headline_html,
    per_dataset_html,
    per_dataset_table,
    read_headline,
    strategy_rows,
)
from greenpath.report.names import strategy_label, strategy_role
from greenpath.report.tables import strategy_items, strategy_table, summary_html

FORBIDDEN = ("Issue", "issue 4", "target set")


@pytest.fixture(scope="module")
def toy_doc() -> dict:
    """The paths stage's own output (no planner) on the hand-made records."""
    return run_strategies(build_trees(build_trajectories(make_records())), "constrained", 0.01)


def _pooled(saved, acc, viol, regret, n=4):
    p = {
        "n_trees": n,
        "energy_saved_pct_mean": saved,
        "accuracy_change_pts_mean": acc,
        "violations": viol,
        "regret_mean": regret,
    }
    return {"pooled": {"all": p, "without_flagged": p}, "per_dataset": [], "per_tree": []}


HAND = {
    "objective": {
        "name": "constrained",
        "tolerance": 0.01,
        "tolerance_points": 1.0,
        "regret_unit": "percentage points of the full trunk's energy",
    },
    "n_trees": 4,
    "flagged_datasets": [],
    "strategies": {
        "oracle": _pooled(80.0, -0.5, 0, 0.0),
        "full_trunk": _pooled(0.0, 0.0, 0, 80.0),
        "planner_conformal": _pooled(60.0, -0.4, 0, 20.0),
        "planner": _pooled(70.0, -1.5, 2, 10.0),
        "patience_3": _pooled(40.0, 0.1, 0, 40.0),
        "patience_5": _pooled(50.0, -1.2, 1, 30.0),
        "stop_3": _pooled(75.0, -9.0, 4, -5.0),
    },
}


def test_names_table_and_fallback():
    assert strategy_label("planner_conformal") == "planner (conformal margins)"
    assert strategy_label("patience_3_last") == "patience 3, accuracy at stop"
    assert strategy_label("patience_5") == "patience 5, best epoch restored"
    assert strategy_label("stop_7") == "fixed stop after epoch 7"
    # an upstream strategy nobody named yet reads as words, with its role from its prefix
    assert strategy_label("planner_by_magic") == "planner by magic"
    assert strategy_role("planner_by_magic") == "planner"
    assert strategy_role("oracle_any_epoch") == "bound"
    assert strategy_role("something_new") == "other"


def test_conclusion_picks_best_within_tolerance_and_compares_with_patience():
    rows = strategy_rows(HAND)
    # display order: the bound first, planners, patience, fixed stops, the reference last
    assert [r.key for r in rows] == [
        "oracle",
        "planner_conformal",
        "planner",
        "patience_3",
        "patience_5",
        "stop_3",
        "full_trunk",
    ]
    text = " ".join(conclude(rows, 1.0))
    # planner (70 %) breaks the tolerance twice: the conformal planner (60 %, 0) is best;
    # the best patience within the tolerance is patience 3 (40 %): 20.0 points more
    assert "planner (conformal margins) saved the most energy: 60.0 %" in text
    assert "tolerance of 1 point" in text
    assert "20.0 points more than the best patience early stopping, patience 3" in text
    assert "bounds what any strategy could save: 80.0 %" in text


def test_conclusion_when_every_strategy_breaks_the_tolerance():
    doc = {
        "objective": {"name": "constrained", "tolerance": 0.02},
        "strategies": {"oracle": _pooled(30, 0, 0, 0), "stop_2": _pooled(50, -5, 3, -1)},
    }
    h = read_headline(doc, "toy")
    assert h.tolerance_points == pytest.approx(2.0)
    assert "No strategy kept every tree within the tolerance of 2 points" in h.conclusion[0]
    assert "fixed stop after epoch 2, 3 violations in 4 trees" in h.conclusion[0]


def _cells(fragment: str) -> dict[tuple[str, str], float]:
    out = {}
    for m in re.finditer(r'<tr data-strategy="([^"]+)">(.*?)</tr>', fragment):
        for f, v in re.findall(r'data-field="(\w+)" data-value="([^"]+)"', m.group(2)):
            out[(m.group(1), f)] = float(v)
    return out


def test_headline_figures_equal_the_paths_output(toy_doc):
    """On a paths output made by the paths stage itself (no planner), every figure of the
    headline is the one in ``pooled.all``."""
    rec, doc = make_records(), toy_doc
    h = read_headline(doc, "toy", rec)
    page = headline_html(h)
    cells = _cells(page)
    keys = {"energy_saved_pct_mean": "energy_saved_pct", "violations": "violations"}
    keys.update({"accuracy_change_pts_mean": "accuracy_change_pts", "regret_mean": "regret"})
    n = 0
    shown = {k for k, _ in strategy_items(doc)}  # fixed stops at the decision epochs only
    for name, s in doc["strategies"].items():
        if name not in shown:
            assert not any(k[0] == name for k in cells)
            continue
        if name == "full_trunk":
            assert not any(k[0] == name for k in cells)  # the reference is not a row
            continue
        for src, field in keys.items():
            want = s["pooled"]["all"].get(src)
            if want is None or not np.isfinite(want):
                continue
            assert cells[(name, field)] == pytest.approx(want, abs=0), (name, field)
            n += 1
    assert n >= 12
    # the facts: tolerance, objective, datasets x seeds, estimated energy
    assert "1 point of accuracy" in page and "(constrained)" in page
    assert "2 datasets &times; 2 seeds = 4" in page
    assert "modelled estimates (CPU)" in page
    assert "paper&#x27;s figures" not in page and "published" not in page  # not EAT-IT


def test_eatit_headline_shows_the_published_figures():
    page = headline_html(read_headline(HAND, "eatit"))
    for text in ("56.5", "+2.38", "81.2", "59.4", "66.5", "published"):
        assert text in page, text


def test_energy_provenance_words():
    rec = make_records()
    assert energy_provenance(rec).startswith("mixed: 91 %")
    measured = rec.assign(energy_cpu_estimate=False, energy_cpu_source="rapl")
    assert energy_provenance(measured) == "measured (CPU: RAPL, DRAM: RAPL)"
    est = rec.assign(energy_dram_estimate=True, energy_dram_j=np.nan)  # null: not measured
    assert energy_provenance(est).startswith("estimated: every joule is a modelled estimate")


def test_per_dataset_table_marks_violations(toy_doc):
    doc = toy_doc
    t = per_dataset_table(doc)
    assert set(t["dataset"]) == {"alpha", "beta"}
    assert "full_trunk" not in set(t["strategy"])
    row = t[(t["strategy"] == "stop_2") & (t["dataset"] == "alpha")].iloc[0]
    want = next(d for d in doc["strategies"]["stop_2"]["per_dataset"] if d["dataset"] == "alpha")
    assert row["energy_saved_pct"] == want["energy_saved_pct_mean"]
    assert row["violations"] == want["violations"] == 2  # 0.70 vs 0.90/0.91: both seeds
    page = per_dataset_html(t, "toy")
    assert "&#10007;2/2" in page and "fixed stop after epoch 2" in page


def test_summary_collapses_identical_pools_and_names_strategies(toy_doc):
    doc = toy_doc
    same = summary_html(
        strategy_table(doc), strategy_table(None), strategies_without_flagged=strategy_table(doc)
    )
    assert "without" not in same.split("<h3>One-step")[0]
    assert "patience 3, accuracy at stop" in same and "patience_3_last" not in same
    flagged = {**doc, "strategies": {k: dict(v) for k, v in doc["strategies"].items()}}
    for v in flagged["strategies"].values():
        v["pooled"] = {**v["pooled"], "without_flagged": {**v["pooled"]["all"], "n_trees": 2}}
    page = summary_html(
        strategy_table(flagged),
        strategy_table(None),
        strategies_without_flagged=strategy_table(flagged, "without_flagged"),
        flagged=["beta"],
    )
    assert "greenpath, this run, without beta" in page


def _offset_texts(fig) -> list[str]:
    fig.canvas.draw()
    return [
        t
        for ax in fig.axes
        for t in (ax.xaxis.get_offset_text().get_text(), ax.yaxis.get_offset_text().get_text())
        if t
    ]


def test_no_axis_offset_text_on_any_energy_scale():
    """Energies near 1e6 J with tiny differences (an offset with matplotlib's defaults) and
    a ~144 J run (formerly 4e-5 kWh with a 1e-5 offset) both get plain tick labels."""
    base = make_records(datasets=("alpha",))
    for scale, shift in ((1.0, 0.0), (0.33, 0.0), (1e-3, 1e6)):
        rec = base.copy()
        for c in ("energy_cpu_j", "energy_dram_j", "energy_total_j"):
            rec[c] = rec[c] * scale + shift
        traj = build_trajectories(rec, stop_epochs=[2])
        for fig in (
            learning_curves_figure(rec),
            energy_accuracy_figure(traj),
            energy_breakdown_figure(rec),
        ):
            assert _offset_texts(fig) == [], scale


def test_no_report_page_has_internal_words(tmp_path, toy_doc):
    rec = make_records()
    build_study_report(
        rec,
        tmp_path / "toy",
        trajectories=build_trajectories(rec, stop_epochs=[2]),
        paths_json=toy_doc,
    )
    pages = sorted((tmp_path / "toy").glob("*.html"))
    assert {p.name for p in pages} == {
        "headline.html",
        "per_dataset.html",
        "summary.html",
        "index.html",
    }
    for p in pages:
        text = p.read_text()
        for word in FORBIDDEN:
            assert word not in text, (p.name, word)
        assert not re.search(r"\b(patience|stop)_\d", re.sub(r'data-strategy="[^"]*"', "", text))
    # the summary says where the joules came from too (here: CPU modelled, DRAM measured)
    assert "Energy of this run: mixed: 91 %" in (tmp_path / "toy" / "summary.html").read_text()


def test_standalone_page_has_headline_first_and_captions(tmp_path):
    rec = make_records()
    build_study_report(
        rec, tmp_path / "toy", trajectories=build_trajectories(rec, stop_epochs=[2]),
        paths_json=make_paths_json(rec),
    )  # fmt: skip
    page = (tmp_path / "toy" / "index.html").read_text()
    assert page.index('id="headline-toy"') < page.index("<img")
    assert page.index('class="greenpath-per-dataset"') < page.index("<img")
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(captions) == page.count("<img") == 7  # 3 figures x 2 datasets + predictions
    for c in captions:
        assert "study toy" in c and "2 datasets" in c and len(c) > 150, c
    assert any("alpha" in c and "Validation accuracy" in c for c in captions)


def test_workflow_report_texts_have_no_internal_words():
    root = Path(__file__).resolve().parents[2] / "workflow" / "report"
    for p in sorted(root.glob("*.rst")):
        text = p.read_text()
        for word in FORBIDDEN:
            assert word not in text, (p.name, word)


def test_fixed_stops_shown_at_the_decision_epochs_only():
    summary = {"pooled": {"all": {"energy_saved_pct_mean": 1.0}}}
    paths = {
        "strategies": {f"stop_{k}": summary for k in range(1, 10)} | {"oracle": summary},
        "decision_epochs": [0, 3, 5, 7],
    }
    assert [k for k, _ in strategy_items(paths)] == ["stop_3", "stop_5", "stop_7", "oracle"]
    del paths["decision_epochs"]
    assert len(strategy_items(paths)) == 10
