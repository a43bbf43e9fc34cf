"""Tiny hand-made records for the report tests.

One study ``toy`` with datasets ``alpha`` and ``beta``, seeds 0 and 1, E = 4 epochs,
intervention epochs 0 and 2, methods freeze and quant:

- trunk (base): epochs 1..4, val_accuracy = 0.5 + 0.1 * epoch + 0.01 * seed
  (so 0.60, 0.70, 0.80, 0.90 for seed 0);
- freeze@k: epochs k+1..4, val_accuracy = trunk - 0.05; quant@k: trunk - 0.02;
- per-epoch energy: GPU absent (NaN), CPU 100 J (estimate) x factor, DRAM 10 J
  (measured) x factor; factor 1 (base), 0.5 (freeze), 0.8 (quant).

Per (dataset, seed) tree: 4 trunk rows + freeze@0 4 + freeze@2 2 + quant@0 4 + quant@2 2
= 16 rows; build_trajectories gives paths base, freeze@0, freeze@2, quant@0, quant@2 and
stop@2 = 6 paths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

E = 4
KS = (0, 2)
FACTOR = {"base": 1.0, "freeze": 0.5, "quant": 0.8}
OFFSET = {"base": 0.0, "freeze": -0.05, "quant": -0.02}


def make_records(datasets=("alpha", "beta"), seeds=(0, 1), study="toy") -> pd.DataFrame:
    rows = []
    for d in datasets:
        for s in seeds:
            paths = [("base", 0, range(1, E + 1))]
            paths += [(m, k, range(k + 1, E + 1)) for m in ("freeze", "quant") for k in KS]
            for m, k, epochs in paths:
                for e in epochs:
                    f = FACTOR[m]
                    rows.append(
                        {
                            "schema_version": 1,
                            "study": study,
                            "dataset": d,
                            "seed": s,
                            "model": "small_cnn",
                            "method": m,
                            "intervention_epoch": k,
                            "epoch": e,
                            "status": "ok",
                            "val_accuracy": 0.5 + 0.1 * e + 0.01 * s + OFFSET[m],
                            "val_loss": 1.0 / e,
                            "duration_s": 2.0,
                            "energy_gpu_j": np.nan,
                            "energy_cpu_j": 100.0 * f,
                            "energy_dram_j": 10.0 * f,
                            "energy_total_j": 110.0 * f,
                            "energy_gpu_source": "absent",
                            "energy_cpu_source": "estimate",
                            "energy_dram_source": "rapl",
                            "energy_gpu_estimate": False,
                            "energy_cpu_estimate": True,
                            "energy_dram_estimate": False,
                            "num_classes": 10,
                            "train_size": 100,
                            "val_size": 20,
                            "image_size": 16,
                        }
                    )
    return pd.DataFrame(rows)


def make_paths_json(records: pd.DataFrame) -> dict:
    """A paths document shaped like greenpath.paths.report.summarize per strategy."""
    per_tree = {"oracle": [], "planner": []}
    for (d, s), _ in records.groupby(["dataset", "seed"]):
        # oracle: freeze@2 (energy 2*110 + 2*55 = 330 J); planner: quant@2 (2*110 + 2*88 = 396 J)
        acc_f = 0.5 + 0.4 + 0.01 * s - 0.05
        acc_q = 0.5 + 0.4 + 0.01 * s - 0.02
        per_tree["oracle"].append(
            {
                "study": "toy",
                "dataset": d,
                "seed": s,
                "method": "freeze",
                "intervention_epoch": 2,
                "end_epoch": 4,
                "val_accuracy": acc_f,
                "energy_j": 330.0,
            }
        )
        per_tree["planner"].append(
            {
                "study": "toy",
                "dataset": d,
                "seed": s,
                "method": "quant",
                "intervention_epoch": 2,
                "end_epoch": 4,
                "val_accuracy": acc_q,
                "energy_j": 396.0,
            }
        )
    pooled = {
        "oracle": {
            "n_trees": 4,
            "energy_saved_pct_mean": 25.0,
            "accuracy_change_pts_mean": -5.0,
            "violations": 4,
            "regret_mean": 0.0,
        },
        "planner": {
            "n_trees": 4,
            "energy_saved_pct_mean": 10.0,
            "accuracy_change_pts_mean": -2.0,
            "violations": 4,
            "regret_mean": 15.0,
        },
    }
    return {
        "objective": {"name": "constrained", "tolerance": 0.01},
        "strategies": {
            name: {
                "pooled": {"all": pooled[name], "without_flagged": pooled[name]},
                "per_dataset": [],
                "per_tree": per_tree[name],
            }
            for name in ("oracle", "planner")
        },
    }
