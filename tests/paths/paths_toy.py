"""Hand-made toy tree for the paths tests (imported by conftest and tests)."""

from __future__ import annotations

import pandas as pd


def toy_records(
    dataset: str = "toy",
    freeze2: tuple[float, ...] = (0.45, 0.52, 0.57, 0.595),
    trunk: tuple[float, ...] = (0.2, 0.4, 0.5, 0.55, 0.58, 0.60),
) -> pd.DataFrame:
    """A tree with E = 6 and branches at 2 and 4 (decision epochs 0, 2, 4).

    Trunk: 10 J per epoch. freeze@2 (epochs 3..6): 4 J per epoch; quant@2: 6 J per epoch,
    accuracies 0.48, 0.53, 0.56, 0.58; freeze@4 (epochs 5, 6): 4 J, accuracies 0.56, 0.59.
    """
    rows = []

    def add(method: str, k: int, epochs: range, accs, joules: float) -> None:
        for e, a in zip(epochs, accs, strict=True):
            rows.append(
                {
                    "study": "toy",
                    "dataset": dataset,
                    "seed": 0,
                    "model": "m",
                    "method": method,
                    "intervention_epoch": k,
                    "epoch": e,
                    "status": "ok",
                    "val_accuracy": a,
                    "energy_total_j": joules,
                    "duration_s": 1.0,
                    "num_classes": 10,
                }
            )

    add("base", 0, range(1, 7), trunk, 10.0)
    add("freeze", 2, range(3, 7), freeze2, 4.0)
    add("quant", 2, range(3, 7), (0.48, 0.53, 0.56, 0.58), 6.0)
    add("freeze", 4, range(5, 7), (0.56, 0.59), 4.0)
    return pd.DataFrame(rows)
