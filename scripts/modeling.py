"""Modeling stage entry point: import EAT-IT, evaluate, fit, choose paths.

Standalone (S = results/<study>):
    python scripts/modeling.py fit --trajectories S/trajectories.parquet --predictor paper \
        [--held-out digits] --out S/models/paper/without_digits.json
    python scripts/modeling.py evaluate --trajectories S/trajectories.parquet --predictor paper \
        --models digits=S/models/paper/without_digits.json ... --out S/evaluation.json \
        --table S/tables/evaluation.csv
    python scripts/modeling.py fit --trajectories S/trajectories.parquet \
        --predictor paper_savings --held-out digits --out S/models/paper_savings/without_digits.json
    python scripts/modeling.py paths --model S/models/greenpath/all.json \
        --models digits=S/models/greenpath/without_digits.json ... \
        --paper-models digits=S/models/paper_savings/without_digits.json ... \
        --trajectories S/trajectories.parquet --out S/paths.json --table S/tables/paths.csv
    python scripts/modeling.py import-eatit --src ../shared/eatit --out results/eatit/records.parquet
From Snakemake: the rules in workflow/rules/model.smk (``params.role`` picks the step).
"""

import argparse
import logging
from pathlib import Path

from greenpath.interrupts import job_name, one_line_on_interrupt
from greenpath.modeling import workflow as mw


def run(role, inputs, outputs, params, log_file=None):
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        _run(role, inputs, outputs, params)
    except Exception:
        logging.exception("modeling step %r failed", role)
        raise


def _run(role, inputs, outputs, params):
    if role == "import-eatit":
        from greenpath.modeling.eatit import flag_chance_level, import_eatit
        from greenpath.records import build_trajectories, read_records, write_records
        from greenpath.records.aggregate import write_trajectories

        rows = import_eatit(Path(params["src"]), energy=params.get("energy", "nvidia"))
        flagged = sorted(flag_chance_level(rows))
        write_records(
            rows,
            outputs["records"],
            metadata={"source": "eatit", "chance_level": ",".join(flagged)},
        )
        if outputs.get("trajectories"):
            traj = build_trajectories(read_records(outputs["records"]))
            write_trajectories(traj, outputs["trajectories"])
    elif role == "evaluate":
        mw.evaluate_study(
            inputs["trajectories"][0], params["models"], outputs["json"], outputs["table"]
        )
    elif role == "fit":
        # one model per fold (fold -> held-out dataset, None = every dataset)
        folds = params.get("folds") or {"model": params.get("held_out")}
        for fold, held_out in folds.items():
            mw.fit_study(
                inputs["trajectories"][0], params["predictor"], outputs[fold], held_out=held_out
            )
    elif role == "paths":
        from greenpath.paths.run import paths_study

        objective = params.get("objective") or {}
        paths_study(
            Path(inputs["model"][0]),
            {d: Path(p) for d, p in (params.get("models") or {}).items()},
            Path(inputs["trajectories"][0]),
            Path(outputs["json"]),
            Path(outputs["table"]),
            paper_models={d: Path(p) for d, p in (params.get("paper_models") or {}).items()},
            objective=objective.get("objective", "constrained"),
            tolerance=float(objective.get("tolerance", 0.01)),
            lam=objective.get("lam"),
        )
    else:
        raise ValueError(f"unknown role {role!r}; use import-eatit, evaluate, fit or paths")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with one_line_on_interrupt(job_name(sm)):
        run(
            sm.params.role,
            {k: list(v) if not isinstance(v, str) else [v] for k, v in sm.input.items()},
            dict(sm.output.items()),
            dict(sm.params.items()),
            log_file=sm.log[0] if sm.log else None,
        )
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=["import-eatit", "evaluate", "fit", "paths"])
    ap.add_argument("--trajectories", default="results/default/trajectories.parquet")
    ap.add_argument("--models", nargs="*", default=[], help="DATASET=MODEL.json (paths)")
    ap.add_argument(
        "--paper-models", nargs="*", default=[], help="DATASET=MODEL.json (paths: paper_savings)"
    )
    ap.add_argument("--predictor", default="greenpath")
    ap.add_argument("--held-out", help="fit: the dataset to leave out")
    ap.add_argument("--model")
    ap.add_argument("--src")
    ap.add_argument("--energy", default="nvidia", choices=["nvidia", "codecarbon"])
    ap.add_argument("--objective", default="constrained")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--out", required=True)
    ap.add_argument("--table")
    a = ap.parse_args()
    outputs = {"json": a.out, "model": a.out, "records": a.out, "table": a.table}
    models = dict(m.split("=", 1) for m in a.models)
    params = {
        "models": {a.predictor: models} if a.role == "evaluate" else models,
        "paper_models": dict(m.split("=", 1) for m in a.paper_models),
        "predictor": a.predictor,
        "held_out": a.held_out,
        "src": a.src,
        "energy": a.energy,
        "objective": {"objective": a.objective, "tolerance": a.tolerance, "lam": None},
    }
    inputs = {"trajectories": [a.trajectories], "model": [a.model]}
    run(a.role, inputs, outputs, params)
