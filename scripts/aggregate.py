"""Combine per-job records into results/<study>/records.parquet and trajectories.parquet.

Standalone:  python scripts/aggregate.py --config config/config.yaml \
                 --records-out results/default/records.parquet \
                 --trajectories-out results/default/trajectories.parquet \
                 results/default/records/*/*/*.parquet
From Snakemake: rule ``aggregate`` (workflow/rules/aggregate.smk); reads ``params.stop_epochs``
and ``params.epochs``. Records whose config hashes or last epochs disagree are refused
(``greenpath.records.aggregate.check_consistent``).
"""

import argparse
import logging

from greenpath.config import load_config
from greenpath.grid import stop_points
from greenpath.interrupts import job_name, one_line_on_interrupt
from greenpath.joblog import job_log
from greenpath.records.aggregate import aggregate


def main(files, records_out, trajectories_out, stops, epochs) -> None:
    records, traj = aggregate(
        files, records_out, trajectories_out, stop_epochs=stops, epochs=epochs
    )
    n_paths = traj.groupby(["study", "dataset", "seed", "method", "intervention_epoch"]).ngroups
    logging.info("%d epoch rows from %d files; %d paths", len(records), len(files), n_paths)


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with one_line_on_interrupt(job_name(sm)), job_log(sm.log[0] if sm.log else None):
        main(
            list(sm.input),
            sm.output.records,
            sm.output.trajectories,
            list(sm.params.stop_epochs),
            int(sm.params.epochs),
        )
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--records-out", default="results/default/records.parquet")
    ap.add_argument("--trajectories-out", default="results/default/trajectories.parquet")
    a = ap.parse_args()
    cfg = load_config(a.config, check_datasets=False)
    stops = stop_points(cfg["interventions"]["epochs"], cfg["interventions"]["methods"])
    with job_log(None):
        main(a.files, a.records_out, a.trajectories_out, stops, cfg["training"]["epochs"])
