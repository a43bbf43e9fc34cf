"""Modeling and path benchmarks (issue 8) on EAT-IT (``<repo>/../shared/eatit``).

* fit time of every registered predictor on all 9 EAT-IT datasets;
* leave-one-dataset-out evaluation time: the first ``folds`` folds of
  ``greenpath.modeling.evaluate.lodo_splits`` timed one by one (fit on the other datasets,
  one-step and multi-step tables, as ``evaluate_lodo`` does), with the all-folds time
  extrapolated; ``folds=None`` times ``evaluate_lodo`` itself over every fold;
* path computation time: ``greenpath.paths.run_paths`` (every strategy, constrained
  objective) with a fitted ``greenpath`` predictor and the paper's savings models read
  from files (their fit, as the fit rule does it, is not timed).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from greenpath.modeling import (
    available_predictors,
    get_predictor,
    import_eatit,
    paper_savings,
    save,
)
from greenpath.modeling.evaluate import (
    evaluate_lodo,
    lodo_splits,
    multi_step_table,
    one_step_table,
)
from greenpath.records import build_trajectories
from greenpath.records.aggregate import write_trajectories

PAPER_MIN_EPOCH = 7  # one-step rows with epoch > 6 (docs/modeling.md)


def modeling(
    eatit: Path, *, folds: int | None = 2, paths_predictor: str = "greenpath"
) -> dict[str, Any]:
    """Fit / LODO / paths timings in seconds; ``{"skipped": reason}`` when EAT-IT is absent."""
    if not (Path(eatit) / "all_data.csv").is_file():
        return {"skipped": f"EAT-IT data absent: {eatit} (needs all_data.csv etc.)"}
    logging.getLogger("greenpath").setLevel(logging.WARNING)
    out: dict[str, Any] = {"eatit": str(eatit), "folds_timed": folds}
    t0 = time.perf_counter()
    rows = import_eatit(eatit)
    out["import_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = build_trajectories(rows)
    out["trajectories_s"] = time.perf_counter() - t0
    out["records_rows"] = int(len(rows))
    n_datasets = int(traj["dataset"].nunique())
    out["datasets"] = n_datasets
    preds: dict[str, Any] = {}
    for name in available_predictors():
        t0 = time.perf_counter()
        get_predictor(name).fit(traj)
        fit_s = time.perf_counter() - t0
        entry: dict[str, Any] = {"fit_all_s": fit_s}
        if folds is None:
            t0 = time.perf_counter()
            evaluate_lodo(traj, name)
            entry["lodo_s"] = time.perf_counter() - t0
            entry["lodo_estimated"] = False
        else:
            per = []
            for i, (_d, train, test) in enumerate(lodo_splits(traj)):
                if i >= folds:
                    break
                t0 = time.perf_counter()
                model = get_predictor(name).fit(train)
                one_step_table(model, test, PAPER_MIN_EPOCH)
                multi_step_table(model, test, None)
                per.append(time.perf_counter() - t0)
            entry["lodo_fold_s"] = per
            entry["lodo_s"] = statistics.mean(per) * n_datasets
            entry["lodo_estimated"] = True
        preds[name] = entry
    out["predictors"] = preds
    with tempfile.TemporaryDirectory(prefix="gp-bench-") as tmp_s:
        tmp = Path(tmp_s)
        traj_path = write_trajectories(traj, tmp / "trajectories.parquet")
        model = get_predictor(paths_predictor).fit(traj)
        save(model, tmp / "model.json")
        paper = {
            d: paper_savings.save(
                paper_savings.fit_paper_savings(traj, d), tmp / f"paper_without_{d}.json"
            )
            for d in sorted(traj["dataset"].unique())
        }
        from greenpath.paths import run_paths

        t0 = time.perf_counter()
        run_paths(
            tmp / "model.json", traj_path, "constrained", out=tmp / "paths.json",
            paper_models=paper,
        )  # fmt: skip
        out["paths"] = {"predictor": paths_predictor, "run_paths_s": time.perf_counter() - t0}
    return out
