"""Combine per-job records into results/records.parquet and results/trajectories.parquet.

Standalone:  python scripts/aggregate.py --config config/config.yaml \
                 --records-out results/records.parquet \
                 --trajectories-out results/trajectories.parquet results/records/*/*/*.parquet
From Snakemake: rule ``aggregate`` (workflow/rules/aggregate.smk).
"""

import argparse
import logging

from greenpath.config import load_config
from greenpath.grid import stop_points
from greenpath.joblog import job_log
from greenpath.records.aggregate import aggregate


def main(files, records_out, trajectories_out, config) -> None:
    stops = stop_points(config["interventions"]["epochs"], config["interventions"]["methods"])
    records, traj = aggregate(files, records_out, trajectories_out, stop_epochs=stops)
    n_paths = traj.groupby(["study", "dataset", "seed", "method", "intervention_epoch"]).ngroups
    logging.info("%d epoch rows from %d files; %d paths", len(records), len(files), n_paths)


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with job_log(sm.log[0] if sm.log else None):
        main(list(sm.input), sm.output.records, sm.output.trajectories, sm.config)
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--records-out", default="results/records.parquet")
    ap.add_argument("--trajectories-out", default="results/trajectories.parquet")
    a = ap.parse_args()
    with job_log(None):
        main(
            a.files, a.records_out, a.trajectories_out, load_config(a.config, check_datasets=False)
        )
