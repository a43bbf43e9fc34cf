"""Closed-loop evaluation of the energy-aware controller (docs/control.md).

Standalone (the whole loop in one process)::

    python scripts/control.py --config config/config.yaml \\
        --trajectories results/default/trajectories.parquet --data-dir results/default/data \\
        --out-dir results/default/control \\
        --models digits=results/default/models/paper/without_digits.json ...

From Snakemake (workflow/rules/control.smk), ``params.role`` picks the step:

- ``calibrate`` (rule ``control_calibrate``, one job per dataset): reads
  ``input.trajectories``, ``wildcards.dataset``, ``params`` (settings, models, objective) and
  writes the controller's margin and actions for that dataset to ``output.calibration`` (JSON).
- ``run`` (rule ``control_run``, one job per dataset, seed and run kind): reads
  ``input.dataset``, ``input.calibration`` (the controlled run's settings; the full run
  records which calibration it is the reference for), ``wildcards`` (dataset, seed, kind),
  ``params.settings`` (the config-shaped settings of the live runs) and, for a controlled
  run, ``input.trajectories`` and ``params`` models (the run's dataset -> its model fitted
  without it) and objective; writes ``output.summary`` (JSON); the run's files go beside it.
- ``table`` (rule ``control_closed_loop``): reads every run summary (``input.runs``),
  ``input.trajectories``, ``params`` (settings, models, objective, patience) and writes
  ``output.table``/``markdown``/``figure``/``runs``.
"""

import argparse
import json
import logging
from pathlib import Path

from greenpath.config import load_config
from greenpath.control.closed_loop import (
    calibrate_controller,
    closed_loop,
    live_run,
    tabulate,
    write_outputs,
)
from greenpath.devices import claim_for_job
from greenpath.interrupts import job_name, one_line_on_interrupt
from greenpath.joblog import job_log
from greenpath.records import write_json


def _threads(config):
    claim_for_job(config)  # a free GPU of the run, before torch starts CUDA
    import torch

    torch.set_num_threads(int(config["training"].get("num_threads", 1)))


def _outputs(result, table, markdown, figure, runs):
    t = write_outputs(result, Path(table), Path(markdown), Path(figure), Path(runs))
    logging.info("closed loop:\n%s", t.to_string())


def _from_snakemake(sm):
    settings, goal = sm.params.settings, dict(sm.params.objective)
    models = {d: Path(p) for d, p in sm.params.models.items()}
    if sm.params.role == "calibrate":
        doc = calibrate_controller(settings, trajectories_path=Path(sm.input.trajectories),
                                   models=models, dataset=sm.wildcards.dataset, **goal)  # fmt: skip
        write_json(doc, Path(sm.output.calibration))
    elif sm.params.role == "run":
        _threads(settings)
        summary = Path(sm.output.summary)
        controlled = sm.wildcards.kind == "controlled"
        goal = goal if controlled else {}
        calib = json.loads(Path(sm.input.calibration).read_text())
        traj = Path(sm.input.trajectories) if controlled else None
        doc = live_run(settings, trajectories_path=traj, models=models,
                       dataset=sm.wildcards.dataset, dataset_path=Path(sm.input.dataset),
                       seed=int(sm.wildcards.seed), kind=sm.wildcards.kind,
                       run_dir=summary.parent, calibration=calib, **goal)  # fmt: skip
        write_json(doc, summary)
    else:
        runs = [json.loads(Path(p).read_text()) for p in sm.input.runs]
        result = tabulate(settings, trajectories_path=Path(sm.input.trajectories), models=models,
                          runs=runs, patience=int(sm.params.patience), **goal)  # fmt: skip
        o = sm.output
        _outputs(result, o.table, o.markdown, o.figure, o.runs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--trajectories", default="results/default/trajectories.parquet")
    ap.add_argument("--data-dir", default="results/default/data")
    ap.add_argument("--out-dir", default="results/default/control")
    ap.add_argument("--models", nargs="+", required=True,
                    help="DATASET=MODEL.json: the predictor fitted without DATASET")  # fmt: skip
    ap.add_argument("--objective", default="constrained")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--patience", type=int, default=5)
    a = ap.parse_args(argv)
    cfg = load_config(a.config, check_datasets=False)
    _threads(cfg)
    out = Path(a.out_dir)
    paths = {d: Path(a.data_dir) / f"{d}.npz" for d in cfg["datasets"]}
    models = {d: Path(p) for d, p in (m.split("=", 1) for m in a.models)}
    result = closed_loop(cfg, trajectories_path=Path(a.trajectories), dataset_paths=paths, out_dir=out,
                         models=models, objective=a.objective, tolerance=a.tolerance,
                         patience=a.patience)  # fmt: skip
    _outputs(result, out / "control.csv", out / "control.md", out / "control.png", out / "runs.csv")


if "snakemake" in globals():
    _sm = globals()["snakemake"]
    with one_line_on_interrupt(job_name(_sm)), job_log(_sm.log[0] if _sm.log else None):
        _from_snakemake(_sm)
elif __name__ == "__main__":
    with job_log(None):
        main()
