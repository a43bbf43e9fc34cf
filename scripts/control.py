"""Closed-loop evaluation of the energy-aware controller (issue 9, docs/control.md).

Standalone::

    python scripts/control.py --config config/config.yaml --records results/default/records.parquet \\
        --data-dir results/default/data --out-dir results/default/control \\
        --models digits=results/default/models/paper/without_digits.json ...

From Snakemake: rule ``control_closed_loop`` (workflow/rules/control.smk); reads
``input.records``, ``input.datasets`` (one ``.npz`` per dataset, named ``<dataset>.npz``),
``output.table``/``markdown``/``figure``/``runs``, ``params`` (settings: the config-shaped
settings of the live runs; models: dataset -> model fitted without it; objective; patience;
out_dir) and ``log[0]``.
"""

import argparse
import logging
from pathlib import Path

import torch

from greenpath.config import load_config
from greenpath.control.closed_loop import closed_loop, write_outputs
from greenpath.interrupts import one_line_on_interrupt


def main(config, records, dataset_paths, out_dir, *, models, objective="constrained",
         tolerance=0.01, lam=None, patience=5, table=None, markdown=None, figure=None,
         runs=None, log_file=None):  # fmt: skip
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    torch.set_num_threads(int(config["training"].get("num_threads", 1)))
    out_dir = Path(out_dir)
    result = closed_loop(config, records_path=Path(records), dataset_paths=dataset_paths,
                         out_dir=out_dir, models=models, objective=objective,
                         tolerance=tolerance, lam=lam, patience=patience)  # fmt: skip
    t = write_outputs(
        result,
        Path(table or out_dir / "control.csv"),
        Path(markdown or out_dir / "control.md"),
        Path(figure or out_dir / "control.png"),
        Path(runs or out_dir / "runs.csv"),
    )
    logging.info("closed loop:\n%s", t.to_string())


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with one_line_on_interrupt(f"{sm.rule} {dict(sm.wildcards.items())}"):
        main(
            sm.params.settings,
            sm.input.records,
            {Path(p).stem: Path(p) for p in sm.input.datasets},
            sm.params.out_dir,
            models={d: Path(p) for d, p in sm.params.models.items()},
            objective=sm.params.objective["objective"],
            tolerance=float(sm.params.objective["tolerance"]),
            lam=sm.params.objective["lam"],
            patience=int(sm.params.patience),
            table=sm.output.table,
            markdown=sm.output.markdown,
            figure=sm.output.figure,
            runs=sm.output.runs,
            log_file=sm.log[0] if sm.log else None,
        )
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--records", default="results/default/records.parquet")
    ap.add_argument("--data-dir", default="results/default/data")
    ap.add_argument("--out-dir", default="results/default/control")
    ap.add_argument("--models", nargs="+", required=True,
                    help="DATASET=MODEL.json: the predictor fitted without DATASET")  # fmt: skip
    ap.add_argument("--objective", default="constrained")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--patience", type=int, default=5)
    a = ap.parse_args()
    cfg = load_config(a.config, check_datasets=False)
    paths = {d: Path(a.data_dir) / f"{d}.npz" for d in cfg["datasets"]}
    models = {d: Path(p) for d, p in (m.split("=", 1) for m in a.models)}
    main(cfg, a.records, paths, a.out_dir, models=models, objective=a.objective,
         tolerance=a.tolerance, patience=a.patience)  # fmt: skip
