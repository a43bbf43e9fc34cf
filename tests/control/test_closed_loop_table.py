"""Pooling of the closed-loop table (hand-computed) and the Markdown writer."""

from __future__ import annotations

import pandas as pd
import pytest

from greenpath.control.closed_loop import SUMMARY_COLUMNS, summarize, to_markdown


def test_summarize_means_and_violation_counts():
    base = {c: 0.0 for c in SUMMARY_COLUMNS}
    runs = pd.DataFrame(
        [
            dict(
                base,
                dataset="a",
                seed=0,
                path="quant@3->10",
                energy_saved_pct=10.0,
                accuracy_change_pts=1.4,
                violation=False,
            ),
            dict(
                base,
                dataset="a",
                seed=1,
                path="base@0->10",
                energy_saved_pct=20.0,
                accuracy_change_pts=-1.2,
                violation=True,
            ),
            dict(
                base, dataset="b", seed=0, path="stop@5->5", energy_saved_pct=40.0, violation=False
            ),
        ]
    )
    t = summarize(runs).set_index("dataset")
    assert t.loc["a", "energy_saved_pct"] == 15.0 and t.loc["a", "violation"] == 1
    assert not t.loc["a", "tolerance_held"] and t.loc["b", "tolerance_held"]
    # the mean (+0.10 points) is within the tolerance; the worst seed (-1.2) is not
    assert t.loc["a", "accuracy_change_pts"] == pytest.approx(0.1)
    assert t.loc["a", "worst_accuracy_change_pts"] == -1.2
    assert t.loc["mean", "worst_accuracy_change_pts"] == -1.2
    cols = list(t.columns)
    assert cols.index("worst_accuracy_change_pts") == cols.index("accuracy_change_pts") + 1
    assert t.loc["mean", "energy_saved_pct"] == (10 + 20 + 40) / 3
    assert t.loc["mean", "violation"] == 1 and t.loc["a", "paths"] == "quant@3->10, base@0->10"
    md = to_markdown(summarize(runs)[["dataset", "energy_saved_pct", "tolerance_held"]])
    assert md.splitlines()[2] == "| a | 15.00 | no |"
