"""What deciding after every epoch costs (per-epoch planner and live controller).

On EAT-IT (``<repo>/../shared/eatit``; cifar10's tree, the ``greenpath`` predictor fitted on
the other datasets), per epoch of the trunk, median over epochs and rounds:

* ``decide_ms``: :func:`greenpath.paths.decide.decide` alone, forecasts given (base,
  freeze, quant; plans ending at every later epoch: the most plans it ever sees);
* ``forecast_and_decide_ms``: the three forecasts plus ``decide`` (what the controller
  adds to an epoch);
* ``controller_ms``: ``Controller.on_epoch_end`` replayed on the tree's rows (history
  bookkeeping included; no decisions log written).

Each is compared with the median measured EAT-IT epoch (``duration_s`` of cifar10's
trunk) as a percentage. Usage: ``python bench/bench_decide.py [--out results/bench]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EATIT = REPO.parent / "shared" / "eatit"


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(eatit: Path = EATIT, dataset: str = "cifar10", rounds: int = 5) -> dict[str, Any]:
    """Timings in ms per epoch (module docstring); ``{"skipped": ...}`` without EAT-IT."""
    if not (eatit / "all_data.csv").is_file():
        return {"skipped": f"EAT-IT data absent: {eatit}"}
    logging.getLogger("greenpath").setLevel(logging.WARNING)
    from greenpath.control import Controller
    from greenpath.modeling import get_predictor, import_eatit
    from greenpath.paths import build_trees, get_objective
    from greenpath.paths.decide import Margin, decide
    from greenpath.paths.planner import tree_history
    from greenpath.records import build_trajectories

    records = import_eatit(eatit, energy="nvidia")
    traj = build_trajectories(records)
    tree = next(t for t in build_trees(traj) if t.dataset == dataset)
    pred = get_predictor("greenpath").fit(traj[traj["dataset"] != dataset])
    obj, margin = get_objective("constrained", 0.01), Margin(cold_start=False)
    E = tree.last_epoch
    epochs = range(1, E)

    def forecasts(d: int) -> dict[str, Any]:
        hist = tree.history(d)
        return {m: pred.forecast(hist, m, d, E, dataset_info=tree.dataset_info)
                for m in ("base", "freeze", "quant")}  # fmt: skip

    given = {d: forecasts(d) for d in epochs}
    hist = {d: tree_history(tree, d) for d in epochs}
    decide_ms = [_median_ms(lambda d=d: decide(hist[d], given[d], obj, margin), rounds)
                 for d in epochs]  # fmt: skip
    both_ms = [_median_ms(lambda d=d: decide(hist[d], forecasts(d), obj, margin), rounds)
               for d in epochs]  # fmt: skip
    rows = [r._asdict() for r in tree.trunk.itertuples(index=False)]
    ctl_ms = []
    for _ in range(rounds):
        ctl = Controller(pred, last_epoch=E, margin=Margin(cold_start=False, delta=1.0))
        for e, row in enumerate(rows[:-1], start=1):  # delta = 1: never stops, every epoch
            t0 = time.perf_counter()
            ctl.on_epoch_end(e, row)
            ctl_ms.append((time.perf_counter() - t0) * 1e3)
    epoch_s = float(tree.trunk["duration_s"].median())
    out = {
        "dataset": dataset,
        "epochs": len(epochs),
        "rounds": rounds,
        "decide_ms": statistics.median(decide_ms),
        "decide_ms_max": max(decide_ms),
        "forecast_and_decide_ms": statistics.median(both_ms),
        "controller_ms": statistics.median(ctl_ms),
        "eatit_epoch_s": epoch_s,
        "load_avg": os.getloadavg(),
    }
    for k in ("decide_ms", "forecast_and_decide_ms", "controller_ms"):
        out[k.replace("_ms", "_pct_of_epoch")] = out[k] / 1e3 / epoch_s * 100
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    from greenpath.records import json_ready, write_json

    res = bench(rounds=a.rounds)
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(json_ready(res), a.out / "decide.json")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
