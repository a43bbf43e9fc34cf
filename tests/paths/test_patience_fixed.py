"""Patience early stopping (Keras semantics, restore-best) and fixed stops."""

from __future__ import annotations

import pandas as pd
import pytest

from greenpath.paths.strategies import fixed_stop, patience_stop_epoch, patience_stopping
from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories

CURVE = [0.1, 0.3, 0.5, 0.49, 0.52, 0.51, 0.50, 0.515, 0.50, 0.49, 0.48, 0.47]


def _trunk_tree(accs):
    rows = [
        {
            "study": "s",
            "dataset": "d",
            "seed": 0,
            "model": "m",
            "method": "base",
            "intervention_epoch": 0,
            "epoch": e,
            "status": "ok",
            "val_accuracy": a,
            "energy_total_j": 10.0,
            "duration_s": 1.0,
        }
        for e, a in enumerate(accs, start=1)
    ]
    return build_trees(build_trajectories(pd.DataFrame(rows)), decision_epochs=[0, 4, 8])[0]


def test_case_t5_patience_2():
    # failure case T5: 0.50, 0.62, 0.61, 0.60, 0.59 -> fires after epoch 4, best epoch 2
    assert patience_stop_epoch([0.50, 0.62, 0.61, 0.60, 0.59], 2) == (4, 2)
    # variant A: max_epochs 3, the epoch limit ends training; restore best still reports 0.62
    c = patience_stopping(_trunk_tree([0.50, 0.62, 0.61]), 2)
    assert (c.end_epoch, c.val_accuracy) == (3, 0.62)


@pytest.mark.parametrize(
    ("patience", "stop", "restored", "last", "energy"),
    [
        # best 0.52 at epoch 5; waits 1,2,3 at epochs 6,7,8 -> stop at 8
        (3, 8, 0.52, 0.515, 80.0),
        # waits 4,5 at epochs 9,10 -> stop at 10
        (5, 10, 0.52, 0.49, 100.0),
    ],
)
def test_patience_on_hand_made_curve(patience, stop, restored, last, energy):
    tree = _trunk_tree(CURVE)
    best = patience_stopping(tree, patience)
    assert (best.method, best.end_epoch, best.val_accuracy, best.energy_j) == (
        "stop",
        stop,
        restored,
        energy,
    )
    plain = patience_stopping(tree, patience, restore_best=False)
    assert (plain.end_epoch, plain.val_accuracy) == (stop, last)


def test_patience_never_fires_is_full_trunk():
    tree = _trunk_tree([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    c = patience_stopping(tree, 3)
    assert (c.method, c.end_epoch, c.val_accuracy, c.energy_j) == ("base", 6, 0.6, 60.0)
    with pytest.raises(ValueError, match="patience"):
        patience_stop_epoch([0.1], 0)


def test_fixed_stop():
    tree = _trunk_tree(CURVE)
    c = fixed_stop(tree, 4)
    assert (c.method, c.end_epoch, c.val_accuracy, c.energy_j) == ("stop", 4, 0.49, 40.0)
    full = fixed_stop(tree, 99)
    assert (full.method, full.end_epoch, full.energy_j) == ("base", 12, 120.0)
