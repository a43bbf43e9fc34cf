"""A stub predictor whose forecasts are fixed per (method, decision epoch)."""

from __future__ import annotations

import numpy as np

from greenpath.modeling.base import PathForecast


class StubPredictor:
    """``table[(method, d)] = (final_acc, acc_std, energy_per_epoch)``: a flat forecast
    (every epoch d+1..E has that accuracy, std and energy); missing keys raise ValueError."""

    def __init__(self, table):
        self.table = dict(table)
        self.calls = []

    def forecast(self, history, method, intervention_epoch, last_epoch, *, dataset_info=None):
        d = int(intervention_epoch)
        assert len(history) == d  # the controller passes exactly epochs 1..d
        self.calls.append((method, d))
        if (method, d) not in self.table:
            raise ValueError(f"no forecast for {method}@{d}")
        acc, std, e = self.table[(method, d)]
        n = last_epoch - d
        return PathForecast(
            np.arange(d + 1, last_epoch + 1), np.full(n, acc), np.full(n, std),
            np.full(n, e), np.full(n, 0.1 * e),
        )  # fmt: skip
