"""Modeling stage entry point: import EAT-IT, evaluate, fit, choose paths.

Standalone:
    python scripts/modeling.py evaluate --records results/records.parquet \
        --predictors persistence paper greenpath --out results/evaluation/default.json \
        --table results/tables/default_evaluation.csv
    python scripts/modeling.py fit --records results/records.parquet --predictor greenpath \
        --out results/models/default/greenpath.json
    python scripts/modeling.py paths --model results/models/default/greenpath.json \
        --records results/records.parquet --out results/paths/default.json \
        --table results/tables/default_paths.csv
    python scripts/modeling.py import-eatit --src ../shared/eatit --out results/eatit/records.parquet
From Snakemake: the rules in workflow/rules/model.smk (``params.role`` picks the step).
"""

import argparse
import logging
from pathlib import Path

from greenpath.modeling import workflow as mw


def run(role, inputs, outputs, params, config, log_file=None):
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        _run(role, inputs, outputs, params, config.get("modeling", {}))
    except Exception:
        logging.exception("modeling step %r failed", role)
        raise


def _run(role, inputs, outputs, params, modeling):
    if role == "import-eatit":
        from greenpath.modeling.eatit import flag_chance_level, import_eatit
        from greenpath.records import write_records

        rows = import_eatit(Path(params["src"]), energy=params.get("energy", "nvidia"))
        flagged = sorted(flag_chance_level(rows))
        write_records(
            rows,
            outputs["records"],
            metadata={"source": "eatit", "chance_level": ",".join(flagged)},
        )
    elif role == "evaluate":
        mw.evaluate_study(
            inputs["records"], params["predictors"], outputs["json"], outputs["table"]
        )
    elif role == "fit":
        mw.fit_study(inputs["records"], params["predictor"], outputs["model"])
    elif role == "paths":
        mw.paths_study(
            inputs["model"][0],
            inputs["records"],
            outputs["json"],
            outputs["table"],
            objective=modeling.get("objective", "constrained"),
            tolerance=float(modeling.get("tolerance", 0.01)),
            lam=modeling.get("lam"),
        )
    else:
        raise ValueError(f"unknown role {role!r}; use import-eatit, evaluate, fit or paths")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    run(
        sm.params.role,
        {k: list(v) if not isinstance(v, str) else [v] for k, v in sm.input.items()},
        dict(sm.output.items()),
        dict(sm.params.items()),
        sm.config,
        log_file=sm.log[0] if sm.log else None,
    )
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=["import-eatit", "evaluate", "fit", "paths"])
    ap.add_argument("--records", nargs="+", default=["results/records.parquet"])
    ap.add_argument("--predictors", nargs="+", default=["persistence", "paper", "greenpath"])
    ap.add_argument("--predictor", default="greenpath")
    ap.add_argument("--model")
    ap.add_argument("--src")
    ap.add_argument("--energy", default="nvidia", choices=["nvidia", "codecarbon"])
    ap.add_argument("--objective", default="constrained")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--out", required=True)
    ap.add_argument("--table")
    a = ap.parse_args()
    outputs = {"json": a.out, "model": a.out, "records": a.out, "table": a.table}
    cfg = {"modeling": {"objective": a.objective, "tolerance": a.tolerance}}
    params = {
        "predictors": a.predictors,
        "predictor": a.predictor,
        "src": a.src,
        "energy": a.energy,
    }
    run(a.role, {"records": a.records, "model": [a.model]}, outputs, params, cfg)
