"""Tiny hand-made trees of training paths for tests/modeling (imported by conftest and tests).

A module of its own, not ``conftest``: ``from conftest import ...`` would pick up another
test folder's conftest when several folders run in one session."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: AR(4) coefficients and mode effects used to generate the synthetic accuracies.
AR = np.array([0.5, 0.2, 0.1, 0.05])
MODE_LAG1_FREEZE, MODE_FREEZE = 0.02, 0.03
#: steady per-epoch energy (J) per method; the first epoch of a run costs 3x, the first
#: epoch after a switch 2x.
ENERGY = {"base": 100.0, "freeze": 50.0, "quant": 80.0}
EPOCH1_OVERHEAD, SWITCH_OVERHEAD = 3.0, 2.0


def _path(alpha, start, method, k, E, trunk_acc, rng, noise):
    acc = list(trunk_acc[:k]) if k else []
    modes = ["base"] * k
    for _e in range(k + 1, E + 1):
        lags = [acc[-j] if len(acc) >= j else start for j in range(1, 5)]
        m_l1 = modes[-1] if modes else "base"
        a = (
            AR @ np.array(lags)
            + alpha
            + MODE_LAG1_FREEZE * (m_l1 == "freeze")
            + MODE_FREEZE * (method == "freeze")
            + noise * rng.standard_normal()
        )
        acc.append(float(a))
        modes.append(method)
    return acc


def make_records(
    datasets=("a", "b", "c", "d"), E=20, interventions=(0, 5, 10), noise=0.002, seed=0
) -> pd.DataFrame:
    """Record-schema rows of small trees with known AR accuracy and constant energy."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, d in enumerate(datasets):
        alpha = 0.02 + 0.01 * i
        start = 0.1 + 0.05 * i
        info = {
            "num_classes": 10 * (i + 1),
            "train_size": 1000 * (i + 1),
            "val_size": 200,
            "image_size": 32,
        }
        trunk = _path(alpha, start, "base", 0, E, [], rng, noise)
        paths = [("base", 0, trunk)]
        for k in interventions:
            for m in ("freeze", "quant"):
                paths.append((m, k, _path(alpha, start, m, k, E, trunk, rng, noise)))
        for m, k, acc in paths:
            for e in range(k + 1, E + 1):
                en = ENERGY[m]
                if e == 1:
                    en *= EPOCH1_OVERHEAD
                elif e == k + 1 and k > 0:
                    en *= SWITCH_OVERHEAD
                rows.append(
                    {
                        "study": "toy",
                        "dataset": d,
                        "seed": 0,
                        "model": "toy",
                        "method": m,
                        "intervention_epoch": k,
                        "epoch": e,
                        "status": "ok",
                        "val_accuracy": acc[e - 1],
                        "train_accuracy": min(acc[e - 1] + 0.05, 1.0),
                        "val_loss": 2.0 - acc[e - 1],
                        "energy_total_j": en,
                        "duration_s": 1.0,
                        **info,
                    }
                )
    return pd.DataFrame(rows)
